"""One build at a time writes into an output directory.

Two builds into one directory at once (two CI jobs, an editor's save hook and a manual run)
would otherwise interleave their renames: one build's ``deployment.zip`` beside the other's
layer zip and report, a package that deploys without its dependencies. The write phase (the
zips staged and the import check, then the renames and the report) holds an exclusive
``flock`` on the directory itself: the second build waits, then writes its whole result over
the first's. The lock is the kernel's: it needs no lock file, and it goes with the process
however that ends (SIGKILL included).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; builds into one directory must not overlap there
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

_NOTICE_AFTER = 2.0  # seconds: a wait for another build is said once it is noticeable


@contextlib.contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir`` (created if missing) for this build alone while the block runs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield
        return
    handle = os.open(out_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another build is writing into %s: waiting for it to finish", out_dir)
            started = time.monotonic()
            fcntl.flock(handle, fcntl.LOCK_EX)
            waited = time.monotonic() - started
            if waited > _NOTICE_AFTER:
                log.info("waited %.0f s for the other build into %s", waited, out_dir)
        yield
    finally:
        os.close(handle)  # releases the lock
