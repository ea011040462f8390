"""A project tree that cannot be packaged: exit 2 with one line naming the path and the fix,
the previous artifacts untouched. A file too big for Lambda is refused from its size alone."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aftermath import assert_untouched, cache_scratch, error_line, seed_previous_build
from conftest import Run, make_project


def refuse(chalicepack: Callable[..., Run], project: Path, out: Path, *args: str | Path) -> str:
    """Build ``project``; assert the refusal a user must see; return the error line."""
    before = seed_previous_build(out)
    run = chalicepack("build", project, "--out", out, *args)
    assert run.returncode == 2, run.stderr
    assert run.stdout == ""
    assert_untouched(out, before)
    return error_line(run.stderr)


def test_no_app_py(tmp_path: Path, chalicepack: Any) -> None:
    project = make_project(tmp_path / "app")
    (project / "app.py").unlink()

    message = refuse(chalicepack, project, tmp_path / "out")

    assert message.startswith(f"{project / 'app.py'} does not exist")
    assert "every Chalice project needs app.py at its root" in message


def test_app_py_that_is_a_directory(tmp_path: Path, chalicepack: Any) -> None:
    project = make_project(tmp_path / "app")
    (project / "app.py").unlink()
    (project / "app.py").mkdir()

    message = refuse(chalicepack, project, tmp_path / "out")

    assert message.startswith(f"{project / 'app.py'} is a directory")


def test_a_symlink_loop(tmp_path: Path, chalicepack: Any) -> None:
    project = make_project(tmp_path / "app", {"chalicelib/__init__.py": ""})
    (project / "chalicelib" / "again").symlink_to(project / "chalicelib")

    message = refuse(chalicepack, project, tmp_path / "out")

    assert f"{project / 'chalicelib' / 'again'} is a symlink loop" in message
    assert "remove the link" in message


def test_a_symlink_escaping_the_project(tmp_path: Path, chalicepack: Any) -> None:
    outside = tmp_path / "elsewhere" / "credentials.py"
    outside.parent.mkdir()
    outside.write_text("TOKEN = 'not for Lambda'\n")
    project = make_project(tmp_path / "app")
    (project / "vendor").mkdir()
    (project / "vendor" / "credentials.py").symlink_to(outside)

    message = refuse(chalicepack, project, tmp_path / "out")

    assert f"{project / 'vendor' / 'credentials.py'} links to {outside}" in message
    assert "outside the project" in message
    assert "copy the file into the project instead of linking to it" in message


@pytest.mark.parametrize("where", [b"chalicelib", b"vendor"])
def test_a_file_name_that_is_not_utf8(tmp_path: Path, chalicepack: Any, where: bytes) -> None:
    project = make_project(tmp_path / "app", {"chalicelib/__init__.py": "", "vendor/ok.txt": ""})
    # A Latin-1 name, as an old archive or a Windows share leaves them: bytes, not text.
    name = os.path.join(os.fsencode(project), where, b"caf\xe9.py")
    os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o644))

    message = refuse(chalicepack, project, tmp_path / "out")

    assert f"{project}/{where.decode()}/caf\\xe9.py: the file name is not valid UTF-8" in message
    assert "rename it with UTF-8 characters only" in message


# --- a file the build cannot read -------------------------------------------------------------

_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def _without_file_read_override() -> None:
    """In the child, before exec: root loses the capabilities that let it read any file, so
    permission bits apply to it as to any user (its Python, under /root, stays readable)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_unprivileged(*args: str | Path) -> Run:
    command = [sys.executable, "-m", "chalicepack", *map(str, args)]
    preexec = _without_file_read_override if os.geteuid() == 0 else None
    # No fallback when the drop fails: root reads every file, so the test would prove nothing.
    completed = subprocess.run(
        command, capture_output=True, text=True, preexec_fn=preexec, timeout=120
    )
    return Run(completed.returncode, completed.stdout, completed.stderr)


@pytest.mark.parametrize(
    ("locked", "mode", "names"),
    [
        ("chalicelib/secret.py", 0o000, "cannot read: Permission denied"),
        ("vendor/private", 0o000, "cannot read directory: Permission denied"),
    ],
    ids=["unreadable-file", "untraversable-directory"],
)
def test_an_unreadable_file_or_directory(
    tmp_path: Path, locked: str, mode: int, names: str
) -> None:
    project = make_project(
        tmp_path / "app",
        {"chalicelib/__init__.py": "", "chalicelib/secret.py": "KEY = 1\n", "vendor/private/a": ""},
    )
    (project / locked).chmod(mode)
    out = tmp_path / "out"
    before = seed_previous_build(out)
    try:
        run = run_unprivileged("build", project, "--out", out, "--cache-dir", tmp_path / "cache")
    finally:
        (project / locked).chmod(0o755)

    assert run.returncode == 2, run.stderr
    message = error_line(run.stderr)
    assert message.startswith(f"{project / locked}: {names}")
    assert "make it readable by the user running the build (chmod a+rX), or remove it" in message
    assert_untouched(out, before)


# --- over Lambda's size limit -----------------------------------------------------------------

# The wrapper reports how many bytes the CLI and its waited-for children read (Linux's rchar).
_COUNT_READS = """
import runpy, sys
report = sys.argv.pop(1)
try:
    runpy.run_module("chalicepack", run_name="__main__", alter_sys=True)
finally:
    with open("/proc/self/io") as io, open(report, "w") as out:
        out.write(io.read())
"""


def test_a_2_gb_sparse_vendor_file_is_refused_from_its_size_without_being_read(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path / "app", {"vendor/model/weights.txt": "small\n"})
    huge = project / "vendor" / "model" / "weights.bin"
    with huge.open("wb") as stream:
        stream.truncate(2 * 1024**3)  # sparse: 2 GiB that take no disk
    out = tmp_path / "out"
    before = seed_previous_build(out)
    io_report = tmp_path / "io.txt"

    command = [sys.executable, "-c", _COUNT_READS, str(io_report), "build", str(project)]
    command += ["--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    started = time.monotonic()
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started

    assert completed.returncode == 2, completed.stderr
    message = error_line(completed.stderr)
    assert "over Lambda's limit of 262144000 bytes (250 MB)" in message
    assert "the biggest files: vendor/model/weights.bin (2.0 GiB)" in message
    assert "remove what the function does not need" in message
    assert_untouched(out, before)
    assert cache_scratch(tmp_path / "cache") == []
    counters = dict(line.split(": ") for line in io_report.read_text().splitlines())
    read = int(counters["rchar"])
    assert read < 100 * 1024**2, f"read {read} bytes in {elapsed:.1f} s: the file was read"
