"""Import the packaged app the way Lambda will load it, and list the Lambda functions it defines.

The import runs in a child process (``importcheck/_child.py``, run by path) of the build interpreter
started with ``-I -S`` (nothing from the build host's site-packages, nor chalicepack, is
importable) and ``sys.path`` = the function tree (Lambda's ``/var/task``, also the child's cwd),
then the layer's site-packages, then the installed dependencies when the caller passes their
tree rather than staging them (``dependencies``), then what Lambda's runtime provides, then the
standard library. Its environment is the caller's, plus ``AWS_CHALICE_CLI_MODE=true``, plus the
stage's ``environment_variables``, as ``chalice package`` imports the app. The child reports
back as JSON in a file of its own, so what the app prints (captured as ``output``) never mixes
with it.

Bytecode is cached under ``bytecode_cache`` when given (``sys.pycache_prefix``, mirroring each
source's absolute path), for the modules of ``dependencies``, ``runtime_provided`` and the
standard library: an app importing numpy and pandas then loads in a third of the time it takes
to compile them. Nothing is ever written beside a source, and the function tree and the layer,
staged anew for each check, get no bytecode written at all.

Compiled modules the build interpreter cannot load
--------------------------------------------------
When the build interpreter is not the target's CPython version on Linux/glibc on the target
machine, the compiled modules that ship (built for Lambda) may not load here. The exact rule:

* The check always runs. An import failure is "could not check" instead of an error only when
  its cause is one of:

  - a ``ModuleNotFoundError`` for a module that ships as an extension file whose suffix Lambda's
    interpreter loads but this one does not (``x.cpython-312-aarch64-linux-gnu.so`` under
    python3.11 on x86_64);
  - an ``ImportError`` raised while loading a shipped extension file (``.abi3.so``, ``.so``),
    only when this interpreter cannot load the target's binaries (CPython version, machine, OS
    or libc differ: an abi3 module may need a newer CPython than this one);
  - a ``SyntaxError`` in a shipped dependency (never in app.py, chalicelib/ or vendor/) when this
    interpreter is older than the target's;
  - after such a module was left out: an exception whose innermost frame in the tree or layer
    is in a dependency whose module globals hold one of the stand-ins below (that dependency
    builds on what could not be loaded).

* Each one becomes a warning naming the module and file, and the import is retried in a fresh
  child with stand-ins (permissive stub modules) for that module's top-level package and every
  shipped package whose import it interrupted, so the rest of the app is still checked and its
  Lambda functions are still listed.
* Any other failure is an error, even when stand-ins are in place (its message then says which
  ones, since a stand-in can make app code fail). So an error the import reached is never turned
  into a pass; only what depends on a module that cannot be loaded here goes unchecked, and the
  warnings say exactly what. When this interpreter can load the target's binaries, no failure
  is ever downgraded.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import json
import logging
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from packaging.utils import canonicalize_name

from chalicepack.errors import AppImportError
from chalicepack.lambda_env import RUNTIME_SDK

log = logging.getLogger(__name__)

GUARD = "if 'AWS_CHALICE_CLI_MODE' not in os.environ:"

# Exceptions (matched by class name anywhere in their MRO, since they come from the app's own
# botocore/requests/urllib3) that mean the app reaches out to AWS or the network at import time.
_REACHING_OUT = frozenset(
    {
        "ConnectionError",  # builtins (refused, reset), requests, botocore
        "gaierror",  # DNS
        "herror",
        "TimeoutError",
        "NewConnectionError",
        "ConnectTimeoutError",
        "ConnectTimeout",
        "EndpointConnectionError",
        "NoCredentialsError",
        "PartialCredentialsError",
        "CredentialRetrievalError",
        "NoRegionError",
    }
)

# Each retry adds at least one stand-in, so this only bounds a pathological tree.
_MAX_ATTEMPTS = 25

# How long a timed-out child gets to write where it was before it is killed.
_STACK_GRACE = 1.0

# The child's script, run by path: standard library only, as nothing of chalicepack is importable
# there. It reports facts (the app's functions, or the exception chain with file paths); every
# decision is made here, in the parent.
_CHILD = Path(__file__).absolute().with_name("_child.py")  # its cwd is the function tree


@dataclass(frozen=True)
class LambdaFunction:
    """One Lambda function Chalice deploys for the app."""

    name: str  # Chalice's resource name: "api_handler", "websocket_connect", the handler's name
    handler: str  # "app.app" for the API handler, "<module>.<function>" otherwise
    kind: str  # api, lambda_function, schedule, cloudwatch, s3, sns, sqs, kinesis, dynamodb,
    # authorizer, websocket


@dataclass(frozen=True)
class WheelMember:
    """A ``.py`` file of the installed dependencies served from its wheel (not on disk)."""

    wheel: Path
    member: str
    size: int
    mtime: int  # what the file's modification time would be: bytecode is cached by it
    offset: int  # of its local header in the wheel
    method: int  # zipfile.ZIP_STORED or ZIP_DEFLATED
    compressed: int  # its compressed size
    crc: int

    def listed(self) -> list[object]:
        """As the child's listing holds it (see ``_child.SERVED``)."""
        return [
            str(self.wheel), self.member, self.size, self.mtime, self.offset, self.method,
            self.compressed, self.crc,
        ]  # fmt: skip


