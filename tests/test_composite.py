"""composite/action.yml, the Action for runners without Docker: the same inputs and outputs as the
container Action, and its steps run as a runner runs them (expressions filled in, bash)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from conftest import EXAMPLE_APP, ROOT
from ghrunner import StepFiles, action_metadata, host_environment, step_environment
from pkgindex import PackageIndex

if sys.version_info < (3, 11):
    # On 3.11+ github-action-utils is a dependency: its absence there fails, never skips.
    pytest.skip("the Action needs Python 3.11+", allow_module_level=True)

COMPOSITE_YML = ROOT / "composite" / "action.yml"
_EXPRESSION = re.compile(r"\$\{\{\s*([a-zA-Z0-9_.-]+)\s*\}\}")


def composite() -> dict[str, Any]:
    document: dict[str, Any] = YAML(typ="safe").load(COMPOSITE_YML.read_text(encoding="utf-8"))
    return document


def step(step_id: str) -> dict[str, Any]:
    (found,) = [s for s in composite()["runs"]["steps"] if s.get("id") == step_id]
    return found


def test_the_inputs_are_the_container_actions() -> None:
    assert composite()["inputs"] == action_metadata()["inputs"]


def test_the_outputs_are_the_container_actions_each_from_the_run_step() -> None:
    ours, theirs = composite()["outputs"], action_metadata()["outputs"]
    assert list(ours) == list(theirs)
    for name, spec in ours.items():
        assert spec["description"] == theirs[name]["description"]
        assert spec["value"] == f"${{{{ steps.chalicepack.outputs.{name} }}}}"


def test_every_input_reaches_the_entrypoint_as_the_runner_would_pass_it() -> None:
    env = step("chalicepack")["env"]
    passed = {name: value for name, value in env.items() if name.startswith("INPUT_")}
    assert passed == {
        f"INPUT_{name.upper()}": f"${{{{ inputs.{name} }}}}" for name in action_metadata()["inputs"]
    }


def evaluate(text: str, context: Mapping[str, Mapping[str, Any]]) -> str:
    """Fill in ``${{ scope.name }}`` and ``${{ steps.id.outputs.name }}`` as the runner does."""

    def value(match: re.Match[str]) -> str:
        found: Any = context
        for key in match[1].split("."):
            found = found[key]
        return str(found)

    return _EXPRESSION.sub(value, text)


def run_step(
    step_id: str, context: Mapping[str, Mapping[str, Any]], env: Mapping[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    spec = step(step_id)
    assert spec["shell"] == "bash"
    step_env = {name: evaluate(str(value), context) for name, value in spec["env"].items()}
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", spec["run"]],
        cwd=cwd,
        env={**env, **step_env},
        capture_output=True,
        text=True,
        timeout=900,
    )


def runner_context(inputs: Mapping[str, str], tmp_path: Path, python: str) -> dict[str, Any]:
    defaults = {name: spec.get("default", "") for name, spec in composite()["inputs"].items()}
    return {
        "inputs": {**defaults, **inputs},
        "github": {"action_path": str(ROOT / "composite")},
        "runner": {"temp": str(tmp_path / "runner-temp")},
        "steps": {"python": {"outputs": {"python-path": python}}, "install": {"outputs": {}}},
    }


def test_the_run_step_builds_and_sets_every_output(tmp_path: Path, index: PackageIndex) -> None:
    index.add_wheel("sortedcontainers", "2.4.0", tag="py2.py3-none-any")
    workspace = tmp_path / "workspace"
    shutil.copytree(EXAMPLE_APP, workspace / "docs-app")
    files = StepFiles(tmp_path / "_runner_file_commands").create()
    context = runner_context({"project_dir": "docs-app"}, tmp_path, sys.executable)
    context["steps"]["install"]["outputs"]["python"] = sys.executable  # this venv, installed
    # The runner's GITHUB_* for the step, and no INPUT_*: the step's env passes them.
    runner_env = step_environment(
        {}, workspace=str(workspace), output=str(files.output), summary=str(files.summary)
    )
    runner_env = {k: v for k, v in runner_env.items() if not k.startswith("INPUT_")}

    ran = run_step("chalicepack", context, {**host_environment(), **runner_env}, workspace)

    assert ran.returncode == 0, ran.stderr
    outputs = files.outputs()
    assert sorted(outputs) == sorted(composite()["outputs"])
    assert outputs["deployment_zip"] == "docs-app/dist/deployment.zip"
    assert (workspace / outputs["deployment_zip"]).is_file()
    assert "## chalicepack: docs-app (stage `dev`)" in files.summary_text()


@pytest.mark.network
def test_the_install_step_installs_this_commit_with_pip(tmp_path: Path) -> None:
    context = runner_context({}, tmp_path, sys.executable)
    output = tmp_path / "install_output"
    output.write_text("")
    (tmp_path / "runner-temp").mkdir()
    try:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-d", tmp_path, "six"],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except (subprocess.SubprocessError, OSError):
        pytest.skip("PyPI cannot be reached")

    ran = run_step(
        "install", context, {**host_environment(), "GITHUB_OUTPUT": str(output)}, tmp_path
    )

    assert ran.returncode == 0, ran.stderr
    (line,) = output.read_text().splitlines()
    python = line.removeprefix("python=")
    assert Path(python).is_relative_to(tmp_path / "runner-temp" / "chalicepack-venv")
    version = subprocess.run(
        [python, "-m", "chalicepack", "--version"], capture_output=True, text=True, check=True
    )
    from chalicepack import __version__

    assert __version__ in version.stdout + version.stderr
