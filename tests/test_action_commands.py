"""The workflow commands the Action writes, read as the bytes of its stdout: canonical on every
runner (act, Gitea's and Forgejo's runners parse ``::add-mask ::x`` as plain text and print the
secret), and index passwords never in clear anywhere the step writes."""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import EXAMPLE_APP
from ghrunner import StepFiles, run_entrypoint
from pkgindex import PackageIndex
from test_secrets import produced_texts

if sys.version_info < (3, 11):
    # On 3.11+ github-action-utils is a dependency: its absence there fails, never skips.
    pytest.skip("the Action needs Python 3.11+", allow_module_level=True)

from chalicepack.action.commands import format_command

# A command as the runner's ActionCommand.TryParseV2 and act's parser both read it: the name,
# then either "::" at once or one space and key=value properties, then "::" and the message.
CANONICAL = re.compile(rb"::[a-z-]+(?: [a-zA-Z]+=[^,:\r\n]*(?:,[a-zA-Z]+=[^,:\r\n]*)*)?::[^\r\n]*")


@dataclass(frozen=True)
class RawStep:
    returncode: int
    stdout: bytes
    stderr: bytes
    files: StepFiles

    @property
    def command_lines(self) -> list[bytes]:
        return [line for line in self.stdout.split(b"\n") if line.startswith(b"::")]


def run_raw(
    workspace: Path, files: StepFiles, inputs: Mapping[str, str], env: Mapping[str, str]
) -> RawStep:
    completed = run_entrypoint(workspace, files, inputs, env)
    return RawStep(completed.returncode, completed.stdout, completed.stderr, files)


def test_masks_and_groups_are_canonical_and_passwords_never_appear_in_clear(
    tmp_path: Path, two_private_indexes: tuple[PackageIndex, PackageIndex]
) -> None:
    in_requirements, in_env = two_private_indexes
    in_requirements.add_wheel("sortedcontainers", "2.4.0", tag="py2.py3-none-any")
    # pip reads its indexes from requirements.txt alone once it names one: PIP_EXTRA_INDEX_URL
    # is not asked, yet its password is masked all the same (a later build may use it).
    in_requirements.add_wheel("internal-lib", "3.0")
    in_env.add_wheel("internal-lib", "3.0")
    workspace = tmp_path / "workspace"
    shutil.copytree(EXAMPLE_APP, workspace / "docs-app")
    (workspace / "docs-app/requirements.txt").write_text(
        f"--index-url {in_requirements.url_with_credentials}\n"
        "sortedcontainers==2.4.0\ninternal-lib==3.0\n"
    )
    files = StepFiles(tmp_path / "_runner_file_commands").create()
    passwords = [index.auth[1] for index in (in_env, in_requirements) if index.auth]

    step = run_raw(
        workspace,
        files,
        {"project_dir": "docs-app", "automatic_layer": "true"},
        {"PIP_EXTRA_INDEX_URL": in_env.url_with_credentials},
    )

    assert step.returncode == 0, step.stderr.decode()
    # Masked first, before any line that could hold them, in the exact canonical bytes.
    masks = b"".join(b"::add-mask::" + password.encode() + b"\n" for password in passwords)
    assert step.stdout.startswith(masks), step.stdout[:300]
    assert b"::group::chalicepack build: stage dev, " in step.stdout
    assert b"\n::endgroup::\n" in step.stdout
    for line in step.command_lines:
        assert CANONICAL.fullmatch(line), line
    after_masks = step.stdout[len(masks) :]
    for password in map(str.encode, passwords):
        assert password not in after_masks
        assert password not in step.stderr
        assert password not in files.output.read_bytes()
        assert password not in files.summary.read_bytes()
        for where, data in produced_texts(workspace):
            if where != str(workspace / "docs-app/requirements.txt"):
                assert password not in data, f"a password is in {where}"


def test_a_missing_dependency_warning_is_canonical_on_stdout(tmp_path: Path) -> None:
    index = PackageIndex(tmp_path / "index")
    index.start()
    try:
        index.add_wheel("macosonly", "1.0", tag="cp311-cp311-macosx_11_0_arm64")
        workspace = tmp_path / "workspace"
        shutil.copytree(EXAMPLE_APP, workspace / "docs-app")
        (workspace / "docs-app/requirements.txt").write_text("# a Mac only\nmacosonly==1.0\n")
        (workspace / "docs-app/.python-version").write_text("3.11.9\n")
        files = StepFiles(tmp_path / "_runner_file_commands").create()

        step = run_raw(workspace, files, {"project_dir": "docs-app"}, {"PIP_INDEX_URL": index.url})
    finally:
        index.stop()

    assert step.returncode == 0, step.stderr.decode()
    (warning,) = [line for line in step.command_lines if line.startswith(b"::warning")]
    assert warning.startswith(
        b"::warning title=Missing dependency,file=docs-app/requirements.txt,line=2::macosonly==1.0"
    )
    assert CANONICAL.fullmatch(warning)


@pytest.mark.parametrize(
    ("name", "message", "properties", "expected"),
    [
        ("add-mask", "s3cret", {}, "::add-mask::s3cret"),
        ("group", "build: stage dev", {}, "::group::build: stage dev"),
        ("endgroup", "", {}, "::endgroup::"),
        # Data: % first, then CR and LF; properties also escape : and , (actions/toolkit).
        ("error", "100% done\r\nnext: a, b", {}, "::error::100%25 done%0D%0Anext: a, b"),
        (
            "warning",
            "m",
            {"title": "a: b, 5%", "file": "dir,x/req:s.txt", "line": 3},
            "::warning title=a%3A b%2C 5%25,file=dir%2Cx/req%3As.txt,line=3::m",
        ),
        ("warning", "m", {"title": None, "file": "f", "line": None}, "::warning file=f::m"),
    ],
)
def test_commands_are_escaped_as_the_runner_unescapes_them(
    name: str, message: str, properties: dict[str, str | int | None], expected: str
) -> None:
    assert format_command(name, message, **properties) == expected
