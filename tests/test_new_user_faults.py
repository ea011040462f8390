"""Faults a new user met (issue 17), each on real processes: a git URL to a port nothing
listens on, the real local index (yanked releases, one that never answers), real signals, a
real child process started by the app. Each asserts the exit code, the message, that the
previous artifacts are byte-identical, and that the test's own TMPDIR, the project and the
cache hold nothing extra afterwards."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aftermath import (
    assert_untouched,
    cache_files,
    cache_scratch,
    error_line,
    seed_previous_build,
    temporary_files,
    tree_bytes,
)
from conftest import make_project
from pkgindex import PackageIndex
from test_faults import ControlledIndex, alive, children_of, wait_for

WAIT = 120  # seconds: a bound for builds that take a few


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Scene:
    """A project, its output directory seeded with an earlier build's artifacts, a cache, and a
    TMPDIR of the test's own; ``settled()`` checks that a build changed none of them."""

    project: Path
    out: Path
    cache: Path
    tmpdir: Path
    previous: dict[str, bytes]
    project_before: dict[str, bytes]
    cache_before: set[str]

    def command(self, *args: str) -> list[str]:
        command = [sys.executable, "-m", "chalicepack", "build", str(self.project)]
        return [*command, "--out", str(self.out), "--cache-dir", str(self.cache), *args]

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**os.environ, "TMPDIR": str(self.tmpdir), **(extra or {})}

    def build(self, *args: str, env: dict[str, str] | None = None) -> Result:
        completed = subprocess.run(
            self.command(*args), capture_output=True, text=True, env=self.env(env), timeout=WAIT
        )
        return Result(completed.returncode, completed.stdout, completed.stderr)

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(env),
            start_new_session=True,
        )

    def settled(self, *, cache_may_gain: tuple[str, ...] = ()) -> None:
        """``cache_may_gain``: folders of the cache a build that got that far fills rightly."""
        assert_untouched(self.out, self.previous)
        assert sorted(self.tmpdir.iterdir()) == [], "temporary files left in TMPDIR"
        assert tree_bytes(self.project) == self.project_before
        assert cache_scratch(self.cache) == []
        gained = cache_files(self.cache) - self.cache_before
        assert {name for name in gained if not name.startswith(cache_may_gain)} == set()


def scene(tmp_path: Path, files: dict[str, str | bytes], **config: Any) -> Scene:
    project = make_project(tmp_path / "app", files, config or None)
    out, cache, tmpdir = tmp_path / "out", tmp_path / "cache", tmp_path / "tmp"
    tmpdir.mkdir()
    previous = seed_previous_build(out)
    return Scene(project, out, cache, tmpdir, previous, tree_bytes(project), cache_files(cache))


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (just released by the kernel)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- 1. a git repository that cannot be reached is the network's fault ------------------------


def test_a_git_url_nothing_answers_at_is_exit_1_saying_the_host_could_not_be_reached(
    tmp_path: Path, index: PackageIndex
) -> None:
    port = closed_port()
    url = f"http://127.0.0.1:{port}/pallets/click.git"
    here = scene(tmp_path, {"requirements.txt": f"# the CLI library\nclick @ git+{url}@8.1.7\n"})

    started = time.monotonic()
    result = here.build()

    assert result.returncode == 1, result.stderr
    message = error_line(result.stderr)
    assert message.startswith(f"{here.project / 'requirements.txt'}:2: 'click @ git+{url}@8.1.7'")
    assert f"could not reach {url}/ (Failed to connect to 127.0.0.1 port {port}" in message
    assert message.endswith("check the network, the host name and any proxy, then retry")
    assert "fix the line" not in result.stderr
    assert time.monotonic() - started < 30  # git was not asked again and again
    assert result.stdout == ""
    here.settled()


# --- 2. a version that does not exist, beside pip's notes on yanked ones ----------------------


