"""The Action as the runner runs it: entrypoint.py as a process with INPUT_*, GITHUB_OUTPUT,
GITHUB_STEP_SUMMARY and GITHUB_WORKSPACE, against the bundled example and a real index."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from conftest import EXAMPLE_APP
from ghrunner import (
    StepFiles,
    action_metadata,
    run_entrypoint,
    summary_table_rows,
)
from motoserver import ACCOUNT, REGION, MotoServer, aws_environment
from pkgindex import PackageIndex
from reportschema import assert_valid_report
from test_exclude import publish_aws_sdk

if sys.version_info < (3, 11):
    # On 3.11+ github-action-utils is a dependency: its absence there fails, never skips.
    pytest.skip("the Action needs Python 3.11+", allow_module_level=True)

from chalicepack.action.inputs import Runtime
from chalicepack.action.outputs import job_summary
from chalicepack.deps.buildrecord import SourceBuild
from chalicepack.inputs.target import host_runtime
from chalicepack.options import BuildOptions
from chalicepack.report import BuildReport, Dependency, human_size

MISSING_MESSAGE = (
    "macosonly==1.0: {reason}. It is not in the package;"
    " vendor a build of it in vendor/, or pin a release that has a wheel for the target."
)


@dataclass
class Step:
    returncode: int
    stdout: str
    stderr: str
    files: StepFiles

    @property
    def commands(self) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith("::")]

    @property
    def outputs(self) -> dict[str, str]:
        return self.files.outputs()

    @property
    def summary(self) -> str:
        return self.files.summary_text()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A checkout holding the bundled example at docs-app/, as GITHUB_WORKSPACE."""
    root = tmp_path / "workspace"
    shutil.copytree(EXAMPLE_APP, root / "docs-app")
    return root


@pytest.fixture
def run_action(tmp_path: Path, workspace: Path):
    """Run entrypoint.py in ``workspace`` with the given ``with:`` inputs, as the runner does."""

    def run(inputs: Mapping[str, str], env: Mapping[str, str] | None = None) -> Step:
        files = StepFiles(tmp_path / "_runner_file_commands").create()
        completed = run_entrypoint(workspace, files, inputs, env)
        stdout, stderr = completed.stdout.decode(), completed.stderr.decode()
        return Step(completed.returncode, stdout, stderr, files)

    return run


def publish_sortedcontainers(index: PackageIndex) -> None:
    index.add_wheel("sortedcontainers", "2.4.0", tag="py2.py3-none-any")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("automatic_layer", ["true", "false"])
def test_a_build_sets_every_output_relative_to_the_workspace(
    automatic_layer: str, index: PackageIndex, workspace: Path, run_action
) -> None:
    publish_sortedcontainers(index)

    step = run_action({"project_dir": "docs-app", "automatic_layer": automatic_layer})

    assert step.returncode == 0, step.stderr
    outputs = step.outputs
    assert outputs["deployment_zip"] == "docs-app/dist/deployment.zip"
    assert outputs["deployment_sha256"] == sha256(workspace / "docs-app/dist/deployment.zip")
    if automatic_layer == "true":
        assert outputs["layer_zip"] == "docs-app/dist/layer-deployment.zip"
        assert outputs["layer_sha256"] == sha256(workspace / outputs["layer_zip"])
    else:
        assert outputs["layer_zip"] == ""
        assert outputs["layer_sha256"] == ""
    assert outputs["missing_dependencies"] == "[]"
    assert outputs["report"] == "docs-app/dist/build-report.json"
    assert assert_valid_report(workspace / outputs["report"])["stage"] == "dev"
    assert outputs["runtime"] == host_runtime()
    assert outputs["architecture"] == "x86_64"
    # The docs example's one route: the API handler.
    assert json.loads(outputs["functions"]) == [
        {"name": "api_handler", "handler": "app.app", "kind": "api"}
    ]
    # Without publish_layer the layer outputs are set, and empty.
    assert (outputs["layer_arn"], outputs["layer_version"], outputs["layer_published"]) == (
        "",
        "",
        "",
    )
    # Every output action.yml declares is set, and nothing else.
    assert sorted(outputs) == sorted(action_metadata()["outputs"])
    # The cache defaults to a folder inside the workspace, for an actions/cache step.
    assert (workspace / ".chalicepack-cache" / "wheels").is_dir()


def test_the_job_summary_shows_artifacts_against_lambda_limits_and_the_dependency_table(
    index: PackageIndex, workspace: Path, run_action
) -> None:
    publish_sortedcontainers(index)

    step = run_action({"project_dir": "docs-app", "automatic_layer": "true"})

    assert step.returncode == 0, step.stderr
    report = json.loads((workspace / step.outputs["report"]).read_text())
    deployment, layer = report["artifacts"]["deployment"], report["artifacts"]["layer"]
    rows = summary_table_rows(step.summary)
    assert ["`docs-app/dist/deployment.zip`", *_sizes(deployment)] in rows
    assert ["`docs-app/dist/layer-deployment.zip`", *_sizes(layer)] in rows
    (dependency,) = report["dependencies"]
    assert [
        "sortedcontainers",
        "2.4.0",
        "`py2.py3-none-any`",
        _human(dependency["unpacked_size"]),
    ] in rows
    assert "50 MiB zipped for a direct upload; 250 MiB unzipped" in step.summary
    assert "within the limit" in step.summary
    assert "## chalicepack: docs-app (stage `dev`)" in step.summary
    # No .python-version: the summary says where the runtime came from and to pin it.
    assert "the action image's Python" in step.summary
    assert "pin it with the `runtime` input" in step.summary
    assert "Left out" not in step.summary  # no exclude, no without_runtime_provided


def _sizes(artifact: dict) -> list[str]:
    return [
        _human(artifact["size"]),
        _human(artifact["unzipped_size"]),
        str(artifact["files"]),
        f"`{artifact['sha256']}`",
    ]


def _human(size: int) -> str:
    return human_size(size)


def test_the_build_log_is_folded_in_a_group(index: PackageIndex, run_action) -> None:
    publish_sortedcontainers(index)

    step = run_action({"project_dir": "docs-app", "runtime": "python3.12"})

    assert step.returncode == 0, step.stderr
    assert step.commands[:2] == [
        "::group::chalicepack build: stage dev, python3.12",
        "::endgroup::",
    ]


def a_project_missing_macosonly(workspace: Path, requirements: str) -> None:
    project = workspace / "docs-app"
    (project / "requirements.txt").write_text(requirements)
    (project / ".python-version").write_text("3.11.9\n")


def missing_annotation(level: str, file: str, line: int, reason: str, via: str = "") -> str:
    message = MISSING_MESSAGE.format(reason=reason)
    if via:
        message = message.replace("macosonly==1.0:", f"macosonly==1.0 {via}:", 1)
    return f"::{level} title=Missing dependency,file={file},line={line}::{message}"


