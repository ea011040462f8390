"""The Action's cache across CI runs: the container runs as root, the workspace (and a cache that
actions/cache restores, or a previous run handed back) belongs to the runner's user. pip's and
uv's caches must still be used, and what the step writes must stay the workspace owner's."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLE_APP
from ghrunner import StepFiles
from pkgindex import PackageIndex
from test_action_commands import RawStep, run_entrypoint

if sys.version_info < (3, 11):
    # On 3.11+ github-action-utils is a dependency: its absence there fails, never skips.
    pytest.skip("the Action needs Python 3.11+", allow_module_level=True)

RUNNER_UID, RUNNER_GID = 1001, 127  # the GitHub runner user's ids


def owners(root: Path) -> set[tuple[int, int]]:
    return {(path.lstat().st_uid, path.lstat().st_gid) for path in [root, *root.rglob("*")]}


def files_in(folder: Path) -> int:
    return sum(1 for path in folder.rglob("*") if path.is_file())


@pytest.mark.parametrize("resolver", ["auto", "pip"])
def test_a_second_run_with_a_restored_cache_of_another_owner_downloads_only_whats_new(
    tmp_path: Path, resolver: str
) -> None:
    # pip caches responses only from HTTPS or trusted hosts (plain http:// is mounted without
    # a cache), and the test index is http://127.0.0.1: trusted, as an https index would be.
    # That setting also makes the auto resolver leave resolving to pip, so uv's cache is
    # tested by the auto run, pip's by the pip run.
    pip_env = {"PIP_TRUSTED_HOST": "127.0.0.1"} if resolver == "pip" else {}
    index = PackageIndex(tmp_path / "index", immutable_files=True)
    index.start()
    sortedcontainers = index.add_wheel("sortedcontainers", "2.4.0", tag="py2.py3-none-any").name
    helper = index.add_wheel("helper", "1.0").name
    added = index.add_wheel("added-later", "1.0", requires=["helper"]).name
    workspace = tmp_path / "workspace"
    shutil.copytree(EXAMPLE_APP, workspace / "docs-app")
    requirements = workspace / "docs-app/requirements.txt"
    requirements.write_text("sortedcontainers==2.4.0\nhelper==1.0\n")
    for path in [workspace, *workspace.rglob("*")]:
        os.lchown(path, RUNNER_UID, RUNNER_GID)
    cache = workspace / ".chalicepack-cache"

    def run() -> RawStep:
        files = StepFiles(tmp_path / "_runner_file_commands").create()
        inputs = {"project_dir": "docs-app", "resolver": resolver}
        return run_entrypoint(workspace, files, inputs, {"PIP_INDEX_URL": index.url, **pip_env})

    try:
        first = run()
        first_downloads = list(index.downloads())
        requirements.write_text("sortedcontainers==2.4.0\nhelper==1.0\nadded-later==1.0\n")
        os.lchown(requirements, RUNNER_UID, RUNNER_GID)
        second = run()
    finally:
        index.stop()

    assert first.returncode == 0, first.stderr.decode()
    assert second.returncode == 0, second.stderr.decode()
    assert {sortedcontainers, helper} <= set(first_downloads)
    # pip's or uv's cache was written by the first run...
    assert files_in(cache / ("uv" if resolver == "auto" else "pip/http-v2")) > 0
    # ...and the second, owned by the runner's user now, read them: only the new release is
    # fetched (the resolver and the download may each ask for it, both before it is cached).
    assert set(index.downloads()[len(first_downloads) :]) == {added}
    assert b"cache has been disabled" not in second.stderr
    # Everything in the workspace, the cache included, is still the runner user's.
    assert owners(workspace) == {(RUNNER_UID, RUNNER_GID)}
