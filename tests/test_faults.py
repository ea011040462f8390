"""Faults in the middle of a build: a signal, a second build at once, the index dying, the disk
filling up. Afterwards the previous artifacts are untouched or wholly replaced (never
truncated), temporary files are gone (except after SIGKILL, which nothing can catch), and the
cache serves the next build."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from aftermath import (
    ERROR_PREFIX,
    assert_untouched,
    assert_valid_zip,
    cache_scratch,
    seed_previous_build,
    temporary_files,
)
from conftest import make_project
from pkgindex import PackageIndex, _QuietHandler

WAIT = 60  # seconds: a generous bound for what takes well under one


class _Control:
    """How the index serves wheel and sdist files: normally, stalled halfway, or dying."""

    def __init__(self) -> None:
        self.mode = "serve"
        self.downloading = threading.Event()
        self.release = threading.Event()


class _ControlledHandler(_QuietHandler):
    control: _Control
    root: Path

    def do_GET(self) -> None:
        control = self.control
        if "/files/" not in self.path or control.mode == "serve":
            super().do_GET()
            return
        data = (self.root / self.path.lstrip("/").split("#", 1)[0]).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        control.downloading.set()
        if control.mode == "stall":
            control.release.wait(WAIT)
            self.wfile.write(data[len(data) // 2 :])
            return
        # "die": the connection drops mid-file, as when the index goes away.
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)


class ControlledIndex(PackageIndex):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.control = _Control()

    def start(self) -> None:
        handler_class = type(
            "Handler", (_ControlledHandler,), {"control": self.control, "root": self.root}
        )
        handler = functools.partial(handler_class, directory=str(self.root))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.control.release.set()
        super().stop()


@pytest.fixture
def controlled_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ControlledIndex]:
    index = ControlledIndex(tmp_path / "index")
    index.start()
    monkeypatch.setenv("PIP_INDEX_URL", index.url)
    yield index
    index.stop()


def start_build(project: Path, out: Path, cache: Path, *args: str) -> subprocess.Popen[str]:
    """The CLI as a process of its own group (so a test can end all it started)."""
    command = [sys.executable, "-m", "chalicepack", "build", str(project), "--out", str(out)]
    command += ["--cache-dir", str(cache), *args]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(build: subprocess.Popen[str]) -> tuple[int, str, str]:
    stdout, stderr = build.communicate(timeout=WAIT)
    return build.returncode, stdout, stderr


def wait_for(condition: Callable[[], bool], build: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert build.poll() is None, f"the build ended first: {build.communicate()}"
        assert time.monotonic() < deadline, "timed out waiting for the build"
        time.sleep(0.005)


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def fresh_build_matches(project: Path, out: Path, cache: Path) -> dict[str, Any]:
    """Build again (the fault is over): exit 0, valid zips, and a report that describes them."""
    returncode, stdout, stderr = finish(start_build(project, out, cache, "--json", "--no-import"))
    assert returncode == 0, stderr
    report: dict[str, Any] = json.loads(stdout)
    for artifact in report["artifacts"].values():
        path = Path(artifact["path"])
        assert_valid_zip(path)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == artifact["sha256"]
    assert temporary_files(out) == []
    assert cache_scratch(cache) == []
    return report


def dependency_project(tmp_path: Path, index: PackageIndex) -> Path:
    index.add_wheel(
        "alpha",
        "1.0",
        files={"alpha/__init__.py": "A = 1\n", "alpha/data.bin": os.urandom(200_000)},
    )
    index.add_wheel("beta", "2.0")
    return make_project(tmp_path / "app", {"requirements.txt": "alpha==1.0\nbeta==2.0\n"})


# --- signals while dependencies download -----------------------------------------------------


def test_sigterm_while_downloading_stops_pip_cleans_up_and_keeps_the_previous_artifacts(
    tmp_path: Path, controlled_index: ControlledIndex
) -> None:
    project = dependency_project(tmp_path, controlled_index)
    out, cache = tmp_path / "out", tmp_path / "cache"
    before = seed_previous_build(out)
    controlled_index.control.mode = "stall"

    build = start_build(project, out, cache)
    wait_for(controlled_index.control.downloading.is_set, build)
    pips = children_of(build.pid)
    build.send_signal(signal.SIGTERM)
    returncode, stdout, stderr = finish(build)

    assert returncode == 128 + signal.SIGTERM
    assert stderr.splitlines()[-1] == (
        f"{ERROR_PREFIX.removesuffix('error: ')}terminated; temporary files removed, "
        "previous artifacts left as they were"
    )
    assert stdout == ""
    assert pips and not any(alive(pid) for pid in pips)  # pip did not outlive the build
    assert_untouched(out, before)
    assert cache_scratch(cache) == []

    controlled_index.control.mode = "serve"
    report = fresh_build_matches(project, out, cache)
    assert [d["name"] for d in report["dependencies"]] == ["alpha", "beta"]


def test_sigkill_while_downloading_leaves_the_previous_artifacts_and_a_usable_cache(
    tmp_path: Path, controlled_index: ControlledIndex
) -> None:
    project = dependency_project(tmp_path, controlled_index)
    out, cache = tmp_path / "out", tmp_path / "cache"
    before = seed_previous_build(out)
    controlled_index.control.mode = "stall"

    build = start_build(project, out, cache)
    wait_for(controlled_index.control.downloading.is_set, build)
    os.killpg(build.pid, signal.SIGKILL)  # the build and pip, as a cancelled CI job ends
    returncode, _, _ = finish(build)

    assert returncode == -signal.SIGKILL
    assert_untouched(out, before)
    controlled_index.control.mode = "serve"
    fresh_build_matches(project, out, cache)


# --- signals while zipping --------------------------------------------------------------------


def zipping_project(tmp_path: Path) -> Path:
    """A project whose zip takes over a second to write (64 MB that do not compress): long
    enough for a test to see the temporary zip and signal the build before it is renamed,
    even on a loaded machine."""
    return make_project(tmp_path / "app", {"vendor/noise.bin": os.urandom(64 * 1024 * 1024)})


def writing_zip(out: Path) -> Callable[[], bool]:
    return lambda: any(name.startswith(".deployment.zip.") for name in temporary_files(out))


def test_sigterm_while_zipping_removes_the_temporary_zip_and_keeps_the_previous_one(
    tmp_path: Path,
) -> None:
    project = zipping_project(tmp_path)
    out, cache = tmp_path / "out", tmp_path / "cache"
    before = seed_previous_build(out)

    build = start_build(project, out, cache, "--no-import")
    wait_for(writing_zip(out), build)
    build.send_signal(signal.SIGTERM)
    returncode, stdout, stderr = finish(build)

    assert returncode == 128 + signal.SIGTERM, stderr
    assert "terminated; temporary files removed" in stderr
    assert stdout == ""
    assert_untouched(out, before)  # the temporary zip is gone, the previous zip intact
    assert "noise.bin" in fresh_build_matches(project, out, cache)["vendor_files"]


def test_sigkill_while_zipping_never_truncates_the_zip_at_the_output_path(tmp_path: Path) -> None:
    project = zipping_project(tmp_path)
    out, cache = tmp_path / "out", tmp_path / "cache"
    before = seed_previous_build(out)

    build = start_build(project, out, cache, "--no-import")
    wait_for(writing_zip(out), build)
    os.killpg(build.pid, signal.SIGKILL)
    finish(build)

    # Nothing can clean up after SIGKILL: the half-written zip stays under its hidden name,
    # never at the output path.
    assert {name: (out / name).read_bytes() for name in before} == before
    assert_valid_zip(out / "deployment.zip")
    assert all(name.startswith(".deployment.zip.") for name in temporary_files(out))
    report = fresh_build_matches_but_stray(project, out, cache)
    assert "noise.bin" in report["vendor_files"]


def fresh_build_matches_but_stray(project: Path, out: Path, cache: Path) -> dict[str, Any]:
    """As ``fresh_build_matches``, tolerating the temporary zip a SIGKILLed build left."""
    returncode, stdout, stderr = finish(start_build(project, out, cache, "--json", "--no-import"))
    assert returncode == 0, stderr
    report: dict[str, Any] = json.loads(stdout)
    assert_valid_zip(out / "deployment.zip")
    digest = hashlib.sha256((out / "deployment.zip").read_bytes()).hexdigest()
    assert digest == report["artifacts"]["deployment"]["sha256"]
    return report


# --- two builds at once -----------------------------------------------------------------------


def test_two_builds_at_once_on_the_same_project_cache_and_out_dir_both_succeed(
    tmp_path: Path, index: PackageIndex
) -> None:
    project = dependency_project(tmp_path, index)
    out, cache = tmp_path / "out", tmp_path / "cache"

    builds = [start_build(project, out, cache, "--json", "--automatic-layer") for _ in range(2)]
    results = [finish(build) for build in builds]

    for returncode, _, stderr in results:
        assert returncode == 0, stderr
    reports = [json.loads(stdout) for _, stdout, _ in results]
    assert reports[0]["artifacts"] == reports[1]["artifacts"]  # reproducible: same bytes
    for name, artifact in reports[0]["artifacts"].items():
        path = out / Path(artifact["path"]).name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == artifact["sha256"], name
    layer_names = assert_valid_zip(out / "layer-deployment.zip")
    assert any(name.endswith("site-packages/alpha/data.bin") for name in layer_names)
    assert "app.py" in assert_valid_zip(out / "deployment.zip")
    assert (
        json.loads((out / "build-report.json").read_text())["artifacts"] == reports[0]["artifacts"]
    )
    assert temporary_files(out) == []
    assert cache_scratch(cache) == []


# --- the index dies mid-download --------------------------------------------------------------


def test_the_index_dying_mid_download_fails_clearly_after_bounded_retries_then_recovers(
    tmp_path: Path, controlled_index: ControlledIndex
) -> None:
    project = dependency_project(tmp_path, controlled_index)
    out, cache = tmp_path / "out", tmp_path / "cache"
    before = seed_previous_build(out)
    controlled_index.control.mode = "die"

    started = time.monotonic()
    returncode, stdout, stderr = finish(start_build(project, out, cache))
    elapsed = time.monotonic() - started

    assert returncode == 1, stderr
    assert stdout == ""
    message = stderr.splitlines()[-1].removeprefix(ERROR_PREFIX)
    assert "could not reach the package index (Download failed after 6 attempts" in message
    assert "not enough bytes were received" in message
    assert "/files/alpha-1.0-py3-none-any.whl" in message
    assert "check the network and the index URL, then retry" in message
    assert elapsed < 30
    assert_untouched(out, before)
    assert not list(cache.glob("wheels/*/*.whl"))  # no truncated wheel kept
    assert cache_scratch(cache) == []

    controlled_index.control.mode = "serve"
    fresh_build_matches(project, out, cache)


def test_a_damaged_wheel_in_the_cache_is_fetched_again_not_shipped(
    tmp_path: Path, index: PackageIndex
) -> None:
    project = dependency_project(tmp_path, index)
    out, cache = tmp_path / "out", tmp_path / "cache"
    first = fresh_build_matches(project, out, cache)
    (stored,) = cache.glob("wheels/*/alpha-1.0-py3-none-any.whl")
    good = stored.read_bytes()
    stored.write_bytes(good[: len(good) // 2])  # as a disk error or an older writer leaves it

    # Another output directory: the build cannot take the artifacts it made before as current.
    second = fresh_build_matches(project, tmp_path / "out2", cache)

    assert stored.read_bytes() == good
    assert second["artifacts"]["deployment"]["sha256"] == first["artifacts"]["deployment"]["sha256"]


def test_a_wheel_changed_in_place_after_its_digest_was_recorded_is_fetched_again(
    tmp_path: Path, index: PackageIndex
) -> None:
    project = dependency_project(tmp_path, index)
    out, cache = tmp_path / "out", tmp_path / "cache"
    first = fresh_build_matches(project, out, cache)
    time.sleep(0.1)  # the wheel is now old enough for its verified digest to be recorded
    fresh_build_matches(project, tmp_path / "out2", cache)
    assert (cache / "wheels" / "digests.json").is_file()
    (stored,) = cache.glob("wheels/*/alpha-1.0-py3-none-any.whl")
    good, status = stored.read_bytes(), stored.stat()
    stored.write_bytes(good[:-1] + bytes([good[-1] ^ 0xFF]))  # same size, one byte flipped
    os.utime(stored, ns=(status.st_atime_ns, status.st_mtime_ns))

    third = fresh_build_matches(project, tmp_path / "out3", cache)

    assert stored.read_bytes() == good
    assert third["artifacts"]["deployment"]["sha256"] == first["artifacts"]["deployment"]["sha256"]


# --- the disk fills up ------------------------------------------------------------------------

FILE_SIZE_LIMIT = 2 * 1024 * 1024


def _small_disk() -> None:
    """In the child: no file may grow past 2 MiB, and writing past it fails with EFBIG
    instead of killing the process with SIGXFSZ."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def test_a_full_disk_while_writing_the_zip_is_exit_1_and_leaves_no_partial_zip(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path / "app", {"vendor/blob.bin": os.urandom(1024 * 1024)})
    out, cache = tmp_path / "out", tmp_path / "cache"
    fresh_build_matches(project, out, cache)
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    (project / "vendor" / "blob.bin").write_bytes(os.urandom(3 * 1024 * 1024))

    command = [sys.executable, "-m", "chalicepack", "build", str(project), "--out", str(out)]
    command += ["--cache-dir", str(cache), "--no-import"]
    completed = subprocess.run(
        command, capture_output=True, text=True, preexec_fn=_small_disk, timeout=WAIT
    )

    assert completed.returncode == 1, completed.stderr
    message = completed.stderr.splitlines()[-1].removeprefix(ERROR_PREFIX)
    assert message.startswith(f"cannot write {out / 'deployment.zip'}: File too large:")
    assert "the disk is full or a file-size limit (ulimit -f) was reached" in message
    assert f"free space in {out} or choose another --out" in message
    assert_untouched(out, before)
    assert_valid_zip(out / "deployment.zip")