def test_a_missing_dependency_warns_at_its_requirements_line_and_the_build_succeeds(
    index: PackageIndex, workspace: Path, run_action
) -> None:
    publish_sortedcontainers(index)
    index.add_wheel("macosonly", "1.0", tag="cp311-cp311-macosx_11_0_arm64")
    a_project_missing_macosonly(
        workspace, "sortedcontainers==2.4.0\n# needs a Mac\nmacosonly==1.0\n"
    )

    step = run_action({"project_dir": "docs-app"})

    assert step.returncode == 0, step.stderr
    report = json.loads((workspace / "docs-app/dist/build-report.json").read_text())
    (missing,) = report["missing_dependencies"]
    assert missing_annotation("warning", "docs-app/requirements.txt", 3, missing["reason"]) in (
        step.commands
    )
    assert "Could not install dependencies:\nmacosonly==1.0" in step.stderr
    assert json.loads(step.outputs["missing_dependencies"]) == [
        {
            "name": "macosonly",
            "version": "1.0",
            "reason": missing["reason"],
            "file": "docs-app/requirements.txt",
            "line": 3,
            "required_by": [],
        }
    ]
    assert step.outputs["deployment_zip"] == "docs-app/dist/deployment.zip"
    assert step.outputs["runtime"] == "python3.11"
    assert [
        "macosonly==1.0",
        "`docs-app/requirements.txt:3`",
        missing["reason"],
        missing["fix"],
    ] in summary_table_rows(step.summary)
    assert "the runtime comes from `docs-app/.python-version`" in step.summary


def test_fail_on_missing_fails_the_step_with_errors_at_the_line_and_no_zip(
    index: PackageIndex, workspace: Path, run_action
) -> None:
    publish_sortedcontainers(index)
    index.add_wheel("macosonly", "1.0", tag="cp311-cp311-macosx_11_0_arm64")
    a_project_missing_macosonly(
        workspace, "sortedcontainers==2.4.0\n# needs a Mac\nmacosonly==1.0\n"
    )

    step = run_action({"project_dir": "docs-app", "fail_on_missing": "true"})

    assert step.returncode == 1
    report = json.loads((workspace / "docs-app/dist/build-report.json").read_text())
    (missing,) = report["missing_dependencies"]
    assert missing_annotation("error", "docs-app/requirements.txt", 3, missing["reason"]) in (
        step.commands
    )
    assert "fail_on_missing is true" in step.stderr
    assert not (workspace / "docs-app/dist/deployment.zip").exists()
    assert step.outputs["deployment_zip"] == ""
    assert json.loads(step.outputs["missing_dependencies"])[0]["line"] == 3
    assert "No zip was written (missing dependencies, `fail_on_missing`)" in step.summary


def test_a_missing_dependency_from_an_included_file_is_annotated_in_that_file(
    index: PackageIndex, workspace: Path, run_action
) -> None:
    index.add_wheel("macosonly", "1.0", tag="cp311-cp311-macosx_11_0_arm64")
    a_project_missing_macosonly(workspace, "-r requirements/base.txt\n")
    base = workspace / "docs-app/requirements/base.txt"
    base.parent.mkdir()
    base.write_text("# the base set\n\nmacosonly==1.0\n")

    step = run_action({"project_dir": "docs-app"})

    assert step.returncode == 0, step.stderr
    reason = json.loads(step.outputs["missing_dependencies"])[0]["reason"]
    assert missing_annotation("warning", "docs-app/requirements/base.txt", 3, reason) in (
        step.commands
    )


def test_a_missing_dependency_of_a_dependency_is_annotated_at_the_line_that_pulls_it_in(
    index: PackageIndex, workspace: Path, run_action
) -> None:
    index.add_wheel("macosonly", "1.0", tag="cp311-cp311-macosx_11_0_arm64")
    index.add_wheel("needsmac", "2.0", requires=["macosonly==1.0"])
    a_project_missing_macosonly(workspace, "# first line\nneedsmac==2.0\n")

    step = run_action({"project_dir": "docs-app"})

    assert step.returncode == 0, step.stderr
    (missing,) = json.loads(step.outputs["missing_dependencies"])
    assert (missing["file"], missing["line"]) == ("docs-app/requirements.txt", 2)
    assert missing["required_by"] == ["needsmac"]
    expected = missing_annotation(
        "warning", "docs-app/requirements.txt", 2, missing["reason"], via="(required by needsmac)"
    )
    assert expected in step.commands


def test_check_only_reports_without_writing_zips(
    index: PackageIndex, workspace: Path, run_action
) -> None:
    index.add_wheel("macosonly", "1.0", tag="cp311-cp311-macosx_11_0_arm64")
    a_project_missing_macosonly(workspace, "macosonly==1.0\n")

    step = run_action({"project_dir": "docs-app", "check_only": "true"})

    assert step.returncode == 0, step.stderr
    assert not (workspace / "docs-app/dist/deployment.zip").exists()
    assert step.outputs["deployment_zip"] == ""
    assert step.outputs["report"] == "docs-app/dist/check-report.json"
    assert (workspace / "docs-app/dist/check-report.json").is_file()
    assert not (workspace / "docs-app/dist/build-report.json").exists()
    assert json.loads(step.outputs["missing_dependencies"])[0]["name"] == "macosonly"
    assert any(c.startswith("::warning title=Missing dependency,") for c in step.commands)
    assert "No zip was written (`check_only`)" in step.summary


def test_check_only_with_fail_on_missing_fails(
    index: PackageIndex, workspace: Path, run_action
) -> None:
    index.add_wheel("macosonly", "1.0", tag="cp311-cp311-macosx_11_0_arm64")
    a_project_missing_macosonly(workspace, "macosonly==1.0\n")

    step = run_action({"project_dir": "docs-app", "check_only": "true", "fail_on_missing": "true"})

    assert step.returncode == 1
    assert any(c.startswith("::error title=Missing dependency,") for c in step.commands)


def test_output_dir_is_relative_to_the_workspace(
    index: PackageIndex, workspace: Path, run_action
) -> None:
    publish_sortedcontainers(index)

    step = run_action({"project_dir": "docs-app", "output_dir": "build/lambda"})

    assert step.returncode == 0, step.stderr
    assert step.outputs["deployment_zip"] == "build/lambda/deployment.zip"
    assert (workspace / "build/lambda/deployment.zip").is_file()


