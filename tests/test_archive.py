"""The zips a user uploads: same content in, same bytes out, whoever builds them and when."""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from chalicepack.errors import BadInput, BuildFailure
from chalicepack.package.archive import EPOCH_1980, RawMember, ZipEntry, entry_for, write_zip


@pytest.fixture(autouse=True)
def _no_source_date_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The builder's own SOURCE_DATE_EPOCH must not leak into these tests."""
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)


def write_files(root: Path, files: Mapping[str, bytes]) -> list[ZipEntry]:
    entries = []
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        entries.append(ZipEntry(name, path))
    return entries


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def infos(path: Path) -> list[zipfile.ZipInfo]:
    with zipfile.ZipFile(path) as archive:
        return archive.infolist()


def test_entries_are_sorted_by_name_whatever_order_they_are_given_in(tmp_path: Path) -> None:
    entries = write_files(
        tmp_path / "src",
        {"z.py": b"z", "app.py": b"app", "chalicelib/b.py": b"b", "chalicelib/a.py": b"a"},
    )
    destination = tmp_path / "out" / "deployment.zip"

    write_zip(destination, reversed(entries))

    with zipfile.ZipFile(destination) as archive:
        assert archive.namelist() == ["app.py", "chalicelib/a.py", "chalicelib/b.py", "z.py"]
        assert archive.read("chalicelib/b.py") == b"b"
        assert archive.testzip() is None


def test_file_contents_round_trip_byte_for_byte(tmp_path: Path) -> None:
    payload = os.urandom(300_000) + bytes(range(256)) * 100
    entries = write_files(tmp_path / "src", {"blob.bin": payload, "empty.txt": b""})
    destination = tmp_path / "out.zip"

    write_zip(destination, entries)

    with zipfile.ZipFile(destination) as archive:
        assert archive.read("blob.bin") == payload
        assert archive.read("empty.txt") == b""


def test_every_entry_is_dated_1980_by_default(tmp_path: Path) -> None:
    entries = write_files(tmp_path / "src", {"a.py": b"a", "b/c.py": b"c"})
    os.utime(entries[0].source, (1_600_000_000, 1_600_000_000))

    write_zip(tmp_path / "out.zip", entries)

    assert [info.date_time for info in infos(tmp_path / "out.zip")] == [
        (1980, 1, 1, 0, 0, 0),
        (1980, 1, 1, 0, 0, 0),
    ]
    assert EPOCH_1980 == (1980, 1, 1, 0, 0, 0)


@pytest.mark.parametrize(
    ("epoch", "date_time"),
    [
        ("1700000000", (2023, 11, 14, 22, 13, 20)),
        # Zip stores seconds in two-second steps: odd seconds round down.
        ("1700000001", (2023, 11, 14, 22, 13, 20)),
        ("1700000003", (2023, 11, 14, 22, 13, 22)),
        # Zip dates start in 1980; an earlier epoch is clamped rather than refused.
        ("0", (1980, 1, 1, 0, 0, 0)),
    ],
)
def test_source_date_epoch_dates_every_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, epoch: str, date_time: tuple[int, ...]
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch)
    entries = write_files(tmp_path / "src", {"a.py": b"a", "b.py": b"b"})

    write_zip(tmp_path / "out.zip", entries)

    assert [info.date_time for info in infos(tmp_path / "out.zip")] == [date_time, date_time]


@pytest.mark.parametrize("epoch", ["yesterday", "1.5", "0x10"])
def test_invalid_source_date_epoch_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, epoch: str
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch)
    entries = write_files(tmp_path / "src", {"a.py": b"a"})

    with pytest.raises(BadInput, match="SOURCE_DATE_EPOCH") as info:
        write_zip(tmp_path / "out.zip", entries)

    assert repr(epoch) in str(info.value)
    assert not (tmp_path / "out.zip").exists()


def test_permissions_are_normalised_to_0644_or_0755_from_unix(tmp_path: Path) -> None:
    private = tmp_path / "private.txt"
    private.write_bytes(b"secret-ish")
    private.chmod(0o600)
    script = tmp_path / "run.sh"
    script.write_bytes(b"#!/bin/sh\n")
    script.chmod(0o700)
    group_writable = tmp_path / "shared.txt"
    group_writable.write_bytes(b"x")
    group_writable.chmod(0o664)

    write_zip(
        tmp_path / "out.zip",
        [
            entry_for("private.txt", private),
            entry_for("run.sh", script),
            entry_for("shared.txt", group_writable),
        ],
    )

    modes = {
        info.filename: info.external_attr >> 16 & 0o777 for info in infos(tmp_path / "out.zip")
    }
    assert modes == {"private.txt": 0o644, "run.sh": 0o755, "shared.txt": 0o644}
    assert {info.create_system for info in infos(tmp_path / "out.zip")} == {3}


def build_tree(root: Path, mtime: int, executable_mode: int) -> list[ZipEntry]:
    files = {
        "app.py": b"from chalice import Chalice\n",
        "chalicelib/__init__.py": b"",
        "chalicelib/data.json": b'{"a": 1}\n' * 100,
        "bin/tool": b"#!/bin/sh\necho hi\n",
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))
    (root / "bin" / "tool").chmod(executable_mode)
    return [entry_for(name, root / name) for name in files]


