"""An unchanged rebuild is a hash check: when every input of the last build in the output
directory is the same and its zips are intact, that build's report is the answer.

The fingerprint covers chalicepack's and chalice's versions, the options that shape the
package, config.json, every file that ships from the project (content for files up to 1 MiB;
size and modification time for bigger vendor files, which are seldom edited and costly to
hash), the resolution reused from the cache and ``SOURCE_DATE_EPOCH``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from . import __version__
from .install import file_sha256
from .project import Project

log = logging.getLogger(__name__)

_HASHED_UP_TO = 1 << 20


def build_fingerprint(
    project: Project,
    config_path: Path,
    settings: Mapping[str, Any],
    resolution: str | None,
) -> str:
    """The digest of everything a build's zips depend on; ``resolution`` identifies the
    reused resolution (None for a project without requirements.txt)."""
    digest = hashlib.sha256()
    header = {
        "chalicepack": __version__,
        "chalice": metadata.version("chalice"),
        "settings": dict(settings),
        "resolution": resolution,
        "source_date_epoch": os.environ.get("SOURCE_DATE_EPOCH"),
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    digest.update(config_path.read_bytes())
    for file in [*project.app_files, *project.vendor_files]:
        status = file.path.stat()
        digest.update(f"\0{file.arcname}\0{status.st_size}\0".encode())
        if status.st_size <= _HASHED_UP_TO:
            digest.update(file.path.read_bytes())
        else:
            digest.update(str(status.st_mtime_ns).encode())
    return digest.hexdigest()


def unchanged_report(report_path: Path, fingerprint: str) -> dict[str, Any] | None:
    """The last build's report when it had this fingerprint and its zips are intact."""
    try:
        report: dict[str, Any] = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if report.get("fingerprint") != fingerprint or not report.get("artifacts"):
        return None
    for artifact in report["artifacts"].values():
        path = Path(artifact["path"])
        try:
            intact = path.stat().st_size == artifact["size"]
        except OSError:
            return None
        if not intact or file_sha256(path) != artifact["sha256"]:
            log.info("%s changed since the last build; building again", path)
            return None
    return report