def test_an_unknown_stage_is_bad_input_annotated_on_config_json(
    workspace: Path, run_action
) -> None:
    step = run_action({"project_dir": "docs-app", "stage": "prod"})

    assert step.returncode == 2
    (error,) = [c for c in step.commands if c.startswith("::error")]
    assert error.startswith("::error title=Bad input,file=docs-app/.chalice/config.json::")
    assert "prod" in error
    assert "dev" in error
    assert step.outputs == {}
    assert not (workspace / "docs-app/dist").exists()


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            {"automatic_layer": "yes"},
            "input automatic_layer: 'yes' is not true, false or empty"
            " (empty takes it from .chalice/config.json)",
        ),
        (
            {"fail_on_missing": "1"},
            "input fail_on_missing: '1' is not a boolean; use true or false",
        ),
        ({"architecture": "x86"}, "input architecture: 'x86' is not one of x86_64, arm64"),
        (
            {"runtime": "python3.9"},
            "input runtime: 'python3.9' is not one of python3.10, python3.11, python3.12,"
            " python3.13, python3.14",
        ),
        ({"stage": ""}, "input stage: must not be empty (the default is 'dev')"),
        ({"import_app": "no"}, "input import_app: 'no' is not a boolean; use true or false"),
        # The CLI's own --import-timeout check, named after the input.
        (
            {"import_timeout": "0"},
            "input import_timeout: '0': use a number of seconds from 1 to 900",
        ),
        ({"import_timeout": "soon"}, "input import_timeout: 'soon' is not a number of seconds"),
        (
            {"publish_layer": "yes"},
            "input publish_layer: 'yes' is not a boolean; use true or false",
        ),
        (
            {"publish_layer": "true", "automatic_layer": "true", "layer_name": "my layer"},
            "input layer_name: 'my layer' is not a layer name Lambda accepts;"
            " use 1 to 64 letters, digits, '-' or '_'",
        ),
        (
            {"publish_layer": "true", "automatic_layer": "true", "aws_region": "us east 1"},
            "input aws_region: 'us east 1' is not an AWS region name (like us-east-1)",
        ),
        (
            {"publish_layer": "true", "automatic_layer": "true", "layer_s3_bucket": "s3://b"},
            "input layer_s3_bucket: 's3://b' is not an S3 bucket name",
        ),
    ],
)
def test_a_bad_input_value_names_the_input_and_what_it_accepts(
    inputs: dict[str, str], message: str, workspace: Path, run_action
) -> None:
    step = run_action({"project_dir": "docs-app", **inputs})

    assert step.returncode == 2
    assert f"::error title=Bad input::{message}" in step.commands
    assert message in step.stderr
    assert step.outputs == {}


# What the Action's own process must not import before it has work for them: boto3 and
# botocore (a fifth of a second, needed only to publish a layer or find a template's region),
# chalice (its packager runs in a child process) and the engine (pipeline and its imports).
HEAVY_AT_START = {"boto3", "botocore", "s3transfer", "chalice"}
ENGINE = "chalicepack.package.pipeline"


def imported_modules(stderr: str) -> set[str]:
    """The modules a process imported, read from PYTHONPROFILEIMPORTTIME's lines on stderr."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }


def test_a_bad_input_fails_before_the_aws_sdk_chalice_or_the_engine_is_imported(
    workspace: Path, run_action
) -> None:
    step = run_action(
        {"project_dir": "docs-app", "architecture": "x86"}, {"PYTHONPROFILEIMPORTTIME": "1"}
    )

    assert step.returncode == 2
    imported = imported_modules(step.stderr)
    assert "chalicepack.action.run" in imported
    assert {name for name in imported if name.split(".")[0] in HEAVY_AT_START} == set()
    assert ENGINE not in imported


PROJECT_FIX = (
    "set project_dir to the folder that holds app.py and .chalice/, relative to the workspace root"
)
RUNNER_PATH = "(${{ github.workspace }} is the runner's path, not the container's)"


def inside_only(example: str) -> str:
    return (
        "it must be inside the workspace: the runner mounts only the workspace into the Action's"
        " container, so anything written elsewhere is lost when the step ends; use a path"
        f" relative to the workspace root, like {example}"
    )


OUT_INSIDE = inside_only("build/lambda")
CACHE_INSIDE = inside_only(".chalicepack-cache (the default)")


def no_setup(workspace: Path, outside: Path) -> None:
    pass


def build_links_outside(workspace: Path, outside: Path) -> None:
    (workspace / "build").symlink_to(outside)


def the_cache_links_outside(workspace: Path, outside: Path) -> None:
    (workspace / ".chalicepack-cache").symlink_to(outside / "cache")


def a_symlink_loop(workspace: Path, outside: Path) -> None:
    (workspace / "loop").symlink_to(workspace / "loop")


def an_app_outside(workspace: Path, outside: Path) -> None:
    """A whole Chalice project at {outside}, outside the workspace."""
    shutil.copytree(EXAMPLE_APP, outside)


def an_app_linked_outside(workspace: Path, outside: Path) -> None:
    an_app_outside(workspace, outside)
    (workspace / "linked-app").symlink_to(outside)


PROJECT_INSIDE = (
    "the project must be inside the workspace: the runner mounts only the workspace into the"
    " Action's container, so a folder elsewhere is not your checkout, and what is written there"
    f" (PROJECT_DIR/dist by default) is lost when the step ends; {PROJECT_FIX}"
)


def files_outside(tmp_path: Path, workspace: Path) -> set[Path]:
    """Everything under tmp_path but the workspace and the runner's file-commands folder."""
    skipped = (workspace, tmp_path / "_runner_file_commands")
    return {
        path
        for path in tmp_path.rglob("*")
        if not any(path == root or path.is_relative_to(root) for root in skipped)
    }


