"""The one seam to pip: every pip run goes through ``run_pip``."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicepack.deps import children
from chalicepack.deps._child import ENVIRONMENT_VARIABLE
from chalicepack.deps.deadline import Deadline
from chalicepack.errors import BuildFailure
from chalicepack.inputs.requirements import option_values

log = logging.getLogger(__name__)

# pip prints these when it could not talk to an index at all: the failure is then the
# network's, not the requirement's. pip has no machine-readable form for failures.
_UNREACHABLE = re.compile(
    r"NewConnectionError|ConnectTimeout|ReadTimeout|Max retries exceeded|ProxyError"
    r"|SSLError|Name or service not known|Temporary failure in name resolution"
    r"|HTTP error 5\d\d|status code 5\d\d|incomplete-download|Connection interrupted"
    r"|didn't respond within"
)
# pip's verbose log (``--log``) says why it skipped an index page; its console does not.
_FETCH_FAILED = re.compile(r"Could not fetch URL (\S+): (.*) - skipping$", re.MULTILINE)
# git's own words (in pip's verbose log) when it could not reach a repository: an outside
# failure, unlike a repository or ref that does not exist. An HTTP 4xx is the URL's fault.
_GIT_UNREACHABLE = re.compile(
    r"fatal: unable to access '(?P<url>[^']+)': (?P<reason>(?!The requested URL returned "
    r"error: 4).*)$|ssh: (?P<ssh>(?:Could not resolve hostname|connect to host) .*)$",
    re.MULTILINE,
)
_NO_MATCH = re.compile(
    r"(?:No matching distribution found for|"
    r"Could not find a version that satisfies the requirement) (\S+)"
)
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s:]+(?::[^/@\s]*)?@")


# "    name==1.0 from URL (from -r FILE (line N)):" then "Expected sha256 X" and "Got Y".
_HASH_MISMATCH = re.compile(
    r"^\s+(?P<requirement>\S+) from \S+(?: \(from -r (?P<file>.+?) \(line (?P<line>\d+)\)\))?:"
    r"\s*\n\s+Expected sha256 (?P<expected>\w+)(?:\s*\n\s+or \w+)*\s*\n\s+Got\s+(?P<got>\w+)",
    re.MULTILINE,
)
# pip refusing an sdist member outside its root: tarfile's data filter, or pip's own zip check.
_UNSAFE_ARCHIVE = (
    re.compile(r"Invalid member in the tar file (?:\S*/)?(?P<file>[^/\s]+): (?P<reason>.*)"),
    re.compile(
        r"The zip file \((?:\S*/)?(?P<file>[^/\s)]+)\) has a file \((?P<reason>[^)]+)\) trying"
        r" to install outside target directory"
    ),
)


@dataclass(frozen=True)
class HashMismatch:
    requirement: str
    file: Path | None
    line: int | None
    expected: str
    got: str


def redact(text: str) -> str:
    """Hide ``user:password@`` inside any URL in ``text``."""
    return _CREDENTIALS.sub("***@", text)


@dataclass(frozen=True)
class PipResult:
    returncode: int
    stderr: str
    # "url: reason" for each index page pip could not fetch (from its verbose log), redacted.
    fetch_failures: tuple[str, ...] = ()
    # "url: reason" for each repository git could not reach (from pip's verbose log), redacted.
    unreachable_repositories: tuple[str, ...] = ()
    # What a backend printed before its metadata build failed (pip's verbose log holds it;
    # with --log its console says "No available output"), redacted.
    metadata_output: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def not_found_pages(self) -> tuple[str, ...]:
        """Index pages that answered 404 Not Found (the project is not on that index)."""
        return tuple(f.split(": ", 1)[0] for f in self.fetch_failures if " 404 " in f)

    @property
    def unmatched_requirement(self) -> str | None:
        """The requirement pip named as having no matching distribution, if any."""
        found = _NO_MATCH.findall(self.stderr)
        return found[-1] if found else None

    @property
    def failed_build(self) -> str | None:
        """The project whose source distribution pip could not prepare, if that is the error."""
        found = re.findall(r"Failed to build '([^']+)'", self.stderr)
        # A backend's prepare_metadata_for_build_wheel failing (maturin with no cargo) is
        # pip's "metadata-generation-failed", naming the project under its message.
        found += re.findall(
            r"Encountered error while generating package metadata\.\s*╰─> ([A-Za-z0-9._-]+)",
            self.stderr,
        )
        return found[-1] if found else None

    def sdist_version(self, name: str) -> str | None:
        """The version in the name of the sdist pip fetched for ``name``, if it shows one."""
        stem = re.escape(name).replace("\\-", "[-_.]")
        found = re.findall(rf"(?i)\b{stem}-([0-9][^\s/]*?)\.(?:tar\.gz|zip)\b", self.stderr)
        return found[-1] if found else None

    @property
    def hash_mismatch(self) -> bool:
        return "DO NOT MATCH THE HASHES" in self.stderr

    @property
    def hash_mismatches(self) -> tuple[HashMismatch, ...]:
        """What pip says about each file whose sha256 is not the one the requirements give."""
        return tuple(
            HashMismatch(
                requirement=match["requirement"],
                file=Path(match["file"]) if match["file"] else None,
                line=int(match["line"]) if match["line"] else None,
                expected=match["expected"],
                got=match["got"],
            )
            for match in _HASH_MISMATCH.finditer(self.stderr)
        )

    @property
    def index_problem(self) -> str | None:
        """In one line, why the index could not be used (no answer, 5xx, refused access, a
        broken download), when that is why pip failed; None for a 404, which says the
        project is not there: the requirement's fault, not the index's."""
        for failure in self.fetch_failures:
            if " 404 " not in failure:
                return failure
        # pip's rich error boxes start lines with "\u00d7" (x) and "\u2570\u2500>".
        lines = [line.strip(" \u00d7\u2570\u2500>") for line in self.stderr.splitlines()]
        for index, line in enumerate(lines):
            if line.startswith("Download failed"):
                url = next((u for u in lines[index + 1 :] if u.startswith("URL: ")), "")
                return redact(f"{line} ({url.split('#', 1)[0]})" if url else line)
        for line in lines:
            if _UNREACHABLE.search(line):
                return redact(line)
        return None

    @property
    def error(self) -> str | None:
        """pip's first ERROR line other than "no matching distribution", without file hashes."""
        for line in self.stderr.splitlines():
            # "Ignored the following yanked versions / versions that require a different
            # python": pip's notes beside "no matching distribution", not a reason of their own.
            if line.startswith("ERROR: Ignored the following"):
                continue
            if line.startswith("ERROR: ") and not _NO_MATCH.search(line):
                line = re.sub(r"#sha256=\w+| \(from -r .*?\(line \d+\)\)", "", line)
                return redact(line.removeprefix("ERROR: ").strip())
        return None

    @property
    def unsafe_archive(self) -> tuple[str, str] | None:
        """The archive pip refused to unpack (a member outside its root), and why."""
        for pattern in _UNSAFE_ARCHIVE:
            found = pattern.search(self.stderr)
            if found:
                return found["file"], redact(found["reason"].strip())
        return None

    def tail(self, lines: int = 12) -> str:
        return redact("\n".join(self.stderr.strip().splitlines()[-lines:]))


