"""``sbom.cdx.json`` beside the zips: valid CycloneDX, exactly the shipped distributions with
their wheels' sha256 and licenses, the app as its subject, the same bytes on a rebuild; and the
Action's ``sbom`` output."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from conftest import EXAMPLE_APP, make_project
from ghrunner import StepFiles
from pkgindex import PackageIndex


def publish_licensed(index: PackageIndex) -> dict[str, Path]:
    """Four releases, each declaring its license another way (or not at all)."""
    return {
        "exprlib": index.add_wheel(
            "exprlib",
            "1.0",
            requires=["classified"],
            metadata=["Metadata-Version: 2.4", "License-Expression: Apache-2.0 OR MIT"],
        ),
        "classified": index.add_wheel(
            "classified", "2.0", metadata=["Classifier: License :: OSI Approved :: BSD License"]
        ),
        "plainlic": index.add_wheel("plainlic", "3.0", metadata=["License: MIT"]),
        "nolicense": index.add_wheel("nolicense", "0.1"),
    }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def licenses(component: dict[str, Any]) -> list[dict[str, Any]]:
    return component.get("licenses", [])


@pytest.fixture
def licensed_project(tmp_path: Path, index: PackageIndex) -> tuple[Path, dict[str, Path]]:
    wheels = publish_licensed(index)
    project = make_project(
        tmp_path / "app", {"requirements.txt": "exprlib==1.0\nplainlic==3.0\nnolicense==0.1\n"}
    )
    return project, wheels


def test_the_sbom_is_valid_cyclonedx_and_lists_exactly_what_ships(
    tmp_path: Path, licensed_project: tuple[Path, dict[str, Path]], chalicepack: Any
) -> None:
    project, wheels = licensed_project
    out = tmp_path / "out"

    run = chalicepack("build", project, "--out", out, "--automatic-layer", "--json")

    assert run.returncode == 0, run.stderr
    report = run.json()
    text = (out / "sbom.cdx.json").read_text(encoding="utf-8")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text, all_errors=True) is None
    sbom = json.loads(text)
    assert (sbom["bomFormat"], sbom["specVersion"]) == ("CycloneDX", "1.6")
    shipped = {(d["name"], d["version"]) for d in report["dependencies"]}
    assert shipped == {("exprlib", "1.0"), ("classified", "2.0"), ("plainlic", "3.0"),
                       ("nolicense", "0.1")}  # fmt: skip
    components = {c["name"]: c for c in sbom["components"]}
    assert {(c["name"], c["version"]) for c in components.values()} == shipped
    for name, component in components.items():
        assert component["purl"] == f"pkg:pypi/{name}@{component['version']}"
        assert component["hashes"] == [{"alg": "SHA-256", "content": sha256(wheels[name])}]
    assert licenses(components["exprlib"]) == [{"expression": "Apache-2.0 OR MIT"}]
    assert licenses(components["plainlic"]) == [{"license": {"id": "MIT"}}]
    assert licenses(components["classified"]) == [{"license": {"name": "BSD License"}}]
    assert licenses(components["nolicense"]) == []
    # The app is the BOM's subject; it requires what requirements.txt names, exprlib the rest.
    app = sbom["metadata"]["component"]
    assert (app["name"], app["type"]) == ("testapp", "application")
    graph = {d["ref"]: set(d.get("dependsOn", [])) for d in sbom["dependencies"]}
    assert graph[app["bom-ref"]] == {
        "pkg:pypi/exprlib@1.0", "pkg:pypi/plainlic@3.0", "pkg:pypi/nolicense@0.1"
    }  # fmt: skip
    assert graph["pkg:pypi/exprlib@1.0"] == {"pkg:pypi/classified@2.0"}


def test_the_sbom_is_the_same_bytes_when_built_again(
    tmp_path: Path, licensed_project: tuple[Path, dict[str, Path]], chalicepack: Any
) -> None:
    project, _ = licensed_project

    first = chalicepack("build", project, "--out", tmp_path / "one")
    second = chalicepack("build", project, "--out", tmp_path / "two", "--refresh")

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    one = (tmp_path / "one/sbom.cdx.json").read_bytes()
    assert one == (tmp_path / "two/sbom.cdx.json").read_bytes()
    assert b'"timestamp"' not in one  # no build time unless SOURCE_DATE_EPOCH gives one


def test_the_action_sets_the_sbom_output(tmp_path: Path, index: PackageIndex) -> None:
    from test_action_commands import run_entrypoint

    index.add_wheel("sortedcontainers", "2.4.0", tag="py2.py3-none-any")
    workspace = tmp_path / "workspace"
    shutil.copytree(EXAMPLE_APP, workspace / "docs-app")
    files = StepFiles(tmp_path / "_runner_file_commands").create()

    step = run_entrypoint(workspace, files, {"project_dir": "docs-app"}, {})

    assert step.returncode == 0, step.stderr.decode()
    assert files.outputs()["sbom"] == "docs-app/dist/sbom.cdx.json"
    sbom = json.loads((workspace / "docs-app/dist/sbom.cdx.json").read_text())
    assert [c["purl"] for c in sbom["components"]] == ["pkg:pypi/sortedcontainers@2.4.0"]
