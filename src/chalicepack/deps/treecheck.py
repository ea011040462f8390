"""Whether an installed tree in the cache still holds what was installed, by its RECORDs.

A tree is reused when its files and sizes are those recorded (``install``): cheap, and it
catches a truncated or missing file, not one overwritten with the same number of bytes. The
zips never read the tree (they copy the wheels' members), but the import check does; when it
fails, the tree is checked against the sha256 of every file in its RECORDs before the app is
blamed, and a damaged tree is dropped so that the next build installs it again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path, PurePosixPath

from installer.records import RecordEntry, parse_record_file

from chalicepack.errors import BuildFailure

log = logging.getLogger(__name__)

_TREE_RECORD = "installed.json"  # what makes a tree reusable (see ``install``)


def damaged_files(site_packages: Path) -> list[str]:
    """Files of ``site_packages`` missing or unlike the sha256 their RECORD gives. RECORD's
    lines for files outside it (scripts, data, headers: ``../not-shipped/...``) are not read:
    those are never written, as they never ship; nor are the files left in their wheels
    (virtual: see ``install``), not on disk by design (the wheels were verified)."""
    damaged = []
    virtual = _virtual_paths(site_packages.parent / _TREE_RECORD)
    for record in sorted(site_packages.glob("*.dist-info/RECORD")):
        rows = record.read_text(encoding="utf-8").splitlines()
        for row in parse_record_file(rows):
            entry = RecordEntry.from_elements(*row)
            if entry.hash_ is None or entry.hash_.name != "sha256":
                continue  # RECORD itself (no hash), or a hash this check does not read
            if ".." in PurePosixPath(entry.path).parts or entry.path in virtual:
                continue
            path = site_packages / entry.path
            try:
                intact = entry.hash_.validate(path.read_bytes())
            except OSError:
                intact = False
            if not intact:
                damaged.append(entry.path)
    return damaged


def _virtual_paths(record: Path) -> set[str]:
    """The paths a tree's record lists as virtual (none when it cannot be read)."""
    try:
        listed = json.loads(record.read_text(encoding="utf-8")).get("virtual", {})
    except (OSError, ValueError, AttributeError):
        return set()
    return set(listed) if isinstance(listed, dict) else set()


def refuse_damaged_tree(site_packages: Path, cache_dir: Path) -> None:
    """After a failed import check: a BuildFailure (exit 1) when the installed tree the app
    was imported from is damaged, rather than blaming the app or its dependency."""
    try:
        damaged = damaged_files(site_packages)
    except (OSError, ValueError) as error:  # an unreadable RECORD is damage too
        damaged = [f"a RECORD ({error})"]
    if not damaged:
        return
    # Without its record the tree is not reused: the next build installs it afresh.
    (site_packages.parent / _TREE_RECORD).unlink(missing_ok=True)
    shown = ", ".join(damaged[:3]) + (f" and {len(damaged) - 3} more" if len(damaged) > 3 else "")
    raise BuildFailure(
        f"the installed dependencies in the cache are damaged ({shown} in "
        f"{site_packages.parent} do not match the sha256 in their RECORD), so the import "
        "check read damaged files; the tree was dropped from the cache: build again (it is "
        f"installed afresh from the verified wheels), or remove {cache_dir / 'trees'}"
    )
