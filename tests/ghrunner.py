"""The GitHub runner's side of a container action step, for tests: the environment it gives the
container and how it reads back what the step wrote (outputs, summary, workflow commands)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
ACTION_YML = ROOT / "action.yml"


def action_metadata() -> dict[str, Any]:
    document: dict[str, Any] = YAML(typ="safe").load(ACTION_YML.read_text(encoding="utf-8"))
    return document


@dataclass(frozen=True)
class StepFiles:
    """The per-step files the runner creates under its file-commands folder."""

    folder: Path

    @property
    def output(self) -> Path:
        return self.folder / "set_output_0f6b3c"

    @property
    def summary(self) -> Path:
        return self.folder / "step_summary_0f6b3c"

    def create(self) -> StepFiles:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.output.write_text("")
        self.summary.write_text("")
        return self

    def outputs(self) -> dict[str, str]:
        return parse_file_commands(self.output.read_text(encoding="utf-8-sig"))

    def summary_text(self) -> str:
        return self.summary.read_text(encoding="utf-8")


def step_environment(
    inputs: Mapping[str, str],
    *,
    workspace: str,
    output: str,
    summary: str,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """What the runner sets for a docker action: every declared input (its default when the
    workflow did not give it) as INPUT_<NAME>, and the GITHUB_* variables."""
    unknown = set(inputs) - set(action_metadata()["inputs"])
    assert not unknown, f"not inputs of action.yml: {unknown}"
    env = {
        f"INPUT_{name.upper()}": str(inputs.get(name, spec.get("default", "")))
        for name, spec in action_metadata()["inputs"].items()
    }
    env.update(
        {
            "GITHUB_ACTIONS": "true",
            "CI": "true",
            "GITHUB_WORKSPACE": workspace,
            "GITHUB_OUTPUT": output,
            "GITHUB_STEP_SUMMARY": summary,
        }
    )
    env.update(extra or {})
    return env


def host_environment() -> dict[str, str]:
    """This process's environment without what a runner would set for the step itself (the
    suite may itself run in GitHub Actions), and without AWS settings: a step reaches only the
    AWS a test gives it (a moto_server), never the machine's account."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("INPUT_", "GITHUB_", "RUNNER_", "AWS_"))
    }


def run_entrypoint(
    workspace: Path, files: StepFiles, inputs: Mapping[str, str], env: Mapping[str, str] | None
) -> subprocess.CompletedProcess[bytes]:
    """entrypoint.py run in ``workspace`` with the ``with:`` inputs, as the runner runs it."""
    step_env = step_environment(
        inputs,
        workspace=str(workspace),
        output=str(files.output),
        summary=str(files.summary),
        extra=env,
    )
    return subprocess.run(
        [sys.executable, str(ROOT / "entrypoint.py")],
        cwd=workspace,
        env={**host_environment(), **step_env},
        capture_output=True,
        timeout=600,
    )


def parse_file_commands(text: str) -> dict[str, str]:
    """Read a GITHUB_OUTPUT file as the runner does on Linux: ``NAME=value`` lines, and
    ``NAME<<DELIMITER`` blocks whose value ends at a line equal to the delimiter."""
    values: dict[str, str] = {}
    line, index, _ = _read_line(text, 0)
    while line is not None:
        if line:
            name, value, index = _record(text, line, index)
            values[name] = value
        line, index, _ = _read_line(text, index)
    return values


def _record(text: str, line: str, index: int) -> tuple[str, str, int]:
    equals, heredoc = line.find("="), line.find("<<")
    if equals >= 0 and (heredoc < 0 or equals < heredoc):
        name, value = line.split("=", 1)
        if not name:
            raise ValueError(f"invalid format {line!r}")
        return name, value, index
    if heredoc < 0:
        raise ValueError(f"invalid format {line!r}")
    name, delimiter = line.split("<<", 1)
    if not name or not delimiter:
        raise ValueError(f"invalid format {line!r}")
    start = end = index
    candidate, index, newline = _read_line(text, index)
    while candidate != delimiter:
        if candidate is None:
            raise ValueError(f"matching delimiter not found {delimiter!r}")
        if newline is None:
            raise ValueError("EOF marker missing new line")
        end = index - len(newline)
        candidate, index, newline = _read_line(text, index)
    return name, text[start:end] if end > start else "", index


def _read_line(text: str, index: int) -> tuple[str | None, int, str | None]:
    """The runner's ReadLine on Linux: the line at ``index``, where the next starts, its end."""
    if index >= len(text):
        return None, index, None
    newline = text.find("\n", index)
    if newline < 0:
        return text[index:], len(text), None
    return text[index:newline], newline + 1, "\n"


def workflow_commands(stdout: str) -> list[str]:
    """The workflow-command lines (``::name ...::message``) of a step's log."""
    return [line for line in stdout.splitlines() if line.startswith("::")]


def summary_table_rows(summary: str) -> list[list[str]]:
    """Every Markdown table row of a job summary, as its cells (header and rule rows too)."""
    rows = []
    for line in summary.splitlines():
        if line.startswith("|") and line.endswith("|"):
            rows.append([cell.strip() for cell in line[1:-1].split(" | ")])
    return rows