# {outside} is tmp_path/elsewhere (it does not exist unless the setup makes it), {workspace}
# the workspace, both resolved.
@pytest.mark.parametrize(
    ("inputs", "setup", "message"),
    [
        (
            {"project_dir": "no-such-app"},
            no_setup,
            f"input project_dir: no-such-app does not exist in the workspace; {PROJECT_FIX}"
            " (and check it out with actions/checkout before this step)",
        ),
        (
            {"project_dir": "docs-app/./app.py"},
            no_setup,
            f"input project_dir: docs-app/app.py is not a directory; {PROJECT_FIX}",
        ),
        (
            # ${{ github.workspace }} in a container Action: the runner's path.
            {"project_dir": "{outside}/docs-app"},
            no_setup,
            "input project_dir: {outside}/docs-app does not exist in the Action's container,"
            f" whose workspace is {{workspace}} {{runner_path}}; {PROJECT_FIX} (and check it out"
            " with actions/checkout before this step)",
        ),
        (
            {"project_dir": "../elsewhere"},
            an_app_outside,
            "input project_dir: ../elsewhere resolves to {outside}, outside the workspace;"
            f" {PROJECT_INSIDE}",
        ),
        (
            {"project_dir": "{outside}"},
            an_app_outside,
            f"input project_dir: {{outside}} is outside the workspace {{runner_path}};"
            f" {PROJECT_INSIDE}",
        ),
        (
            {"project_dir": "linked-app"},
            an_app_linked_outside,
            "input project_dir: linked-app leads through a symlink to {outside}, outside the"
            f" workspace; {PROJECT_INSIDE}",
        ),
        (
            {"project_dir": "../elsewhere/app.py"},  # outside first, then not a folder
            an_app_outside,
            "input project_dir: ../elsewhere/app.py resolves to {outside}/app.py, outside the"
            f" workspace; {PROJECT_INSIDE}",
        ),
        (
            {"output_dir": "{outside}/out"},
            no_setup,
            f"input output_dir: {{outside}}/out is outside the workspace {{runner_path}};"
            f" {OUT_INSIDE}",
        ),
        (
            {"output_dir": "../elsewhere/out"},
            no_setup,
            "input output_dir: ../elsewhere/out resolves to {outside}/out, outside the"
            f" workspace; {OUT_INSIDE}",
        ),
        (
            {"output_dir": "docs-app/../../elsewhere"},
            no_setup,
            "input output_dir: docs-app/../../elsewhere resolves to {outside}, outside the"
            f" workspace; {OUT_INSIDE}",
        ),
        (
            {"output_dir": "build/lambda"},
            build_links_outside,
            "input output_dir: build/lambda leads through a symlink to {outside}/lambda, outside"
            f" the workspace; {OUT_INSIDE}",
        ),
        (
            {"output_dir": "loop/out"},
            a_symlink_loop,
            f"input output_dir: loop/out goes through a symlink loop; {OUT_INSIDE}",
        ),
        (
            {"cache_dir": "{outside}/cache"},
            no_setup,
            f"input cache_dir: {{outside}}/cache is outside the workspace {{runner_path}};"
            f" {CACHE_INSIDE}",
        ),
        (
            {"cache_dir": "../../cache"},
            no_setup,
            "input cache_dir: ../../cache resolves to {tmp_parent}/cache, outside the workspace;"
            f" {CACHE_INSIDE}",
        ),
        (
            {},  # the default cache_dir, a symlink out of the workspace
            the_cache_links_outside,
            "input cache_dir: .chalicepack-cache leads through a symlink to {outside}/cache,"
            f" outside the workspace; {CACHE_INSIDE}",
        ),
    ],
)
def test_a_bad_path_input_names_the_input_and_writes_nothing_anywhere(
    inputs: dict[str, str],
    setup,
    message: str,
    tmp_path: Path,
    workspace: Path,
    run_action,
) -> None:
    places = {
        "outside": str(tmp_path.resolve() / "elsewhere"),
        "workspace": str(workspace.resolve()),
        "tmp_parent": str(tmp_path.resolve().parent),
        "runner_path": RUNNER_PATH,
    }
    setup(workspace, Path(places["outside"]))
    in_workspace = sorted(workspace.rglob("*"))
    outside = files_outside(tmp_path, workspace)

    step = run_action(
        {"project_dir": "docs-app", **{k: v.format(**places) for k, v in inputs.items()}}
    )

    assert step.returncode == 2
    expected = message.format(**places)
    assert [c for c in step.commands if c.startswith("::error")] == [
        f"::error title=Bad input::{expected}"
    ]
    assert expected in step.stderr
    assert step.outputs == {}
    assert step.summary == ""
    assert sorted(workspace.rglob("*")) == in_workspace  # no dist/, no cache
    assert files_outside(tmp_path, workspace) == outside  # nothing made outside either
    assert not (tmp_path.parent / "cache").exists()