@dataclass(frozen=True)
class ImportCheck:
    app_name: str | None
    functions: tuple[LambdaFunction, ...]
    warnings: tuple[str, ...]
    output: str  # what the app printed while it was imported (stdout and stderr)
    # The modules left out (stubbed) because this interpreter cannot load them: ``package``
    # imports the app again with the same stand-ins.
    stand_ins: tuple[str, ...] = ()


def check_app_import(
    function_tree: Path,
    layer_site_packages: Path | None,
    environment: Mapping[str, str],
    *,
    target_python: tuple[int, int],
    target_machine: str,
    project_root: Path,
    timeout: float = 60.0,
    runtime_provided: Path | None = None,
    dependencies: Path | None = None,
    bytecode_cache: Path | None = None,
    waiting: WaitingChild | None = None,
    not_installed: Sequence[str] = (),
    served_from_wheels: Mapping[str, WheelMember] | None = None,
) -> ImportCheck:
    """Import ``app`` from ``function_tree`` as Lambda would; raise ``AppImportError`` on failure.

    ``function_tree`` holds the function zip's contents; ``layer_site_packages`` the layer's
    ``python/lib/python3.X/site-packages`` when there is one; ``environment`` the stage's merged
    ``environment_variables``. Paths in messages are relative to ``project_root``.
    ``runtime_provided`` stands for what Lambda's Python runtime itself puts on ``sys.path``
    after the function and its layers (boto3 and its dependencies, in ``/var/runtime``).
    ``dependencies`` is an installed site-packages whose every file ships, on ``sys.path``
    after the layer: where it lies beside the function tree's or the layer's files on Lambda,
    the caller makes sure none of them shares a top-level name with it, so that imports find
    what they would in the merged directory. ``bytecode_cache``: see the module docstring;
    ``dependencies`` and ``runtime_provided`` must then hold the same files from one check to
    the next (Python checks each cached file against its source's size and modification time).
    ``served_from_wheels``: files of ``dependencies`` (by their path in it) not on disk, which
    the child imports from their wheels, with the same ``__file__`` and tracebacks.
    """
    setting = _Setting(
        tree=function_tree.resolve(),
        layer=layer_site_packages.resolve() if layer_site_packages else None,
        dependencies=dependencies.resolve() if dependencies else None,
        project_root=project_root.resolve(),
        target_python=target_python,
        target_machine=target_machine,
        runtime=runtime_provided.resolve() if runtime_provided else None,
        bytecode_cache=bytecode_cache.resolve() if bytecode_cache else None,
        not_installed=tuple(not_installed),
        served=dict(served_from_wheels or {}) if dependencies else {},
    )
    if not (setting.tree / "app.py").is_file():
        dismiss_waiting_child(waiting)
        raise AppImportError(f"{function_tree} has no app.py to import")
    with tempfile.TemporaryDirectory(prefix="chalicepack-import-") as scratch:
        return _import_leaving_out_unchecked(setting, environment, timeout, Path(scratch), waiting)


def _import_leaving_out_unchecked(
    setting: _Setting,
    environment: Mapping[str, str],
    timeout: float,
    scratch: Path,
    waiting: WaitingChild | None,
) -> ImportCheck:
    """Import the app; when it fails only on what the check cannot judge here (see
    ``_unchecked``), import it again with that left out (stubbed), and say so."""
    deadline = time.monotonic() + timeout
    stubs: tuple[str, ...] = ()
    warnings: list[str] = []
    for _ in range(_MAX_ATTEMPTS):
        run = _run_child(setting, environment, stubs, deadline, timeout, scratch, waiting)
        waiting = None  # used (or dismissed): a retry starts a child of its own
        report = run.report
        if isinstance(report, _Loaded):
            return ImportCheck(
                app_name=report.app_name,
                functions=report.functions,
                warnings=(*warnings, *report.warnings()),
                output=run.output,
                stand_ins=stubs,
            )
        if not isinstance(report, _Failed):
            raise _not_an_app_error(report, setting, run.output)
        unchecked = _unchecked(report, setting, stubs)
        if unchecked is None:
            raise _failure_error(report, setting, stubs, run.output)
        warnings.append(unchecked.warning)
        stubs = (*stubs, *unchecked.units)
    raise AppImportError(
        f"importing app.py still failed after leaving out {', '.join(stubs)}",
        output=run.output,
    )


