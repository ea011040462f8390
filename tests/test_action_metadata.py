"""action.yml, the Action's input table, the CLI and the README agree; the schema check that
``make lint`` runs on action.yml rejects a broken one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from conftest import ROOT
from ghrunner import action_metadata

if sys.version_info < (3, 11):
    # On 3.11+ github-action-utils is a dependency: its absence there fails, never skips.
    pytest.skip("the Action needs Python 3.11+", allow_module_level=True)

from chalicepack.action.inputs import (
    INPUTS,
    cli_command_actions,
)
from chalicepack.action.run import DEFAULT_TEMPLATE_REGION, template_region

CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def test_action_yml_declares_exactly_the_inputs_the_action_reads_with_the_same_defaults() -> None:
    declared = action_metadata()["inputs"]

    assert list(declared) == [item.name for item in INPUTS]
    for item in INPUTS:
        assert str(declared[item.name].get("default", "")) == item.default, item.name
        assert declared[item.name]["description"].strip()


def test_every_output_is_described() -> None:
    outputs = action_metadata()["outputs"]

    assert all(spec["description"].strip() for spec in outputs.values())


# What the Action sets itself rather than take as an input: its outputs come from the report
# (--json), its log level from the runner's debug logging (--verbose), and publish-layer reads
# the report of the build it just ran (--report). package's own --template-format,
# --merge-template and --profile are not inputs (yet): the Action writes JSON, unmerged, and
# takes the region from aws_region or the environment.
NOT_INPUTS = {
    "build": {"--help", "--json", "--verbose"},
    "package": {
        "--help",
        "--json",
        "--verbose",
        "--template-format",
        "--merge-template",
        "--profile",
    },
    "publish-layer": {"--help", "--json", "--verbose", "--report"},
}


@pytest.mark.parametrize("command", sorted(NOT_INPUTS))
def test_every_cli_option_is_an_input(command: str) -> None:
    flags = {
        next(
            (o for o in action.option_strings if o.startswith("--")),
            action.metavar or action.dest.upper(),
        )
        for action in cli_command_actions(command)
    }
    # package takes build's options (some under other names) and its own.
    commands = ("build", command) if command == "package" else (command,)
    # check_only and publish_layer choose commands rather than set an option.
    covered = {
        item.flag_in(command)
        for item in INPUTS
        if item.command in commands and item.kind not in ("command", "followup")
    }

    assert flags - NOT_INPUTS[command] == covered


@pytest.fixture
def no_aws_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """No AWS_* variables and no AWS config files, as on a fresh runner."""
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    return dict(os.environ)


def test_the_template_region_is_aws_region_then_the_environment_then_a_default(
    no_aws_settings: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = no_aws_settings
    default = template_region("", env)
    assert default is not None and default.name == DEFAULT_TEMPLATE_REGION == "us-east-1"
    assert "no AWS region is set" in default.message

    region = template_region("", {**env, "AWS_REGION": "eu-west-1"})
    assert region is not None and region.name == "eu-west-1"
    region = template_region("ap-south-1", {**env, "AWS_REGION": "eu-west-1"})
    assert region is not None and region.name == "ap-south-1"

    # botocore finds one itself (AWS_DEFAULT_REGION, the profile's): left to it.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-north-1")
    assert template_region("", dict(os.environ)) is None
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    (tmp_path / "no-config").write_text("[profile deploy]\nregion = eu-south-1\n")
    monkeypatch.setenv("AWS_PROFILE", "deploy")
    assert template_region("", dict(os.environ)) is None


def readme_section(heading: str) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split(f"\n{heading}\n", 1)[1]
    return re.split(r"\n#+ ", section, maxsplit=1)[0]


def test_the_readme_table_documents_every_input_with_its_cli_flag() -> None:
    inputs = readme_section("### Inputs")
    rows = re.findall(r"^\| `([a-z_0-9]+)` \| ([^|]+) \|", inputs, flags=re.MULTILINE)
    documented = {name: flag.strip() for name, flag in rows}

    assert list(documented) == [item.name for item in INPUTS]  # in action.yml's order
    for item in INPUTS:
        assert f"`{item.flag}`" in documented[item.name], item.name
        if item.package_flag:
            assert f"package: `{item.package_flag}`" in documented[item.name], item.name


def test_the_readme_documents_every_output() -> None:
    outputs = readme_section("### Outputs")
    documented = re.findall(r"^\| `([a-z_0-9]+)` \|", outputs, flags=re.MULTILINE)

    assert documented == list(action_metadata()["outputs"])


def check_action_schema(path: Path) -> subprocess.CompletedProcess[str]:
    # The same validator and schema as `make lint`.
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-actions", str(path)],
        capture_output=True,
        text=True,
    )


def test_the_schema_check_accepts_action_yml() -> None:
    checked = check_action_schema(ROOT / "action.yml")

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_schema_check_rejects_a_broken_action_yml(tmp_path: Path) -> None:
    broken = (ROOT / "action.yml").read_text(encoding="utf-8")
    # A docker action must name its image, and an input's "required" is a boolean.
    broken = broken.replace("  image: Dockerfile\n", "").replace(
        "required: false", 'required: "sometimes"', 1
    )
    path = tmp_path / "action.yml"
    path.write_text(broken, encoding="utf-8")

    checked = check_action_schema(path)

    assert checked.returncode == 1
    assert "Schema validation errors were encountered" in checked.stdout
    assert "$.runs" in checked.stdout


def action_steps(workflow: Path) -> list[dict[str, Any]]:
    """The steps of ``workflow`` that run this Action (``uses: ./`` or chalicepack/chalicepack)."""
    document = YAML(typ="safe").load(workflow.read_text(encoding="utf-8"))
    return [
        step
        for job in document["jobs"].values()
        for step in job.get("steps", [])
        if str(step.get("uses", "")).split("@")[0] in ("./", "chalicepack/chalicepack")
    ]


WORKFLOWS = [
    pytest.param(path, id=path.name)
    for path in sorted(
        [*ROOT.glob("examples/workflows/*.yml"), *ROOT.glob(".github/workflows/*.yml")]
    )
]


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_workflows_use_only_declared_inputs_and_outputs(workflow: Path) -> None:
    metadata = action_metadata()
    text = workflow.read_text(encoding="utf-8")
    steps = action_steps(workflow)
    ids = {step["id"] for step in steps if "id" in step}

    for step in steps:
        assert set(step.get("with") or {}) <= set(metadata["inputs"]), step
    used = re.findall(r"steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_]+)", text)
    assert {name for step_id, name in used if step_id in ids} <= set(metadata["outputs"])