def names_in(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


@pytest.mark.parametrize("package_format", ["", "cloudformation"])
def test_exclude_and_without_runtime_provided_trim_the_zip_and_the_summary_gives_the_bytes_saved(
    package_format: str, index: PackageIndex, workspace: Path, tmp_path: Path, run_action
) -> None:
    publish_aws_sdk(index)
    index.add_wheel(
        "bulky",
        "1.0",
        files={
            "bulky/__init__.py": "",
            "bulky/tests/test_bulky.py": "def test(): pass\n",
            "bulky/docs/guide.md": "# guide\n",
        },
    )
    project = workspace / "docs-app"
    (project / "requirements.txt").write_text("bulky\nboto3\n")
    (project / "chalicelib" / "NOTES.md").write_text("app files always ship\n")

    step = run_action(
        {
            "project_dir": "docs-app",
            "package_format": package_format,
            # As a YAML block scalar gives it: one glob a line, a blank line and a newline.
            "exclude": "*/tests\n\n*.md\n",
            "without_runtime_provided": "true",
        },
        env=no_aws_config(tmp_path),
    )

    assert step.returncode == 0, step.stderr
    shipped = names_in(workspace / step.outputs["deployment_zip"])
    assert "bulky/__init__.py" in shipped
    assert "chalicelib/NOTES.md" in shipped  # app files always ship
    assert not [name for name in shipped if "/tests/" in name or name.endswith("guide.md")]
    assert not [name for name in shipped if name.startswith(("boto3", "botocore", "s3transfer"))]
    report = json.loads((workspace / step.outputs["report"]).read_text())
    left_out = report["left_out"]
    assert sorted(left_out["excluded_files"]) == [
        "bulky/docs/guide.md",
        "bulky/tests/test_bulky.py",
    ]
    assert sorted(entry["name"] for entry in left_out["runtime_provided"]) == [
        "boto3", "botocore", "jmespath", "python-dateutil", "s3transfer", "six", "urllib3",
    ]  # fmt: skip
    assert "boto3" not in [entry["name"] for entry in report["dependencies"]]
    saved = left_out["bytes_saved"]
    assert saved > 0
    assert (
        f"Left out: {', '.join(entry['name'] for entry in left_out['runtime_provided'])}"
        " (Lambda's runtime provides them, `without_runtime_provided`) and 2 files matching"
        f" `exclude`; {human_size(saved)} ({saved:,} bytes) unzipped saved."
    ) in step.summary


def test_every_bad_input_is_reported_at_once(tmp_path: Path, workspace: Path, run_action) -> None:
    out = tmp_path.resolve() / "out"
    step = run_action(
        {
            "automatic_layer": "on",
            "check_only": "maybe",
            "project_dir": "no-such-app",
            "output_dir": str(out),
            "cache_dir": "..",
        }
    )

    assert step.returncode == 2
    (error,) = [c for c in step.commands if c.startswith("::error")]
    assert error.startswith("::error title=Bad input::input project_dir: no-such-app does not")
    assert "input automatic_layer: 'on'" in step.stderr
    assert "input check_only: 'maybe'" in step.stderr
    assert "input project_dir: no-such-app does not exist in the workspace" in step.stderr
    assert f"input output_dir: {out} is outside the workspace" in step.stderr
    assert f"input cache_dir: .. resolves to {tmp_path.resolve()}, outside" in step.stderr
    assert not out.exists()


def test_a_project_without_app_py_is_bad_input(workspace: Path, run_action) -> None:
    (workspace / "docs-app" / "app.py").unlink()

    step = run_action({"project_dir": "docs-app"})

    assert step.returncode == 2
    assert any(c.startswith("::error title=Bad input::") and "app.py" in c for c in step.commands)


def test_an_unusable_python_version_file_is_annotated(workspace: Path, run_action) -> None:
    (workspace / ".python-version").write_text("3.9.18\n")

    step = run_action({"project_dir": "docs-app"})

    assert step.returncode == 2
    (error,) = [c for c in step.commands if c.startswith("::error")]
    assert error.startswith("::error title=Bad input,file=.python-version,line=1::")
    assert "'3.9.18' is not a Lambda Python runtime" in error


def test_the_python_version_file_at_the_workspace_root_applies(
    index: PackageIndex, workspace: Path, run_action
) -> None:
    publish_sortedcontainers(index)
    (workspace / ".python-version").write_text("3.12\n")

    step = run_action({"project_dir": "docs-app"})

    assert step.returncode == 0, step.stderr
    assert step.outputs["runtime"] == "python3.12"
    assert "the runtime comes from `.python-version`" in step.summary


def test_the_runtime_input_wins_over_python_version(
    index: PackageIndex, workspace: Path, run_action
) -> None:
    publish_sortedcontainers(index)
    (workspace / "docs-app" / ".python-version").write_text("3.12\n")

    step = run_action({"project_dir": "docs-app", "runtime": "python3.13"})

    assert step.returncode == 0, step.stderr
    assert step.outputs["runtime"] == "python3.13"
    assert "the runtime comes from the `runtime` input" in step.summary


def test_index_passwords_are_masked_before_anything_is_logged(
    index: PackageIndex, workspace: Path, run_action
) -> None:
    publish_sortedcontainers(index)
    # pip expands ${NAME} in requirements files: the variable's value is the secret.
    private = index.url.replace("http://", "http://deploy:${INDEX_TOKEN}@")
    (workspace / "docs-app" / "requirements.txt").write_text(
        f"--extra-index-url {private}\nsortedcontainers==2.4.0\n"
    )

    step = run_action(
        {"project_dir": "docs-app"},
        env={
            "PIP_INDEX_URL": index.url.replace("http://", "http://ci:env-s3cret@"),
            "INDEX_TOKEN": "s3cr3t-t0ken",
        },
    )

    assert step.returncode == 0, step.stderr
    assert step.commands[:3] == [
        "::add-mask::env-s3cret",
        "::add-mask::${INDEX_TOKEN}",
        "::add-mask::s3cr3t-t0ken",
    ]
    assert "s3cr3t-t0ken" not in step.stderr + step.stdout.split("\n", 3)[3]


def test_what_the_action_writes_is_given_to_the_workspace_owner(
    index: PackageIndex, workspace: Path, run_action
) -> None:
    publish_sortedcontainers(index)
    runner_uid, runner_gid = 1001, 127  # the GitHub runner user's ids
    for path in [workspace, *workspace.rglob("*")]:
        os.lchown(path, runner_uid, runner_gid)

    step = run_action({"project_dir": "docs-app", "output_dir": "build/lambda"})

    assert step.returncode == 0, step.stderr
    written = [
        workspace / "build",
        *(workspace / "build").rglob("*"),
        *(workspace / ".chalicepack-cache").rglob("*"),
    ]
    assert {(p.lstat().st_uid, p.lstat().st_gid) for p in written} == {(runner_uid, runner_gid)}


def test_a_huge_dependency_list_keeps_the_summary_under_the_runners_1_mib_limit(
    tmp_path: Path,
) -> None:
    dependencies = tuple(
        Dependency(
            name=f"package-{n:05d}-" + "x" * 150,
            version="1.0",
            wheel=f"package-{n:05d}-1.0-py3-none-any.whl",
            tag="py3-none-any",
            unpacked_size=n,
            built_from_source=False,
            url="",
            requirement=None,
            required_by=(),
        )
        for n in range(20_000)
    )
    report = BuildReport(
        chalicepack_version="0",
        project=str(tmp_path),
        app_name="big",
        stage="dev",
        runtime="python3.12",
        architecture="x86_64",
        automatic_layer=False,
        chalice_runtime=None,
        artifacts={},
        dependencies=dependencies,
        vendor_files=(),
        vendor_overrides=(),
        missing_dependencies=(),
    )

    summary = job_summary(report, Runtime("python3.12", "the `runtime` input"), tmp_path,
                          BuildOptions(project_dir=tmp_path, check_only=True))  # fmt: skip

    assert len(summary.encode()) < 1024 * 1024
    assert "### Dependencies (20000)" in summary
    assert "…and 19700 more in the build report." in summary


def test_the_job_summary_lists_the_wheels_built_from_source(tmp_path: Path) -> None:
    grafted = SourceBuild(
        "linked", "1.0", "python3.12 arm64", "CPython 3.12.1 at /usr/bin/python3.12",
        "zig cc -target aarch64-linux-gnu.2.34", "manylinux_2_34_aarch64", "repaired",
        grafted=("libextra.so",),
    )  # fmt: skip
    report = BuildReport(
        chalicepack_version="0", project=str(tmp_path), app_name="app", stage="dev",
        runtime="python3.12", architecture="arm64", automatic_layer=False, chalice_runtime=None,
        artifacts={}, dependencies=(), vendor_files=(), vendor_overrides=(),
        missing_dependencies=(), source_builds=(grafted,),
    )  # fmt: skip

    summary = job_summary(report, Runtime("python3.12", "the `runtime` input"), tmp_path,
                          BuildOptions(project_dir=tmp_path, check_only=True))  # fmt: skip

    assert "### Built from source (1)" in summary
    assert [
        "linked==1.0",
        "python3.12 arm64",
        "`zig cc -target aarch64-linux-gnu.2.34`",
        "repaired: grafted libextra.so (manylinux_2_34_aarch64)",
    ] in summary_table_rows(summary)


# --- the import check -------------------------------------------------------------------------

APP_WITH_FUNCTIONS = """\
from chalice import Chalice

app = Chalice(app_name="docs-app")


@app.route("/")
def index():
    return {"hello": "world"}


@app.lambda_function(name="nightly")
def worker(event, context):
    return event
"""

APP_FAILING_AT_IMPORT = """\
from chalice import Chalice

app = Chalice(app_name="docs-app")
raise RuntimeError("the database is not configured")
"""


def an_app(workspace: Path, source: str) -> None:
    """The docs example's project with another app.py, no dependencies and no vendor/."""
    project = workspace / "docs-app"
    (project / "app.py").write_text(source)
    (project / "requirements.txt").write_text("")
    shutil.rmtree(project / "vendor")


def test_the_functions_output_lists_the_lambda_functions_chalice_would_deploy(
    workspace: Path, run_action
) -> None:
    an_app(workspace, APP_WITH_FUNCTIONS)

    step = run_action({"project_dir": "docs-app"})

    assert step.returncode == 0, step.stderr
    assert json.loads(step.outputs["functions"]) == [
        {"name": "nightly", "handler": "app.worker", "kind": "lambda_function"},
        {"name": "api_handler", "handler": "app.app", "kind": "api"},
    ]
    rows = summary_table_rows(step.summary)
    assert "### Lambda functions found (2)" in step.summary
    assert ["api_handler", "`app.app`", "api"] in rows
    assert ["nightly", "`app.worker`", "lambda_function"] in rows


def test_an_app_failing_at_import_fails_the_step_with_an_error_at_its_line(
    workspace: Path, run_action
) -> None:
    an_app(workspace, APP_FAILING_AT_IMPORT)

    step = run_action({"project_dir": "docs-app"})

    assert step.returncode == 2
    errors = [c for c in step.commands if c.startswith("::error")]
    assert errors == [
        "::error title=App import failed,file=docs-app/app.py,line=4::"
        "importing app.py failed: RuntimeError: the database is not configured"
        '%0A  app.py:4 in <module>%0A    raise RuntimeError("the database is not configured")'
    ]
    assert step.outputs == {}
    assert not (workspace / "docs-app/dist/deployment.zip").exists()


def test_import_app_false_skips_the_import_and_lists_no_functions(
    workspace: Path, run_action
) -> None:
    an_app(workspace, APP_FAILING_AT_IMPORT)

    step = run_action({"project_dir": "docs-app", "import_app": "false"})

    assert step.returncode == 0, step.stderr  # the failing import never ran
    assert json.loads(step.outputs["functions"]) == []
    assert step.outputs["deployment_zip"] == "docs-app/dist/deployment.zip"
    assert "The app was not imported (`import_app` is false), so none are listed." in (step.summary)


APP_SLOW_TO_IMPORT = """\
import time

from chalice import Chalice

app = Chalice(app_name="docs-app")
time.sleep(30)
"""


def test_import_timeout_reaches_the_import_check_and_the_message_names_the_inputs(
    workspace: Path, run_action
) -> None:
    an_app(workspace, APP_SLOW_TO_IMPORT)

    started = time.monotonic()
    step = run_action({"project_dir": "docs-app", "import_timeout": "1"})

    assert step.returncode == 2
    assert time.monotonic() - started < 20
    (error,) = [c for c in step.commands if c.startswith("::error")]
    assert error.startswith(
        "::error title=App import failed,file=docs-app/app.py,line=6::"
        "importing app.py did not finish within 1 s (the --import-timeout limit)"
    )
    # The engine's message names CLI flags; the Action says which inputs those are.
    assert error.endswith(
        "%0A(In this Action, --import-timeout is the `import_timeout` input;"
        " --no-import is `import_app: false`.)"
    )


def test_an_input_without_effect_is_a_warning(index: PackageIndex, run_action) -> None:
    publish_sortedcontainers(index)

    step = run_action({"project_dir": "docs-app", "layer_name": "deps", "aws_region": "eu-west-1"})

    assert step.returncode == 0, step.stderr
    assert (
        "::warning title=Input ignored::inputs layer_name, aws_region have no effect:"
        " publish_layer is false, so no layer is published"
    ) in step.commands


# --- publishing the layer ---------------------------------------------------------------------


@pytest.fixture
def aws(moto_server: MotoServer, tmp_path: Path) -> dict[str, str]:
    """An empty moto, and the step environment whose only AWS is it: AWS_ENDPOINT_URL, fake
    credentials and a region, as aws-actions/configure-aws-credentials would leave them."""
    moto_server.reset()
    environment = aws_environment(tmp_path / "aws", moto_server.url)
    del environment["AWS_REGION"]
    return {**environment, "AWS_DEFAULT_REGION": REGION}


def lambda_client(aws: Mapping[str, str], region: str = REGION) -> Any:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
    )
    return session.client("lambda", endpoint_url=aws["AWS_ENDPOINT_URL"])  # type: ignore[call-overload]