def bytecode_mirror(bytecode_cache: Path, directory: Path) -> Path:
    """Where ``bytecode_cache`` holds the bytecode of the modules below ``directory``."""
    # sys.pycache_prefix mirrors a source's absolute path, without its drive on Windows.
    return bytecode_cache / directory.resolve().relative_to(directory.resolve().anchor)


# --- where things are -------------------------------------------------------------------------

PlaceKind = Literal["app", "vendor", "dependency", "outside"]


@dataclass(frozen=True)
class _Place:
    """Where a file the child names sits: in the app, vendor/, a dependency, or elsewhere."""

    kind: PlaceKind
    shown: str  # project-relative for app and vendor files, package-relative for dependencies
    root: Path | None = None  # the function tree or the layer
    relative: PurePosixPath | None = None  # relative to ``root``
    project_file: Path | None = None

    @property
    def in_project(self) -> bool:
        return self.kind in ("app", "vendor")


@dataclass(frozen=True)
class _Setting:
    tree: Path
    layer: Path | None
    project_root: Path
    target_python: tuple[int, int]
    target_machine: str
    runtime: Path | None = None
    dependencies: Path | None = None
    bytecode_cache: Path | None = None
    not_installed: tuple[str, ...] = ()  # name==version the build could not install
    served: Mapping[str, WheelMember] = field(default_factory=dict)  # below ``dependencies``

    def has_file(self, path: Path) -> bool:
        """Whether ``path`` is a file, on disk or served from a wheel."""
        if path.is_file():
            return True
        deps = self.dependencies
        return (
            deps is not None
            and path.is_relative_to(deps)
            and (path.relative_to(deps).as_posix() in self.served)
        )

    @property
    def roots(self) -> tuple[Path, ...]:
        roots = (self.tree, self.layer, self.dependencies, self.runtime)
        return tuple(root for root in roots if root is not None)

    @property
    def target_suffixes(self) -> tuple[str, ...]:
        """The extension-module suffixes Lambda's CPython loads, most specific first."""
        major, minor = self.target_python
        return (f".cpython-{major}{minor}-{self.target_machine}-linux-gnu.so", ".abi3.so", ".so")

    @property
    def loads_target_binaries(self) -> bool:
        # The versioned suffix encodes CPython version, machine, OS and libc (and a free-threaded
        # build's "t"): if this interpreter accepts it, it accepts what was built for Lambda.
        return self.target_suffixes[0] in importlib.machinery.EXTENSION_SUFFIXES

    @property
    def older_than_target(self) -> bool:
        return sys.version_info[:2] < self.target_python

    @property
    def target_text(self) -> str:
        return "cp{}{} {}".format(*self.target_python, self.target_machine)

    @property
    def host_text(self) -> str:
        machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(
            platform.machine().lower(), platform.machine()
        )
        where = "" if sys.platform == "linux" else f" ({sys.platform})"
        return f"cp{sys.version_info.major}{sys.version_info.minor} {machine}{where}"

    def place(self, filename: str) -> _Place:
        path = Path(filename)
        for root in self.roots:
            if path.is_relative_to(root) and path != root:
                return self._place_in(root, PurePosixPath(path.relative_to(root).as_posix()))
        return _Place("outside", filename)

    def _place_in(self, root: Path, relative: PurePosixPath) -> _Place:
        if root == self.tree and (str(relative) == "app.py" or relative.parts[0] == "chalicelib"):
            return _Place("app", str(relative), root, relative, self.project_root / relative)
        vendored = self.project_root / "vendor" / relative
        if vendored.is_file():
            return _Place("vendor", f"vendor/{relative}", root, relative, vendored)
        return _Place("dependency", str(relative), root, relative)


def _module_name(relative: PurePosixPath) -> str:
    """``chalicelib/fast.cpython-312-x86_64-linux-gnu.so`` -> ``chalicelib.fast``."""
    parts = [*relative.parts[:-1], relative.name.split(".")[0]]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(place: _Place, setting: _Setting, module: str | None = None) -> str:
    """What to replace by a stand-in: the exact module in the app, else its top-level package
    (two levels for a namespace package such as ``google.protobuf``)."""
    assert place.relative is not None and place.root is not None
    if place.kind == "app":
        return module or _module_name(place.relative)
    parts = place.relative.parts
    top = parts[0].split(".")[0]
    directory = place.root / parts[0]
    if len(parts) > 1 and directory.is_dir() and not setting.has_file(directory / "__init__.py"):
        return f"{top}.{parts[1].split('.')[0]}"
    return top


