"""The real container: the image built from the Dockerfile, run as the runner runs a docker
action (workspace and file-command folders mounted, INPUT_* and GITHUB_* in the environment).

Marked ``container``: run by ``make test-container`` (it needs root, podman and a few minutes),
left out of ``make test``. No image registry is reachable here, so the base image is made
locally: Debian bookworm by debootstrap (minbase, python3 and python3-venv) and ``podman
import``, cached under build/container-test/.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import EXAMPLE_APP, ROOT
from ghrunner import StepFiles, step_environment, summary_table_rows
from pkgindex import PackageIndex

pytestmark = pytest.mark.container

CACHE = ROOT / "build" / "container-test"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "python3-venv", "ca-certificates")
# Left out of the base image, as Debian's official images leave them out: apt's caches.
EXCLUDE = ("./var/cache/apt/*", "./var/lib/apt/lists/*")
IMAGE = "localhost/chalicepack-action:test"
# The GitHub runner's user (uid 1001, gid 127 "docker") owns the workspace it mounts.
RUNNER_UID, RUNNER_GID = 1001, 127
# On this kind of machine crun fails on cgroups and the default ulimits are refused.
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
"""


def run(command: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    if completed.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {completed.returncode}:\n{completed.stdout}\n"
            f"{completed.stderr}"
        )
    return completed


@pytest.fixture(scope="module")
def podman() -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    conf = CACHE / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    saved = os.environ.get("CONTAINERS_CONF")
    os.environ["CONTAINERS_CONF"] = str(conf)
    yield
    if saved is None:
        os.environ.pop("CONTAINERS_CONF", None)
    else:
        os.environ["CONTAINERS_CONF"] = saved


def base_image() -> str:
    """A Debian image with only python3 (externally managed, no pip) and its venv module."""
    recipe = f"{SUITE} {MIRROR} {' '.join(PACKAGES)} {' '.join(EXCLUDE)}"
    key = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    name = f"localhost/chalicepack-test-base:{SUITE}-{key}"
    if subprocess.run(["podman", "image", "exists", name]).returncode == 0:
        return name
    tarball = CACHE / f"{SUITE}-{key}.tar"
    if not tarball.exists():
        rootfs = CACHE / "rootfs"
        shutil.rmtree(rootfs, ignore_errors=True)
        run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                str(rootfs),
                MIRROR,
            ]
        )
        partial = tarball.with_suffix(".partial")
        excludes = [f"--exclude={pattern}" for pattern in EXCLUDE]
        run(["tar", "--numeric-owner", *excludes, "-C", str(rootfs), "-cf", str(partial), "."])
        partial.rename(tarball)
        shutil.rmtree(rootfs)
    run(["podman", "import", str(tarball), name])
    return name


@pytest.fixture(scope="module")
def image(podman: None) -> str:
    base = base_image()
    started = time.monotonic()
    run(["podman", "build", *_build_trust_options(), "--network=host",
         "--build-arg", f"BASE_IMAGE={base}", "--tag", IMAGE, "--file", "Dockerfile", "."],
        cwd=ROOT)  # fmt: skip
    _record("image_build_seconds", round(time.monotonic() - started, 1))
    size = run(["podman", "image", "inspect", "--format", "{{.Size}}", IMAGE]).stdout
    _record("image_size_bytes", int(size))
    return IMAGE


def _build_trust_options() -> list[str]:
    """Let the image build's pip trust what this machine trusts (a TLS-intercepting proxy's
    CA lives only in the host's bundle). On an ordinary machine this changes nothing."""
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if not bundle.is_file():
        return []
    pip_conf = CACHE / "pip.conf"
    pip_conf.write_text(f"[global]\ncert = {bundle}\n")
    return ["--volume", f"{bundle}:{bundle}:ro", "--volume", f"{pip_conf}:/etc/pip.conf:ro"]


def _record(name: str, value: object) -> None:
    path = CACHE / "measurements.json"
    measured = json.loads(path.read_text()) if path.exists() else {}
    measured[name] = value
    path.write_text(json.dumps(measured, indent=2) + "\n")
    print(f"\n{name}: {value}")


@dataclass
class ContainerStep:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    files: StepFiles


