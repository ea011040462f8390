"""The environment a source build runs in: zig as the C/C++ compiler, aimed at the target.

``zig cc -target <machine>-linux-gnu.<glibc>`` links against stubs of exactly that glibc
version, so a module built here needs no newer glibc than the Lambda runtime's whatever this
machine's glibc is, and ``-target aarch64-...`` builds arm64 modules on x86_64 (and the
reverse) with no cross toolchain installed. setuptools (and distutils-style backends) read
``CC``/``CXX``/``LDSHARED`` from the environment; ``_PYTHON_HOST_PLATFORM`` makes
``sysconfig.get_platform()`` (and so the wheel's platform tag) the target's, and
``SETUPTOOLS_EXT_SUFFIX`` names the modules for the target's interpreter.

``host_toolchain`` is the other environment: this machine's own compiler, as ``chalice
package`` builds, tried first when the target's machine is this one's (see ``sourcebuild``
for when its result is kept).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import shlex
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
    }
    return Toolchain(f"zig cc {flags}", env)


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
