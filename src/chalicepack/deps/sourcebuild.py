"""Wheels built here from source for the target, kept only when they provably run on it.

An sdist is built by pip on a CPython of the target's minor found on this machine
(``deps.interpreters``), with zig as the C/C++ compiler aimed at the target's architecture and
glibc (``deps.crossbuild``). A pure result is kept; a compiled one is kept when its modules
are for the target and auditwheel fits it to the target's manylinux policy, grafting the
libraries it may carry (``deps.policy``). A compiled build that does not fit is rebuilt once
with no C compiler, the case of packages whose C speedups are optional, and kept if the
result is pure. With no interpreter of the target's minor, only a pure build can be kept.
"""

from __future__ import annotations

import logging
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from chalicepack.deps.buildrecord import SourceBuild
from chalicepack.deps.crossbuild import Toolchain, toolchain, without_compiler
from chalicepack.deps.interpreters import Interpreter, find_interpreter, how_to_provide
from chalicepack.deps.pip import PipResult, redact, run_pip
from chalicepack.deps.policy import audit, compiled_members, module_problem, policy_name
from chalicepack.inputs.target import Target

log = logging.getLogger(__name__)

_ERROR = re.compile(r"\berror\b", re.IGNORECASE)

# What a user should reach for when their sdist cannot be built to fit the target.
_BINARY_FIX = (
    "use a distribution that ships wheels with its libraries (such as psycopg2-binary for psycopg2)"
)


@dataclass(frozen=True)
class BuiltWheel:
    path: Path
    pure: bool
    record: SourceBuild | None = None


@dataclass(frozen=True)
class Unusable:
    reason: str
    build_log: str | None = None
    fix: str | None = None  # None: the resolver's usual fix (a release with a wheel, vendor/)
    record: SourceBuild | None = None
    # The sha256 of the file pip downloaded when it is not one of the hashes the build was
    # given (a lock's): not a build failure but a file that must not ship.
    unlisted_sha256: str | None = None


@dataclass(frozen=True)
class _Build:
    """What one build of the requirement is made with."""

    requirement: str
    name: str
    version: str
    target: Target
    pip_options: tuple[str, ...]
    cache_dir: Path  # pip's cache (its wheels are this toolchain's) and zig's
    interpreter: Interpreter | None
    hashes: tuple[str, ...] = ()  # sha256 digests the downloaded source must have (a lock's)

    def record(self, compiler: str, verdict: str, **details: Any) -> SourceBuild:
        described = None if self.interpreter is None else self.interpreter.describe()
        return SourceBuild(
            self.name, self.version, f"{self.target.runtime} {self.target.arch}", described,
            compiler, policy_name(self.target), verdict, **details,
        )  # fmt: skip


def build_for_target(
    requirement: str,
    target: Target,
    workdir: Path,
    *,
    pip_options: list[str],
    cache_dir: Path,
    name: str,
    version: str,
    hashes: Iterable[str] = (),
) -> BuiltWheel | Unusable:
    """Build ``requirement`` (``name==version`` or a path, URL or VCS reference) from
    source for ``target``; ``cache_dir`` holds what makes a second build fast. ``hashes``:
    the sha256 digests the source pip downloads must have (pip's hash-checking mode)."""
    interpreter = find_interpreter(target.version_text)
    build = _Build(
        requirement, name, version, target, tuple(pip_options), cache_dir, interpreter,
        tuple(sorted(hashes)),
    )  # fmt: skip
    if interpreter is None:
        return _build_without_interpreter(build, workdir)
    log.info(
        "building %s from source for %s %s with %s",
        redact(requirement), target.runtime, target.arch, interpreter.describe(),
    )  # fmt: skip
    tools = toolchain(target, cache_dir)
    built = _pip_wheel(build, workdir / "compiled", tools.env)
    if isinstance(built, Unusable):
        return built if built.unlisted_sha256 else _failed(build, tools, built)
    if not compiled_members(built):
        return BuiltWheel(built, pure=True, record=build.record(tools.compiler, "pure"))
    checked = _checked(build, tools, built, workdir / "repaired")
    if isinstance(checked, BuiltWheel):
        return checked
    # Maybe the C extension is optional: try once more with no compiler at all.
    retry = _pip_wheel(build, workdir / "pure", {**tools.env, **without_compiler()}, fresh=True)
    if isinstance(retry, Path) and not compiled_members(retry):
        log.info("%s: kept the build without its C extension", name)
        record = build.record("none (its C extension left out)", "pure", reason=checked.reason)
        return BuiltWheel(retry, pure=True, record=record)
    return checked