# --- the child's report -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Frame:
    file: str
    line: int
    function: str
    code: str
    touches_stub: bool  # the frame's module globals hold a stand-in

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _Frame:
        return cls(
            str(data["file"]),
            int(data["line"] or 0),
            str(data["function"]),
            str(data["code"]),
            bool(data["touches_stub"]),
        )


@dataclass(frozen=True)
class _Syntax:
    file: str | None
    line: int | None
    text: str
    message: str


@dataclass(frozen=True)
class _Raised:
    """One exception of the chain the import raised (the outermost first)."""

    type: str
    classes: tuple[str, ...]  # the names in its MRO
    message: str
    frames: tuple[_Frame, ...]  # outermost first
    module: str | None = None  # ImportError.name
    path: str | None = None  # ImportError.path: the file that failed to load
    module_loaded: bool = False  # ImportError.name is in sys.modules: it did load
    syntax: _Syntax | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _Raised:
        syntax = data.get("syntax")
        return cls(
            type=str(data["type"]),
            classes=tuple(data["mro"]),
            message=str(data["message"]),
            frames=tuple(_Frame.from_json(frame) for frame in data["frames"]),
            module=_optional_str(data.get("module")),
            path=_optional_str(data.get("path")),
            module_loaded=bool(data.get("module_loaded")),
            syntax=None
            if syntax is None
            else _Syntax(
                _optional_str(syntax["file"]),
                syntax["line"],
                str(syntax["text"]),
                str(syntax["message"]),
            ),
        )

    def isa(self, *names: str) -> bool:
        return any(name in self.classes for name in names)

    @property
    def headline(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class _Loaded:
    app_name: str | None
    functions: tuple[LambdaFunction, ...]
    unknown_events: tuple[str, ...]
    missing_handlers: tuple[tuple[str, str, str], ...]  # (function, handler, why)

    def warnings(self) -> list[str]:
        found = [
            f"chalicepack does not know the event source {name}; its Lambda function is not listed"
            for name in self.unknown_events
        ]
        found += [
            f"Lambda will not find the handler {handler} of function {function}: {why}"
            for function, handler, why in self.missing_handlers
        ]
        return found


@dataclass(frozen=True)
class _Failed:
    chain: tuple[_Raised, ...]  # the exception, then its cause or context, and so on


@dataclass(frozen=True)
class _NoApp:
    pass


@dataclass(frozen=True)
class _NotChalice:
    type_name: str


_Report = _Loaded | _Failed | _NoApp | _NotChalice


def _parse_report(data: Mapping[str, Any]) -> _Report:
    if "loaded" in data:
        loaded = data["loaded"]
        return _Loaded(
            app_name=_optional_str(loaded["app_name"]),
            functions=tuple(LambdaFunction(*map(str, item)) for item in loaded["functions"]),
            unknown_events=tuple(loaded["unknown_events"]),
            missing_handlers=tuple(
                (str(a), str(b), str(c)) for a, b, c in loaded["missing_handlers"]
            ),
        )
    if "failed" in data:
        return _Failed(tuple(_Raised.from_json(item) for item in data["failed"]))
    if "not_chalice" in data:
        return _NotChalice(str(data["not_chalice"]))
    return _NoApp()


# --- running the child ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    report: _Report
    output: str


@dataclass(frozen=True)
class WaitingChild:
    """A child started before its check (``start_waiting_child``): its interpreter is up and
    Lambda's bootstrap modules imported while the build resolves, and it waits on stdin for
    the spec of the first import (a check that retries with stand-ins starts new children)."""

    process: subprocess.Popen[bytes]
    output: Path  # the file its output goes to
    env: Mapping[str, str]


def start_waiting_child(environment: Mapping[str, str], scratch: Path) -> WaitingChild | None:
    """A child for ``check_app_import`` started now, or None when it could not start (the check
    then starts its own). ``dismiss_waiting_child`` ends it when no check comes."""
    env = _child_env(environment)
    output = Path(tempfile.mkdtemp(prefix="import-output-", dir=scratch)) / "output"
    try:
        process = _start_child("-", env, scratch, output, stdin=subprocess.PIPE)
    except OSError:
        return None
    return WaitingChild(process, output, env)


def dismiss_waiting_child(child: WaitingChild | None) -> None:
    """End a waiting child that no check used (end of input: it exits at once)."""
    if child is None or child.process.stdin is None or child.process.stdin.closed:
        return
    with contextlib.suppress(OSError):
        child.process.stdin.close()
    try:
        child.process.wait(timeout=_STACK_GRACE)
    except subprocess.TimeoutExpired:
        _kill(child.process)


def _child_env(environment: Mapping[str, str]) -> dict[str, str]:
    env = {**os.environ, "AWS_CHALICE_CLI_MODE": "true", **environment}
    # Lambda always sets both (the function's region): an app that makes its boto3 clients at
    # import (`boto3.resource("dynamodb")`, which reads AWS_DEFAULT_REGION) or reads
    # AWS_REGION works there, and must here. One set stands for both; neither, a stand-in.
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or _STAND_IN_REGION
    env["AWS_REGION"] = env.get("AWS_REGION") or region
    env["AWS_DEFAULT_REGION"] = env.get("AWS_DEFAULT_REGION") or region
    return env


_STAND_IN_REGION = "us-east-1"


def _start_child(
    argument: str, env: Mapping[str, str], cwd: Path, output: Path, *, stdin: int
) -> subprocess.Popen[bytes]:
    # -I -S: no user or host site-packages, no PYTHON* variables, and not the child's own folder
    # (chalicepack's) on sys.path; -B: no __pycache__ written into the tree that ships (the child
    # writes bytecode only under the spec's pycache); -u: output survives a kill; -X utf8:
    # Lambda's UTF-8 locale.
    command = [sys.executable, "-I", "-S", "-B", "-u", "-X", "utf8", str(_CHILD), argument]
    with output.open("wb") as handle:
        # Output goes to a file, not a pipe: a process the app leaves behind cannot hold it open.
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=stdin,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=os.name == "posix",
        )


