"""pip and uv as child processes: each leads a process group of its own, keeps its temporary
files in a folder chalicepack removes, never outlives the build, and a wait on it that lasts
is said on stderr.

A SIGTERM or Ctrl-C stops chalicepack between two of pip's steps; pip itself (killed, or
stopped by the same signal) has no chance to remove its ``pip-unpack-*``, ``pip-install-*`` or
``pip-build-env-*`` folders, and the build backends or ``git`` it started would run on. Its
``TMPDIR`` is therefore a folder inside chalicepack's own temporary folder, removed on any
exit, and the whole process group is killed when the step is left early.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

# A wait longer than this is said on stderr, then again every NOTICE_EVERY seconds: a silent
# index otherwise looks like a hung build.
NOTICE_AFTER = 5.0
NOTICE_EVERY = 15.0

_POSIX = os.name == "posix"


def start(
    command: Sequence[str],
    env: Mapping[str, str],
    tmpdir: Path,
    *,
    stdout: int | IO[str] | None = subprocess.PIPE,
) -> subprocess.Popen[str]:
    """Start ``command`` in a process group of its own, with ``tmpdir`` (created) as its
    ``TMPDIR``; stderr is always kept (the caller's error message is made from it)."""
    tmpdir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "TMPDIR": str(tmpdir), "TEMP": str(tmpdir), "TMP": str(tmpdir)},
        start_new_session=_POSIX,
    )


def finish(process: subprocess.Popen[str], what: str) -> tuple[str, str]:
    """Wait for ``process`` (saying so on stderr when it takes a while: ``what`` is what it
    is waiting for); its stdout and stderr. Left early (a signal, an error), the process and
    everything it started are killed first."""
    started = time.monotonic()
    step = NOTICE_AFTER
    with ended(process):
        while True:
            try:
                stdout, stderr = process.communicate(timeout=step)
                return stdout or "", stderr or ""
            except subprocess.TimeoutExpired:
                waited = time.monotonic() - started
                log.info("waiting %.0f s so far for %s", waited, what)
                step = NOTICE_EVERY


@contextlib.contextmanager
def ended(process: subprocess.Popen[str]) -> Iterator[None]:
    """``process`` and what it started never outlive this block (an early return, SIGTERM,
    an error); its pipes are closed."""
    try:
        yield
    finally:
        if process.returncode is None:
            kill_group(process)
            process.communicate()
        elif _POSIX:
            # It ended, but what it started (a build backend, git) may run on.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)


def kill_group(process: subprocess.Popen[str]) -> None:
    if _POSIX:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
            return
    process.kill()
