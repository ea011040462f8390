"""Every command's report validates against the published schema, and the schema is strict
enough to catch a report that drifts from it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from conftest import make_project
from pkgindex import PackageIndex
from reportschema import assert_valid_report, schema_errors

APP_WITH_ROUTE = (
    "from chalice import Chalice\n\napp = Chalice(app_name='testapp')\n\n"
    "@app.route('/')\ndef index():\n    return {}\n"
)


@pytest.fixture
def app_with_dependencies(tmp_path: Path, index: PackageIndex) -> Path:
    index.add_wheel("puredep", "2.0", requires=["helper"])
    index.add_wheel("helper", "1.0")
    index.add_wheel("macosonly", "1.0", tag="cp311-cp311-macosx_11_0_arm64")
    return make_project(
        tmp_path / "app",
        {
            "app.py": APP_WITH_ROUTE,
            "requirements.txt": "puredep==2.0\nmacosonly==1.0\n",
            "vendor/extra.py": "X = 1\n",
        },
    )


COMMANDS = {
    "build with a layer": (["build", "--automatic-layer", "--exclude", "helper/*"], "build"),
    "build without a layer": (["build", "--no-automatic-layer", "--no-import"], "build"),
    "check": (["check"], "check"),
    "package": (["package"], "package"),
    "build --strict with a dependency missing": (["build", "--strict"], "strict"),
}


@pytest.mark.parametrize("command", COMMANDS.values(), ids=list(COMMANDS))
def test_each_command_writes_a_report_the_schema_accepts(
    command: tuple[list[str], str],
    app_with_dependencies: Path,
    tmp_path: Path,
    chalicepack,
    offline_aws: None,
) -> None:
    args, kind = command
    project = app_with_dependencies
    out = tmp_path / "out"
    extra = ["--runtime", "python3.11"]
    if kind == "package":
        run = chalicepack(
            *args, out, "--project-dir", project, *extra, "--cache-dir", tmp_path / "cache"
        )
    else:
        run = chalicepack(*args, project, "--out", out, *extra)

    assert run.returncode == (1 if kind == "strict" else 0), run.stderr
    name = "check-report.json" if kind == "check" else "build-report.json"
    report = assert_valid_report(out / name)
    assert report["schema_version"] == 1
    assert [m["name"] for m in report["missing_dependencies"]] == ["macosonly"]
    assert ("functions" in report) == (kind in {"build", "package"} and "--no-import" not in args)
    assert ("template" in report) == (kind == "package")
    if "--exclude" in args:
        assert report["left_out"]["excluded_files"] == ["helper/__init__.py"]


def a_report() -> dict[str, Any]:
    sha = "0" * 64
    artifact = {
        "path": "/p/dist/deployment.zip",
        "size": 1,
        "unzipped_size": 2,
        "files": 3,
        "sha256": sha,
        "sha256_base64": "A" * 43 + "=",
    }
    return {
        "schema_version": 1,
        "chalicepack_version": "0.1.0",
        "project": "/p",
        "app_name": "a",
        "stage": "dev",
        "runtime": "python3.12",
        "architecture": "arm64",
        "automatic_layer": False,
        "chalice_runtime": "chalice==1.34.0 installed with chalicepack",
        "artifacts": {"deployment": artifact},
        "dependencies": [],
        "vendor_files": [],
        "vendor_overrides": [],
        "missing_dependencies": [],
        "fingerprint": sha,
    }


def drifted(change: str) -> dict[str, Any]:
    report = copy.deepcopy(a_report())
    if change == "an unknown field":
        report["warnings"] = []
    elif change == "a required field gone":
        del report["vendor_files"]
    elif change == "functions without the app name":
        report["functions"] = []
    elif change == "a layer without its inputs digest":
        report["artifacts"]["layer"] = dict(report["artifacts"]["deployment"])
    elif change == "an architecture Lambda has not":
        report["architecture"] = "aarch64"
    elif change == "another schema version":
        report["schema_version"] = 2
    return report


def test_the_example_report_is_valid_so_the_drift_cases_below_test_one_thing_each() -> None:
    assert schema_errors(a_report()) == []


@pytest.mark.parametrize(
    "change",
    [
        "an unknown field",
        "a required field gone",
        "functions without the app name",
        "a layer without its inputs digest",
        "an architecture Lambda has not",
        "another schema version",
    ],
)
def test_the_schema_refuses_a_report_that_drifted(change: str) -> None:
    assert schema_errors(drifted(change)) != []
