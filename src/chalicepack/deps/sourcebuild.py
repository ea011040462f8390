"""Wheels built here from source, kept only when they provably run on the target.

A built wheel is kept when it holds no compiled module (whatever its tag says), or when this
host's CPython minor and machine equal the target's and every ELF module needs no newer glibc
symbol version than the target's Amazon Linux provides. A compiled build that fails that test
is rebuilt once with no C compiler (``CC``/``CXX`` set to ``false``), the case of packages whose
C speedups are optional, and kept if the result is pure.
"""

from __future__ import annotations

import platform
import re
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from chalicepack.deps.pip import run_pip
from chalicepack.inputs.target import Target

if TYPE_CHECKING:
    from elftools.elf.elffile import ELFFile

_COMPILED = re.compile(r"\.(so(\.\d+)*|pyd|dylib)$")
_GLIBC = re.compile(r"^GLIBC_(\d+)\.(\d+)")
_ELF_MACHINE = {"EM_X86_64": "x86_64", "EM_AARCH64": "aarch64"}
_NO_COMPILER = {"CC": "false", "CXX": "false"}


@dataclass(frozen=True)
class BuiltWheel:
    path: Path
    pure: bool


@dataclass(frozen=True)
class Unusable:
    reason: str
    build_log: str | None = None


def build_for_target(
    requirement: str,
    target: Target,
    workdir: Path,
    *,
    pip_options: list[str],
    cache_dir: Path | None,
) -> BuiltWheel | Unusable:
    """Build ``requirement`` (``name==version`` or ``name @ url``) from source for ``target``."""
    built = _pip_wheel(requirement, workdir / "compiled", pip_options, cache_dir, env=None)
    if isinstance(built, Unusable):
        return built
    problem = target_problem(built, target)
    if problem is None:
        return BuiltWheel(built, pure=not compiled_members(built))
    # Maybe the C extension is optional: try once more with no compiler at all. A fresh
    # cache keeps pip from handing back the compiled wheel it just built.
    with tempfile.TemporaryDirectory(dir=workdir) as fresh_cache:
        retry = _pip_wheel(
            requirement, workdir / "pure", pip_options, Path(fresh_cache), env=_NO_COMPILER
        )
    if isinstance(retry, Path) and not compiled_members(retry):
        return BuiltWheel(retry, pure=True)
    return Unusable(f"built from source, but {problem}")


def _pip_wheel(
    requirement: str,
    wheel_dir: Path,
    pip_options: list[str],
    cache_dir: Path | None,
    env: dict[str, str] | None,
) -> Path | Unusable:
    shutil.rmtree(wheel_dir, ignore_errors=True)
    wheel_dir.mkdir(parents=True)
    args = ["wheel", "--no-deps", "--no-binary", ":all:", "--wheel-dir", str(wheel_dir)]
    result = run_pip([*args, *pip_options, requirement], cache_dir=cache_dir, env=env)
    wheels = sorted(wheel_dir.glob("*.whl"))
    if not result.ok or len(wheels) != 1:
        return Unusable("its source distribution failed to build", build_log=result.tail(20))
    return wheels[0]


def compiled_members(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return [name for name in archive.namelist() if _COMPILED.search(name)]


def target_problem(wheel: Path, target: Target) -> str | None:
    """Why ``wheel`` (built on this host) cannot run on ``target``; None when it can."""
    compiled = compiled_members(wheel)
    if not compiled:
        return None
    host = f"cp{sys.version_info.major}{sys.version_info.minor} {platform.machine()}"
    wanted = f"{target.abi} {target.machine}"
    if host != wanted:
        return f"its compiled modules are for {host} and the target is {wanted}"
    with zipfile.ZipFile(wheel) as archive:
        for name in compiled:
            with archive.open(name) as member:
                problem = _elf_problem(name, member.read(), target)
            if problem is not None:
                return problem
    return None


def _elf_problem(name: str, data: bytes, target: Target) -> str | None:
    import io

    # pyelftools loads only when a built wheel has compiled modules to read (~40 ms).
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        elf = ELFFile(io.BytesIO(data))
    except ELFError:
        return f"{name} is not a Linux (ELF) library"
    machine = _ELF_MACHINE.get(elf["e_machine"], elf["e_machine"])
    if machine != target.machine:
        return f"{name} is built for {machine}, the target is {target.machine}"
    newest = max(_glibc_versions(elf), default=(0, 0))
    if newest > target.glibc:
        return (
            f"{name} needs GLIBC_{newest[0]}.{newest[1]}; {target.runtime} has glibc "
            f"{target.glibc[0]}.{target.glibc[1]}"
        )
    return None


def _glibc_versions(elf: ELFFile) -> list[tuple[int, int]]:
    from elftools.elf.gnuversions import GNUVerNeedSection

    versions = []
    for section in elf.iter_sections():
        if not isinstance(section, GNUVerNeedSection):
            continue
        for _, auxiliaries in section.iter_versions():
            for auxiliary in auxiliaries:
                match = _GLIBC.match(auxiliary.name)
                if match:
                    versions.append((int(match[1]), int(match[2])))
    return versions


def retag_for_target(wheel: Path, target: Target, out_dir: Path) -> Path:
    """A copy of a verified host-built wheel named with the target's manylinux tag.

    pip selects by file name; a wheel built here is tagged ``linux_<machine>``, which the
    target's platform list rightly refuses for wheels from an index.
    """
    name, version = wheel.name.split("-")[:2]
    if not compiled_members(wheel):
        tag = "py3-none-any"
    else:
        tag = f"{target.abi}-{target.abi}-{target.platforms[0]}"
    out_dir.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(wheel, out_dir / f"{name}-{version}-{tag}.whl"))
