"""The environment a source build runs in: zig as the C/C++ compiler, aimed at the target.

``zig cc -target <machine>-linux-gnu.<glibc>`` links against stubs of exactly that glibc
version, so a module built here needs no newer glibc than the Lambda runtime's whatever this
machine's glibc is, and ``-target aarch64-...`` builds arm64 modules on x86_64 (and the
reverse) with no cross toolchain installed. setuptools (and distutils-style backends) read
``CC``/``CXX``/``LDSHARED`` from the environment; ``_PYTHON_HOST_PLATFORM`` makes
``sysconfig.get_platform()`` (and so the wheel's platform tag) the target's, and
``SETUPTOOLS_EXT_SUFFIX`` names the modules for the target's interpreter.

Backends that drive a build system of their own are told the target the way that system
expects, in files written beside zig's cache: CMake (scikit-build-core) reads a toolchain
file named by ``CMAKE_TOOLCHAIN_FILE``, which makes it a cross build for the target's Linux
machine (FindPython then no longer asks this machine's interpreter for its module suffix);
scikit-build-core itself takes the wheel's platform from ``_PYTHON_HOST_PLATFORM`` and its
``SKBUILD_SOABI`` from ``SETUPTOOLS_EXT_SUFFIX``. Meson (meson-python) reads no variable for
it: a cross file, handed to the backend as the config setting ``setup-args``
(``sourcebuild``), names zig as the target's compiler and the target's machine; without one
meson refuses zig's output as "not runnable" instead of building for this machine. Meson
names modules as the Python it runs reports (this machine's suffix) unless given the target
Python's PEP 739 build details (``python.build_config``): ``meson_python_config`` writes them,
for the interpreter of the target's minor, with the target's platform and module suffix.
maturin links with zig itself (its ``--zig``, cargo-zigbuild built in) when told the target's
Rust triple and manylinux policy (``MATURIN_PEP517_ARGS``); it needs a Rust toolchain with
the target's standard library, which ``rust_missing`` checks before any build.

``host_toolchain`` is the other environment: this machine's own compiler, as ``chalice
package`` builds, tried first when the target's machine is this one's (see ``sourcebuild``
for when its result is kept).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from chalicepack.deps.interpreters import Interpreter
from chalicepack.inputs.target import Target

# Flags that choose the CPU's instruction set: a module built with them may use instructions
# Lambda's CPUs lack, which nothing in the ELF file (and so no policy check) shows.
_ISA_FLAGS = re.compile(r"(^|\s)-(march|mcpu|mtune=native|mavx|msse4|mfma|mbmi)")


@dataclass(frozen=True)
class Toolchain:
    """The compiler a build used, as the report names it."""

    compiler: str  # "zig cc -target aarch64-linux-gnu.2.26", "gcc (this machine's)", "none"
    env: dict[str, str]
    meson_cross_file: Path | None = None  # for meson-python's ``--cross-file``


def zig_binary() -> Path | None:
    """The zig executable of the installed ``ziglang`` package, None when it is absent."""
    spec = importlib.util.find_spec("ziglang")
    if spec is None or not spec.submodule_search_locations:
        return None
    binary = Path(next(iter(spec.submodule_search_locations))) / "zig"
    return binary if binary.is_file() else None


def zig_target(target: Target) -> str:
    return "{}-linux-gnu.{}.{}".format(target.machine, *target.glibc)


def ext_suffix(target: Target) -> str:
    """The file name ending of the target interpreter's extension modules."""
    return f".cpython-{target.abi.removeprefix('cp')}-{target.machine}-linux-gnu.so"


def toolchain(target: Target, cache_dir: Path) -> Toolchain:
    """The environment that makes a build compile for ``target`` (zig's caches in
    ``cache_dir``, so its libc stubs are built once per target and kept)."""
    zig = zig_binary()
    platform_env = {
        "_PYTHON_HOST_PLATFORM": f"linux-{target.machine}",
        "SETUPTOOLS_EXT_SUFFIX": ext_suffix(target),
    }
    if zig is None:
        return Toolchain("none (ziglang is not installed)", {**platform_env, **without_compiler()})
    flags = f"-target {zig_target(target)}"
    files = _cross_files(zig, target, cache_dir / "cross")
    cc = f"{shlex.quote(str(zig))} cc {flags}"
    cxx = f"{shlex.quote(str(zig))} c++ {flags}"
    env = {
        **platform_env,
        "CC": cc,
        "CXX": cxx,
        # distutils links with LDSHARED alone; no -L/-rpath into this machine's Python.
        "LDSHARED": f"{cc} -shared",
        "LDCXXSHARED": f"{cxx} -shared",
        # zig builds its libc stubs once per target and keeps them here; a cache the user
        # (or CI) already gives zig wins.
        "ZIG_GLOBAL_CACHE_DIR": os.environ.get("ZIG_GLOBAL_CACHE_DIR") or str(cache_dir / "zig"),
        "ZIG_LOCAL_CACHE_DIR": os.environ.get("ZIG_LOCAL_CACHE_DIR") or str(cache_dir / "zig"),
        # maturin links with zig itself (cargo-zigbuild, built in) for the target's triple
        # and glibc, given the same zig; its own arguments, when the user gives some, win.
        "MATURIN_PEP517_ARGS": os.environ.get("MATURIN_PEP517_ARGS")
        or "--zig --target {} --compatibility manylinux_{}_{}".format(
            rust_triple(target), *target.glibc
        ),
        "CARGO_ZIGBUILD_ZIG_PATH": str(zig),
    }
    if platform.machine() != target.machine:
        # Only for another machine: the toolchain file makes any CMake build a cross build,
        # where try_run() and check_c_source_runs() cannot run what they compile.
        env["CMAKE_TOOLCHAIN_FILE"] = str(files.cmake)
    return Toolchain(f"zig cc {flags}", env, meson_cross_file=files.meson)