PUBLISH = {"project_dir": "docs-app", "automatic_layer": "true", "publish_layer": "true"}


def test_publish_layer_outputs_the_layer_arn_and_reuses_an_unchanged_layer(
    index: PackageIndex, workspace: Path, aws: dict[str, str], run_action
) -> None:
    publish_sortedcontainers(index)
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:docs-app-dev-managed-layer:1"

    first = run_action(PUBLISH, env=aws)

    assert first.returncode == 0, first.stderr
    assert first.outputs["layer_arn"] == arn
    assert (first.outputs["layer_version"], first.outputs["layer_published"]) == ("1", "true")
    assert first.outputs["layer_zip"] == "docs-app/dist/layer-deployment.zip"
    assert "Published `docs-app-dev-managed-layer` version 1." in first.summary
    assert f"`{arn}`" in first.summary
    (version,) = lambda_client(aws).list_layer_versions(LayerName="docs-app-dev-managed-layer")[
        "LayerVersions"
    ]
    assert version["CompatibleRuntimes"] == [first.outputs["runtime"]]
    assert first.outputs["layer_sha256"] in version["Description"]

    second = run_action(PUBLISH, env=aws)

    assert second.returncode == 0, second.stderr
    assert second.outputs["layer_arn"] == arn
    assert (second.outputs["layer_version"], second.outputs["layer_published"]) == ("1", "false")
    assert "already holds this zip" in second.summary
    assert (
        len(
            lambda_client(aws).list_layer_versions(LayerName="docs-app-dev-managed-layer")[
                "LayerVersions"
            ]
        )
        == 1
    )


def test_layer_name_and_aws_region_reach_the_publish(
    index: PackageIndex, aws: dict[str, str], run_action
) -> None:
    publish_sortedcontainers(index)

    step = run_action({**PUBLISH, "layer_name": "shared-deps", "aws_region": "eu-west-1"}, env=aws)

    assert step.returncode == 0, step.stderr
    assert step.outputs["layer_arn"] == f"arn:aws:lambda:eu-west-1:{ACCOUNT}:layer:shared-deps:1"
    assert lambda_client(aws, "eu-west-1").list_layer_versions(LayerName="shared-deps")[
        "LayerVersions"
    ]


