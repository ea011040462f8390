"""action.yml, the Action's input table, the CLI and the README agree; the schema check that
``make lint`` runs on action.yml rejects a broken one."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from ghrunner import action_metadata

pytest.importorskip("github_action_utils", reason="the Action needs Python 3.11+")

from chalicepack.action import INPUTS, parse_inputs

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


def test_every_input_reaches_its_cli_option(tmp_path: Path) -> None:
    values = {
        "project_dir": "apps/api",
        "stage": "prod",
        "automatic_layer": "false",
        "runtime": "python3.12",
        "architecture": "arm64",
        "output_dir": "out",
        "cache_dir": "cache",
        "fail_on_missing": "true",
        "check_only": "true",
    }
    assert set(values) == {item.name for item in INPUTS}

    invocation = parse_inputs(values, tmp_path)

    options = invocation.options
    assert options.project_dir == tmp_path / "apps/api"
    assert options.stage == "prod"
    assert options.automatic_layer is False
    assert options.runtime == "python3.12"
    assert options.arch == "arm64"
    assert options.out_dir == tmp_path / "out"
    assert options.cache_dir == tmp_path / "cache"
    assert options.strict is True
    assert options.check_only is True


def test_the_defaults_leave_the_cli_defaults_alone(tmp_path: Path) -> None:
    values = {item.name: item.default for item in INPUTS}

    options = parse_inputs({**values, "runtime": "python3.12"}, tmp_path).options

    assert options.automatic_layer is None  # config.json decides
    assert options.arch is None
    assert options.out_dir is None
    assert options.cache_dir == tmp_path / ".chalicepack-cache"
    assert (options.strict, options.check_only) == (False, False)


def readme_section(heading: str) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split(f"\n{heading}\n", 1)[1]
    return re.split(r"\n#+ ", section, maxsplit=1)[0]


def test_the_readme_table_documents_every_input_with_its_cli_flag() -> None:
    inputs = readme_section("### Inputs")
    rows = re.findall(r"^\| `([a-z_]+)` \| ([^|]+) \|", inputs, flags=re.MULTILINE)
    documented = {name: flag.strip() for name, flag in rows}

    assert set(documented) == {item.name for item in INPUTS}
    for item in INPUTS:
        assert f"`{item.flag}`" in documented[item.name], item.name


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