@pytest.mark.parametrize("resolver", ["auto", "pip"])
def test_a_version_that_does_not_exist_is_said_so_whatever_pip_notes_about_others(
    tmp_path: Path, index: PackageIndex, resolver: str
) -> None:
    index.yank(index.add_wheel("alpha", "1.0"))
    index.add_wheel("alpha", "2.0", requires_python="<3")
    index.add_wheel("alpha", "3.0")
    here = scene(tmp_path, {"requirements.txt": "alpha==99.99.99\n"})

    result = here.build("--resolver", resolver)

    assert result.returncode == 2, result.stderr
    message = error_line(result.stderr)
    assert message.startswith(
        f"{here.project / 'requirements.txt'}:1: 'alpha==99.99.99': no release of "
        "alpha==99.99.99 exists on the configured index"
    )
    assert "found a release" not in message
    assert "yanked" not in message
    here.settled()


# --- 3. a process the app starts at import does not outlive the build -------------------------

LEAVES_A_CHILD = """\
import os, subprocess
from chalice import Chalice

sleeper = subprocess.Popen(["sleep", "600"])
with open(os.environ["SLEEPER_PID_FILE"], "w") as pid_file:
    pid_file.write(str(sleeper.pid))
app = Chalice(app_name="testapp")
"""


@pytest.mark.parametrize("fails", [False, True], ids=["import-passes", "import-fails"])
def test_a_process_the_app_starts_at_import_is_ended_with_the_check(
    tmp_path: Path, fails: bool
) -> None:
    source = LEAVES_A_CHILD + ("raise RuntimeError('broken after starting it')\n" if fails else "")
    here = scene(tmp_path, {"app.py": source})
    pid_file = tmp_path / "sleeper.pid"

    result = here.build(env={"SLEEPER_PID_FILE": str(pid_file)})

    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:  # (init reaps it)
        time.sleep(0.05)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)  # not left running by a failing test either
        pytest.fail("the app's child outlived the build")
    assert "app.py started processes at import" in result.stderr
    assert "they were ended" in result.stderr
    if fails:
        assert result.returncode == 2, result.stderr
        assert (
            "chalicepack: error: importing app.py failed: RuntimeError: broken after starting it"
            in result.stderr
        )
        here.settled(cache_may_gain=("trees/",))  # the installed tree the import came from
    else:
        assert result.returncode == 0, result.stderr
        assert sorted(here.tmpdir.iterdir()) == []
        assert tree_bytes(here.project) == here.project_before
        with zipfile.ZipFile(here.out / "deployment.zip") as archive:
            assert "app.py" in archive.namelist()


# --- 4. SIGTERM while pip works leaves none of pip's temporary files --------------------------


@pytest.fixture
def stalling_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ControlledIndex]:
    index = ControlledIndex(tmp_path / "index")
    index.start()
    monkeypatch.setenv("PIP_INDEX_URL", index.url)
    index.control.mode = "stall"
    yield index
    index.stop()


@pytest.mark.parametrize("to_group", [False, True], ids=["to-chalicepack", "to-its-group"])
def test_sigterm_while_pip_downloads_removes_pips_temporary_files_and_ends_pip(
    tmp_path: Path, stalling_index: ControlledIndex, to_group: bool
) -> None:
    stalling_index.add_wheel("alpha", "1.0", files={"alpha/data.bin": os.urandom(300_000)})
    here = scene(tmp_path, {"requirements.txt": "alpha==1.0\n"})

    build = here.start("--resolver", "pip")
    wait_for(stalling_index.control.downloading.is_set, build)
    pips = children_of(build.pid)
    assert any(here.tmpdir.rglob("pip-*")), "pip holds no temporary files yet"
    if to_group:  # as a CI runner cancels a job
        os.killpg(build.pid, signal.SIGTERM)
    else:
        build.send_signal(signal.SIGTERM)
    stdout, stderr = build.communicate(timeout=WAIT)

    assert build.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.splitlines()[-1].endswith(
        "terminated; temporary files removed, previous artifacts left as they were"
    )
    assert stdout == ""
    assert pips and not any(alive(pid) for pid in pips)
    here.settled()


# --- 5. builds racing into one output directory ---------------------------------------------