def _started(
    spec: Mapping[str, object],
    env: Mapping[str, str],
    setting: _Setting,
    scratch: Path,
    waiting: WaitingChild | None,
) -> tuple[subprocess.Popen[bytes], Path]:
    """The child importing the app for ``spec``, and the file its output goes to: ``waiting``
    given the spec when it still waits with this environment, else a new one."""
    text = json.dumps(spec)
    if waiting is not None and waiting.env == env and waiting.process.poll() is None:
        stdin = waiting.process.stdin
        assert stdin is not None
        try:
            stdin.write(text.encode("utf-8") + b"\n")
            stdin.close()
            return waiting.process, waiting.output
        except OSError:  # it went away meanwhile: a new one imports the app
            pass
    dismiss_waiting_child(waiting)
    output = scratch / "output"
    return _start_child(text, env, setting.tree, output, stdin=subprocess.DEVNULL), output


def _run_child(
    setting: _Setting,
    environment: Mapping[str, str],
    stubs: Sequence[str],
    deadline: float,
    limit: float,
    scratch: Path,
    waiting: WaitingChild | None = None,
) -> _Run:
    """The one place a child is run: until it reports, crashes or runs out of time."""
    result, stack = (scratch / name for name in ("result", "stack"))
    for stale in (result, stack):
        stale.unlink(missing_ok=True)
    spec = {
        "tree": str(setting.tree),
        "layer": None if setting.layer is None else str(setting.layer),
        "dependencies": None if setting.dependencies is None else str(setting.dependencies),
        "runtime": None if setting.runtime is None else str(setting.runtime),
        "pycache": None if setting.bytecode_cache is None else str(setting.bytecode_cache),
        "served": _served_file(setting, scratch),
        "stubs": list(stubs),
        "result": str(result),
        "stack": str(stack),
    }
    child, output_file = _started(spec, _child_env(environment), setting, scratch, waiting)
    try:
        child.wait(timeout=max(deadline - time.monotonic(), 0.0))
    except subprocess.TimeoutExpired:
        where = _stop(child, stack)
        raise _timeout_error(setting, limit, where, _read_output(output_file)) from None
    except BaseException:
        # Ctrl-C or SIGTERM while waiting: the child, in a session of its own, would not see
        # it and would run on after the build has gone.
        _kill(child)
        raise
    _end_left_behind(child)
    text = _read_output(output_file)
    if not result.is_file():
        raise _crash_error(child.returncode, setting, text)
    return _Run(_parse_report(json.loads(result.read_text(encoding="utf-8"))), text)


def _served_file(setting: _Setting, scratch: Path) -> str | None:
    """The file telling the child which modules to serve from wheels (too many for its
    command line): their absolute paths -> [wheel, member, size, mtime, offset, method,
    compressed size, crc]."""
    if not setting.served or setting.dependencies is None:
        return None
    root = setting.dependencies
    served = {
        os.path.join(root, *path.split("/")): item.listed() for path, item in setting.served.items()
    }
    listing = scratch / "served.json"
    listing.write_text(json.dumps(served), encoding="utf-8")
    return str(listing)


