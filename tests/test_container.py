"""The real container: the image built from the Dockerfile, run as the runner runs a docker
action (workspace and file-command folders mounted, INPUT_* and GITHUB_* in the environment).

Marked ``container``: run by ``make test-container`` (it needs root, podman and a few minutes),
left out of ``make test``. No image registry is reachable here, so the base image is made
locally in the official python:*-slim image's shape: Debian bookworm by debootstrap (minbase and
the libraries CPython links) with this machine's pyenv CPython 3.11 copied in, as the official
image does it: C headers kept (source builds compile against them), no tests, no static
library, no .pyc; ``podman import``-ed and cached under build/container-test/.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import selectors
import shutil
import subprocess
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import IO

import pytest
from elftools.elf.elffile import ELFFile

from chalicepack.deps.policy import glibc_versions
from conftest import EXAMPLE_APP, ROOT, make_project
from ghrunner import StepFiles, step_environment, summary_table_rows
from pkgindex import PackageIndex
from test_sourcebuild import _EXT_USING_LIBC as EXT_USING_LIBC

pytestmark = pytest.mark.container

CACHE = ROOT / "build" / "container-test"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What python:3.11-slim-bookworm installs for its CPython (the rest is in minbase).
PACKAGES = (
    "ca-certificates",
    "libssl3",
    "libffi8",
    "libsqlite3-0",
    "libbz2-1.0",
    "liblzma5",
    "libreadline8",
    "libncursesw6",
    "zlib1g",
    "libexpat1",
    "libuuid1",
    "netbase",
    "tzdata",
)
# Left out of the base image, as Debian's slim images leave them out: apt's caches, docs,
# manuals and translations.
EXCLUDE = (
    "./var/cache/apt/*",
    "./var/lib/apt/lists/*",
    "./usr/share/doc/*",
    "./usr/share/man/*",
    "./usr/share/info/*",
    "./usr/share/locale/*",
)
# The CPython the base carries: this machine's pyenv build, at its own prefix (its RUNPATH).
PYENV_VERSIONS = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
PYTHON_MINOR = "3.11"
# What the official image deletes from its CPython, and site-packages (our venv seeds its own).
PYTHON_EXCLUDE = (
    "*/__pycache__",
    "*.pyc",
    "*/test",
    "*/tests",
    "*/idle_test",
    "*/idlelib",
    "*/tkinter",
    "*/turtledemo",
    "libpython*.a",
    "*/site-packages/*",
    "./share",
)
# Tagged per checkout: another checkout's `make test-container` (a CI run beside a session)
# builds its own image, and podman's image store is the machine's.
IMAGE = f"localhost/chalicepack-action:test-{hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]}"
# The GitHub runner's user (uid 1001, gid 127 "docker") owns the workspace it mounts.
RUNNER_UID, RUNNER_GID = 1001, 127
# On this kind of machine crun fails on cgroups and the default ulimits are refused.
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
"""


def run(
    command: Sequence[str], cwd: Path | None = None, stdin: IO[bytes] | None = None
) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(command, capture_output=True, text=True, cwd=cwd, stdin=stdin)
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
    """A Debian image in python:3.11-slim's shape: CPython 3.11 with headers and venv, no pip."""
    python = _pyenv_python()
    recipe = f"{SUITE} {MIRROR} {' '.join(PACKAGES)} {' '.join(EXCLUDE)} {python.name}"
    recipe += " " + " ".join(PYTHON_EXCLUDE)
    key = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    name = f"localhost/chalicepack-test-base:{SUITE}-py{python.name}-{key}"
    if subprocess.run(["podman", "image", "exists", name]).returncode == 0:
        return name
    tarball = CACHE / f"{SUITE}-{key}.tar"
    if not tarball.exists():
        rootfs = CACHE / "rootfs"
        shutil.rmtree(rootfs, ignore_errors=True)
        run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE,
             str(rootfs), MIRROR])  # fmt: skip
        _copy_python(python, rootfs)
        partial = tarball.with_suffix(".partial")
        excludes = [f"--exclude={pattern}" for pattern in EXCLUDE]
        run(["tar", "--numeric-owner", *excludes, "-C", str(rootfs), "-cf", str(partial), "."])
        partial.rename(tarball)
        shutil.rmtree(rootfs)
    run(["podman", "import", "--change", "ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
         "--change", "ENV LANG=C.UTF-8", str(tarball), name])  # fmt: skip
    return name