def test_same_content_gives_identical_bytes_across_mtimes_umasks_and_directories(
    tmp_path: Path,
) -> None:
    previous = os.umask(0o022)
    try:
        first = build_tree(tmp_path / "checkout-one", 1_000_000_000, 0o755)
        write_zip(tmp_path / "one" / "deployment.zip", first)
        os.umask(0o077)
        second = build_tree(tmp_path / "elsewhere" / "checkout-two", 1_750_000_000, 0o700)
        write_zip(tmp_path / "two" / "deployment.zip", list(reversed(second)))
    finally:
        os.umask(previous)

    # The trees really differ on disk (modes from the umask, mtimes) ...
    assert (tmp_path / "checkout-one" / "app.py").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "elsewhere" / "checkout-two" / "app.py").stat().st_mode & 0o777 == 0o600
    # ... yet the zips are the same bytes.
    assert sha256(tmp_path / "one" / "deployment.zip") == sha256(
        tmp_path / "two" / "deployment.zip"
    )
    # The zip itself is readable by everyone, whatever the umask was.
    assert (tmp_path / "two" / "deployment.zip").stat().st_mode & 0o777 == 0o644


def test_two_entries_with_one_name_are_refused(tmp_path: Path) -> None:
    first = write_files(tmp_path / "vendor", {"six.py": b"vendored"})
    second = write_files(tmp_path / "deps", {"six.py": b"from pypi"})

    with pytest.raises(BuildFailure, match=r"six\.py"):
        write_zip(tmp_path / "out.zip", [*first, *second])

    assert not (tmp_path / "out.zip").exists()


def unreadable_directory(source: Path) -> None:
    source.unlink()
    source.mkdir()


@pytest.mark.parametrize(
    "break_source",
    [unreadable_directory, Path.unlink],
    ids=["source-is-a-directory", "source-deleted"],
)
def test_failed_write_keeps_the_previous_zip_and_leaves_no_temp_file(
    tmp_path: Path, break_source: Callable[[Path], None]
) -> None:
    out_dir = tmp_path / "dist"
    destination = out_dir / "deployment.zip"
    old = write_files(tmp_path / "old", {"app.py": b"old app"})
    write_zip(destination, old)
    previous = destination.read_bytes()

    entries = write_files(
        tmp_path / "new", {"a.py": b"a" * 10_000, "m.py": b"m", "z.py": b"z" * 10_000}
    )
    break_source(entries[1].source)  # fails after a.py has been written

    with pytest.raises(BuildFailure) as info:
        write_zip(destination, entries)

    assert str(entries[1].source) in str(info.value)
    assert destination.read_bytes() == previous
    assert sorted(path.name for path in out_dir.iterdir()) == ["deployment.zip"]
    assert list(out_dir.glob(".deployment.zip.*")) == []


def test_summary_counts_entries_and_sizes(tmp_path: Path) -> None:
    entries = write_files(
        tmp_path / "src", {"a.py": b"a" * 1000, "b/c.txt": b"hello", "empty": b""}
    )
    destination = tmp_path / "out.zip"

    summary = write_zip(destination, entries)

    assert summary.path == destination
    assert summary.entries == 3
    assert summary.unzipped_size == 1005
    assert summary.size == destination.stat().st_size
    with zipfile.ZipFile(destination) as archive:
        assert sum(info.file_size for info in archive.infolist()) == summary.unzipped_size


def test_an_empty_zip_is_still_a_valid_zip(tmp_path: Path) -> None:
    summary = write_zip(tmp_path / "nested" / "empty.zip", [])

    assert summary.entries == 0
    assert summary.unzipped_size == 0
    with zipfile.ZipFile(tmp_path / "nested" / "empty.zip") as archive:
        assert archive.namelist() == []


def test_wheel_members_are_copied_compressed_and_read_back_intact(tmp_path: Path) -> None:
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("demo/deflated.py", "x = 1\n" * 1000, zipfile.ZIP_DEFLATED)
        archive.writestr("demo/stored.txt", b"stored bytes", zipfile.ZIP_STORED)
    with zipfile.ZipFile(wheel) as archive:
        infos = {info.filename: info for info in archive.infolist()}
    placeholder = tmp_path / "unused"
    entries = [
        ZipEntry(name, placeholder, raw=RawMember(wheel, info)) for name, info in infos.items()
    ]
    (tmp_path / "app.py").write_bytes(b"print('hi')\n")
    entries.append(ZipEntry("app.py", tmp_path / "app.py"))

    write_zip(tmp_path / "out.zip", entries)

    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        assert archive.testzip() is None
        assert archive.read("demo/deflated.py") == b"x = 1\n" * 1000
        assert archive.read("demo/stored.txt") == b"stored bytes"
        assert archive.getinfo("demo/stored.txt").compress_type == zipfile.ZIP_STORED
        assert archive.namelist() == ["app.py", "demo/deflated.py", "demo/stored.txt"]
