"""Wheels built here from source for the target, kept only when they provably run on it.

An sdist is built on a CPython of the target's minor found on this machine, else downloaded
by uv into the cache (``deps.interpreters``): by uv's build frontend when the sdist came from
an index uv reads as pip does (its build environment made from uv's cache,
``deps.uvbuild``), else by pip. A pure
result is kept; a compiled one is kept when its modules are for the target and auditwheel
fits it to the target's manylinux policy, grafting the libraries it may carry
(``deps.policy``). A compiled build that does not fit is rebuilt once with no C compiler,
the case of packages whose C speedups are optional, and kept if the result is pure. With no
interpreter of the target's minor, only a pure build can be kept.

Compiler: this machine's first, when the target's machine is this one's (as ``chalice
package`` builds), else, or when its wheel is not kept, zig aimed at the target's
architecture and glibc (``deps.crossbuild``). zig's first build for a target costs ~14 s
(its libc stubs, then cached); gcc costs nothing extra. Keeping gcc's wheel is sound because
it passes the same checks as zig's, and those checks see what makes a module need a newer
glibc: a module built against this machine's glibc headers may be redirected by them to
newer symbols (``fcntl`` to ``fcntl64@GLIBC_2.28``, ``strtol`` to ``__isoc23_strtol@GLIBC_2.38``,
``_FORTIFY_SOURCE``'s ``__*_chk``), and each of those is a versioned symbol reference in the
ELF file; the module check refuses any ``GLIBC_`` version above the runtime's and auditwheel
checks every symbol version (GLIBC, GLIBCXX, CXXABI, GCC) of the module and of the libraries
it links against the policy, which is the definition of manylinux the ecosystem trusts. What
no symbol shows is the instruction set: gcc is not used when the interpreter's or the user's
flags choose a CPU (``-march``, ``-mcpu``, ``-mavx``...), and its default (x86-64 baseline,
armv8-a) runs on Lambda's CPUs. A library gcc found on this machine (a header zig would not
have seen) is grafted when the policy allows it, refused when it does not, as for zig.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from chalicepack.deps.buildrecord import SourceBuild
from chalicepack.deps.crossbuild import (
    Toolchain,
    host_toolchain,
    meson_python_config,
    rust_missing,
    rust_triple,
    toolchain,
    without_compiler,
)
from chalicepack.deps.interpreters import (
    Interpreter,
    NotProvided,
    how_to_provide,
    interpreter_for,
)
from chalicepack.deps.pip import PipResult, redact, run_pip
from chalicepack.deps.policy import audit, compiled_members, module_problem, policy_name
from chalicepack.deps.uvbuild import SdistFile, build_backend, build_with_uv, uv_declines
from chalicepack.errors import BuildFailure
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
    # The sha256 of the source file when it is not one of the hashes the build was given (a
    # lock's): not a build failure but a file that must not ship.
    unlisted_sha256: str | None = None


@dataclass(frozen=True)
class _Build:
    """What one build of the requirement is made with."""

    requirement: str
    name: str
    version: str
    target: Target
    pip_options: tuple[str, ...]
    cache_dir: Path  # pip's cache (its wheels are this toolchain's), zig's, the sdists
    interpreter: Interpreter | None
    source: Path | None = None  # the sdist file uv builds; None: pip builds the requirement
    hashes: tuple[str, ...] = ()  # sha256 digests the source must have (a lock's)
    backend: str | None = None  # the sdist's PEP 517 backend, when uv builds it

    def config_settings(self, tools: Toolchain) -> tuple[str, ...]:
        """The backend's config settings that aim it at the target (meson-python's cross
        file: meson reads no variable for it)."""
        if self.backend != "mesonpy" or tools.meson_cross_file is None:
            return ()
        settings = [f"setup-args=--cross-file={tools.meson_cross_file}"]
        if self.interpreter is not None:
            # Meson names modules for the Python it runs unless told the target Python's.
            details = meson_python_config(
                self.target, self.interpreter.path, self.cache_dir / "cross"
            )
            if details is not None:
                settings.append(f"setup-args=-Dpython.build_config={details}")
        return tuple(settings)

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
    sdist: SdistFile | None = None,
    hashes: Iterable[str] = (),
) -> BuiltWheel | Unusable:
    """Build ``requirement`` (``name==version`` or a path, URL or VCS reference) from
    source for ``target``; ``cache_dir`` holds what makes a second build fast. ``sdist``: the
    file of ``name==version`` on its index, for uv to build (else pip builds). ``hashes``:
    the sha256 digests the source must have (a lock's; pip's hash-checking mode).

    The same build asked again in ``workdir`` (pip resolving after uv's answer was not kept:
    psycopg2 refused by the policy) is answered from the first: every build of it (this
    machine's compiler, zig, without a compiler) takes tens of seconds, and gives the same."""
    return _built_for_target(
        requirement, target, workdir, tuple(pip_options), cache_dir, name, version, sdist,
        tuple(sorted(hashes)),
    )  # fmt: skip


@functools.cache
def _built_for_target(
    requirement: str,
    target: Target,
    workdir: Path,
    pip_options: tuple[str, ...],
    cache_dir: Path,
    name: str,
    version: str,
    sdist: SdistFile | None,
    hashes: tuple[str, ...],
) -> BuiltWheel | Unusable:
    if hashes and sdist is not None and sdist.sha256 not in hashes:
        return Unusable(
            "its source distribution is not the one locked", unlisted_sha256=sdist.sha256
        )
    # Beside the build cache (``<cache>/build``): ``<cache>/python``.
    provided = interpreter_for(target.version_text, cache_dir.parent / "python")
    interpreter = None if isinstance(provided, NotProvided) else provided
    source = _uv_source(sdist, pip_options, cache_dir, f"{name} {version}")
    backend = None if source is None else build_backend(source)
    build = _Build(
        requirement, name, version, target, pip_options, cache_dir, interpreter, source,
        hashes, backend,
    )  # fmt: skip
    if backend == "maturin":
        # A Rust extension: cargo's build, not a C compiler's, and no build without one.
        missing = rust_missing(target)
        if missing is not None:
            return _without_rust(build, missing)
    if interpreter is None:
        why = provided.why if isinstance(provided, NotProvided) else ""
        return _build_without_interpreter(build, workdir, why)
    log.info(
        "building %s from source for %s %s with %s (by %s)",
        redact(requirement), target.runtime, target.arch, interpreter.describe(),
        "uv build" if source is not None else "pip wheel",
    )  # fmt: skip
    host = host_toolchain(target, interpreter)
    if host is not None:
        kept = _compiled(build, host, workdir / "host")
        if isinstance(kept, BuiltWheel) or kept.unlisted_sha256:
            return kept
        log.info("%s: not kept as built with %s (%s); building with zig", name, host.compiler,
                 kept.reason)  # fmt: skip
    tools = toolchain(target, cache_dir)
    checked = _compiled(build, tools, workdir / "compiled")
    if isinstance(checked, BuiltWheel) or checked.record is None:
        return checked
    if checked.record.verdict != "refused":
        return checked
    # Maybe the C extension is optional: try once more with no compiler at all.
    # (No cross file either: it would hand meson zig again.)
    no_compiler = replace(tools, env={**tools.env, **without_compiler()}, meson_cross_file=None)
    retry = _wheel(build, workdir / "pure", no_compiler, fresh=True)
    if isinstance(retry, Path) and not compiled_members(retry):
        log.info("%s: kept the build without its C extension", name)
        record = build.record("none (its C extension left out)", "pure", reason=checked.reason)
        return BuiltWheel(retry, pure=True, record=record)
    return checked


def _compiled(build: _Build, tools: Toolchain, workdir: Path) -> BuiltWheel | Unusable:
    """A build with ``tools``: pure, or compiled and fitted to the target's policy, or why
    it is not kept."""
    built = _wheel(build, workdir / "wheel", tools)
    if isinstance(built, Unusable):
        return built if built.unlisted_sha256 else _failed(build, tools, built)
    if not compiled_members(built):
        return BuiltWheel(built, pure=True, record=build.record(tools.compiler, "pure"))
    return _checked(build, tools, built, workdir / "repaired")


def _uv_source(
    sdist: SdistFile | None, pip_options: Sequence[str], cache_dir: Path, release: str
) -> Path | None:
    """The sdist file of ``release`` for uv to build (fetched into ``cache_dir``), or None:
    pip builds."""
    if sdist is None:
        return None
    declined = uv_declines(pip_options)
    if declined is not None:
        log.info("building %s with pip wheel: %s", sdist.filename, declined)
        return None
    # fetch imports the resolver, which imports this module: imported when first needed.
    from chalicepack.deps.fetch import Network, fetch_file
    from chalicepack.deps.pip_resolver import Distribution

    name, version = release.split(" ", 1)
    wanted = Distribution(name, version, sdist.url, sdist.filename, sdist.sha256, False, ())
    try:
        return fetch_file(
            wanted, cache_dir / "sdists", Network.from_environment(os.environ, pip_options)
        )
    except BuildFailure as error:
        log.info("building %s with pip wheel: %s", sdist.filename, error)
        return None


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


def _without_rust(build: _Build, missing: str) -> Unusable:
    """A Rust extension (maturin) with no Rust toolchain here for the target: missing,
    saying so, before a build that could only fail or build for this machine."""
    target = build.target
    reason = f"it is a Rust extension (built by maturin), and {missing}"
    fix = (
        f"install Rust's {rust_triple(target)} target (`rustup target add "
        f"{rust_triple(target)}`), use a release of {build.name} with a wheel for "
        f"{target.runtime} on {target.arch}"
    )
    record = build.record("none (no Rust toolchain for the target)", "failed", reason=reason)
    return Unusable(reason, fix=fix, record=record)


def _build_without_interpreter(build: _Build, workdir: Path, why: str) -> BuiltWheel | Unusable:
    """No CPython of the target's minor: only a pure wheel, built by this one, can be kept.
    ``why``: why none was downloaded either."""
    version = build.target.version_text
    log.info(
        "building %s from source with this CPython %d.%d (no CPython %s found; %s); only a "
        "pure build can be kept",
        redact(build.requirement), *sys.version_info[:2], version, why,
    )  # fmt: skip
    built = _wheel(build, workdir / "pure", Toolchain("none", without_compiler()))
    if isinstance(built, Unusable) and built.unlisted_sha256:
        return built
    compiler = "none (no CPython of the target's minor)"
    if isinstance(built, Path) and not compiled_members(built):
        return BuiltWheel(built, pure=True, record=build.record(compiler, "pure"))
    reason = f"it needs compiling, and no CPython {version} is installed here to build it with"
    log_tail = built.build_log if isinstance(built, Unusable) else None
    record = build.record(compiler, "failed", reason=reason)
    fix = f"{how_to_provide(version)} ({why})"
    return Unusable(reason, build_log=log_tail, fix=fix, record=record)


def _wheel(
    build: _Build, wheel_dir: Path, tools: Toolchain, *, fresh: bool = False
) -> Path | Unusable:
    """The wheel built from the requirement's source with ``tools``: by uv when it has the
    sdist (its build environment from uv's cache), else by pip."""
    if build.source is None:
        return _pip_wheel(build, wheel_dir, tools.env, fresh=fresh)
    shutil.rmtree(wheel_dir, ignore_errors=True)
    wheel_dir.mkdir(parents=True)
    python = Path(sys.executable) if build.interpreter is None else build.interpreter.path
    built = build_with_uv(
        build.source, python, wheel_dir, tools.env,
        # uv's cache beside the build cache, shared with the resolver: its metadata builds
        # of sdists put the same build requirements there.
        index_options=build.pip_options, cache_dir=build.cache_dir.parent / "uv",
        config_settings=build.config_settings(tools),
    )  # fmt: skip
    if built.wheel is not None:
        return built.wheel
    return Unusable("its source distribution failed to build", build_log=_shown(built.output))


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
    return _shown("\n".join(lines[start + 1 : end]))


def _shown(output: str) -> str:
    """A build's output cut to its first error lines, then its last lines."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if _ERROR.search(line)][:8]
    shown = [*errors, *(line for line in lines[-12:] if line not in errors)]
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