def _pyenv_python() -> Path:
    """The newest pyenv CPython 3.11 here (issue 14: these machines have 3.10 to 3.13)."""
    found = sorted(
        PYENV_VERSIONS.glob(f"{PYTHON_MINOR}.*"),
        key=lambda path: tuple(int(part) for part in path.name.split(".") if part.isdigit()),
    )
    assert found, f"no CPython {PYTHON_MINOR} under {PYENV_VERSIONS} for the base image"
    return found[-1]


def _copy_python(python: Path, rootfs: Path) -> None:
    """``python``'s prefix into ``rootfs`` at the same path, python3 on PATH as in the image."""
    target = rootfs / python.relative_to("/")
    target.parent.mkdir(parents=True)
    excludes = [f"--exclude={pattern}" for pattern in PYTHON_EXCLUDE]
    with subprocess.Popen(["tar", *excludes, "-C", str(python), "-cf", "-", "."],
                          stdout=subprocess.PIPE) as source:  # fmt: skip
        target.mkdir()
        run(["tar", "-C", str(target), "-xf", "-"], stdin=source.stdout)
    assert source.returncode == 0
    for command in ("python3", f"python{PYTHON_MINOR}", "python"):
        (rootfs / "usr" / "local" / "bin" / command).symlink_to(
            python / "bin" / f"python{PYTHON_MINOR}"
        )


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
    seconds: float  # from `podman run` to its exit
    first_output_seconds: float  # from `podman run` to the entrypoint's first output
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
    return _timed_step([*command, image], files)


def _timed_step(command: Sequence[str], files: StepFiles) -> ContainerStep:
    """Run ``command``, noting when its first output arrives (the step's start as the runner's
    log shows it) and when it exits."""
    started = time.monotonic()
    first_output = None
    with (
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process,
        selectors.DefaultSelector() as selector,
    ):
        streams = {process.stdout: bytearray(), process.stderr: bytearray()}
        for stream in streams:
            selector.register(stream, selectors.EVENT_READ)  # type: ignore[arg-type]
        while selector.get_map():
            events = selector.select(timeout=900)
            if not events:  # a step silent for 15 minutes is stuck
                process.kill()
                raise AssertionError(f"{' '.join(command)} printed nothing for 900 s")
            for key, _ in events:
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                first_output = first_output or time.monotonic() - started
                streams[key.fileobj].extend(chunk)  # type: ignore[index]
        returncode = process.wait()
    seconds = time.monotonic() - started
    stdout, stderr = (bytes(data).decode() for data in streams.values())
    return ContainerStep(returncode, stdout, stderr, seconds, first_output or seconds, files)


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
    # The base image's python3 is 3.11 and the example has no .python-version.
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
        for _ in range(5)
    ]
    # Container start-up, interpreter start-up and the import of the Action: its fixed cost
    # before any work (the median of five runs), to its first output line and to its exit.
    _record(
        "start_up_first_output_seconds", round(median(s.first_output_seconds for s in steps), 2)
    )
    _record("start_up_seconds", round(median(step.seconds for step in steps), 2))
    step = steps[-1]

    assert step.returncode == 2
    assert "::error title=Bad input::input architecture: 'x86' is not one of x86_64, arm64" in (
        step.stdout
    )


def test_a_c_extension_sdist_is_built_for_arm64_with_the_images_zig(
    image: str, index: PackageIndex, tmp_path: Path
) -> None:
    """The image's zig, pruned to linux-gnu (Dockerfile), compiles for the other architecture."""
    index.add_sdist("speedy", "1.0", c_extension=True, ext_source=EXT_USING_LIBC)
    workspace = tmp_path / "workspace"
    make_project(workspace / "app", {"requirements.txt": "speedy==1.0\n"})
    for path in [workspace, *workspace.rglob("*")]:
        os.lchown(path, RUNNER_UID, RUNNER_GID)

    step = run_container_step(
        image,
        tmp_path,
        workspace,
        {"project_dir": "app", "architecture": "arm64"},
        {"PIP_INDEX_URL": index.url},
    )
    _record("arm64_source_build_run_seconds", round(step.seconds, 1))

    assert step.returncode == 0, step.stdout + step.stderr
    assert step.files.outputs()["missing_dependencies"] == "[]"
    with zipfile.ZipFile(workspace / "app" / "dist" / "deployment.zip") as archive:
        module = archive.read("speedy/_speedups.cpython-311-aarch64-linux-gnu.so")
    elf = ELFFile(io.BytesIO(module))
    assert elf["e_machine"] == "EM_AARCH64"
    assert max(glibc_versions(elf)) == (2, 26)  # python3.11's Lambda runtime has glibc 2.26
