"""Packages that try to write where they must not: refused, named, exit 2, and nothing of them
written outside the build's own folders; the previous artifacts stay as they were."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from aftermath import assert_untouched, cache_scratch, error_line, seed_previous_build
from conftest import make_project
from pkgindex import PackageIndex


def build(chalicepack: Any, project: Path, out: Path) -> Any:
    return chalicepack("build", project, "--out", out, "--no-import")


def escaped(root: Path) -> list[Path]:
    """Files a hostile package planted anywhere under ``root``, the test's whole folder."""
    return sorted(path for path in root.rglob("*escaped*") if path.suffix != ".whl")


# --- wheels -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target", ["../../../../escaped.py", "ABSOLUTE"], ids=["dotdot", "absolute"]
)
def test_a_wheel_writing_outside_site_packages_is_refused_and_writes_nothing_there(
    tmp_path: Path, index: PackageIndex, chalicepack: Any, target: str
) -> None:
    if target == "ABSOLUTE":
        target = str(tmp_path / "absolute-escaped.py")
    index.add_wheel("zipslip", "1.0", files={"zipslip/__init__.py": "", target: "print('pwned')\n"})
    project = make_project(tmp_path / "app", {"requirements.txt": "zipslip\n"})
    out = tmp_path / "out"
    before = seed_previous_build(out)

    run = build(chalicepack, project, out)

    assert run.returncode == 2, run.stderr
    message = error_line(run.stderr)
    assert message.startswith(
        f"zipslip-1.0-py3-none-any.whl is not a valid wheel: it holds {target!r},"
        " a path outside site-packages"
    )
    assert "replace or remove the requirement that brings it in" in message
    assert escaped(tmp_path) == []
    assert_untouched(out, before)
    cache = tmp_path / "cache"
    assert cache_scratch(cache) == []
    assert not list(cache.glob("trees/*/site-packages/zipslip"))  # no tree half-installed


@pytest.mark.parametrize(
    ("files", "names"),
    [
        ({"app.py": "app = 'hijacked'\n"}, "would replace the app's app.py in the package"),
        (
            {"chalicelib/__init__.py": "hijacked = True\n"},
            "would replace the app's chalicelib/__init__.py in the package",
        ),
        (
            {"chalicelib/extra.py": "hijacked = True\n"},
            "would add chalicelib/extra.py to the app's own chalicelib/ package",
        ),
    ],
    ids=["app.py", "chalicelib-file", "chalicelib-addition"],
)
def test_a_wheel_that_would_overwrite_the_app_is_refused_naming_the_wheel(
    tmp_path: Path, index: PackageIndex, chalicepack: Any, files: dict[str, str], names: str
) -> None:
    index.add_wheel("hijack", "2.0", files={"hijack/__init__.py": "", **files})
    project = make_project(
        tmp_path / "app", {"requirements.txt": "hijack\n", "chalicelib/__init__.py": "ok = 1\n"}
    )
    out = tmp_path / "out"
    before = seed_previous_build(out)

    run = build(chalicepack, project, out)

    assert run.returncode == 2, run.stderr
    message = error_line(run.stderr)
    assert message.startswith(f"the dependency wheel hijack-2.0-py3-none-any.whl {names}")
    assert "remove it from" in message
    assert_untouched(out, before)
    assert (project / "app.py").read_text().startswith("from chalice import Chalice")
    assert (project / "chalicelib" / "__init__.py").read_text() == "ok = 1\n"


# --- sdists -----------------------------------------------------------------------------------

_PYPROJECT = b'[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'


def hostile_sdist(directory: Path, member: tarfile.TarInfo) -> Path:
    """``tarball-1.0.tar.gz``, a normal-looking sdist with one hostile member."""
    path = directory / "tarball-1.0.tar.gz"
    directory.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as sdist:
        for name, data in {
            "PKG-INFO": b"Metadata-Version: 2.1\nName: tarball\nVersion: 1.0\n\n",
            "pyproject.toml": _PYPROJECT,
            "tarball/__init__.py": b"",
        }.items():
            info = tarfile.TarInfo(f"tarball-1.0/{name}")
            info.size = len(data)
            sdist.addfile(info, io.BytesIO(data))
        payload = b"print('pwned')\n" if member.isfile() else b""
        member.size = len(payload)
        sdist.addfile(member, io.BytesIO(payload) if payload else None)
    return path


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


def _hardlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE
    info.linkname = target
    return info


REFUSED = "requirements.txt:1: 'tarball==1.0': pip refused to unpack the source distribution"


@pytest.mark.parametrize(
    ("member", "names"),
    [
        (
            tarfile.TarInfo("tarball-1.0/../../../../escaped.py"),
            [REFUSED, "tarball-1.0.tar.gz", "is outside the destination"],
        ),
        (
            _symlink("tarball-1.0/escaped-link", "../../../../../.."),
            [REFUSED, "tarball-1.0.tar.gz", "would link to", "outside the destination"],
        ),
        (
            _symlink("tarball-1.0/escaped-abs-link", "/etc/passwd"),
            [REFUSED, "tarball-1.0.tar.gz", "is a link to an absolute path"],
        ),
        (
            _hardlink("tarball-1.0/escaped-hard", "/etc/passwd"),
            [REFUSED, "tarball-1.0.tar.gz", "is a link to an absolute path"],
        ),
        # tarfile's data filter strips the leading "/" (so nothing lands in /tmp), which
        # leaves an archive with no single root folder: pip cannot use it.
        (
            tarfile.TarInfo("/tmp/escaped-absolute.py"),
            [
                "'tarball==1.0': pip found a release but could not use it:",
                "tarball-1.0.tar.gz",
                "does not appear to be a Python project",
            ],
        ),
    ],
    ids=["dotdot-file", "symlink-out", "absolute-symlink", "absolute-hardlink", "absolute-file"],
)
def test_an_sdist_with_members_outside_its_root_is_refused_by_pip_and_the_user_is_told(
    tmp_path: Path, index: PackageIndex, chalicepack: Any, member: tarfile.TarInfo, names: list[str]
) -> None:
    # pip itself refuses these (tarfile's data filter, PEP 706): chalicepack must say why
    # instead of reporting the project as missing from the index.
    index.add_file(hostile_sdist(tmp_path / "sdists", member))
    project = make_project(tmp_path / "app", {"requirements.txt": "tarball==1.0\n"})
    out = tmp_path / "out"
    before = seed_previous_build(out)

    run = build(chalicepack, project, out)

    assert run.returncode == 2, run.stderr
    message = error_line(run.stderr)
    assert message.startswith(str(project / "requirements.txt"))
    for name in names:
        assert name in message
    assert "pin another release or remove the requirement" in message
    assert escaped(tmp_path) == []
    assert not Path("/tmp/escaped-absolute.py").exists()
    assert_untouched(out, before)
