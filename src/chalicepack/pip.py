"""The one seam to pip: every pip run goes through ``run_pip``."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BuildFailure
from .targetpip import ENVIRONMENT_VARIABLE

log = logging.getLogger(__name__)

# pip prints these when it could not talk to an index at all: the failure is then the
# network's, not the requirement's. pip has no machine-readable form for failures.
_UNREACHABLE = re.compile(
    r"NewConnectionError|ConnectTimeout|ReadTimeout|Max retries exceeded|ProxyError"
    r"|SSLError|Name or service not known|Temporary failure in name resolution"
    r"|HTTP error 5\d\d|status code 5\d\d"
)
_NO_MATCH = re.compile(
    r"(?:No matching distribution found for|"
    r"Could not find a version that satisfies the requirement) (\S+)"
)
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s:]+(?::[^/@\s]*)?@")


def redact(text: str) -> str:
    """Hide ``user:password@`` inside any URL in ``text``."""
    return _CREDENTIALS.sub("***@", text)


@dataclass(frozen=True)
class PipResult:
    returncode: int
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def index_unreachable(self) -> bool:
        return bool(_UNREACHABLE.search(self.stderr))

    @property
    def unmatched_requirement(self) -> str | None:
        """The requirement pip named as having no matching distribution, if any."""
        found = _NO_MATCH.findall(self.stderr)
        return found[-1] if found else None

    @property
    def failed_build(self) -> str | None:
        """The project whose source distribution pip could not prepare, if that is the error."""
        found = re.findall(r"Failed to build '([^']+)'", self.stderr)
        return found[-1] if found else None

    def sdist_version(self, name: str) -> str | None:
        """The version in the name of the sdist pip fetched for ``name``, if it shows one."""
        stem = re.escape(name).replace("\\-", "[-_.]")
        found = re.findall(rf"(?i)\b{stem}-([0-9][^\s/]*?)\.(?:tar\.gz|zip)\b", self.stderr)
        return found[-1] if found else None

    @property
    def hash_mismatch(self) -> bool:
        return "DO NOT MATCH THE HASHES" in self.stderr

    def tail(self, lines: int = 12) -> str:
        return redact("\n".join(self.stderr.strip().splitlines()[-lines:]))


def run_pip(
    args: Sequence[str],
    *,
    cache_dir: Path | None = None,
    markers: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> PipResult:
    """Run our own pip with ``args``; never raises for pip's own failure (the caller decides).

    ``markers`` makes pip evaluate environment markers with these values (the target's).
    """
    module = "pip" if markers is None else "chalicepack.targetpip"
    command = [sys.executable, "-m", module, *_common_options(cache_dir), *args]
    log.debug("running %s", redact(" ".join(command)))
    env = {**os.environ, **(env or {}), "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    if markers is not None:
        env[ENVIRONMENT_VARIABLE] = json.dumps(dict(markers))
    try:
        completed = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env
        )
    except OSError as error:
        raise BuildFailure(f"could not run pip: {error}") from error
    if completed.stderr.strip():
        log.debug("pip said:\n%s", redact(completed.stderr.strip()))
    return PipResult(completed.returncode, completed.stderr)


def _common_options(cache_dir: Path | None) -> list[str]:
    options = ["--quiet", "--retries", "2", "--timeout", "30"]
    if cache_dir is not None:
        options += ["--cache-dir", str(cache_dir)]
    return options


def dry_run_report(
    args: Sequence[str],
    report_path: Path,
    *,
    cache_dir: Path | None = None,
    markers: Mapping[str, str] | None = None,
) -> tuple[PipResult, dict[str, Any] | None]:
    """Resolve without installing; return pip's installation report when it succeeded."""
    result = run_pip(
        ["install", "--dry-run", "--ignore-installed", "--report", str(report_path), *args],
        cache_dir=cache_dir,
        markers=markers,
    )
    if not result.ok:
        return result, None
    report: dict[str, Any] = json.loads(report_path.read_text(encoding="utf-8"))
    return result, report
