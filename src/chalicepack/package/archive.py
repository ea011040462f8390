"""Deterministic zips: the same entries give the same bytes, whoever builds them and when.

Entries are sorted by name, carry one fixed timestamp, a normalised mode (0644, or 0755 when
executable) and Unix as their creator; no directory entries, no extra fields. A file's data is
deflated at level 6; a member of a wheel is copied in its compressed form as the wheel holds it
(no inflate/deflate: the packaging step is one sequential write, and those bytes do not depend
on this host's zlib). Each zip is written to a temporary file beside its destination and
renamed into place.

The writer is our own (a few structs of the PKWARE format) because ``zipfile`` cannot copy a
member's compressed bytes; ``zipfile`` reads everything we write in the tests.
"""

from __future__ import annotations

import errno
import itertools
import os
import stat
import struct
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from chalicepack.errors import BadInput, BuildFailure

EPOCH_1980 = (1980, 1, 1, 0, 0, 0)
_UNIX = 3


@dataclass(frozen=True)
class RawMember:
    """A member of an existing zip (a wheel) whose compressed bytes are copied as they are."""

    archive: Path
    info: zipfile.ZipInfo


@dataclass(frozen=True)
class ZipEntry:
    arcname: str  # POSIX path inside the zip
    source: Path  # the file whose bytes go in
    executable: bool = False
    raw: RawMember | None = None  # when set, copied from there instead of deflating source

    @property
    def size(self) -> int:
        """Unzipped size, from the wheel's listing or ``stat``: nothing is read."""
        return self.raw.info.file_size if self.raw is not None else self.source.stat().st_size

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
    staged = stage_zip(destination, entries)
    staged.commit()
    return staged.summary


@dataclass(frozen=True)
class StagedZip:
    """A zip written beside its destination under a temporary name, not yet in place."""

    temporary: Path
    summary: ZipSummary

    def commit(self) -> None:
        os.replace(self.temporary, self.summary.path)

    def discard(self) -> None:
        self.temporary.unlink(missing_ok=True)


def stage_zip(destination: Path, entries: Iterable[ZipEntry]) -> StagedZip:
    """Write the zip to a temporary file in ``destination``'s directory (so that ``commit``
    is an atomic rename); nothing is left behind if writing fails."""
    ordered = sorted(entries, key=lambda entry: entry.arcname)
    for previous, current in itertools.pairwise(ordered):
        if previous.arcname == current.arcname:
            raise BuildFailure(f"two files would be zipped as {current.arcname}")
    dos_time, dos_date = _dos_date_time(zip_timestamp())
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
    except OSError as error:
        raise _write_failure(destination, error) from error
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as out, ExitStack() as sources:
            writer = _ZipWriter(out, dos_time, dos_date, sources)
            for entry in ordered:
                writer.add(entry)
            writer.finish()
        os.chmod(temporary, 0o644)
    except OSError as error:  # the disk filled up, a file-size limit, a read-only disk, ...
        temporary.unlink(missing_ok=True)
        raise _write_failure(destination, error) from error
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    size = temporary.stat().st_size
    return StagedZip(temporary, ZipSummary(destination, len(ordered), size, writer.unzipped))


_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _write_failure(destination: Path, error: OSError) -> BuildFailure:
    """The outside failure that stopped writing ``destination``; the message says what to do."""
    reason = error.strerror or str(error)
    if error.errno in _DISK_FULL:
        return BuildFailure(
            f"cannot write {destination}: {reason}: the disk is full or a file-size limit"
            f" (ulimit -f) was reached; free space in {destination.parent} or choose another"
            " --out, then build again (the previous artifacts are untouched)"
        )
    return BuildFailure(
        f"cannot write {destination}: {reason}; check that {destination.parent} is a writable"
        " directory, or choose another --out"
    )


def raw_copyable(info: zipfile.ZipInfo) -> bool:
    """Whether a member's compressed bytes can be copied as they are: stored or deflated,
    not encrypted, and small enough for a plain (non-zip64) entry."""
    return (
        info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
        and not info.flag_bits & 0x1
        and max(info.compress_size, info.file_size) < _ZIP64_LIMIT
    )


_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_END64 = struct.Struct("<IQHHIIQQQQ")
_LOCATOR64 = struct.Struct("<IIQI")
_ZIP64_LIMIT = 0xFFFFFFFF
_VERSION = 20  # deflate; 4.5 (zip64) only in the end records of very large listings
_MADE_BY = (_UNIX << 8) | _VERSION
_UTF8 = 0x800
_CHUNK = 1 << 20


@dataclass
class _Written:
    name: bytes
    flags: int
    method: int
    crc: int
    compressed: int
    size: int
    offset: int
    mode: int


