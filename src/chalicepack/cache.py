"""The cache shared by builds: downloaded and built wheels by sha256, and resolutions.

Layout under the cache directory (default ``$XDG_CACHE_HOME/chalicepack``):
``wheels/<sha256>/<file>.whl`` (content-addressed; written to a temporary name and renamed,
so concurrent builds never see half a file), ``pip/`` (pip's own HTTP cache) and
``resolutions/<key>.json``. A resolution is recorded only for fully pinned requirements (every
line ``name==version`` and every resolved distribution named by such a line), so that an
unchanged rebuild needs no index at all; its key covers every input that could change it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import __version__
from .report import write_json_atomically
from .requirements import RequirementLine, is_exact_pin, referenced_files
from .resolve import Distribution, MissingDistribution, Resolution
from .target import Target

_FORMAT = 1


def resolution_key(
    requirements: Path, lines: tuple[RequirementLine, ...], target: Target
) -> str | None:
    """The cache key of this resolution, or None when requirements are not fully pinned."""
    if not lines or not all(is_exact_pin(line) for line in lines):
        return None
    digest = hashlib.sha256()
    inputs: dict[str, Any] = {
        "format": _FORMAT,
        "chalicepack": __version__,
        "target": [target.runtime, target.arch],
        # Index settings from the environment change what the same lines resolve to.
        "pip_environment": sorted(
            (name, value) for name, value in os.environ.items() if name.startswith("PIP_")
        ),
    }
    digest.update(json.dumps(inputs, sort_keys=True).encode())
    for path in referenced_files(requirements):
        digest.update(path.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def load_resolution(cache_dir: Path, key: str) -> Resolution | None:
    """A recorded resolution whose wheels are all still in the store, else None."""
    path = cache_dir / "resolutions" / f"{key}.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        resolution = Resolution(
            tuple(Distribution(**_tuples(item)) for item in record["distributions"]),
            tuple(MissingDistribution(**_tuples(item)) for item in record["missing"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or unreadable: resolve again
    store = cache_dir / "wheels"
    for distribution in resolution.distributions:
        if distribution.sha256 is None:
            return None
        if not (store / distribution.sha256 / distribution.filename).is_file():
            return None
    return resolution


def save_resolution(
    cache_dir: Path,
    key: str,
    resolution: Resolution,
    lines: tuple[RequirementLine, ...],
    wheels: dict[str, Path],
) -> None:
    """Record ``resolution`` with the sha256 of each stored wheel, if fully pinned."""
    pinned = {line.name for line in lines}
    names = [d.name for d in resolution.distributions] + [m.name for m in resolution.missing]
    if not set(names) <= pinned:
        return  # some version came from the index's current state, not from the file
    distributions = []
    for distribution in resolution.distributions:
        stored = wheels[distribution.name]
        distributions.append(
            {**asdict(distribution), "sha256": stored.parent.name, "filename": stored.name}
        )
    record = {
        "distributions": distributions,
        "missing": [asdict(item) for item in resolution.missing],
    }
    write_json_atomically(cache_dir / "resolutions" / f"{key}.json", record)


def _tuples(item: dict[str, Any]) -> dict[str, Any]:
    return {key: tuple(value) if isinstance(value, list) else value for key, value in item.items()}
