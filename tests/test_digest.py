"""Recorded digests spare rehashing an unchanged file, and never stand for a changed one."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from chalicepack.package.digest import DigestRecord


def aged(path: Path, data: bytes) -> Path:
    """``path`` holding ``data``, last changed long enough ago for its digest to be recorded."""
    path.write_bytes(data)
    time.sleep(0.1)  # past the file system's timestamp tick (see digest._RACY_NS)
    return path


def test_a_recorded_digest_is_reused_while_the_file_is_unchanged(tmp_path: Path) -> None:
    wheel = aged(tmp_path / "a.whl", b"wheel bytes")
    first = DigestRecord(tmp_path / "digests.json")
    assert first.sha256(wheel) == hashlib.sha256(b"wheel bytes").hexdigest()
    first.save()

    # The record is what answers now: poison it to see that it is the one read.
    record = (tmp_path / "digests.json").read_text()
    (tmp_path / "digests.json").write_text(record.replace(first.sha256(wheel), "0" * 64))

    assert DigestRecord(tmp_path / "digests.json").sha256(wheel) == "0" * 64


def test_a_file_rewritten_with_the_same_size_and_mtime_is_hashed_again(tmp_path: Path) -> None:
    wheel = aged(tmp_path / "a.whl", b"original")
    record = DigestRecord(tmp_path / "digests.json")
    record.sha256(wheel)
    record.save()
    status = wheel.stat()

    wheel.write_bytes(b"tampered")  # same size
    os.utime(wheel, ns=(status.st_atime_ns, status.st_mtime_ns))  # mtime put back; ctime moves

    assert DigestRecord(tmp_path / "digests.json").sha256(wheel) == (
        hashlib.sha256(b"tampered").hexdigest()
    )


def test_a_file_changed_just_before_it_was_hashed_is_not_recorded(tmp_path: Path) -> None:
    # A write in the same timestamp tick right after the hash would leave the stat as it was.
    wheel = tmp_path / "a.whl"
    wheel.write_bytes(b"fresh")
    record = DigestRecord(tmp_path / "digests.json")
    record.sha256(wheel)
    record.save()

    assert not (tmp_path / "digests.json").exists()
