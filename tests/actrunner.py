"""nektos/act run against podman's Docker-compatible API, for the tests marked ``act``.

Nothing here reaches a container registry or GitHub (neither is reachable): the runner image
act starts jobs in is Debian bookworm made by debootstrap and ``podman import``, cached under
build/act-test/ and named by its recipe; the remote actions the example workflows use are
replaced, with act's ``--local-repository``, by small stand-ins written here; the Action
itself (``chalicepack/chalicepack@v1`` and ``.../composite@v1``) is this repository's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "build" / "act-test"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What act needs in a job container: bash for run steps, node (act runs hashFiles() and its
# set-up in node), git for the github context; jq, which the workflows call; the Python the
# setup-python stand-in puts on PATH for the composite Action.
RUNNER_PACKAGES = ("nodejs", "git", "jq", "python3", "python3-venv", "ca-certificates")
EXCLUDE = ("./var/cache/apt/*", "./var/lib/apt/lists/*")
# On this kind of machine crun fails on cgroups and the default ulimits are refused.
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
"""


def run(command: Sequence[str], **options: object) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(command, capture_output=True, text=True, **options)  # type: ignore[call-overload]
    if completed.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {completed.returncode}:\n{completed.stdout}\n"
            f"{completed.stderr}"
        )
    return completed  # type: ignore[no-any-return]


def debian_image(label: str, packages: Sequence[str]) -> str:
    """A debootstrapped bookworm with ``packages`` in podman's store, named by its recipe so a
    changed recipe makes a new one and an unchanged one is made once."""
    recipe = f"{SUITE} {MIRROR} {' '.join(packages)} {' '.join(EXCLUDE)}"
    key = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    name = f"localhost/chalicepack-{label}:{SUITE}-{key}"
    if subprocess.run(["podman", "image", "exists", name]).returncode == 0:
        return name
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CACHE / f"{label}-{SUITE}-{key}.tar"
    if not tarball.exists():
        rootfs = CACHE / f"{label}-rootfs"
        shutil.rmtree(rootfs, ignore_errors=True)
        include = f"--include={','.join(packages)}"
        run(["debootstrap", "--variant=minbase", include, SUITE, str(rootfs), MIRROR])
        partial = tarball.with_suffix(".partial")
        excludes = [f"--exclude={pattern}" for pattern in EXCLUDE]
        run(["tar", "--numeric-owner", *excludes, "-C", str(rootfs), "-cf", str(partial), "."])
        partial.rename(tarball)
        shutil.rmtree(rootfs)
    run(["podman", "import", str(tarball), name])
    return name


@dataclass(frozen=True)
class PodmanService:
    """``podman system service`` on a socket of its own: the Docker API act talks to."""

    socket: Path
    containers_conf: Path

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"


@dataclass(frozen=True)
class ActRun:
    returncode: int
    output: str
    seconds: float


def podman_service(folder: Path) -> Generator[PodmanService, None, None]:
    """Start the API service (stopped when the generator is closed); it takes the same
    containers.conf as every podman command the tests run, so images it sees are the same."""
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    socket = folder / "podman.sock"
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    with (folder / "podman-service.log").open("wb") as log:
        process = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{socket}"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"podman system service did not start: "
                    f"{(folder / 'podman-service.log').read_text()[-2000:]}"
                )
            time.sleep(0.1)
        yield PodmanService(socket, conf)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def act_command(
    act: Path,
    workspace: Path,
    workflow: Path,
    event: str,
    runner_image: str,
    local_repositories: Mapping[str, Path],
    env: Mapping[str, str],
) -> list[str]:
    command = [str(act), event, "--workflows", str(workflow), "--directory", str(workspace),
               # The workspace is bound, not copied: what the Action writes lands in it.
               "--bind",
               "--platform", f"ubuntu-24.04={runner_image}",
               "--platform", f"ubuntu-latest={runner_image}",
               # Nothing can be pulled; the images are local.
               "--pull=false", "--action-offline-mode",
               # The index and moto_server listen on 127.0.0.1 of this host.
               "--network", "host", "--container-daemon-socket", "-",
               "--no-cache-server", "--concurrent-jobs", "1",
               # A failed job's container is otherwise left running, and the next run of the
               # same job would meet it.
               "--rm"]  # fmt: skip
    for spec, folder in local_repositories.items():
        command += ["--local-repository", f"{spec}={folder}"]
    for name, value in env.items():
        command += ["--env", f"{name}={value}"]
    return command


# Each stand-in is a composite action with the real one's inputs (act checks nothing else).
# They record what they were given under .act-record/ in the workspace, so a test can see the
# paths the Action's outputs handed on.
_RECORD = (
    'mkdir -p "$GITHUB_WORKSPACE/.act-record" && printf "%s\\n" "$RECORDED" >> '
    '"$GITHUB_WORKSPACE/.act-record/'
)
STAND_INS: dict[str, str] = {
    # The workspace is bound into the job (--bind): there is nothing to check out.
    "actions/checkout@v4": """\
name: checkout stand-in
runs:
  using: composite
  steps:
    - shell: bash
      run: "true"
""",
    # Nothing to restore or save between act runs that the tests need; a restored cache is
    # issue 16 item 2's test (test_action_cache.py).
    "actions/cache@v4": """\
name: cache stand-in
inputs:
  path: {required: true}
  key: {required: true}
  restore-keys: {required: false}
runs:
  using: composite
  steps:
    - shell: bash
      env: {RECORDED: "${{ inputs.key }}"}
      run: '@RECORD@cache"'
""",
    # The runner image's python3 (3.11), as setup-python's python-path output.
    "actions/setup-python@v5": """\
name: setup-python stand-in
inputs:
  python-version: {required: false}
  update-environment: {required: false}
outputs:
  python-path: {value: "${{ steps.find.outputs.python-path }}"}
runs:
  using: composite
  steps:
    - id: find
      shell: bash
      run: echo "python-path=$(command -v python3)" >> "$GITHUB_OUTPUT"
""",
    "actions/attest-build-provenance@v2": """\
name: attest-build-provenance stand-in
inputs:
  subject-path: {required: true}
runs:
  using: composite
  steps:
    - shell: bash
      env: {RECORDED: "${{ inputs.subject-path }}"}
      run: '@RECORD@attest-build-provenance"'
""",
    "actions/attest-sbom@v2": """\
name: attest-sbom stand-in
inputs:
  subject-path: {required: true}
  sbom-path: {required: true}
runs:
  using: composite
  steps:
    - shell: bash
      env: {RECORDED: "${{ inputs.subject-path }} ${{ inputs.sbom-path }}"}
      run: '@RECORD@attest-sbom"'
""",
    "actions/upload-artifact@v4": """\
name: upload-artifact stand-in
inputs:
  name: {required: true}
  path: {required: true}
runs:
  using: composite
  steps:
    - shell: bash
      env: {RECORDED: "${{ inputs.name }}: ${{ inputs.path }}"}
      run: '@RECORD@upload-artifact"'
""",
}


def write_stand_ins(folder: Path, extra: Mapping[str, str] | None = None) -> dict[str, Path]:
    """The stand-ins as folders with an action.yml, keyed by act's ``--local-repository`` spec."""
    repositories = {}
    for spec, text in {**STAND_INS, **(extra or {})}.items():
        path = folder / spec.replace("/", "+").replace("@", "+")
        path.mkdir(parents=True, exist_ok=True)
        (path / "action.yml").write_text(text.replace("@RECORD@", _RECORD))
        repositories[spec] = path
    return repositories


def recorded(workspace: Path, name: str) -> list[str]:
    return (workspace / ".act-record" / name).read_text().splitlines()
