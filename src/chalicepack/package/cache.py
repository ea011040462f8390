"""The cache shared by builds: downloaded and built wheels by sha256, installed trees, and
resolutions.

Layout under the cache directory (default ``$XDG_CACHE_HOME/chalicepack``):
``wheels/<sha256>/<file>.whl`` (content-addressed; written to a temporary name and renamed,
so concurrent builds never see half a file), ``trees/<key>/`` (installed site-packages, see
``install``), ``pip/`` (pip's own HTTP cache), ``build/`` (source builds: zig's cache and
the pip cache of wheels built with our toolchain, see ``deps.sourcebuild``),
``resolutions/<key>.json`` and
``outputs/<key>.json`` (the digests of an output directory's zips by their stat, see
``package.uptodate``).

A resolution is reused when nothing that could change it changed (the key covers every
requirements and constraints file, by content and by path from the project, what each local
path requirement holds (a project directory's files but what builds write there, a wheel or
sdist file, a local ``--find-links`` folder's files; fingerprinted as the up-to-date check
fingerprints app files), the target, the ``PIP_*`` environment and chalicepack's version)
and every wheel it names is still in the store. One of fully pinned requirements
(every line ``name==version``, and every resolved distribution named by such a line) is
reused for good: a rebuild needs no index at all. One of looser requirements is reused for
``max_age`` seconds (an hour by default), as ``chalice package``
reuses its dependencies while requirements.txt is unchanged, so that a rebuild in an edit loop
does not ask the index again; after that the requirements are resolved again. ``--refresh``
resolves again whatever is cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from chalicepack import __version__
from chalicepack.errors import BadInput
from chalicepack.inputs.requirements import (
    RequirementLine,
    index_options,
    is_exact_pin,
    local_sources,
    option_values,
    referenced_files,
)
from chalicepack.package.digest import add_file_fingerprint
from chalicepack.report import write_json_atomically

if TYPE_CHECKING:
    from chalicepack.deps.pip_resolver import Resolution
    from chalicepack.inputs.target import Target

_FORMAT = 2
DEFAULT_MAX_AGE = 3600.0


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "chalicepack"


def usable_cache_dir(cache_dir: Path, given: bool) -> Path:
    """``cache_dir``, refused before any work when it, or a folder above it, is a file: the
    first write into it would fail halfway through the build with a bare "Not a directory".
    ``given``: the user named it with ``--cache-dir`` (else it is the default's fault)."""
    return usable_directory(cache_dir, "--cache-dir" if given else "the default cache directory")


def usable_directory(directory: Path, where: str) -> Path:
    """``directory``, refused (bad input naming ``where``: the option that names it) when it,
    or a folder above it, is a file."""
    for path in (directory, *directory.parents):
        if path.exists():
            if path.is_dir():
                return directory
            raise BadInput(
                f"{where} {directory}: {path} is a file, not a directory; name a directory "
                "(it is created when missing)",
                file=path,
            )
    return directory


# pip settings that change where pip keeps files, how it talks and how long it waits, never
# what resolving gives: a CI job whose PIP_CACHE_DIR lies under its own workspace path reuses
# the resolution another job made.
_NOT_RESOLUTION = frozenset(
    {
        "PIP_CACHE_DIR", "PIP_NO_CACHE_DIR", "PIP_LOG", "PIP_LOG_FILE", "PIP_QUIET",
        "PIP_VERBOSE", "PIP_PROGRESS_BAR", "PIP_NO_COLOR", "PIP_NO_INPUT", "PIP_TIMEOUT",
        "PIP_DEFAULT_TIMEOUT", "PIP_RETRIES", "PIP_DISABLE_PIP_VERSION_CHECK",
        "PIP_ROOT_USER_ACTION",
    }
)  # fmt: skip


def resolution_key(requirements: Path, target: Target, resolver: str = "auto") -> str:
    """The cache key of resolving ``requirements`` for ``target`` in this environment (with
    ``resolver``: asking for pip explicitly means pip's own answer, not a cached one)."""
    digest = hashlib.sha256()
    inputs: dict[str, Any] = {
        "format": _FORMAT,
        "chalicepack": __version__,
        "target": [target.runtime, target.arch],
        "resolver": resolver,
        # Index settings from the environment change what the same lines resolve to.
        "pip_environment": sorted(
            (name, value)
            for name, value in os.environ.items()
            if name.startswith("PIP_") and name not in _NOT_RESOLUTION
        ),
    }
    digest.update(json.dumps(inputs, sort_keys=True).encode())
    # Files by their path from the requirements file's folder, not from /: a CI job that
    # restores the checkout and this cache under paths of its own reuses the resolution.
    base = requirements.resolve().parent
    for path in referenced_files(requirements):
        named = Path(os.path.relpath(path, base)).as_posix()
        digest.update(named.encode() + b"\0" + path.read_bytes() + b"\0")
    # What a local path requirement holds is an input too: pip builds ./pkg or installs
    # ./pkg-1.0-py3-none-any.whl anew each time, and a cached resolution (with the wheel it
    # names) would ship the code it held when resolved.
    for source in local_sources(requirements):
        named = Path(os.path.relpath(source, base)).as_posix()
        digest.update(b"\1" + named.encode() + b"\0")
        for name, file in _source_files(source):
            add_file_fingerprint(digest, name, file)
    # Likewise the wheels and sdists of a local --find-links folder (rebuilt under one name).
    for folder in _find_links_folders(requirements):
        named = Path(os.path.relpath(folder, base)).as_posix()
        digest.update(b"\2" + named.encode() + b"\0")
        for file in sorted(path for path in folder.iterdir() if path.is_file()):
            add_file_fingerprint(digest, file.name, file)
    return digest.hexdigest()


def _find_links_folders(requirements: Path) -> list[Path]:
    """The local folders pip reads distributions from with ``--find-links``: those named in
    ``requirements`` (made absolute by ``index_options``) and in ``PIP_FIND_LINKS``."""
    options = index_options(requirements)
    named = option_values(options, "--find-links")
    named += os.environ.get("PIP_FIND_LINKS", "").split()
    folders = []
    for value in named:
        if value[:5].lower() == "file:":
            value = url2pathname(urlsplit(value).path)
        folder = Path(os.path.abspath(value))
        if folder.is_dir() and folder not in folders:
            folders.append(folder)
    return folders


# What builds and tools write into a project directory, never part of what it is: pip builds
# a local project in place (setuptools writes build/ and *.egg-info there).
_NOT_SOURCE = frozenset(
    {".git", ".hg", ".svn", "__pycache__", ".tox", ".nox", ".venv", ".mypy_cache",
     ".pytest_cache", ".ruff_cache", "node_modules"}
)  # fmt: skip
# build/ and dist/ (setuptools' output, chalicepack's default --out), .chalice/ (a Chalice
# project's deployed state, when the project is its own local requirement: `-e .`), target/
# (cargo's output).
_NOT_SOURCE_AT_TOP = frozenset({"build", "dist", ".chalice", "target"})


def _source_files(source: Path) -> list[tuple[str, Path]]:
    """The files of a local requirement's source, by their POSIX path inside it (a file
    alone, by its name), in order."""
    if not source.is_dir():
        return [(source.name, source)]
    files = []
    for folder, folders, names in os.walk(source):
        at_top = folder == str(source)
        folders[:] = [
            name for name in folders
            if name not in _NOT_SOURCE and not name.endswith(".egg-info")
            and not (at_top and name in _NOT_SOURCE_AT_TOP)
        ]  # fmt: skip
        for name in names:
            path = Path(folder, name)
            if not name.endswith((".pyc", ".pyo")) and path.is_file():
                files.append((path.relative_to(source).as_posix(), path))
    return sorted(files)


def _record_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / "resolutions" / f"{key}.json"


def load_resolution(cache_dir: Path, key: str, max_age: float) -> Resolution | None:
    """A recorded resolution still valid (pinned, or younger than ``max_age`` seconds) whose
    wheels are all still in the store, else None."""
    # resolve imports pip's and sdist's machinery; an unchanged build asks reusable_resolution.
    from chalicepack.deps.buildrecord import SourceBuild
    from chalicepack.deps.pip_resolver import Distribution, MissingDistribution, Resolution

    reusable = _reusable_record(cache_dir, key, max_age)
    if reusable is None:
        return None
    record = reusable[1]
    try:
        return Resolution(
            tuple(Distribution(**_tuples(item)) for item in record["distributions"]),
            tuple(MissingDistribution(**_tuples(item)) for item in record["missing"]),
            tuple(SourceBuild.from_json(item) for item in record.get("source_builds", ())),
        )
    except (KeyError, TypeError):
        return None  # unreadable: resolve again


def reusable_resolution(cache_dir: Path, key: str, max_age: float) -> str | None:
    """The ``resolution_token`` of the resolution ``load_resolution`` would reuse, else None;
    cheaper, for a build that may need no more than knowing what it would reuse."""
    reusable = _reusable_record(cache_dir, key, max_age)
    return None if reusable is None else hashlib.sha256(reusable[0]).hexdigest()


def _reusable_record(cache_dir: Path, key: str, max_age: float) -> tuple[bytes, Any] | None:
    """The recorded resolution's bytes and document when it may be reused, else None."""
    try:
        data = _record_path(cache_dir, key).read_bytes()
        record = json.loads(data)
        if not record["pinned"] and time.time() - record["resolved_at"] > max_age:
            return None
        store = cache_dir / "wheels"
        for distribution in record["distributions"]:
            sha256, filename = distribution["sha256"], distribution["filename"]
            if not isinstance(sha256, str) or not (store / sha256 / filename).is_file():
                return None
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or unreadable: resolve again
    return data, record


def resolution_token(cache_dir: Path, key: str) -> str:
    """A digest of the recorded resolution: what a reused build was built from."""
    return hashlib.sha256(_record_path(cache_dir, key).read_bytes()).hexdigest()


def save_resolution(
    cache_dir: Path,
    key: str,
    resolution: Resolution,
    lines: tuple[RequirementLine, ...],
    wheels: dict[str, Path],
) -> None:
    """Record ``resolution`` with the sha256 of each stored wheel."""
    from chalicepack.deps.install import (
        stored_sha256,  # installer and pip: only for a build that resolved
    )

    exact = {line.name for line in lines if is_exact_pin(line)}
    names = [d.name for d in resolution.distributions] + [m.name for m in resolution.missing]
    # With a dependency missing it is not final: what kept it out (no interpreter of the
    # target's minor, a library) can be fixed without touching requirements.txt.
    pinned = bool(lines) and len(exact) == len(lines) and set(names) <= exact
    pinned = pinned and not resolution.missing
    distributions = []
    for distribution in resolution.distributions:
        stored = wheels[distribution.name]
        distributions.append(
            {**asdict(distribution), "sha256": stored_sha256(stored), "filename": stored.name}
        )
    record = {
        "pinned": pinned,
        "resolved_at": time.time(),
        "distributions": distributions,
        "missing": [asdict(item) for item in resolution.missing],
        "source_builds": [item.to_json() for item in resolution.source_builds],
    }
    write_json_atomically(_record_path(cache_dir, key), record)


def _tuples(item: dict[str, Any]) -> dict[str, Any]:
    return {key: tuple(value) if isinstance(value, list) else value for key, value in item.items()}