def test_publishing_without_credentials_fails_the_step_after_the_build(
    index: PackageIndex, workspace: Path, aws: dict[str, str], run_action
) -> None:
    publish_sortedcontainers(index)
    del aws["AWS_ACCESS_KEY_ID"], aws["AWS_SECRET_ACCESS_KEY"]

    started = time.monotonic()
    step = run_action(PUBLISH, env=aws)

    assert step.returncode == 1
    assert time.monotonic() - started < 60
    (error,) = [c for c in step.commands if c.startswith("::error")]
    assert error.startswith("::error title=Layer not published::no AWS credentials found")
    # The build's outputs are there for an `if: failure()` step; the layer's are empty.
    assert step.outputs["deployment_zip"] == "docs-app/dist/deployment.zip"
    assert step.outputs["layer_arn"] == ""
    assert "### Lambda layer\n\nNot published: no AWS credentials found" in step.summary


def test_a_bucket_that_does_not_exist_is_bad_input_annotated_as_not_published(
    index: PackageIndex, aws: dict[str, str], run_action
) -> None:
    publish_sortedcontainers(index)

    step = run_action({**PUBLISH, "layer_s3_bucket": "no-such-bucket"}, env=aws)

    assert step.returncode == 2
    (error,) = [c for c in step.commands if c.startswith("::error")]
    assert error.startswith("::error title=Layer not published::AWS rejected s3:PutObject on")
    assert error.endswith(": NoSuchBucket (AWS said: The specified bucket does not exist)")
    assert step.outputs["layer_arn"] == ""
    assert step.outputs["deployment_zip"] == "docs-app/dist/deployment.zip"


def test_publish_layer_with_check_only_is_bad_input(workspace: Path, run_action) -> None:
    step = run_action({**PUBLISH, "check_only": "true"})

    assert step.returncode == 2
    assert (
        "::error title=Bad input::inputs check_only and publish_layer are both true: check_only"
        " writes no zips, so there is no layer to publish; publish from a build"
        " (check_only: false)"
    ) in step.commands
    assert not (workspace / "docs-app/dist").exists()


def test_publish_layer_with_the_automatic_layer_input_false_is_bad_input(
    workspace: Path, run_action
) -> None:
    step = run_action({**PUBLISH, "automatic_layer": "false"})

    assert step.returncode == 2
    assert (
        "::error title=Bad input::inputs publish_layer and automatic_layer: publish_layer is true"
        " but automatic_layer is false, so the build writes no layer zip to publish; set"
        " automatic_layer to true, or publish_layer to false"
    ) in step.commands
    assert not (workspace / "docs-app/dist").exists()


def test_publish_layer_with_automatic_layer_off_in_config_fails_before_the_build(
    workspace: Path, run_action
) -> None:
    # The docs example's config.json does not set automatic_layer.
    step = run_action({"project_dir": "docs-app", "publish_layer": "true"})

    assert step.returncode == 2
    (error,) = [c for c in step.commands if c.startswith("::error")]
    assert error == (
        "::error title=Bad input,file=docs-app/.chalice/config.json::input publish_layer is"
        " true but automatic_layer is off for stage 'dev' (docs-app/.chalice/config.json does"
        " not set it to true), so the build writes no layer zip to publish; set the"
        " automatic_layer input (or automatic_layer in docs-app/.chalice/config.json) to true,"
        " or publish_layer to false"
    )
    assert not (workspace / "docs-app/dist").exists()


def test_publish_layer_with_an_empty_layer_warns_and_leaves_the_layer_outputs_empty(
    workspace: Path, run_action
) -> None:
    an_app(workspace, APP_WITH_FUNCTIONS)  # no dependencies, no vendor/: nothing for a layer

    step = run_action(PUBLISH)  # no AWS at all: nothing may be asked of it

    assert step.returncode == 0, step.stderr
    assert (
        "::warning title=No layer to publish::publish_layer is true but the build has no layer"
        " zip: there are no dependencies or vendor files to put in it. Nothing was published;"
        " layer_arn, layer_version and layer_published are empty"
    ) in step.commands
    outputs = step.outputs
    assert (outputs["layer_zip"], outputs["layer_arn"], outputs["layer_version"]) == ("", "", "")
    assert outputs["layer_published"] == ""
    assert outputs["deployment_zip"] == "docs-app/dist/deployment.zip"
    assert "Not published: there are no dependencies or vendor files." in step.summary


# --- templates: package_format ----------------------------------------------------------------


def no_aws_config(tmp_path: Path) -> dict[str, str]:
    """A runner with no AWS settings at all (host_environment drops AWS_*), and none of this
    machine's AWS config files either."""
    return {
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }


def test_package_format_cloudformation_writes_sam_json_beside_the_zips_without_aws(
    index: PackageIndex, workspace: Path, tmp_path: Path, run_action
) -> None:
    """A pull-request check: no credentials, no region; the template still comes."""
    publish_sortedcontainers(index)

    step = run_action(
        {"project_dir": "docs-app", "automatic_layer": "true", "package_format": "cloudformation"},
        env=no_aws_config(tmp_path),
    )

    assert step.returncode == 0, step.stderr
    outputs = step.outputs
    assert outputs["template"] == "docs-app/dist/sam.json"
    assert outputs["deployment_zip"] == "docs-app/dist/deployment.zip"
    assert outputs["layer_zip"] == "docs-app/dist/layer-deployment.zip"
    assert outputs["report"] == "docs-app/dist/build-report.json"
    assert sorted(outputs) == sorted(action_metadata()["outputs"])
    out = workspace / "docs-app/dist"
    assert sorted(path.name for path in out.iterdir()) == [
        "build-report.json",
        "deployment.zip",
        "layer-deployment.zip",
        "sam.json",
        "sbom.cdx.json",
    ]
    template = json.loads((workspace / outputs["template"]).read_text())
    resources = template["Resources"]
    assert resources["APIHandler"]["Properties"]["CodeUri"] == "./deployment.zip"
    assert resources["ManagedLayer"]["Properties"]["ContentUri"] == "./layer-deployment.zip"
    assert resources["APIHandler"]["Properties"]["Runtime"] == outputs["runtime"]
    report = json.loads((workspace / outputs["report"]).read_text())
    assert report["template"] == {"path": str(out / "sam.json"), "format": "cloudformation"}
    assert report["artifacts"]["deployment"]["sha256"] == outputs["deployment_sha256"]
    assert outputs["deployment_sha256"] == sha256(out / "deployment.zip")
    assert step.commands[0].startswith("::group::chalicepack package (cloudformation): stage dev")
    assert "the template is generated for us-east-1" in step.stderr
    assert "Template: `docs-app/dist/sam.json` (cloudformation)" in step.summary