def _checked(build: _Build, tools: Toolchain, wheel: Path, out_dir: Path) -> BuiltWheel | Unusable:
    """The compiled ``wheel``, fitted to the target's policy, or why it cannot be."""
    problem = module_problem(wheel, build.target)
    if problem is not None:
        reason = f"built from source, but {problem}"
        record = build.record(tools.compiler, "refused", reason=reason)
        return Unusable(reason, fix=_BINARY_FIX, record=record)
    verdict = audit(wheel, build.target, out_dir)
    if verdict.wheel is None:
        reason = f"built from source, but {verdict.reason}"
        record = build.record(tools.compiler, "refused", reason=reason)
        return Unusable(reason, build_log=verdict.log, fix=_BINARY_FIX, record=record)
    if verdict.grafted:
        log.info("%s: grafted %s into its wheel", build.name, ", ".join(verdict.grafted))
    outcome = "repaired" if verdict.grafted else "fits"
    record = build.record(tools.compiler, outcome, grafted=verdict.grafted)
    return BuiltWheel(verdict.wheel, pure=False, record=record)


def _failed(build: _Build, tools: Toolchain, failed: Unusable) -> Unusable:
    interpreter = build.interpreter
    reason = failed.reason
    if interpreter is not None:
        reason += f" with {interpreter.describe()} and {tools.compiler}"
        if not interpreter.headers:
            reason += " (its C headers, Python.h, are not installed)"
    record = build.record(tools.compiler, "failed", reason=reason)
    return replace(failed, reason=reason, record=record)


def _build_without_interpreter(build: _Build, workdir: Path) -> BuiltWheel | Unusable:
    """No CPython of the target's minor: only a pure wheel, built by this one, can be kept."""
    version = build.target.version_text
    log.info(
        "building %s from source with this CPython %d.%d (no CPython %s found); only a pure "
        "build can be kept",
        redact(build.requirement), *sys.version_info[:2], version,
    )  # fmt: skip
    built = _pip_wheel(build, workdir / "pure", without_compiler())
    if isinstance(built, Unusable) and built.unlisted_sha256:
        return built
    compiler = "none (no CPython of the target's minor)"
    if isinstance(built, Path) and not compiled_members(built):
        return BuiltWheel(built, pure=True, record=build.record(compiler, "pure"))
    reason = f"it needs compiling, and no CPython {version} is installed here to build it with"
    log_tail = built.build_log if isinstance(built, Unusable) else None
    record = build.record(compiler, "failed", reason=reason)
    return Unusable(reason, build_log=log_tail, fix=how_to_provide(version), record=record)


def _pip_wheel(
    build: _Build, wheel_dir: Path, env: dict[str, str], *, fresh: bool = False
) -> Path | Unusable:
    shutil.rmtree(wheel_dir, ignore_errors=True)
    wheel_dir.mkdir(parents=True)
    # Only the requirement itself from source: its build requirements come as wheels.
    args = ["wheel", "--no-deps", "--wheel-dir", str(wheel_dir)]
    args += ["--no-binary", build.name, *build.pip_options]
    python = None if build.interpreter is None else build.interpreter.path
    with tempfile.TemporaryDirectory(dir=wheel_dir.parent) as scratch:
        # A fresh cache keeps pip from handing back the compiled wheel it just built.
        cache = Path(scratch) if fresh else build.cache_dir / "pip"
        if build.hashes:
            # --hash is a requirements file's option: pip then checks the sdist it downloads.
            pinned = Path(scratch) / "hashed-requirement.txt"
            options = "".join(f" --hash=sha256:{digest}" for digest in build.hashes)
            pinned.write_text(f"{build.requirement}{options}\n", encoding="utf-8")
            args += ["-r", str(pinned)]
        else:
            args.append(build.requirement)
        result = run_pip(args, cache_dir=cache, env=env, python=python)
    wheels = sorted(wheel_dir.glob("*.whl"))
    if result.ok and len(wheels) == 1:
        return wheels[0]
    if result.hash_mismatch:
        got = next((m.got for m in result.hash_mismatches), "unknown")
        return Unusable("its source distribution is not the one locked", unlisted_sha256=got)
    if result.unmatched_requirement is not None and not result.failed_build:
        target = build.target
        return Unusable(f"no wheel for {target.runtime} on {target.arch} and no source to build")
    return Unusable("its source distribution failed to build", build_log=_build_log(result))


def _build_log(result: PipResult) -> str:
    """The backend's output pip shows for a failed build: the compiler's first error lines
    (a traceback's last lines alone never say what did not compile), then its last lines."""
    lines = result.stderr.splitlines()
    start = next((i for i, line in enumerate(lines) if "lines of output]" in line), None)
    end = next((i for i, line in enumerate(lines) if "[end of output]" in line), len(lines))
    if start is None:
        return result.tail(20)
    output = [line.strip() for line in lines[start + 1 : end]]
    errors = [line for line in output if _ERROR.search(line)][:8]
    shown = [*errors, *(line for line in output[-12:] if line not in errors)]
    return redact("\n".join(shown))


def retag_for_target(wheel: Path, target: Target, out_dir: Path) -> Path:
    """A copy of a verified wheel built here, named with the target's manylinux tag.

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
