"""A rebuild whose layer would hold exactly what the layer zip in --out holds keeps that file
instead of writing it again; any change to what goes in it, or to the file itself, writes it."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import make_project
from pkgindex import PackageIndex

APP = "from chalice import Chalice\nimport dep, vendored\napp = Chalice(app_name='testapp')\n"


@pytest.fixture
def project(tmp_path: Path, index: PackageIndex) -> Path:
    for version in ("1.0", "2.0"):
        index.add_wheel(
            "dep",
            version,
            files={"dep/__init__.py": f"V = {version!r}\n", "dep/tests/test_dep.py": ""},
        )
    return make_project(
        tmp_path / "app",
        {"requirements.txt": "dep==1.0\n", "vendor/vendored.py": "X = 1\n", "app.py": APP},
    )


def layer_of(report: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    layer = report["artifacts"]["layer"]
    return Path(layer["path"]), layer


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def edit_app(project: Path) -> None:
    with (project / "app.py").open("a") as app:
        app.write(f"# edit {os.urandom(4).hex()}\n")


def test_an_app_only_change_keeps_the_layer_zip_as_it_is(project: Path, chalicepack) -> None:
    first = chalicepack("build", project, "--automatic-layer", "--json")
    assert first.returncode == 0, first.stderr
    path, layer = layer_of(first.json())
    before = path.stat()

    edit_app(project)
    second = chalicepack("build", project, "--automatic-layer", "--json")

    assert second.returncode == 0, second.stderr
    assert "the layer's contents are unchanged: keeping" in second.stderr
    after = second.json()
    assert layer_of(after) == (path, layer)  # reported as before: size, sha256, files
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sha256(path) == layer["sha256"]
    deployment = after["artifacts"]["deployment"]
    assert deployment["sha256"] != first.json()["artifacts"]["deployment"]["sha256"]
    assert sha256(Path(deployment["path"])) == deployment["sha256"]


Change = Callable[[Path], tuple[list[str], dict[str, str]]]


def vendor_file_same_size(project: Path) -> tuple[list[str], dict[str, str]]:
    (project / "vendor" / "vendored.py").write_text("X = 2\n")
    return [], {}


def dependency_release(project: Path) -> tuple[list[str], dict[str, str]]:
    (project / "requirements.txt").write_text("dep==2.0\n")
    return [], {}


def an_exclude(project: Path) -> tuple[list[str], dict[str, str]]:
    return ["--exclude", "*/tests"], {}


def source_date_epoch(project: Path) -> tuple[list[str], dict[str, str]]:
    return [], {"SOURCE_DATE_EPOCH": "1700000000"}


def executable_vendor_file(project: Path) -> tuple[list[str], dict[str, str]]:
    (project / "vendor" / "vendored.py").chmod(0o755)
    return [], {}


@pytest.mark.parametrize(
    "change",
    [vendor_file_same_size, dependency_release, an_exclude, source_date_epoch,
     executable_vendor_file],
)  # fmt: skip
def test_a_change_to_what_goes_in_the_layer_writes_it_again(
    project: Path, chalicepack, tmp_path: Path, change: Change
) -> None:
    first = chalicepack("build", project, "--automatic-layer", "--json")
    assert first.returncode == 0, first.stderr
    path, layer = layer_of(first.json())
    inode = path.stat().st_ino

    edit_app(project)
    args, env = change(project)
    second = chalicepack("build", project, "--automatic-layer", "--json", *args, env=env)
    fresh = chalicepack(
        "build", project, "--automatic-layer", "--json", "--out", tmp_path / "fresh",
        "--cache-dir", tmp_path / "fresh-cache", *args, env=env,
    )  # fmt: skip

    assert second.returncode == 0, second.stderr
    assert "keeping" not in second.stderr
    assert path.stat().st_ino != inode
    _, rebuilt = layer_of(second.json())
    assert rebuilt["sha256"] != layer["sha256"]
    assert rebuilt["sha256"] == sha256(path) == layer_of(fresh.json())[1]["sha256"]


def test_a_layer_zip_changed_since_the_last_build_is_written_again(
    project: Path, chalicepack
) -> None:
    first = chalicepack("build", project, "--automatic-layer", "--json")
    assert first.returncode == 0, first.stderr
    path, layer = layer_of(first.json())
    data = bytearray(path.read_bytes())
    data[40] ^= 0xFF  # same size, other bytes
    path.write_bytes(bytes(data))

    edit_app(project)
    second = chalicepack("build", project, "--automatic-layer", "--json")

    assert second.returncode == 0, second.stderr
    assert "keeping" not in second.stderr
    assert sha256(path) == layer["sha256"] == layer_of(second.json())[1]["sha256"]


def test_a_layer_zip_no_report_vouches_for_is_written_again(project: Path, chalicepack) -> None:
    first = chalicepack("build", project, "--automatic-layer", "--json")
    assert first.returncode == 0, first.stderr
    path, layer = layer_of(first.json())
    report_path = project / "dist" / "build-report.json"
    report = json.loads(report_path.read_text())
    report["artifacts"]["layer"]["sha256"] = "0" * 64
    report_path.write_text(json.dumps(report))
    inode = path.stat().st_ino

    edit_app(project)
    second = chalicepack("build", project, "--automatic-layer", "--json")

    assert second.returncode == 0, second.stderr
    assert path.stat().st_ino != inode
    assert sha256(path) == layer["sha256"] == layer_of(second.json())[1]["sha256"]