def run_pip(
    args: Sequence[str],
    *,
    cache_dir: Path | None = None,
    markers: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    python: Path | None = None,
    deadline: Deadline | None = None,
) -> PipResult:
    """Run our own pip with ``args``; never raises for pip's own failure (the caller decides).

    ``markers`` makes pip evaluate environment markers with these values (the target's);
    ``python`` runs a build on that interpreter (pip's ``--python``), without ``--log``: with
    a log file pip writes a failed build's output there only, and the user needs it.
    """
    module = "pip" if markers is None else "chalicepack.deps._child"
    env = {**os.environ, **(env or {}), "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    if markers is not None:
        env[ENVIRONMENT_VARIABLE] = json.dumps(dict(markers))
    with tempfile.TemporaryDirectory(prefix="chalicepack-pip-") as scratch:
        pip_log = Path(scratch) / "pip.log"
        # --log: pip's verbose log, the only place it says why an index page was skipped.
        command = [sys.executable, "-m", module]
        command += ["--log", str(pip_log)] if python is None else ["--python", str(python)]
        command += [*_common_options(cache_dir, env), *args]
        log.debug("running %s", redact(" ".join(command)))
        try:
            # pip's own temporary files go into ``scratch``, removed however this ends.
            process = children.start(command, env, Path(scratch) / "tmp")
        except OSError as error:
            raise BuildFailure(f"could not run pip: {error}") from error
        timeout, retries = network_limits(env)
        _, stderr = children.finish(
            process,
            f"pip {args[0] if args else ''} (index requests time out after {timeout} s, "
            f"retried {retries} times)",
            deadline,
        )
        log_text = _read_log(pip_log) if process.returncode else ""
    if stderr.strip():
        log.debug("pip said:\n%s", redact(stderr.strip()))
    return PipResult(
        process.returncode,
        stderr,
        _fetch_failures(log_text),
        _unreachable_repositories(log_text),
        _metadata_output(log_text),
    )


# A line of pip's verbose log: its timestamp, then the message.
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT[\d:,]+ ?", re.MULTILINE)


def _metadata_output(log_text: str) -> str:
    """The output of the last metadata build that failed, as pip's log holds it."""
    end = log_text.rfind("ERROR: Preparing metadata")
    start = log_text.rfind("Running command Preparing metadata", 0, end)
    if end < 0 or start < 0:
        return ""
    body = log_text[log_text.find("\n", start) + 1 : end]
    lines = [line.strip() for line in _LOG_LINE.sub("", body).splitlines()]
    return redact("\n".join(line for line in lines if line)[-4000:])


def network_limits(env: Mapping[str, str]) -> tuple[str, str]:
    """The timeout (seconds) and retries of every request to an index, pip's or uv's: bounded
    by default; ``PIP_TIMEOUT`` / ``PIP_RETRIES`` set in the environment win."""
    return env.get("PIP_TIMEOUT") or "30", env.get("PIP_RETRIES") or "2"


def index_urls(environ: Mapping[str, str], index_options: Sequence[str]) -> list[str]:
    """The index URLs pip reads: the environment's, then requirements.txt's options."""
    urls = [environ.get("PIP_INDEX_URL", ""), *environ.get("PIP_EXTRA_INDEX_URL", "").split()]
    urls += option_values(index_options, "-i", "--index-url", "--extra-index-url")
    return [url for url in urls if url]


def _common_options(cache_dir: Path | None, env: Mapping[str, str]) -> list[str]:
    timeout, retries = network_limits(env)
    options = ["--quiet", "--retries", retries, "--timeout", timeout]
    if cache_dir is not None:
        options += ["--cache-dir", str(cache_dir)]
    return options


def _read_log(pip_log: Path) -> str:
    try:
        return pip_log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _unreachable_repositories(text: str) -> tuple[str, ...]:
    found = []
    for match in _GIT_UNREACHABLE.finditer(text):
        if match["ssh"]:
            found.append(redact(f"ssh: {match['ssh'].strip()}"))
        else:
            found.append(redact(f"{match['url']}: {match['reason'].strip()}"))
    return tuple(dict.fromkeys(found))


def _fetch_failures(text: str) -> tuple[str, ...]:
    failures = dict.fromkeys(
        redact(f"{url}: {reason}") for url, reason in _FETCH_FAILED.findall(text)
    )
    return tuple(failures)


def dry_run_report(
    args: Sequence[str],
    report_path: Path,
    *,
    cache_dir: Path | None = None,
    markers: Mapping[str, str] | None = None,
    deadline: Deadline | None = None,
) -> tuple[PipResult, dict[str, Any] | None]:
    """Resolve without installing; return pip's installation report when it succeeded."""
    result = run_pip(
        ["install", "--dry-run", "--ignore-installed", "--report", str(report_path), *args],
        cache_dir=cache_dir,
        markers=markers,
        deadline=deadline,
    )
    if not result.ok:
        return result, None
    report: dict[str, Any] = json.loads(report_path.read_text(encoding="utf-8"))
    return result, report
