"""One measured run: commands under a wrapper process that reports wall time and peak RSS.

``ru_maxrss`` of ``RUSAGE_CHILDREN`` is the largest peak of any single descendant waited for so
far, so a fresh wrapper per run gives each run its own figure (the peak of its biggest
process, e.g. chalicepack or the pip it runs, not their sum).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_WRAPPER = """\
import json, os, resource, subprocess, sys, time
commands, log = json.loads(sys.argv[1]), sys.argv[2]
seconds = []
with open(log, "ab") as out:
    for command in commands:
        out.write(("$ " + " ".join(command["argv"]) + "\\n").encode())
        out.flush()
        start = time.perf_counter()
        code = subprocess.run(command["argv"], cwd=command["cwd"], stdin=subprocess.DEVNULL,
                              stdout=out, stderr=out, env={**os.environ, **command["env"]}
                              ).returncode
        seconds.append(time.perf_counter() - start)
        if code:
            break
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": seconds, "returncode": code, "maxrss_kib": usage.ru_maxrss}))
"""


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    cwd: Path
    env: tuple[tuple[str, str], ...] = ()  # added to the run's environment


@dataclass(frozen=True)
class Sample:
    seconds: float  # wall time of the commands, wrapper start-up excluded
    peak_rss_mb: float  # megabytes (10**6 bytes)
    parts: tuple[float, ...]  # seconds of each command, e.g. uv then zip


class CommandFailed(Exception):
    pass


def isolated_environment(caches: Path) -> dict[str, str]:
    """This process's environment with the machine's pip and uv configuration switched off
    and every cache a tool keeps pointed under ``caches`` (one directory per variant)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PIP_", "UV_")) and name not in ("VIRTUAL_ENV", "PYTHONPATH")
    }
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_CACHE_DIR=str(caches / "pip"),  # chalice package's pip
        UV_CACHE_DIR=str(caches / "uv"),
        UV_NO_CONFIG="1",
        XDG_CACHE_HOME=str(caches / "xdg"),
        # chalice package reads a region (it never calls AWS); no credentials are involved.
        AWS_DEFAULT_REGION="us-east-1",
    )
    return env


def run_measured(commands: Sequence[Command], env: dict[str, str], log: Path) -> Sample:
    """Run ``commands`` in order under a fresh wrapper; raise with the log's tail on failure."""
    payload = json.dumps(
        [{"argv": c.argv, "cwd": str(c.cwd), "env": dict(c.env)} for c in commands]
    )
    completed = subprocess.run(
        [sys.executable, "-c", _WRAPPER, payload, str(log)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise CommandFailed(f"the wrapper failed: {completed.stderr.strip()}")
    result = json.loads(completed.stdout)
    if result["returncode"] != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise CommandFailed(
            f"{' '.join(commands[len(result['seconds']) - 1].argv)} exited with "
            f"{result['returncode']}; last lines of {log}:\n{tail}"
        )
    seconds = tuple(result["seconds"])
    return Sample(sum(seconds), result["maxrss_kib"] * 1024 / 1e6, seconds)


@dataclass(frozen=True)
class ZipStats:
    name: str  # "deployment" or "layer"
    size: int  # bytes on disk
    files: tuple[str, ...]  # file entries (directory entries left out), as stored


def zip_stats(name: str, path: Path) -> ZipStats:
    with zipfile.ZipFile(path) as archive:
        files = tuple(info.filename for info in archive.infolist() if not info.is_dir())
    return ZipStats(name, path.stat().st_size, files)