def run_container_step(
    image: str,
    runner_temp: Path,
    workspace: Path,
    inputs: Mapping[str, str],
    env: Mapping[str, str],
) -> ContainerStep:
    """``docker run`` as the runner does it for a docker action, with podman."""
    files = StepFiles(runner_temp / "_runner_file_commands").create()
    home = runner_temp / "_github_home"
    home.mkdir(exist_ok=True)
    for path in (files.folder, files.output, files.summary, home):
        os.chown(path, RUNNER_UID, RUNNER_GID)
    in_container = "/github/file_commands"
    step_env = step_environment(
        inputs,
        workspace="/github/workspace",
        output=f"{in_container}/{files.output.name}",
        summary=f"{in_container}/{files.summary.name}",
        extra={"HOME": "/github/home", **env},
    )
    command = ["podman", "run", "--rm", "--workdir", "/github/workspace",
               # The runner's own network is not needed: the test's index is on 127.0.0.1.
               "--network=host",
               "--volume", f"{home}:/github/home",
               "--volume", f"{files.folder}:{in_container}",
               "--volume", f"{workspace}:/github/workspace"]  # fmt: skip
    for name, value in step_env.items():
        command += ["--env", f"{name}={value}"]
    started = time.monotonic()
    completed = subprocess.run([*command, image], capture_output=True, text=True, timeout=900)
    seconds = time.monotonic() - started
    return ContainerStep(completed.returncode, completed.stdout, completed.stderr, seconds, files)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A checkout of the bundled example, owned by the runner's user as on GitHub."""
    root = tmp_path / "workspace"
    shutil.copytree(EXAMPLE_APP, root / "docs-app")
    for path in [root, *root.rglob("*")]:
        os.lchown(path, RUNNER_UID, RUNNER_GID)
    return root


def test_the_action_image_builds_and_packages_the_example_as_the_runner_runs_it(
    image: str, index: PackageIndex, workspace: Path, tmp_path: Path
) -> None:
    index.add_wheel("sortedcontainers", "2.4.0", tag="py2.py3-none-any")

    step = run_container_step(
        image,
        tmp_path,
        workspace,
        {"project_dir": "docs-app", "automatic_layer": "true"},
        {"PIP_INDEX_URL": index.url},
    )
    _record("action_run_seconds", round(step.seconds, 1))

    assert step.returncode == 0, step.stdout + step.stderr
    outputs = step.files.outputs()
    assert outputs["deployment_zip"] == "docs-app/dist/deployment.zip"
    assert outputs["layer_zip"] == "docs-app/dist/layer-deployment.zip"
    for name in ("deployment", "layer"):
        zip_path = workspace / outputs[f"{name}_zip"]
        assert hashlib.sha256(zip_path.read_bytes()).hexdigest() == outputs[f"{name}_sha256"]
    assert outputs["missing_dependencies"] == "[]"
    assert outputs["report"] == "docs-app/dist/build-report.json"
    # Debian bookworm's python3 is 3.11 and the example has no .python-version.
    assert outputs["runtime"] == "python3.11"
    rows = summary_table_rows(step.files.summary_text())
    assert any(row[0] == "`docs-app/dist/deployment.zip`" for row in rows)
    assert any(row[:3] == ["sortedcontainers", "2.4.0", "`py2.py3-none-any`"] for row in rows)
    written = [
        *(workspace / "docs-app" / "dist").rglob("*"),
        workspace / "docs-app" / "dist",
        *(workspace / ".chalicepack-cache").rglob("*"),
    ]
    assert {(p.lstat().st_uid, p.lstat().st_gid) for p in written} == {(RUNNER_UID, RUNNER_GID)}


def test_a_bad_input_fails_fast_with_exit_2(image: str, workspace: Path, tmp_path: Path) -> None:
    steps = [
        run_container_step(image, tmp_path, workspace, {"architecture": "x86"}, {})
        for _ in range(3)
    ]
    # Container start-up, interpreter start-up and the import of chalicepack: the Action's
    # fixed cost before any work (the median of three runs).
    _record("start_up_seconds", round(sorted(step.seconds for step in steps)[1], 2))
    step = steps[-1]

    assert step.returncode == 2
    assert "::error title=Bad input::input architecture: 'x86' is not one of x86_64, arm64" in (
        step.stdout
    )
