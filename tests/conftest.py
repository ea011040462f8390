"""Shared fixtures: a real package index and a moto_server on 127.0.0.1, Chalice projects from
dicts, the CLI run as a real process, and isolation from this machine's own pip configuration."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from arm64root import Arm64Root, cached_arm64_root
from motoserver import MotoServer
from pkgindex import PackageIndex

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_APP = ROOT / "examples" / "docs-app"


@pytest.fixture(autouse=True, scope="session")
def _isolated_from_machine_pip_config() -> Iterator[None]:
    """pip must see only the index a test gives it, or resolution tests prove nothing."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("PIP_"):
            del os.environ[name]
    os.environ["PIP_CONFIG_FILE"] = os.devnull
    # Nor download a CPython from the internet for a runtime this machine lacks: a test that
    # means to (tests/test_interpreter_download.py) serves one on 127.0.0.1 and allows it.
    os.environ["UV_PYTHON_DOWNLOADS"] = "never"
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(autouse=True, scope="session")
def _shared_zig_cache() -> Iterator[None]:
    """Source builds compile with zig, which builds its libc stubs once per target (about 15 s
    each): every test's build shares one zig cache, kept under build/ between runs (chalicepack
    uses a ZIG_GLOBAL_CACHE_DIR it is given rather than its own cache dir's)."""
    saved = dict(os.environ)
    cache = ROOT / "build" / "zig-cache"
    os.environ["ZIG_GLOBAL_CACHE_DIR"] = os.environ["ZIG_LOCAL_CACHE_DIR"] = str(cache)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PackageIndex]:
    """An empty index on 127.0.0.1 that pip (and so chalicepack) resolves against."""
    package_index = PackageIndex(tmp_path / "index")
    package_index.start()
    monkeypatch.setenv("PIP_INDEX_URL", package_index.url)
    yield package_index
    package_index.stop()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto_server on 127.0.0.1 for the session; a test calls ``reset()`` for an empty one."""
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto_server.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def arm64_root() -> Arm64Root:
    """An arm64 Debian root that runs aarch64 CPython 3.11 under qemu (tests marked ``arm64``)."""
    return cached_arm64_root()


def write_tree(root: Path, files: Mapping[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


DEFAULT_APP = 'from chalice import Chalice\n\napp = Chalice(app_name="testapp")\n'


def make_project(
    root: Path,
    files: Mapping[str, str | bytes] | None = None,
    config: Mapping[str, Any] | None = None,
) -> Path:
    """A Chalice project: app.py and config.json by default, plus ``files``."""
    document = {"version": "2.0", "app_name": "testapp", "stages": {"dev": {}}}
    document.update(config or {})
    tree: dict[str, str | bytes] = {"app.py": DEFAULT_APP}
    tree[".chalice/config.json"] = json.dumps(document, indent=2)
    tree.update(files or {})
    return write_tree(root, tree)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


@pytest.fixture
def example_app(tmp_path: Path) -> Path:
    """A private copy of the bundled documentation example."""
    return Path(shutil.copytree(EXAMPLE_APP, tmp_path / "docs-app", symlinks=True))


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@pytest.fixture
def chalicepack(tmp_path: Path) -> Any:
    """Run the chalicepack CLI as a process, with a cache private to the test."""
    cache = tmp_path / "cache"

    def run(
        *args: str | Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> Run:
        command = [sys.executable, "-m", "chalicepack", *map(str, args)]
        if args and args[0] == "build" and "--cache-dir" not in args:
            command += ["--cache-dir", str(cache)]
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            timeout=600,
        )
        return Run(completed.returncode, completed.stdout, completed.stderr)

    return run


@pytest.fixture
def offline_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A region, no AWS config of this machine, and no way out to the internet: only the
    local index on 127.0.0.1 is reachable (pip goes through the dead proxy for anything else)."""
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # Credentials end botocore's search before it asks the instance metadata service.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")


@pytest.fixture
def two_private_indexes(tmp_path: Path) -> Iterator[tuple[PackageIndex, PackageIndex]]:
    """One index named in requirements.txt, one in PIP_EXTRA_INDEX_URL, each with a password."""
    indexes = [
        PackageIndex(tmp_path / name, auth=(name, f"pw-{name}-{secrets.token_hex(8)}"))
        for name in ("inreqs", "inenv")
    ]
    for index in indexes:
        index.start()
    yield indexes[0], indexes[1]
    for index in indexes:
        index.stop()


PYPI_PAGE = "https://pypi.org/simple/pip/"


def require_pypi() -> None:
    """Skip the calling test only when PyPI itself does not answer. Decided by asking PyPI
    directly, not from chalicepack's or a tool's own error: a regression in how they talk to
    an index (TLS, proxies, reading pip's errors) must fail, not skip."""
    try:
        with urllib.request.urlopen(PYPI_PAGE, timeout=20):
            pass
    except OSError as error:
        pytest.skip(f"PyPI cannot be reached from here ({PYPI_PAGE}: {error})")


@pytest.fixture
def silent_index(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An index (``PIP_INDEX_URL``) whose server accepts every connection and never sends a
    byte."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/simple/"
    monkeypatch.setenv("PIP_INDEX_URL", url)
    yield url
    # The thread ends before the connections are closed: none it accepts after is left open
    # (closed by the garbage collector in a later test, as an unraisable ResourceWarning).
    stop.set()
    thread.join()
    listener.close()
    for connection in accepted:
        connection.close()


def chalicepack_modules_loaded(*args: str | Path) -> tuple[subprocess.CompletedProcess[str], str]:
    """``chalicepack`` with ``args`` run in a new interpreter, in process (through
    ``cli.main``) so that what it imported can be read: the run, and the names of the
    chalicepack modules it had loaded when it ended (a sorted list's ``repr``)."""
    script = (
        "import sys\n"
        "from chalicepack.cli import main\n"
        f"code = main({[str(arg) for arg in args]!r})\n"
        "print(sorted(name for name in sys.modules if name.startswith('chalicepack')))\n"
        "sys.exit(code)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    return run, (run.stdout.splitlines() or [""])[-1]
