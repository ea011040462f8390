"""action.yml, the Action's input table, the CLI and the README agree; the schema check that
``make lint`` runs on action.yml rejects a broken one."""

from __future__ import annotations

import dataclasses
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
    ignored_inputs,
    in_action_terms,
    parse_inputs,
)
from chalicepack.action.run import DEFAULT_TEMPLATE_REGION, template_region
from chalicepack.deploy.templates import PackageOptions
from chalicepack.options import PublishOptions
from chalicepack.package.pipeline import BuildOptions
from chalicepack.report import REPORT_NAME

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


DEFAULTS = {item.name: item.default for item in INPUTS}


def test_every_build_input_reaches_its_cli_option(tmp_path: Path) -> None:
    values = {
        "project_dir": "apps/api",
        "stage": "prod",
        "automatic_layer": "false",
        "runtime": "python3.12",
        "architecture": "arm64",
        "output_dir": "out",
        "cache_dir": "cache",
        "refresh": "true",
        "resolver": "pip",
        "fail_on_missing": "true",
        "check_only": "true",
        "import_app": "false",
        "import_timeout": "5.5",
        "exclude": "*/tests\n\n  *.md  \n-leading-dash",
        "without_runtime_provided": "true",
    }
    assert set(values) == {item.name for item in INPUTS if item.command == "build"}

    invocation = parse_inputs({**DEFAULTS, **values}, tmp_path)

    options = invocation.options
    assert options.project_dir == tmp_path / "apps/api"
    assert options.stage == "prod"
    assert options.automatic_layer is False
    assert options.runtime == "python3.12"
    assert options.arch == "arm64"
    assert options.out_dir == tmp_path / "out"
    assert options.cache_dir == tmp_path / "cache"
    assert options.refresh is True
    assert options.resolver == "pip"
    assert options.strict is True
    assert options.check_only is True
    assert options.import_app is False
    assert options.import_timeout == 5.5
    # One --exclude per non-empty line, stripped; a glob starting with '-' is still a glob.
    assert options.exclude == ("*/tests", "*.md", "-leading-dash")
    assert options.without_runtime_provided is True
    assert invocation.publish is None


def test_with_a_package_format_every_build_input_reaches_the_package_options(
    tmp_path: Path,
) -> None:
    values = {
        "project_dir": "apps/api",
        "stage": "prod",
        "automatic_layer": "true",
        "runtime": "python3.12",
        "architecture": "arm64",
        "output_dir": "out",
        "cache_dir": "cache",
        "refresh": "true",
        "resolver": "pip",
        "fail_on_missing": "true",
        "import_app": "false",
        "import_timeout": "5.5",
        "exclude": "*/tests\n*.md",
        "without_runtime_provided": "true",
        "package_format": "terraform",
    }
    assert set(values) == {
        item.name for item in INPUTS if item.command == "build" and item.kind != "command"
    } | {"package_format"}

    invocation = parse_inputs({**DEFAULTS, **values}, tmp_path)

    assert invocation.args.command == "package"
    assert invocation.package == PackageOptions(
        build=BuildOptions(
            project_dir=tmp_path / "apps/api",
            stage="prod",
            automatic_layer=True,
            runtime="python3.12",
            arch="arm64",
            strict=True,
            cache_dir=tmp_path / "cache",
            import_app=False,
            import_timeout=5.5,
            refresh=True,
            exclude=("*/tests", "*.md"),
            without_runtime_provided=True,
            resolver="pip",
        ),
        out_dir=tmp_path / "out",
        pkg_format="terraform",
    )
    # What the rest of the Action reads: the package's build options and OUTDIR.
    assert invocation.options == dataclasses.replace(
        invocation.package.build, out_dir=tmp_path / "out"
    )


def test_with_a_package_format_the_output_dir_defaults_as_for_a_build(tmp_path: Path) -> None:
    values = {**DEFAULTS, "runtime": "python3.12", "project_dir": "app"}

    built = parse_inputs(values, tmp_path)
    packaged = parse_inputs({**values, "package_format": "cloudformation"}, tmp_path)

    assert packaged.package is not None
    assert packaged.package.out_dir == tmp_path / "app" / "dist"
    assert packaged.package.build == dataclasses.replace(built.options, out_dir=None)
    assert packaged.package.pkg_format == "cloudformation"
    assert built.package is None


