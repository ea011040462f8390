"""The Action's inputs (chalicepack.action.inputs): the INPUT_* values the runner passes become
the CLI's options; a bad value is exit 2 naming the input and what it accepts, before anything
is built. The process-level cases run entrypoint.py with a runner-like environment."""

from __future__ import annotations

import dataclasses
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import EXAMPLE_APP
from ghrunner import StepFiles, run_entrypoint, workflow_commands
from pkgindex import PackageIndex

if sys.version_info < (3, 11):
    # On 3.11+ github-action-utils is a dependency: its absence there fails, never skips.
    pytest.skip("the Action needs Python 3.11+", allow_module_level=True)

from chalicepack.action.inputs import INPUTS, ignored_inputs, in_action_terms, parse_inputs
from chalicepack.options import BuildOptions, PackageOptions, PublishOptions
from chalicepack.report import REPORT_NAME

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
        "requirements": "apps/api/uv.lock",
        "groups": "docs\n\n  tools  ",
        "extras": "fast",
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
    assert options.requirements == tmp_path / "apps/api/uv.lock"
    assert options.groups == ("docs", "tools")
    assert options.extras == ("fast",)
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
        "requirements": "apps/api/poetry.lock",
        "groups": "docs",
        "extras": "fast\nslow",
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
            requirements=tmp_path / "apps/api/poetry.lock",
            groups=("docs",),
            extras=("fast", "slow"),
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


# --- through entrypoint.py, as the runner runs it ---------------------------------------------


@dataclass(frozen=True)
class Step:
    returncode: int
    stdout: str
    stderr: str


def run_in_workspace(tmp_path: Path, inputs: Mapping[str, str]) -> tuple[Step, StepFiles]:
    """entrypoint.py in a workspace holding the bundled example at docs-app/; its output as
    text."""
    workspace = tmp_path / "workspace"
    shutil.copytree(EXAMPLE_APP, workspace / "docs-app")
    files = StepFiles(tmp_path / "_runner_file_commands").create()
    completed = run_entrypoint(workspace, files, inputs, None)
    return Step(completed.returncode, completed.stdout.decode(), completed.stderr.decode()), files


# Bad values of inputs test_action.py does not already try; the message is the whole error.
BAD_VALUES = {
    "refresh": ("yes", "input refresh: 'yes' is not a boolean; use true or false"),
    "check_only": ("1", "input check_only: '1' is not a boolean; use true or false"),
    "without_runtime_provided": (
        "on",
        "input without_runtime_provided: 'on' is not a boolean; use true or false",
    ),
    "resolver": ("uv", "input resolver: 'uv' is not one of auto, pip"),
    "project_dir": ("", "input project_dir: must not be empty (the default is '.')"),
    "import_timeout": ("-5", "input import_timeout: '-5': use a number of seconds from 1 to 900"),
}


@pytest.mark.parametrize(
    ("name", "value", "message"), [(k, *v) for k, v in BAD_VALUES.items()], ids=BAD_VALUES.keys()
)
def test_a_bad_value_is_exit_2_naming_the_input_before_anything_is_built(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    inputs = {"project_dir": "docs-app", name: value}

    step, files = run_in_workspace(tmp_path, inputs)

    assert step.returncode == 2, step.stderr
    assert [c for c in workflow_commands(step.stdout) if c.startswith("::error")] == [
        f"::error title=Bad input::{message}"
    ]
    assert message in step.stderr
    assert files.outputs() == {}
    assert not (tmp_path / "workspace" / "docs-app" / "dist").exists()


def test_input_values_are_read_as_yaml_booleans_with_surrounding_space_dropped(
    tmp_path: Path, index: PackageIndex
) -> None:
    """What a workflow's ``with:`` block passes: ``True``, a trailing newline from a block
    scalar; each is accepted and reaches its option."""
    index.add_wheel("sortedcontainers", "2.4.0", tag="py2.py3-none-any")
    inputs = {
        "project_dir": " docs-app\n",
        "check_only": "True",
        "refresh": "TRUE\n",
        "fail_on_missing": " false ",
        "architecture": "arm64 ",
    }

    step, files = run_in_workspace(tmp_path, inputs)

    assert step.returncode == 0, step.stderr
    assert files.outputs()["architecture"] == "arm64"
    dist = tmp_path / "workspace" / "docs-app" / "dist"
    assert not list(dist.glob("*.zip"))  # check_only writes no zip
