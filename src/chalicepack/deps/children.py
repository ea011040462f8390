"""pip and uv as child processes: each keeps its temporary files in a folder chalicepack
removes, never outlives the build with anything it started, and a wait on it that lasts is said
on stderr.

A SIGTERM or Ctrl-C stops chalicepack between two of pip's steps; pip itself (killed, or
stopped by the same signal) has no chance to remove its ``pip-unpack-*``, ``pip-install-*`` or
``pip-build-env-*`` folders, and the build backends or ``git`` it started would run on. Its
``TMPDIR`` is therefore a folder inside chalicepack's own temporary folder, removed on any
exit, and when the step is left early pip and every process below it are killed. They stay in
chalicepack's process group, so that a signal to the group (a CI job cancelled, SIGKILL
included) still reaches them all.
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

from chalicepack.deps.deadline import Deadline, remaining

log = logging.getLogger(__name__)

# A wait longer than this is said on stderr, then again every NOTICE_EVERY seconds: a silent
# index otherwise looks like a hung build.
NOTICE_AFTER = 5.0
NOTICE_EVERY = 15.0


def start(
    command: Sequence[str],
    env: Mapping[str, str],
    tmpdir: Path,
    *,
    stdout: int | IO[str] | None = subprocess.PIPE,
) -> subprocess.Popen[str]:
    """Start ``command`` with ``tmpdir`` (created) as its ``TMPDIR``; stderr is always kept
    (the caller's error message is made from it)."""
    tmpdir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "TMPDIR": str(tmpdir), "TEMP": str(tmpdir), "TMP": str(tmpdir)},
    )


def finish(
    process: subprocess.Popen[str], what: str, deadline: Deadline | None = None
) -> tuple[str, str]:
    """Wait for ``process`` (saying so on stderr when it takes a while: ``what`` is what it
    is waiting for), at most until ``deadline``; its stdout and stderr. Left early (a
    signal, an error, the deadline), the process and everything it started are killed first."""
    started = time.monotonic()
    notice = started + NOTICE_AFTER
    with ended(process):
        while True:
            left = remaining(deadline)
            if left is not None and left <= 0:
                assert deadline is not None
                raise deadline.exceeded(what)
            step = max(0.0, notice - time.monotonic())
            try:
                stdout, stderr = process.communicate(
                    timeout=step if left is None else min(step, left)
                )
                return stdout or "", stderr or ""
            except subprocess.TimeoutExpired:
                if time.monotonic() >= notice:
                    log.info("waiting %.0f s so far for %s", time.monotonic() - started, what)
                    notice += NOTICE_EVERY


@contextlib.contextmanager
def ended(process: subprocess.Popen[str]) -> Iterator[None]:
    """``process`` and what it started never outlive this block (an early return, SIGTERM,
    an error); its pipes are closed."""
    try:
        yield
    finally:
        if process.returncode is None:
            kill_tree(process)
            process.communicate()


def kill_tree(process: subprocess.Popen[str]) -> None:
    """Kill ``process`` and every process below it (found before any is killed, while they
    are still its descendants)."""
    below = _descendants(process.pid)
    process.kill()
    for pid in below:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid``, from ``/proc`` (none where there is no ``/proc``)."""
    children: dict[int, list[int]] = {}
    try:
        entries = [entry for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return []
    for entry in entries:
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        children.setdefault(parent, []).append(int(entry))
    found, queue = [], [pid]
    while queue:
        below = children.get(queue.pop(), [])
        found += below
        queue += below
    return found
