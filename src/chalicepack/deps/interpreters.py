"""A CPython of the target runtime's minor on this machine, to build source distributions with.

Searched, in order: the running interpreter, ``python3.X`` on PATH, pyenv's versions
(``$PYENV_ROOT``, else ``~/.pyenv``), then uv-managed interpreters (``uv python install 3.X``).
None of them: ``interpreter_for`` takes the one in chalicepack's cache, else has uv download
one there (python-build-standalone's CPython, ~30 MB), so a build for any runtime works on any
machine and an actions/cache restore carries it; ``UV_PYTHON_DOWNLOADS=never`` (or
``manual``) forbids the download, and uv's ``UV_PYTHON_INSTALL_MIRROR`` and
``UV_PYTHON_DOWNLOADS_JSON_URL`` choose where it comes from.
Each candidate is run once to ask what it is: a pyenv shim on PATH exists for every installed
version but fails for those not selected, and a name says nothing about the build (a
free-threaded or a PyPy ``python3.X`` builds modules the Lambda runtime cannot load).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from chalicepack.deps import children

log = logging.getLogger(__name__)

# What a candidate says about itself: its version, implementation, whether it is a
# free-threaded build (another ABI), whether its C headers are installed, and the compiler
# and flags it builds extensions with (``crossbuild.host_toolchain`` reads them).
_PROBE = (
    "import json, os, sys, sysconfig; "
    "include = sysconfig.get_paths()['include']; "
    "cc = sysconfig.get_config_var('CC') or ''; "
    "cflags = ' '.join(sysconfig.get_config_var(n) or '' for n in ('CFLAGS', 'CCSHARED')); "
    "print(json.dumps({'executable': sys.executable, 'version': list(sys.version_info[:3]), "
    "'cc': cc, 'cflags': cflags, "
    "'implementation': sys.implementation.name, "
    "'free_threaded': bool(sysconfig.get_config_var('Py_GIL_DISABLED')), "
    "'headers': os.path.isfile(os.path.join(include, 'Python.h'))}))"
)


@dataclass(frozen=True)
class Interpreter:
    path: Path
    version: tuple[int, int, int]
    found_by: str  # "running", "PATH", "pyenv", "uv", "uv, in chalicepack's cache"
    headers: bool  # Python.h is installed: C extensions can be compiled against it
    cc: str = ""  # the C compiler it builds extensions with (sysconfig's CC)
    cflags: str = ""  # and the flags (sysconfig's CFLAGS and CCSHARED)

    def describe(self) -> str:
        return "CPython {}.{}.{} at {} (found by {})".format(
            *self.version, self.path, self.found_by
        )


@dataclass(frozen=True)
class NotProvided:
    """No CPython of the minor here, and none downloaded: ``why`` the download did not give one."""

    why: str


def how_to_provide(version: str) -> str:
    """The fix when no interpreter of ``version`` (``3.12``) is found."""
    return (
        f"install CPython {version} where chalicepack finds it: `uv python install {version}`, "
        f"`pyenv install {version}`, or a python{version} on PATH (e.g. Debian's "
        f"python{version} and python{version}-dev)"
    )


@cache
def find_interpreter(version: str) -> Interpreter | None:
    """The first usable CPython ``version`` (``3.12``), or None when none is installed."""
    for path, found_by in _candidates(version):
        interpreter = _probe(path, found_by, version)
        if interpreter is not None:
            return interpreter
    return None


# One download at a time: sdists build in threads, and each would otherwise fetch the same
# interpreter (uv's own lock on the folder makes the others wait, then install it again).
_DOWNLOADING = threading.Lock()


def interpreter_for(version: str, install_dir: Path) -> Interpreter | NotProvided:
    """A CPython ``version`` found on this machine, else the one uv installed into
    ``install_dir`` (chalicepack's cache), else one uv downloads there now."""
    found = find_interpreter(version)
    if found is not None:
        return found
    with _DOWNLOADING:
        return _cached_or_downloaded(version, install_dir)


@cache
def _cached_or_downloaded(version: str, install_dir: Path) -> Interpreter | NotProvided:
    cached = _in_install_dir(version, install_dir)
    if cached is not None:
        return cached
    setting = os.environ.get("UV_PYTHON_DOWNLOADS", "").strip().lower()
    if setting in ("never", "manual"):
        return NotProvided(f"downloading one is off (UV_PYTHON_DOWNLOADS={setting})")
    log.info(
        "downloading CPython %s for python%s's source builds (uv python install) into %s",
        version, version, install_dir,
    )  # fmt: skip
    failed = _uv_install(version, install_dir)
    if failed is not None:
        return NotProvided(f"downloading one failed: {failed}")
    installed = _in_install_dir(version, install_dir)
    if installed is None:
        return NotProvided(f"uv installed CPython {version} into {install_dir}; it does not run")
    return installed


def _in_install_dir(version: str, install_dir: Path) -> Interpreter | None:
    if not install_dir.is_dir():
        return None
    managed = _uv_managed(version, install_dir)
    return None if managed is None else _probe(managed, "uv, in chalicepack's cache", version)


def _uv_install(version: str, install_dir: Path) -> str | None:
    """None when uv installed CPython ``version`` into ``install_dir``, else why not (one line)."""
    uv = _uv()
    if uv is None:
        return "uv is not installed"
    # --no-bin: no python3.X put into the user's ~/.local/bin; --no-config: no project's
    # settings (the UV_PYTHON_* variables still apply).
    command = [uv, "python", "install", "--no-bin", "--no-config", "--no-progress"]
    command += ["--install-dir", str(install_dir), f"cpython@{version}"]
    # As a child chalicepack ends with itself (SIGTERM, Ctrl-C), a long wait said on stderr.
    with tempfile.TemporaryDirectory(prefix="chalicepack-python-") as scratch:
        try:
            process = children.start(command, os.environ, Path(scratch))
        except OSError as error:
            return str(error)
        _, stderr = children.finish(process, f"uv to download CPython {version}")
    if process.returncode == 0:
        return None
    said = " ".join(line.strip() for line in stderr.splitlines() if line.strip())
    return said.removeprefix("error: ")[:400] or f"uv exited with {process.returncode}"


def _candidates(version: str) -> Iterator[tuple[Path, str]]:
    yield Path(sys.executable), "running"
    on_path = shutil.which(f"python{version}")
    if on_path:
        yield Path(on_path), "PATH"
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    pyenv = sorted(
        (root / "versions").glob(f"{version}.*/bin/python{version}"),
        key=lambda path: _patch_level(path.parent.parent.name),
        reverse=True,
    )
    yield from ((path, "pyenv") for path in pyenv)
    managed = _uv_managed(version, None)
    if managed is not None:
        yield managed, "uv"


def _patch_level(name: str) -> tuple[int, ...]:
    parts = name.split(".")
    return tuple(int(part) if part.isdigit() else -1 for part in parts)


def _uv_managed(version: str, install_dir: Path | None) -> Path | None:
    """uv's own installs only (in ``install_dir``, else uv's usual place): its PATH search
    would stop at the first broken pyenv shim."""
    uv = _uv()
    if uv is None:
        return None
    env = dict(os.environ)
    if install_dir is not None:
        env["UV_PYTHON_INSTALL_DIR"] = str(install_dir)

    command = [uv, "python", "find", "--managed-python", "--no-project"]
    command += ["--no-config", "--offline", "--no-python-downloads", f"cpython@{version}"]
    try:
        found = subprocess.run(
            command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30, env=env
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return Path(found.stdout.strip()) if found.returncode == 0 and found.stdout.strip() else None


def _uv() -> str | None:
    # uv_resolver imports the resolvers, which import this module: imported when first used.
    from chalicepack.deps.uv_resolver import uv_binary

    return uv_binary()


def _probe(path: Path, found_by: str, version: str) -> Interpreter | None:
    try:
        answer = subprocess.run(
            [str(path), "-I", "-c", _PROBE],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=30,
        )
        facts = json.loads(answer.stdout) if answer.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        facts = None
    if not isinstance(facts, dict):
        return None
    major, minor, micro = facts["version"]
    if f"{major}.{minor}" != version or facts["implementation"] != "cpython":
        return None
    if facts["free_threaded"]:
        log.debug("%s is a free-threaded build: not the Lambda runtime's ABI", path)
        return None
    return Interpreter(
        Path(facts["executable"]), (major, minor, micro), found_by, facts["headers"],
        facts["cc"], facts["cflags"],
    )  # fmt: skip