def assert_consistent(out: Path) -> None:
    """The report, the zips and their digests describe one and the same build."""
    report = json.loads((out / "build-report.json").read_text())
    artifacts = report["artifacts"]
    for artifact in artifacts.values():
        path = Path(artifact["path"])
        assert path.parent == out
        assert hashlib.sha256(path.read_bytes()).hexdigest() == artifact["sha256"]
    with zipfile.ZipFile(out / "deployment.zip") as archive:
        function = archive.namelist()
    layered = report["automatic_layer"]
    assert set(artifacts) == ({"deployment", "layer"} if layered else {"deployment"})
    assert (out / "layer-deployment.zip").exists() == layered
    assert ("alpha/__init__.py" in function) != layered  # the dependencies ship exactly once
    if layered:
        with zipfile.ZipFile(out / "layer-deployment.zip") as archive:
            assert any(n.endswith("site-packages/alpha/__init__.py") for n in archive.namelist())
    assert temporary_files(out) == []


def test_twenty_pairs_of_builds_with_different_options_into_one_directory_stay_consistent(
    tmp_path: Path, index: PackageIndex
) -> None:
    index.add_wheel("alpha", "1.0", files={"alpha/__init__.py": "A = 1\n"})
    project = make_project(tmp_path / "app", {"requirements.txt": "alpha==1.0\n"})
    out, cache = tmp_path / "out", tmp_path / "cache"
    command = [sys.executable, "-m", "chalicepack", "build", str(project), "--out", str(out)]
    command += ["--cache-dir", str(cache)]

    for pair in range(20):
        # A pattern new to each pair: neither build can take the last one's zips as its own,
        # so both write (the import check, as by default, widens the window).
        fresh = ["--exclude", f"nothing-{pair}"]
        builds = [
            subprocess.Popen(
                [*command, *fresh, option], stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for option in ("--automatic-layer", "--no-automatic-layer")
        ]
        for build in builds:
            _, stderr = build.communicate(timeout=WAIT)
            assert build.returncode == 0, stderr.decode()
        assert_consistent(out)  # (which build wrote last is up to the scheduler)

    assert cache_scratch(cache) == []


# --- 6. --cache-dir naming a file --------------------------------------------------------------


@pytest.mark.parametrize("below", ["", "wheels"], ids=["the-file", "below-the-file"])
def test_a_cache_dir_that_is_a_file_is_bad_input_naming_the_option(
    tmp_path: Path, index: PackageIndex, below: str
) -> None:
    index.add_wheel("alpha", "1.0")
    here = scene(tmp_path, {"requirements.txt": "alpha==1.0\n"})
    here.cache.write_text("not a folder\n")
    given = here.cache / below if below else here.cache

    command = [sys.executable, "-m", "chalicepack", "build", str(here.project)]
    command += ["--out", str(here.out), "--cache-dir", str(given)]
    completed = subprocess.run(command, capture_output=True, text=True, env=here.env())

    assert completed.returncode == 2, completed.stderr
    assert error_line(completed.stderr) == (
        f"--cache-dir {given}: {here.cache} is a file, not a directory; name a directory "
        "(it is created when missing)"
    )
    assert "Errno" not in completed.stderr
    assert here.cache.read_text() == "not a folder\n"
    assert_untouched(here.out, here.previous)
    assert sorted(here.tmpdir.iterdir()) == []
    assert tree_bytes(here.project) == here.project_before


def test_an_output_directory_that_is_a_file_is_bad_input_before_any_work(
    tmp_path: Path, index: PackageIndex
) -> None:
    # `--out dist/deployment.zip`: the zip's path given where its folder is wanted.
    index.add_wheel("alpha", "1.0")
    here = scene(tmp_path, {"requirements.txt": "alpha==1.0\n"})
    given = tmp_path / "deployment.zip"
    given.write_bytes(b"an earlier zip")

    command = [sys.executable, "-m", "chalicepack", "build", str(here.project)]
    command += ["--out", str(given), "--cache-dir", str(here.cache)]
    completed = subprocess.run(command, capture_output=True, text=True, env=here.env())

    assert completed.returncode == 2, completed.stderr
    assert error_line(completed.stderr) == (
        f"the output directory {given}: {given} is a file, not a directory; name a directory "
        "(it is created when missing)"
    )
    assert "resolv" not in completed.stderr  # refused before any work
    assert given.read_bytes() == b"an earlier zip"
    assert sorted(here.tmpdir.iterdir()) == []


# --- 7. a cached installed tree damaged without changing its size ----------------------------

IMPORTS_ALPHA = "import alpha\nfrom chalice import Chalice\n\napp = Chalice(app_name='testapp')\n"

# The installed tree keeps a dependency's .py files in its wheel (they are written when a real
# file is needed): damage can reach its other files, and its .py files once written. This
# alpha lists its own folder at import, which fails while its .py files are in the wheel: the
# first build writes them out and imports again.
LISTS_ITSELF = (
    "import os\nassert '__init__.py' in os.listdir(os.path.dirname(__file__))\nVALUE = 1\n"
)
READS_DATA = (
    "import os\nVALUE = int(open(os.path.join(os.path.dirname(__file__), 'v.txt')).read())\n"
)
DAMAGE = {
    "a-module-written-out": ({"alpha/__init__.py": LISTS_ITSELF}, "alpha/__init__.py"),
    "a-data-file": ({"alpha/__init__.py": READS_DATA, "alpha/v.txt": "1\n"}, "alpha/v.txt"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_same_size_damage_in_a_cached_tree_is_found_not_blamed_on_the_dependency(
    tmp_path: Path, index: PackageIndex, case: str
) -> None:
    alpha, damaged_path = DAMAGE[case]
    index.add_wheel("alpha", "1.0", files=dict(alpha))
    files: dict[str, str | bytes] = {"requirements.txt": "alpha==1.0\n", "app.py": IMPORTS_ALPHA}
    here = scene(tmp_path, files)
    first = here.build("--out", str(tmp_path / "first"))
    assert first.returncode == 0, first.stderr
    (site_packages,) = here.cache.glob("trees/*/site-packages")
    module = site_packages / damaged_path
    intact = module.read_bytes()
    written = module.stat().st_mtime
    module.write_bytes(intact.replace(b"1", b")"))  # same size, not Python nor a number
    # Later, as damage comes (within the same second, the bytecode kept for the file, which
    # Python matches by size and whole seconds of mtime, would still stand for it).
    os.utime(module, (written + 10, written + 10))
    here.cache_before = cache_files(here.cache) - {site_packages.parent.name + "/installed.json"}

    damaged = here.build()

    assert damaged.returncode == 1, damaged.stderr
    message = error_line(damaged.stderr)
    assert message.startswith("the installed dependencies in the cache are damaged (")
    assert f"{damaged_path} in" in message
    assert "the tree was dropped from the cache: build again" in message
    # The wheel's digest, verified again; the .py files the retried import wrote.
    here.settled(cache_may_gain=("wheels/digests.json", f"trees/{site_packages.parent.name}/"))
    assert not (site_packages.parent / "installed.json").exists()

    again = here.build("--json")
    assert again.returncode == 0, again.stderr
    assert module.read_bytes() == intact  # installed afresh from the verified wheel


# --- 8. an index that accepts connections and never answers (conftest's silent_index) --------


# Each request may wait 3 s and is tried twice: one resolver's wait is about 6 s (plus uv's
# back-off); uv's then pip's would be twice that.
SILENT_LIMITS = {"PIP_TIMEOUT": "3", "PIP_RETRIES": "1"}


@pytest.mark.parametrize("resolver", ["auto", "pip"])
def test_an_index_that_never_answers_is_waited_on_once_and_the_wait_is_said(
    tmp_path: Path, silent_index: str, resolver: str
) -> None:
    here = scene(tmp_path, {"requirements.txt": "alpha==1.0\n"})

    started = time.monotonic()
    result = here.build("--resolver", resolver, env=SILENT_LIMITS)
    elapsed = time.monotonic() - started

    assert result.returncode == 1, result.stderr
    waiting = "uv to resolve requirements.txt" if resolver == "auto" else "pip install"
    assert f"chalicepack: waiting 5 s so far for {waiting}" in result.stderr
    assert "(index requests time out after 3 s, retried 1 times)" in result.stderr
    message = error_line(result.stderr)
    assert message.startswith(f"{here.project / 'requirements.txt'}: could not reach the package")
    assert f"{silent_index}alpha/" in message
    assert elapsed < 12, f"{elapsed:.1f} s: the index was waited on more than once"
    here.settled()


@pytest.mark.parametrize("resolver", ["auto", "pip"])
def test_one_bound_ends_the_whole_resolution_whatever_each_request_may_wait(
    tmp_path: Path, silent_index: str, resolver: str
) -> None:
    """Each request may wait 60 s here; the resolution's bound (4 s) ends the build anyway,
    uv's wait and pip's together (issue 19 item 4)."""
    here = scene(tmp_path, {"requirements.txt": "alpha==1.0\n"})
    limits = {"PIP_TIMEOUT": "60", "PIP_RETRIES": "1", "CHALICEPACK_RESOLVE_TIMEOUT": "4"}

    started = time.monotonic()
    result = here.build("--resolver", resolver, env=limits)
    elapsed = time.monotonic() - started

    assert result.returncode == 1, result.stderr
    message = error_line(result.stderr)
    requirements = here.project / "requirements.txt"
    assert message.startswith(f"{requirements}: resolving did not end within 4 s"), message
    waiting = "uv to resolve requirements.txt" if resolver == "auto" else "pip install"
    assert f"it was waiting for {waiting}" in message
    assert f"from the package index {silent_index};" in message
    assert "set CHALICEPACK_RESOLVE_TIMEOUT to more seconds to wait longer" in message
    # Behaviour, not speed: one request alone could hold the build 120 s.
    assert elapsed < 4 + 30, f"{elapsed:.1f} s: the bound did not end the resolution"
    here.settled()


def test_a_resolution_bound_that_is_not_seconds_is_bad_input_naming_the_variable(
    tmp_path: Path,
) -> None:
    here = scene(tmp_path, {"requirements.txt": "alpha==1.0\n"})

    result = here.build(env={"CHALICEPACK_RESOLVE_TIMEOUT": "ten"})

    assert result.returncode == 2, result.stderr
    assert error_line(result.stderr) == (
        "CHALICEPACK_RESOLVE_TIMEOUT='ten': give the bound in seconds, a number above 0"
    )
    here.settled()


# --- 9. an app_name Lambda cannot use --------------------------------------------------------


@pytest.mark.parametrize(
    ("app_name", "problem"),
    [
        ("a" * 100, "is 104 characters; Lambda function names take at most 64"),
        ("my app", "holds ' '; Lambda function names take only letters, digits, '-' and '_'"),
    ],
    ids=["100-characters", "a-space"],
)
def test_an_app_name_lambda_cannot_use_is_bad_input_naming_app_name_and_the_limit(
    tmp_path: Path, app_name: str, problem: str
) -> None:
    here = scene(tmp_path, {}, app_name=app_name)

    result = here.build()

    assert result.returncode == 2, result.stderr
    config = here.project / ".chalice" / "config.json"
    assert error_line(result.stderr) == (
        f"{config}: app_name: the Lambda function Chalice names {app_name + '-dev'!r} "
        f"(<app_name>-<stage>) {problem}: shorten app_name to at most 60 letters, digits, "
        "'-' or '_' (or rename the stage)"
    )
    here.settled()


def test_stages_and_functions_whose_names_overflow_are_warnings(tmp_path: Path) -> None:
    app_name = "a" * 50
    app = (
        "from chalice import Chalice\n\n"
        f"app = Chalice(app_name={app_name!r})\n\n"
        "@app.lambda_function(name='nightly_report_for_every_tenant')\n"
        "def nightly(event, context):\n    return {}\n"
    )
    stages = {"dev": {}, "production-eu-west-1": {}}
    function_name = f"{app_name}-dev-nightly_report_for_every_tenant"
    here = scene(tmp_path, {"app.py": app}, app_name=app_name, stages=stages)

    result = here.build("--json")

    assert result.returncode == 0, result.stderr
    config = here.project / ".chalice" / "config.json"
    assert (
        f"{config}: stages.production-eu-west-1: its Lambda function name "
        f"{app_name + '-production-eu-west-1'!r} is 71 characters" in result.stderr
    )
    assert "stage 'production-eu-west-1' cannot be deployed" in result.stderr
    assert (
        "function 'nightly_report_for_every_tenant': the Lambda function name "
        f"{function_name!r} is {len(function_name)} characters" in result.stderr
    )
    assert json.loads(result.stdout)["app_name"] == app_name