def _stop(child: subprocess.Popen[bytes], stack: Path) -> tuple[_Frame, ...]:
    """Ask a timed-out child where it is, then kill it and whatever it started."""
    if hasattr(signal, "SIGUSR1"):
        child.send_signal(signal.SIGUSR1)
        give_up = time.monotonic() + _STACK_GRACE
        while not stack.is_file() and child.poll() is None and time.monotonic() < give_up:
            time.sleep(0.02)
    _kill(child)
    if not stack.is_file():
        return ()
    return tuple(_Frame.from_json(item) for item in json.loads(stack.read_text("utf-8")))


def _kill(child: subprocess.Popen[bytes]) -> None:
    """Kill the child and whatever it started."""
    if os.name == "posix":
        with contextlib.suppress(ProcessLookupError):  # it and all it started are gone
            os.killpg(child.pid, signal.SIGKILL)
    else:
        child.kill()
    child.wait()


def _end_left_behind(child: subprocess.Popen[bytes]) -> None:
    """End what the app started at import and left running (a ``Popen`` never waited for, a
    daemon): it would outlive the build, writing into a deleted temporary directory. The
    child led a session of its own, so its process group holds exactly those processes."""
    if os.name != "posix":
        return
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        return  # nothing left: the usual case
    log.warning(
        "app.py started processes at import that were still running after it was imported; "
        "they were ended (to start them on Lambda only, guard them with `%s`)",
        GUARD,
    )