def test_package_format_terraform_writes_chalice_tf_json_and_publishes_the_layer_beside_it(
    index: PackageIndex, workspace: Path, aws: dict[str, str], run_action
) -> None:
    publish_sortedcontainers(index)
    inputs = {
        **PUBLISH,
        "package_format": "terraform",
        "output_dir": "build/tf",
        "aws_region": "eu-west-1",
    }

    step = run_action(inputs, env=aws)

    assert step.returncode == 0, step.stderr
    outputs = step.outputs
    assert outputs["template"] == "build/tf/chalice.tf.json"
    assert outputs["layer_zip"] == "build/tf/layer-deployment.zip"
    template = json.loads((workspace / outputs["template"]).read_text())
    function = template["resource"]["aws_lambda_function"]["api_handler"]
    assert function["filename"] == "${path.module}/deployment.zip"
    assert "the template's region: eu-west-1 (aws_region)" in step.stderr
    # The layer zip in OUTDIR is the one published, in aws_region.
    assert outputs["layer_arn"] == (
        f"arn:aws:lambda:eu-west-1:{ACCOUNT}:layer:docs-app-dev-managed-layer:1"
    )
    (version,) = lambda_client(aws, "eu-west-1").list_layer_versions(
        LayerName="docs-app-dev-managed-layer"
    )["LayerVersions"]
    assert outputs["layer_sha256"] in version["Description"]


def test_package_format_with_fail_on_missing_writes_no_template_but_sets_the_outputs(
    index: PackageIndex, workspace: Path, tmp_path: Path, run_action
) -> None:
    index.add_wheel("macosonly", "1.0", tag="cp311-cp311-macosx_11_0_arm64")
    a_project_missing_macosonly(workspace, "macosonly==1.0\n")

    step = run_action(
        {"project_dir": "docs-app", "package_format": "terraform", "fail_on_missing": "true"},
        env=no_aws_config(tmp_path),
    )

    assert step.returncode == 1
    assert step.outputs["template"] == ""
    assert step.outputs["deployment_zip"] == ""
    assert step.outputs["report"] == "docs-app/dist/build-report.json"
    (missing,) = json.loads(step.outputs["missing_dependencies"])
    annotation = missing_annotation("error", "docs-app/requirements.txt", 1, missing["reason"])
    assert annotation in step.commands
    assert sorted(path.name for path in (workspace / "docs-app/dist").iterdir()) == [
        "build-report.json"
    ]


@pytest.mark.parametrize("package_format", ["", "cloudformation"])
def test_refresh_resolves_again_instead_of_reusing_a_recent_resolution(
    package_format: str, index: PackageIndex, workspace: Path, tmp_path: Path, run_action
) -> None:
    publish_sortedcontainers(index)
    (workspace / "docs-app/requirements.txt").write_text("sortedcontainers\n")
    inputs = {"project_dir": "docs-app", "package_format": package_format}
    assert run_action(inputs, env=no_aws_config(tmp_path)).returncode == 0

    index.add_wheel("sortedcontainers", "2.4.1", tag="py2.py3-none-any")
    kept = run_action(inputs, env=no_aws_config(tmp_path))
    kept_report = json.loads((workspace / kept.outputs["report"]).read_text())
    refreshed = run_action({**inputs, "refresh": "true"}, env=no_aws_config(tmp_path))
    refreshed_report = json.loads((workspace / refreshed.outputs["report"]).read_text())

    assert kept.returncode == 0, kept.stderr
    assert [d["version"] for d in kept_report["dependencies"]] == ["2.4.0"]
    assert refreshed.returncode == 0, refreshed.stderr
    assert [d["version"] for d in refreshed_report["dependencies"]] == ["2.4.1"]


def test_a_bad_package_format_lists_the_allowed_values(workspace: Path, run_action) -> None:
    step = run_action({"project_dir": "docs-app", "package_format": "sam"})

    assert step.returncode == 2
    message = "input package_format: 'sam' is not one of cloudformation, terraform"
    assert f"::error title=Bad input::{message}" in step.commands
    assert step.outputs == {}
    assert not (workspace / "docs-app/dist").exists()


def test_check_only_with_a_package_format_is_bad_input_naming_both(
    workspace: Path, run_action
) -> None:
    step = run_action(
        {"project_dir": "docs-app", "check_only": "true", "package_format": "cloudformation"}
    )

    assert step.returncode == 2
    (error,) = [c for c in step.commands if c.startswith("::error")]
    assert error.startswith("::error title=Bad input::inputs check_only and package_format:")
    assert not (workspace / "docs-app/dist").exists()


def test_a_uv_project_builds_and_a_locked_c_package_with_no_wheel_is_annotated_on_its_lock_line(
    tmp_path: Path, index: PackageIndex, workspace: Path, run_action
) -> None:
    """No requirements.txt: the project's uv.lock is what ships; a C package locked with only
    its sdist, which builds here for x86_64 but not for arm64, is a warning at its entry."""
    publish_sortedcontainers(index)
    # Its C extension builds nowhere (chalicepack would build a buildable one for the target).
    index.add_sdist("cext", "1.0", c_extension=True, ext_source="#error needs libfoo\n")
    project = workspace / "docs-app"
    (project / "requirements.txt").unlink()
    (project / ".python-version").write_text("3.11\n")
    (project / "pyproject.toml").write_text(
        '[project]\nname = "docs-app"\nversion = "0"\nrequires-python = ">=3.10"\n'
        'dependencies = ["sortedcontainers==2.4.0", "cext"]\n\n[tool.uv]\npackage = false\n'
    )
    from uv import find_uv_bin

    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}
    env.update(UV_NO_CONFIG="1", UV_DEFAULT_INDEX=index.url, UV_CACHE_DIR=str(tmp_path / "uv"))
    subprocess.run([find_uv_bin(), "lock"], cwd=project, env=env, check=True, capture_output=True)
    lines = (project / "uv.lock").read_text().splitlines()
    cext_line = lines.index('name = "cext"') + 1

    step = run_action({"project_dir": "docs-app", "architecture": "arm64"})

    assert step.returncode == 0, step.stderr
    report = json.loads((workspace / "docs-app/dist/build-report.json").read_text())
    versions = {d["name"]: d["version"] for d in report["dependencies"]}
    assert versions == {"sortedcontainers": "2.4.0"}
    (missing,) = report["missing_dependencies"]
    (warning,) = [c for c in step.commands if c.startswith("::warning title=Missing dependency")]
    assert warning.startswith(
        f"::warning title=Missing dependency,file=docs-app/uv.lock,line={cext_line}::cext==1.0:"
    )
    assert missing["fix"] in warning
    assert json.loads(step.outputs["missing_dependencies"])[0]["line"] == cext_line
