"""pip's cache kept in use when the Action (root in its container) runs on a cache of another user.

The workspace belongs to the runner's user, and so does the cache in it: actions/cache restores it
as that user, and the Action hands what it wrote back to the workspace's owner after each run. pip
run as root uses a cache directory only if root owns it (``pip._internal.utils.filesystem.
check_path_owner``, against ``sudo`` without ``-H``); otherwise it says "The cache has been
disabled" and downloads everything again. uv has no such check. So for the build, pip's cache
directory itself (not what is in it) is root's, and afterwards it goes back to its owner; what pip
writes inside is handed over with the rest of the Action's files (``action.run``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("chalicepack")

# Where the build points pip's --cache-dir inside the cache (package.pipeline: cache_dir / "pip").
PIP_CACHE = "pip"


@contextmanager
def pip_cache_usable(cache_dir: Path | None) -> Iterator[None]:
    """While the block runs, pip's cache under ``cache_dir`` is one pip as root accepts."""
    if cache_dir is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        yield  # not root: pip only needs it writable, which chown could not give anyway
        return
    folder = cache_dir.resolve() / PIP_CACHE
    owner = _take(folder)
    try:
        yield
    finally:
        if owner is not None:
            _give_back(folder, owner)


def _take(folder: Path) -> tuple[int, int] | None:
    """Make ``folder`` (created if missing: pip checks the nearest existing folder) root's; the
    owner it had, or None when it was already root's or could not be changed."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        status = folder.lstat()
        if folder.is_symlink() or status.st_uid == 0:
            return None  # pip refuses a symlink whoever owns it; a new folder is root's already
        os.lchown(folder, 0, -1)
    except OSError as error:
        log.warning("pip's cache %s stays unused: it is not root's and %s", folder, error)
        return None
    return status.st_uid, status.st_gid


def _give_back(folder: Path, owner: tuple[int, int]) -> None:
    try:
        os.lchown(folder, *owner)
    except OSError as error:
        log.warning("could not give pip's cache %s back to uid %d: %s", folder, owner[0], error)