def _read_output(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


# --- what could not be checked ----------------------------------------------------------------


@dataclass(frozen=True)
class _Unchecked:
    units: tuple[str, ...]  # new stand-ins for the next attempt
    warning: str


def _unchecked(failed: _Failed, setting: _Setting, stubs: Sequence[str]) -> _Unchecked | None:
    """The "could not check" cause of ``failed`` under the module docstring's rule, if any."""
    in_progress = _units_in_progress(failed, setting)
    for raised in failed.chain:
        compiled = _unloadable_compiled(raised, setting)
        if compiled is not None:
            module, place = compiled
            units = _new_units([_unit(place, setting, module), *in_progress], stubs)
            problem = (
                f"could not check compiled module {module} ({place.shown}): it is built for "
                f"{setting.target_text}, this interpreter is {setting.host_text}"
            )
            return _left_out(problem, units)
        syntax = _newer_syntax(raised, setting)
        if syntax is not None:
            place, line = syntax
            units = _new_units([_unit(place, setting), *in_progress], stubs)
            problem = (
                f"could not check {_unit(place, setting)} ({place.shown}:{line}): it uses Python"
                f" syntax this interpreter ({setting.host_text}) does not know; Lambda runs "
                f"{setting.target_text}"
            )
            return _left_out(problem, units)
    if stubs and _raised_on_stand_ins(failed.chain[0], setting):
        units = _new_units(in_progress, stubs)
        problem = (
            f"could not check {', '.join(units)}: its import failed on the stand-ins for "
            f"{', '.join(stubs)} ({failed.chain[0].headline})"
        )
        return _left_out(problem, units)
    return None


def _left_out(problem: str, units: tuple[str, ...]) -> _Unchecked | None:
    if not units:  # nothing new to leave out: retrying would fail the same way
        return None
    return _Unchecked(units, f"{problem}; the import check went on without {', '.join(units)}")


def _new_units(candidates: Iterable[str], stubs: Sequence[str]) -> tuple[str, ...]:
    # The Chalice runtime is never replaced: app.app must stay a real Chalice.
    fresh = [unit for unit in candidates if unit not in stubs and unit != "chalice"]
    return tuple(dict.fromkeys(fresh))


def _units_in_progress(failed: _Failed, setting: _Setting) -> list[str]:
    """The shipped packages whose import the failure interrupted."""
    places = (setting.place(frame.file) for raised in failed.chain for frame in raised.frames)
    return [_unit(place, setting) for place in places if place.kind in ("dependency", "vendor")]


def _unloadable_compiled(raised: _Raised, setting: _Setting) -> tuple[str, _Place] | None:
    """(module, file) when ``raised`` comes from a shipped extension this interpreter can't load."""
    if raised.isa("ModuleNotFoundError") and raised.module:
        return _unloadable_extension(raised.module, setting)
    if raised.isa("ImportError") and raised.module and _CANNOT_IMPORT.match(raised.message):
        # ``from PIL import _imaging``: the extension module PIL._imaging was not found here
        # (Python says only that PIL has no such name); ``from pydantic_core._pydantic_core
        # import X``: a folder beside the extension (of .pyi stubs) was imported in its place,
        # as a namespace package, so that X is missing from it.
        name = _CANNOT_IMPORT.match(raised.message)
        assert name is not None
        for module in (f"{raised.module}.{name.group(1)}", raised.module):
            found = _unloadable_extension(module, setting)
            if found is not None:
                return found
    if raised.isa("ImportError") and raised.path and not raised.module_loaded:
        if setting.loads_target_binaries:
            return None
        place = setting.place(raised.path)
        if place.kind != "outside" and raised.path.endswith(setting.target_suffixes):
            assert place.relative is not None
            return _module_name(place.relative), place
    return None


_CANNOT_IMPORT = re.compile(r"cannot import name '([^']+)' from ")


def _unloadable_extension(module: str, setting: _Setting) -> tuple[str, _Place] | None:
    """(module, file) when ``module`` ships only as an extension file built for the target
    whose suffix this interpreter does not load (so it found no such module)."""
    *packages, leaf = module.split(".")
    for root in setting.roots:
        for suffix in setting.target_suffixes:
            if suffix in importlib.machinery.EXTENSION_SUFFIXES:
                continue  # it would have been loaded (or failed to load) under that name
            candidate = root.joinpath(*packages, f"{leaf}{suffix}")
            if candidate.is_file():
                return module, setting.place(str(candidate))
    return None


def _newer_syntax(raised: _Raised, setting: _Setting) -> tuple[_Place, int] | None:
    if raised.syntax is None or raised.syntax.file is None or not setting.older_than_target:
        return None
    place = setting.place(raised.syntax.file)
    return (place, raised.syntax.line or 0) if place.kind == "dependency" else None


def _raised_on_stand_ins(raised: _Raised, setting: _Setting) -> bool:
    """Whether the innermost shipped frame is a dependency that holds stand-ins."""
    shipped = [frame for frame in raised.frames if setting.place(frame.file).kind != "outside"]
    if not shipped:
        return False
    innermost = shipped[-1]
    return setting.place(innermost.file).kind == "dependency" and innermost.touches_stub


# --- errors -----------------------------------------------------------------------------------


def _failure_error(
    failed: _Failed, setting: _Setting, stubs: Sequence[str], output: str
) -> AppImportError:
    raised = failed.chain[0]
    frames, file, line = _project_traceback(raised.frames, setting)
    if raised.isa("SystemExit"):
        headline = f"app.py called sys.exit({raised.message}) while it was imported"
        hint = "Lambda would fail to start the function the same way."
    elif raised.syntax is not None:
        headline, hint, file, line = _syntax_message(raised.syntax, setting, file, line)
    elif (missing := _missing_module(failed)) is not None:
        headline = f"importing app.py failed: {raised.headline}"
        hint = _missing_hint(missing, setting)
    elif any(item.isa(*_REACHING_OUT) for item in failed.chain):
        cause = next(item for item in failed.chain if item.isa(*_REACHING_OUT))
        headline = f"importing app.py failed: the app reaches out at import time: {cause.headline}"
        hint = (
            "During packaging the app is imported with AWS_CHALICE_CLI_MODE=true and nothing it "
            f"connects to need be reachable: connect lazily, or guard that code with `{GUARD}`, "
            "or pass --no-import to skip this check."
        )
    else:
        headline = f"importing app.py failed: {raised.headline}"
        hint = ""
    if stubs:
        hint += (
            f" (This import ran with stand-ins for {', '.join(stubs)}, which this interpreter "
            f"cannot load; if the error comes from them, build with {setting.target_text} "
            "or pass --no-import.)"
        )
    message = "\n".join([headline, *frames, hint.strip()]).strip()
    return AppImportError(message, file=file, line=line, output=output)


def _project_traceback(
    frames: Sequence[_Frame], setting: _Setting
) -> tuple[list[str], Path | None, int | None]:
    """The frames in the project (plus where it was raised, when that is in a dependency) as
    text, and the file and line of the innermost project frame."""
    located = [(frame, setting.place(frame.file)) for frame in frames]
    shown = [(frame, place) for frame, place in located if place.in_project]
    shipped = [(frame, place) for frame, place in located if place.kind != "outside"]
    if shipped and not shipped[-1][1].in_project:
        shown.append(shipped[-1])
    lines = []
    for frame, place in shown:
        where = "" if place.in_project else " (a dependency)"
        lines.append(f"  {place.shown}:{frame.line} in {frame.function}{where}")
        if frame.code:
            lines.append(f"    {frame.code}")
    in_project = [(frame, place) for frame, place in shown if place.in_project]
    if not in_project:
        return lines, None, None
    frame, place = in_project[-1]
    return lines, place.project_file, frame.line


def _syntax_message(
    syntax: _Syntax, setting: _Setting, file: Path | None, line: int | None
) -> tuple[str, str, Path | None, int | None]:
    place = setting.place(syntax.file or "")
    where = f"{place.shown}:{syntax.line}"
    headline = f"importing app.py failed: syntax error at {where}: {syntax.message}"
    if syntax.text:
        headline += f"\n    {syntax.text}"
    hint = ""
    if setting.older_than_target:
        hint = (
            f"This interpreter ({setting.host_text}) is older than Lambda's "
            f"({setting.target_text}); if that line uses newer syntax, build with "
            f"{setting.target_text}."
        )
    if place.in_project:
        return headline, hint, place.project_file, syntax.line
    return headline, hint, file, line


def _missing_module(failed: _Failed) -> str | None:
    """The module named by a ``No module named 'x'`` the import ended with, if any."""
    if not failed.chain[0].isa("ImportError"):
        return None
    for raised in failed.chain:
        if raised.isa("ModuleNotFoundError") and raised.module:
            return raised.module
    return None


def _missing_hint(missing: str, setting: _Setting) -> str:
    top = missing.split(".")[0]
    root = setting.project_root
    if top != "chalicelib" and ((root / top).is_dir() or (root / f"{top}.py").is_file()):
        shown = f"{top}/" if (root / top).is_dir() else f"{top}.py"
        return (
            f"{shown} is in the project beside app.py, but Chalice packages only app.py and "
            "chalicelib/ (plus the requirements.txt dependencies and the contents of vendor/): "
            f"move it into chalicelib/ and import it as chalicelib.{top}."
        )
    *packages, leaf = missing.split(".")
    for base in setting.roots:
        for build in sorted(base.joinpath(*packages).glob(f"{leaf}.*so")):
            return (
                f"{setting.place(str(build)).shown} is not built for Lambda's "
                f"{setting.target_text}, so Lambda will not find {missing} either: install its "
                "distribution from requirements.txt, or vendor a build for the target."
            )
    if any((base / top).exists() or (base / f"{top}.py").exists() for base in setting.roots):
        return f"{top} is in the package, but has no module {missing}."
    if setting.not_installed:
        return _not_installed_hint(top, setting)
    hint = (
        f"{top} is not in the package: add the distribution that provides it to "
        "requirements.txt, or put it in vendor/."
    )
    if top in RUNTIME_SDK:  # users are often surprised the check does not see Lambda's SDK
        hint += (
            f" Lambda's runtime has a {top} of its own, but this check sees only what ships, "
            "and AWS recommends shipping the SDK version you test with."
        )
    return hint


def _not_installed_hint(top: str, setting: _Setting) -> str:
    """The hint for a module missing because the build could not install a distribution."""
    wanted = canonicalize_name(top)
    pins = [p for p in setting.not_installed if canonicalize_name(p.split("==")[0]) == wanted]
    if pins:
        return (
            f"{pins[0]} was not installed: it has no build for Lambda's {setting.target_text} "
            '(see "Could not install dependencies" above for the fix).'
        )
    return (
        f"{top} is not in the package. The build could not install "
        f'{", ".join(setting.not_installed)} (see "Could not install dependencies" above): if '
        f"one of them provides {top}, that is why; else add the distribution that provides it "
        "to requirements.txt, or put it in vendor/."
    )


def _timeout_error(
    setting: _Setting, limit: float, where: Sequence[_Frame], output: str
) -> AppImportError:
    frames, file, line = _project_traceback(where, setting)
    message = "\n".join(
        [
            f"importing app.py did not finish within {limit:g} s (the --import-timeout limit)"
            + ("; it was at:" if frames else ""),
            *frames,
            "If it waits on a connection at import time, guard that code with "
            f"`{GUARD}`; or raise the limit with --import-timeout, or pass --no-import.",
        ]
    )
    return AppImportError(message, file=file, line=line, output=output, timed_out=True)


def _crash_error(returncode: int, setting: _Setting, output: str) -> AppImportError:
    if returncode < 0:
        try:
            how = f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            how = f"was killed by signal {-returncode}"
    else:
        how = f"exited with code {returncode}"
    tail = "\n".join(f"  {text}" for text in output.strip().splitlines()[-10:])
    message = f"the Python process importing app.py {how} before it finished"
    if tail:
        message += f"; its last output:\n{tail}"
    return AppImportError(message, file=setting.project_root / "app.py", output=output)


def _not_an_app_error(report: _Report, setting: _Setting, output: str) -> AppImportError:
    if isinstance(report, _NotChalice):
        problem = f"app.app is a {report.type_name}, not a chalice.Chalice"
    else:
        problem = "app.py defines no `app`"
    return AppImportError(
        f"{problem}: Chalice deploys app.app as the API handler and reads the Lambda functions "
        "from it; define `app = Chalice(app_name=...)` in app.py",
        file=setting.project_root / "app.py",
        output=output,
    )
