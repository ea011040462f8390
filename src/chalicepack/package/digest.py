"""sha256 of files, and records of verified digests so that an unchanged file is not hashed
again on every build (a 30 MB zip or the wheels of a dependency set take 50-100 ms).

A recorded digest stands for a file while its size, mtime, ctime, inode and device are the
recorded ones: a file put in its place has another inode, and a write or ``os.utime`` sets the
ctime to the current time, which nothing can set back. A write within the same timestamp tick
as the file's last change would leave its stat as it was, though (git's "racy clean" entries),
so a digest is recorded only for a file last changed well before it was hashed; a younger file
is hashed again next time. Standard library only: the unchanged-build check imports this.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat as stat_module
import tempfile
import time
from pathlib import Path
from typing import Any

# How long before it was hashed a file must have last changed for its stat to stand for its
# content: longer than a tick of the file system's clock. Linux file systems keep nanoseconds
# but advance them once per scheduler tick (1-10 ms); one whose times are whole seconds may
# truncate them to the second (2 s on FAT).
_RACY_NS = 50_000_000
_RACY_WHOLE_SECONDS_NS = 2_000_000_000


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Files up to this size are fingerprinted by content, bigger ones by size and mtime: they are
# seldom edited (models, data, libraries) and costly to hash on every build.
HASHED_UP_TO = 1 << 20


def add_file_fingerprint(digest: hashlib._Hash, name: str, path: Path) -> None:
    """Add to ``digest`` what a package holds of ``path`` (as ``name``): its content (for a
    big file, its size and mtime) and its executable bit, which the zip records."""
    status = path.stat()
    executable = bool(status.st_mode & stat_module.S_IXUSR)  # what ``archive`` keeps
    digest.update(f"\0{name}\0{status.st_size}\0{executable:d}\0".encode())
    if status.st_size <= HASHED_UP_TO:
        digest.update(path.read_bytes())
    else:
        digest.update(str(status.st_mtime_ns).encode())


def _stat(status: os.stat_result) -> list[int]:
    """What a recorded digest is valid for (a list: it is compared with JSON's)."""
    return [status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino, status.st_dev]


class DigestRecord:
    """Verified digests of files, by path, kept in one JSON file (``save`` writes it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, Any] = {}
        self._changed = False
        try:
            entries = json.loads(path.read_bytes())["files"]
            if isinstance(entries, dict):
                self._entries = entries
        except (OSError, ValueError, KeyError, TypeError):
            pass  # none yet, or unreadable: files are hashed

    def sha256(self, file: Path) -> str:
        """``file``'s sha256: the recorded one while its stat is unchanged, else hashed."""
        hashed_at = time.time_ns()  # before the stat: a later write changes what is read
        status = file.stat()
        stat = _stat(status)
        entry = self._entries.get(str(file))
        if isinstance(entry, dict) and entry.get("stat") == stat:
            recorded: str = entry["sha256"]
            return recorded
        digest = file_sha256(file)
        coarse = status.st_mtime_ns % 1_000_000_000 == 0 == status.st_ctime_ns % 1_000_000_000
        if status.st_ctime_ns <= hashed_at - (_RACY_WHOLE_SECONDS_NS if coarse else _RACY_NS):
            self._entries[str(file)] = {"stat": stat, "sha256": digest}
            self._changed = True
        return digest

    def save(self) -> None:
        """Write the record if it gained digests; a read-only cache only costs rehashing."""
        if not self._changed:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump({"files": self._entries}, stream)
            os.replace(name, self.path)
            self._changed = False
        except OSError:
            pass