@dataclass(frozen=True)
class _CrossFiles:
    cmake: Path
    meson: Path


def _cross_files(zig: Path, target: Target, directory: Path) -> _CrossFiles:
    """CMake's toolchain file and meson's cross file for ``target``, written into
    ``directory`` (once; a build running beside this one may be reading them)."""
    name = zig_target(target)
    # The compilers are CC/CXX (CMake reads them); the toolchain says what they build for.
    cmake = f"set(CMAKE_SYSTEM_NAME Linux)\nset(CMAKE_SYSTEM_PROCESSOR {target.machine})\n"
    words = [str(zig), "cc", "-target", name]
    meson = (
        "[binaries]\n"
        f"c = {words!r}\n"
        f"cpp = {[str(zig), 'c++', '-target', name]!r}\n"
        f"ar = {[str(zig), 'ar']!r}\n"
        f"ranlib = {[str(zig), 'ranlib']!r}\n\n"
        "[host_machine]\n"
        f"system = 'linux'\ncpu_family = '{target.machine}'\ncpu = '{target.machine}'\n"
        "endian = 'little'\n"
    )
    return _CrossFiles(
        _written(directory / f"{name}.cmake", cmake), _written(directory / f"{name}.ini", meson)
    )


def _written(path: Path, text: str) -> Path:
    """``path``, holding ``text``: replaced whole when it held anything else."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    return path


def without_compiler() -> dict[str, str]:
    """The environment of a build with no C compiler: optional C speedups are skipped."""
    return {"CC": "false", "CXX": "false", "LDSHARED": "false", "LDCXXSHARED": "false"}


def host_toolchain(target: Target, interpreter: Interpreter) -> Toolchain | None:
    """This machine's C compiler, as ``chalice package`` builds with it, when the target's
    machine is this one's and ``interpreter`` (the target's minor) can compile extensions;
    None when a build with it is not worth trying: another machine, no ``Python.h``, or flags
    that tune the code to this CPU."""
    if sys.platform != "linux" or platform.machine() != target.machine:
        return None
    if not interpreter.headers:
        return None
    given = os.environ.get("CC", "")
    flags = " ".join([given, os.environ.get("CFLAGS", ""), interpreter.cc, interpreter.cflags])
    if _ISA_FLAGS.search(flags):
        return None
    words = (given or interpreter.cc or "cc").split()
    name = Path(words[0]).name if words else "cc"
    # No variable set: setuptools takes the interpreter's own CC and LDSHARED, as for chalice.
    return Toolchain(f"{name} (this machine's)", {})


# The target interpreter's own facts a PEP 739 build-details.json holds, asked of it.
_BUILD_DETAILS = """
import json, sys, sysconfig
print(json.dumps({
    "base_prefix": sys.base_prefix,
    "version": "%d.%d" % sys.version_info[:2],
    "flags": list(sys.abiflags),
    "headers": sysconfig.get_paths()["include"],
}))
"""


def meson_python_config(target: Target, python: Path, directory: Path) -> Path | None:
    """The PEP 739 build details of ``python`` (a CPython of the target's minor) as it
    would be on the target's machine, for meson's ``python.build_config``; None when
    ``python`` cannot say (the build then fails rather than naming modules for this
    machine)."""
    try:
        done = subprocess.run(
            [str(python), "-I", "-c", _BUILD_DETAILS], capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=60, check=True,
        )  # fmt: skip
        facts = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    details = {
        "schema_version": "1.0",
        "base_prefix": facts["base_prefix"],
        "platform": f"linux-{target.machine}",
        "language": {"version": facts["version"]},
        "implementation": {"name": "cpython"},
        "abi": {
            "flags": facts["flags"],
            "extension_suffix": ext_suffix(target),
            "stable_abi_suffix": ".abi3.so",
        },
        # Linux extension modules do not link libpython: the interpreter provides it.
        "libpython": {"link_extensions": False},
        "c_api": {"headers": facts["headers"]},
    }
    text = json.dumps(details, indent=2, sort_keys=True) + "\n"
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return _written(directory / f"build-details-{digest}.json", text)


def rust_triple(target: Target) -> str:
    return f"{target.machine}-unknown-linux-gnu"


def rust_missing(target: Target) -> str | None:
    """Why a Rust extension (maturin) cannot be built here for ``target``: no cargo, or no
    Rust standard library for the target's triple (``rustup target add`` installs it); None
    when both are installed."""
    triple = rust_triple(target)
    cargo, rustc = shutil.which("cargo"), shutil.which("rustc")
    if cargo is None or rustc is None:
        return f"no Rust toolchain is installed here (no {'cargo' if cargo is None else 'rustc'})"
    try:
        done = subprocess.run(
            [rustc, "--print", "target-libdir", "--target", triple], capture_output=True,
            text=True, stdin=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as error:
        return f"rustc could not be run ({error})"
    libdir = Path(done.stdout.strip())
    if done.returncode != 0 or not any(libdir.glob("libstd-*")):
        return f"the Rust toolchain here has no standard library for {triple}"
    return None