def test_publishing_after_a_package_reads_the_report_in_its_outdir(tmp_path: Path) -> None:
    values = {
        **DEFAULTS,
        "runtime": "python3.12",
        "automatic_layer": "true",
        "package_format": "cloudformation",
        "output_dir": "sam",
        "publish_layer": "true",
    }

    invocation = parse_inputs(values, tmp_path)

    assert invocation.publish == PublishOptions(report_path=tmp_path / "sam" / REPORT_NAME)


def test_every_publish_input_reaches_the_publish_layer_options(tmp_path: Path) -> None:
    values = {
        "publish_layer": "true",
        "layer_name": "shared-deps",
        "layer_s3_bucket": "my-artifacts",
        "aws_region": "eu-central-1",
    }
    assert set(values) == {item.name for item in INPUTS if item.command == "publish-layer"}

    invocation = parse_inputs(
        {**DEFAULTS, **values, "automatic_layer": "true", "output_dir": "out"}, tmp_path
    )

    assert invocation.publish == PublishOptions(
        report_path=tmp_path / "out" / REPORT_NAME,
        layer_name="shared-deps",
        s3_bucket="my-artifacts",
        region="eu-central-1",
    )


def test_the_defaults_leave_the_cli_defaults_alone(tmp_path: Path) -> None:
    invocation = parse_inputs({**DEFAULTS, "runtime": "python3.12"}, tmp_path)

    options = invocation.options
    assert options.automatic_layer is None  # config.json decides
    assert options.arch is None
    assert options.out_dir is None
    assert options.cache_dir == tmp_path / ".chalicepack-cache"
    assert (options.strict, options.check_only, options.refresh) == (False, False, False)
    assert (options.import_app, options.import_timeout) == (True, 60.0)
    assert (options.exclude, options.without_runtime_provided) == ((), False)
    assert invocation.publish is None


def test_the_publish_defaults_leave_the_publish_layer_defaults_alone(tmp_path: Path) -> None:
    values = {**DEFAULTS, "runtime": "python3.12", "publish_layer": "true"}

    publish = parse_inputs(values, tmp_path).publish

    assert publish == PublishOptions(report_path=tmp_path / "dist" / REPORT_NAME)


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


def test_an_error_naming_cli_flags_says_which_inputs_they_are() -> None:
    message = "raise the limit with --import-timeout, or pass --no-import; or --s3-bucket B"

    assert in_action_terms(message) == (
        f"{message}\n(In this Action, --import-timeout is the `import_timeout` input;"
        " --no-import is `import_app: false`; --s3-bucket is the `layer_s3_bucket` input.)"
    )
    assert in_action_terms("no flags, not even --json") == "no flags, not even --json"
    # package's names for build inputs, and its own.
    assert in_action_terms("--project-dir x has no app.py; or --pkg-format") == (
        "--project-dir x has no app.py; or --pkg-format\n(In this Action, --project-dir is the"
        " `project_dir` input; --pkg-format is the `package_format` input.)"
    )
    assert in_action_terms("drop --exclude, or --without-runtime-provided") == (
        "drop --exclude, or --without-runtime-provided\n(In this Action, --exclude is the"
        " `exclude` input; --without-runtime-provided is `without_runtime_provided: true`.)"
    )


def test_the_trimming_inputs_have_no_effect_with_check_only() -> None:
    values = {**DEFAULTS, "check_only": "true"}

    assert ignored_inputs({**values, "exclude": "*/tests"}) == [
        "input exclude has no effect: check_only writes no zip to leave anything out of"
    ]
    assert ignored_inputs({**values, "exclude": "*/tests", "without_runtime_provided": "true"}) == [
        "inputs exclude, without_runtime_provided have no effect: check_only writes no zip to"
        " leave anything out of"
    ]
    assert ignored_inputs({**DEFAULTS, "exclude": "*/tests"}) == []


def test_aws_region_is_in_effect_with_a_package_format_alone() -> None:
    values = {**DEFAULTS, "aws_region": "eu-west-1", "layer_name": "deps"}

    assert ignored_inputs({**values, "package_format": "terraform"}) == [
        "input layer_name has no effect: publish_layer is false, so no layer is published"
    ]
    assert ignored_inputs(values) == [
        "inputs layer_name, aws_region have no effect: publish_layer is false, so no layer is"
        " published"
    ]


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
