"""A few builds against the real PyPI (marked ``network``): the cases where Lambda tooling
is known to guess wrong. They skip only when PyPI does not answer a direct request from the
test itself; once it does, any failure of chalicepack's fails the test."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

from conftest import make_project, require_pypi

pytestmark = pytest.mark.network


@pytest.fixture(scope="module", autouse=True)
def _pypi_reachable() -> None:
    require_pypi()


def build(chalicepack: Any, project: Path, *args: str) -> dict[str, Any]:
    # pip's default index: conftest already switched the machine's pip configuration off.
    run = chalicepack("build", project, "--json", *args)
    assert run.returncode == 0, run.stderr
    report: dict[str, Any] = run.json()
    report["stderr"] = run.stderr
    return report


def versions(report: dict[str, Any]) -> dict[str, str]:
    return {d["name"]: d["version"] for d in report["dependencies"]}


def test_numpy_and_pandas_for_python311_use_releases_with_manylinux2014_wheels(
    tmp_path: Path, chalicepack
) -> None:
    project = make_project(tmp_path / "app", {"requirements.txt": "numpy\npandas\n"})

    report = build(chalicepack, project, "--runtime", "python3.11", "--arch", "x86_64")

    tags = {d["name"]: d["tag"] for d in report["dependencies"]}
    assert report["missing_dependencies"] == []
    assert "numpy" in tags and "pandas" in tags
    assert "manylinux_2_28" not in tags["numpy"]
    assert tags["numpy"].startswith("cp311-cp311-manylinux")
    with zipfile.ZipFile(project / "dist" / "deployment.zip") as archive:
        assert any(name.startswith("numpy/_core/") for name in archive.namelist())


def test_numpy_for_python312_on_arm64_lands_an_aarch64_wheel(tmp_path: Path, chalicepack) -> None:
    project = make_project(tmp_path / "app", {"requirements.txt": "numpy\n"})

    report = build(chalicepack, project, "--runtime", "python3.12", "--arch", "arm64")

    (numpy,) = report["dependencies"]
    assert numpy["tag"].startswith("cp312-cp312-manylinux")
    assert numpy["tag"].endswith("_aarch64")


def test_cryptography_1_9_is_reported_with_a_newer_release_to_pin(
    tmp_path: Path, chalicepack
) -> None:
    project = make_project(tmp_path / "app", {"requirements.txt": "cryptography==1.9\n"})

    report = build(chalicepack, project, "--runtime", "python3.12")

    assert "Could not install dependencies:\ncryptography==1.9\n" in report["stderr"]
    (missing,) = [m for m in report["missing_dependencies"] if m["name"] == "cryptography"]
    assert missing["version"] == "1.9"
    assert missing["fix"].startswith("pin cryptography==")


def test_a_release_with_only_manylinux_2_28_wheels_fits_python312_but_not_python311(
    tmp_path: Path, chalicepack
) -> None:
    # numpy 2.3.0 ships manylinux_2_28 x86_64 wheels only (no manylinux2014).
    project = make_project(tmp_path / "app", {"requirements.txt": "numpy==2.3.0\n"})

    new = build(chalicepack, project, "--runtime", "python3.12", "--out", str(tmp_path / "a"))
    old = build(chalicepack, project, "--runtime", "python3.11", "--out", str(tmp_path / "b"))

    assert versions(new) == {"numpy": "2.3.0"}
    assert "manylinux_2_28" in new["dependencies"][0]["tag"]
    assert versions(old) == {}
    assert [m["name"] for m in old["missing_dependencies"]] == ["numpy"]


@pytest.mark.parametrize(("runtime", "arch"), [("python3.11", "x86_64"), ("python3.13", "arm64")])
def test_uv_and_pip_pick_the_same_releases_and_files_from_pypi(
    tmp_path: Path, chalicepack, runtime: str, arch: str
) -> None:
    # Projects publishing several files a runtime accepts (cp3X and abi3 builds, manylinux
    # 2_17/2_28/2_34, pure fallbacks): the file each resolver takes must be the same.
    requirements = "requests\ncryptography\ncharset-normalizer\norjson\n"
    project = make_project(tmp_path / "app", {"requirements.txt": requirements})
    target = ("--runtime", runtime, "--arch", arch, "-v")

    fast = build(chalicepack, project, *target, "--out", str(tmp_path / "uv"))
    exact = build(
        chalicepack, project, *target, "--resolver", "pip", "--out", str(tmp_path / "pip")
    )

    assert "resolved with uv for" in fast["stderr"]
    assert "reusing its cached resolution" not in exact["stderr"]  # pip's own answer
    wheels = {d["name"]: d["wheel"] for d in fast["dependencies"]}
    assert wheels == {d["name"]: d["wheel"] for d in exact["dependencies"]}
    assert {"cryptography", "cffi", "charset-normalizer", "orjson"} <= set(wheels)
