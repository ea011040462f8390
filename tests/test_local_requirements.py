"""Requirements named by a local path (a project directory, ``-e`` one, a wheel or an sdist
file): what they hold is an input of the build like app.py. A change to it builds again, and
neither the cached resolution nor a cached wheel serves the old code; what a build writes
into the project directory (build/, *.egg-info, __pycache__) and git's files are no change."""

from __future__ import annotations

import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import make_project
from distfactory import build_sdist, build_wheel
from pkgindex import PackageIndex

KEPT = "nothing changed since the last build"


def _write_directory(project: Path, name: str, x: int) -> None:
    """mylib 0.1 as a source tree at ``project/name`` (its in-tree backend needs no index),
    with ``X = x``; written over the last one in place, as an editor does."""
    scratch = Path(tempfile.mkdtemp(dir=project))
    sdist = build_sdist(scratch, "mylib", "0.1", files={"mylib/__init__.py": f"X = {x}\n"})
    with tarfile.open(sdist) as archive:
        archive.extractall(scratch, filter="data")
    tree = project / name
    tree.mkdir(exist_ok=True)
    for source in (scratch / "mylib-0.1").rglob("*"):
        if source.is_file():
            (tree / source.relative_to(scratch / "mylib-0.1")).parent.mkdir(exist_ok=True)
            (tree / source.relative_to(scratch / "mylib-0.1")).write_bytes(source.read_bytes())
    shutil.rmtree(scratch)


def _write_wheel(project: Path, x: int) -> None:
    build_wheel(project / "wheels", "mylib", "0.1", files={"mylib/__init__.py": f"X = {x}\n"})


def _write_sdist(project: Path, x: int) -> None:
    build_sdist(project / "dists", "mylib", "0.1", files={"mylib/__init__.py": f"X = {x}\n"})


# How requirements.txt names mylib, and how its X is written.
SOURCES: dict[str, tuple[str, Callable[[Path, int], None]]] = {
    "directory": ("./localpkg", lambda p, x: _write_directory(p, "localpkg", x)),
    "editable directory": ("-e ./localpkg", lambda p, x: _write_directory(p, "localpkg", x)),
    "wheel file": ("./wheels/mylib-0.1-py3-none-any.whl", _write_wheel),
    # pip caches the wheel it builds from an sdist file by its URL (by its hash, if given).
    "sdist file": ("./dists/mylib-0.1.tar.gz", _write_sdist),
    # A pinned line: its resolution is reused for good, unless the folder's wheels count.
    "wheel in a --find-links folder": ("--find-links wheels\nmylib==0.1", _write_wheel),
}


def shipped_x(zip_path: Path) -> str:
    with zipfile.ZipFile(zip_path) as archive:
        return archive.read("mylib/__init__.py").decode().strip()


@pytest.mark.parametrize("source", SOURCES.values(), ids=SOURCES.keys())
def test_a_change_to_a_local_requirement_ships(
    source: tuple[str, Callable[[Path, int], None]],
    tmp_path: Path,
    index: PackageIndex,
    chalicepack,
) -> None:
    line, write = source
    project = make_project(tmp_path / "app", {"requirements.txt": f"{line}\n"})
    write(project, 1)
    first = chalicepack("build", project, "--no-import", cwd=project)
    assert first.returncode == 0, first.stderr
    assert shipped_x(project / "dist" / "deployment.zip") == "X = 1"

    write(project, 2)
    elsewhere = chalicepack(
        "build", project, "--no-import", "--out", tmp_path / "elsewhere", cwd=project
    )
    again = chalicepack("build", project, "--no-import", cwd=project)
    unchanged = chalicepack("build", project, "--no-import", cwd=project)

    assert elsewhere.returncode == 0, elsewhere.stderr
    assert shipped_x(tmp_path / "elsewhere" / "deployment.zip") == "X = 2"
    assert again.returncode == 0, again.stderr
    assert KEPT not in again.stderr
    assert shipped_x(project / "dist" / "deployment.zip") == "X = 2"
    assert unchanged.returncode == 0, unchanged.stderr
    assert KEPT in unchanged.stderr


def test_what_a_build_writes_into_a_local_project_is_no_change(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    project = make_project(tmp_path / "app", {"requirements.txt": "./localpkg\n"})
    _write_directory(project, "localpkg", 1)
    first = chalicepack("build", project, "--no-import", cwd=project)
    assert first.returncode == 0, first.stderr

    tree = project / "localpkg"
    for name in (
        "build/lib/mylib/__init__.py",
        "mylib.egg-info/PKG-INFO",
        "mylib/__pycache__/__init__.cpython-311.pyc",
        ".git/index",
    ):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text("written by a build\n")
    again = chalicepack("build", project, "--no-import", cwd=project)

    assert again.returncode == 0, again.stderr
    assert KEPT in again.stderr


def test_a_local_path_is_read_as_pip_reads_it_from_the_working_directory(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    """pip reads ``./localpkg`` from the working directory, not requirements.txt's folder:
    a build started elsewhere ships that directory's project, and a change to it counts."""
    project = make_project(tmp_path / "app", {"requirements.txt": "./localpkg\n"})
    _write_directory(project, "localpkg", 1)
    _write_directory(tmp_path, "localpkg", 10)
    first = chalicepack("build", project, "--no-import", cwd=tmp_path)
    assert first.returncode == 0, first.stderr

    _write_directory(tmp_path, "localpkg", 20)
    again = chalicepack("build", project, "--no-import", cwd=tmp_path)

    assert again.returncode == 0, again.stderr
    assert KEPT not in again.stderr
    assert shipped_x(project / "dist" / "deployment.zip") == "X = 20"
