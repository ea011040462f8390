"""The Action as the runner runs it: entrypoint.py as a process with INPUT_*, GITHUB_OUTPUT,
GITHUB_STEP_SUMMARY and GITHUB_WORKSPACE, against the bundled example and a real index."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import EXAMPLE_APP, ROOT
from ghrunner import StepFiles, host_environment, step_environment, summary_table_rows
from pkgindex import PackageIndex

pytest.importorskip("github_action_utils", reason="the Action needs Python 3.11+")

from chalicepack.action import Runtime, job_summary
from chalicepack.build import BuildOptions
from chalicepack.report import human_size
from chalicepack.target import host_runtime

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
        step_env = step_environment(
            inputs,
            workspace=str(workspace),
            output=str(files.output),
            summary=str(files.summary),
            extra=env,
        )
        completed = subprocess.run(
            [sys.executable, str(ROOT / "entrypoint.py")],
            cwd=workspace,
            env={**host_environment(), **step_env},
            capture_output=True,
            text=True,
            timeout=600,
        )
        return Step(completed.returncode, completed.stdout, completed.stderr, files)

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
    assert json.loads((workspace / outputs["report"]).read_text())["stage"] == "dev"
    assert outputs["runtime"] == host_runtime()
    assert outputs["architecture"] == "x86_64"
    assert set(outputs) == {
        "deployment_zip",
        "layer_zip",
        "deployment_sha256",
        "layer_sha256",
        "missing_dependencies",
        "report",
        "runtime",
        "architecture",
    }
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
        "::group ::chalicepack build: stage dev, python3.12",
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
        "vendor a build of it in `vendor/`, or pin a release with a wheel for the target",
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
    assert step.outputs["report"] == "docs-app/dist/build-report.json"
    assert (workspace / "docs-app/dist/build-report.json").is_file()
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


def test_every_bad_input_is_reported_at_once(workspace: Path, run_action) -> None:
    step = run_action({"automatic_layer": "on", "check_only": "maybe"})

    assert step.returncode == 2
    assert "input automatic_layer: 'on'" in step.stderr
    assert "input check_only: 'maybe'" in step.stderr


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
        "::add-mask ::env-s3cret",
        "::add-mask ::${INDEX_TOKEN}",
        "::add-mask ::s3cr3t-t0ken",
    ]
    assert "s3cr3t-t0ken" not in step.stderr + step.stdout.split("\n", 3)[3]


@pytest.mark.skipif(os.geteuid() != 0, reason="handing files to another user needs root")
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
    dependencies = [
        {
            "name": f"package-{n:05d}-" + "x" * 150,
            "version": "1.0",
            "tag": "py3-none-any",
            "unpacked_size": n,
            "requirement": None,
            "required_by": [],
        }
        for n in range(20_000)
    ]
    report = {
        "project": str(tmp_path),
        "app_name": "big",
        "stage": "dev",
        "runtime": "python3.12",
        "architecture": "x86_64",
        "artifacts": {},
        "dependencies": dependencies,
        "missing_dependencies": [],
    }

    summary = job_summary(report, Runtime("python3.12", "the `runtime` input"), tmp_path,
                          BuildOptions(project_dir=tmp_path, check_only=True))  # fmt: skip

    assert len(summary.encode()) < 1024 * 1024
    assert "### Dependencies (20000)" in summary
    assert "…and 19700 more in the build report." in summary