class _ZipWriter:
    """Streams entries into ``out``: local header, data, then the central directory."""

    def __init__(self, out: BinaryIO, dos_time: int, dos_date: int, sources: ExitStack) -> None:
        self._out = out
        self._time = dos_time
        self._date = dos_date
        self._sources = sources
        self._open: dict[Path, BinaryIO] = {}
        self._written: list[_Written] = []
        self.unzipped = 0

    def add(self, entry: ZipEntry) -> None:
        name = entry.arcname.encode("utf-8")
        flags = 0 if entry.arcname.isascii() else _UTF8
        if entry.raw is not None and raw_copyable(entry.raw.info):
            record = self._copy_raw(entry.raw, name, flags)
        else:
            record = self._deflate(entry, name, flags)
        record.mode = entry.mode
        self._written.append(record)
        self.unzipped += record.size

    def _header(self, record: _Written) -> bytes:
        return _LOCAL.pack(
            0x04034B50, _VERSION, record.flags, record.method, self._time, self._date,
            record.crc, record.compressed, record.size, len(record.name), 0,
        ) + record.name  # fmt: skip

    def _copy_raw(self, member: RawMember, name: bytes, flags: int) -> _Written:
        info = member.info
        source = self._source(member.archive)
        source.seek(info.header_offset)
        local = source.read(_LOCAL.size)
        name_length, extra_length = struct.unpack("<HH", local[26:30])
        source.seek(info.header_offset + _LOCAL.size + name_length + extra_length)
        record = _Written(
            name, flags, info.compress_type, info.CRC, info.compress_size, info.file_size,
            self._offset(), 0,
        )  # fmt: skip
        self._out.write(self._header(record))
        remaining = info.compress_size
        while remaining:
            block = source.read(min(_CHUNK, remaining))
            if not block:
                raise BuildFailure(f"{member.archive} ends inside {info.filename}")
            self._out.write(block)
            remaining -= len(block)
        return record

    def _deflate(self, entry: ZipEntry, name: bytes, flags: int) -> _Written:
        try:
            source = entry.source.open("rb")  # a deleted file or a directory fails here
        except OSError as error:
            raise BuildFailure(
                f"cannot read {entry.source} (to be zipped as {entry.arcname}): {error.strerror}"
            ) from error
        record = _Written(name, flags, zipfile.ZIP_DEFLATED, 0, 0, 0, self._offset(), 0)
        self._out.write(self._header(record))  # sizes and CRC are filled in below
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        with source:
            while block := source.read(_CHUNK):
                record.crc = zlib.crc32(block, record.crc)
                record.size += len(block)
                record.compressed += self._write(compressor.compress(block))
        record.compressed += self._write(compressor.flush())
        if max(record.size, record.compressed) >= _ZIP64_LIMIT:
            raise BuildFailure(f"{entry.source} is over 4 GiB, far beyond Lambda's limits")
        end = self._out.tell()
        self._out.seek(record.offset)
        self._out.write(self._header(record))
        self._out.seek(end)
        return record

    def finish(self) -> None:
        start = self._offset()
        for record in self._written:
            self._out.write(
                _CENTRAL.pack(
                    0x02014B50, _MADE_BY, _VERSION, record.flags, record.method, self._time,
                    self._date, record.crc, record.compressed, record.size, len(record.name),
                    0, 0, 0, 0, (stat.S_IFREG | record.mode) << 16, record.offset,
                ) + record.name
            )  # fmt: skip
        end = self._offset()
        count = len(self._written)
        if count > 0xFFFF:
            # Only the entry count needs zip64 here; sizes and offsets stay under 4 GiB.
            self._out.write(
                _END64.pack(0x06064B50, 44, 45, 45, 0, 0, count, count, end - start, start)
            )
            self._out.write(_LOCATOR64.pack(0x07064B50, 0, end, 1))
        shown = min(count, 0xFFFF)
        self._out.write(_END.pack(0x06054B50, 0, 0, shown, shown, end - start, start, 0))

    def _offset(self) -> int:
        offset = self._out.tell()
        if offset >= _ZIP64_LIMIT:
            raise BuildFailure("the zip would pass 4 GiB, far beyond Lambda's limits")
        return offset

    def _write(self, data: bytes) -> int:
        self._out.write(data)
        return len(data)

    def _source(self, archive: Path) -> BinaryIO:
        if archive not in self._open:
            self._open[archive] = self._sources.enter_context(archive.open("rb"))
        return self._open[archive]


def _dos_date_time(date_time: tuple[int, int, int, int, int, int]) -> tuple[int, int]:
    year, month, day, hour, minute, second = date_time
    return (hour << 11) | (minute << 5) | (second // 2), ((year - 1980) << 9) | (month << 5) | day
