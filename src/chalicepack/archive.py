"""Deterministic zips: the same entries give the same bytes, whoever builds them and when.

Entries are sorted by name, carry one fixed timestamp, a normalised mode (0644, or 0755 when
executable) and Unix as their creator; data is deflated at zlib's default level. Each zip is
written to a temporary file beside its destination and renamed into place.
"""

from __future__ import annotations

import itertools
import os
import shutil
import stat
import tempfile
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import BadInput, BuildFailure

EPOCH_1980 = (1980, 1, 1, 0, 0, 0)
_UNIX = 3


@dataclass(frozen=True)
class ZipEntry:
    arcname: str  # POSIX path inside the zip
    source: Path  # the file whose bytes go in
    executable: bool = False

    @property
    def mode(self) -> int:
        return 0o755 if self.executable else 0o644


@dataclass(frozen=True)
class ZipSummary:
    path: Path
    entries: int
    size: int
    unzipped_size: int


def entry_for(arcname: str, source: Path) -> ZipEntry:
    """An entry whose executable bit follows the file's owner-execute bit."""
    return ZipEntry(arcname, source, bool(source.stat().st_mode & stat.S_IXUSR))


def zip_timestamp() -> tuple[int, int, int, int, int, int]:
    """1980-01-01, or ``SOURCE_DATE_EPOCH`` (UTC) when set, as reproducible builds expect."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if not epoch:
        return EPOCH_1980
    try:
        seconds = int(epoch)
    except ValueError:
        raise BadInput(f"SOURCE_DATE_EPOCH={epoch!r} is not a whole number of seconds") from None
    # Zip timestamps cannot go before 1980 or past 2107; even seconds only.
    date_time = time.gmtime(min(max(seconds, 315532800), 4354819198))[:6]
    return (*date_time[:5], date_time[5] - date_time[5] % 2)


def write_zip(destination: Path, entries: Iterable[ZipEntry]) -> ZipSummary:
    """Write ``entries`` to ``destination`` atomically; refuse two entries with one name."""
    ordered = sorted(entries, key=lambda entry: entry.arcname)
    for previous, current in itertools.pairwise(ordered):
        if previous.arcname == current.arcname:
            raise BuildFailure(f"two files would be zipped as {current.arcname}")
    date_time = zip_timestamp()
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
    try:
        with os.fdopen(handle, "wb") as raw, zipfile.ZipFile(raw, "w") as archive:
            unzipped = sum(_add(archive, entry, date_time) for entry in ordered)
        os.chmod(temporary, 0o644)
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return ZipSummary(destination, len(ordered), destination.stat().st_size, unzipped)


def _add(archive: zipfile.ZipFile, entry: ZipEntry, date_time: tuple[int, ...]) -> int:
    info = zipfile.ZipInfo(entry.arcname, date_time=date_time)  # type: ignore[arg-type]
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = _UNIX
    info.external_attr = (stat.S_IFREG | entry.mode) << 16
    try:
        source = entry.source.open("rb")  # a deleted file or a directory fails here
    except OSError as error:
        raise BuildFailure(
            f"cannot read {entry.source} (to be zipped as {entry.arcname}): {error.strerror}"
        ) from error
    with source:
        size = os.fstat(source.fileno()).st_size
        info.file_size = size
        with archive.open(info, "w", force_zip64=size > 2**31) as out:
            shutil.copyfileobj(source, out, 1 << 20)
    return size
