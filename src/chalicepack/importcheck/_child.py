"""The app-import check's child process: import app.py as Lambda would and report what it found.

``importcheck.check`` runs this file by path (``python -I -S -B -u -X utf8 _child.py SPEC``), never
imports it (``deploy._child`` does, for ``StubFinder``: ``package`` imports the app with the same
stand-ins). Standard library only, and self-contained: with ``-I -S`` neither chalicepack nor the
build host's site-packages is importable here (``-I`` keeps this file's folder off ``sys.path``).
It reports facts (the app's functions, or the exception chain with file paths) as JSON in files
the spec names; every decision is made in the parent. Nothing beyond what the code below uses is
imported at run time (``typing`` only while type checking), so the app starts as close to a bare
interpreter as the check allows.

Bytecode: ``-B`` writes none. When the spec names a ``pycache`` directory, bytecode is read from
and written under it instead (``sys.pycache_prefix``: never beside a source, so nothing is
written into what ships), except for modules of the function tree and the layer: those are
staged anew for every check, so their bytecode would never be read again.

Files served from wheels: the spec may name a listing of the installed dependencies' ``.py``
files that are not on disk (see ``deps.install``); they are imported from their wheels with
the ``__file__``, tracebacks and cached bytecode they would have as files (``SERVED``).
"""

from __future__ import annotations

import faulthandler
import importlib
import importlib.machinery
import json
import linecache
import os
import signal
import sys
import traceback
import types

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from importlib.abc import PathEntryFinder
    from typing import Any

SPEC: dict[str, Any] = {}  # the parent's spec, from the last command-line argument (main())
STUBS: tuple[str, ...] = ()  # the modules the import gets stand-ins for


class StubMeta(type):
    def __getattr__(cls, name: str) -> StubMeta:
        if name.startswith("__"):
            raise AttributeError(name)
        value = stub_class(cls.__qualname__ + "." + name)
        type.__setattr__(cls, name, value)
        return value

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        # A stand-in used as a decorator leaves the app's function as it is.
        if cls.__dict__.get("_stand_in") and len(args) == 1 and not kwargs and callable(args[0]):
            return args[0]
        return super().__call__(*args, **kwargs)


class Stub(metaclass=StubMeta):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __init_subclass__(cls, **kwargs: Any) -> None:
        pass

    def __getattr__(self, name: str) -> StubMeta:
        if name.startswith("__"):
            raise AttributeError(name)
        return stub_class(type(self).__qualname__ + "." + name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and not kwargs and callable(args[0]):
            return args[0]
        return Stub()

    def __mro_entries__(self, bases: tuple[type, ...]) -> tuple[type, ...]:
        return (Stub,)


def stub_class(name: str) -> StubMeta:
    cls = StubMeta(name.rpartition(".")[2], (Stub,), {"_stand_in": True})
    cls.__qualname__ = name
    return cls


def _stand_in(self: object, *args: object) -> Any:
    return Stub()


def _false(self: object, *args: object) -> bool:
    return False


_OPERATORS = (
    "add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "pow", "lshift", "rshift", "and",
    "xor", "or",
)  # fmt: skip


def _answer_everything(kind: type) -> None:
    """Give ``kind`` (stand-in classes and their instances) every operator and protocol, each
    answering harmlessly."""
    for op in _OPERATORS:
        setattr(kind, f"__{op}__", _stand_in)
        setattr(kind, f"__r{op}__", _stand_in)
    for name in ("__neg__", "__pos__", "__invert__", "__getitem__"):
        setattr(kind, name, _stand_in)
    for name in ("__lt__", "__le__", "__gt__", "__ge__", "__contains__", "__exit__"):
        setattr(kind, name, _false)
    protocols: dict[str, Callable[..., object]] = {
        "__iter__": lambda self: iter(()),
        "__len__": lambda self: 0,
        "__bool__": lambda self: True,
        "__int__": lambda self: 0,
        "__float__": lambda self: 0.0,
        "__enter__": lambda self: self,
        "__setitem__": lambda self, *args: None,
    }
    protocols["__index__"] = protocols["__int__"]
    protocols["__delitem__"] = protocols["__setitem__"]
    for name, method in protocols.items():
        setattr(kind, name, method)


for _kind in (StubMeta, Stub):
    _answer_everything(_kind)


class StubModule(types.ModuleType):
    def __getattr__(self, name: str) -> StubMeta:
        if name.startswith("__") and name != "__version__":
            raise AttributeError(name)
        value = stub_class(self.__name__ + "." + name)
        setattr(self, name, value)
        return value


class StubFinder:
    @classmethod
    def find_spec(
        cls,
        name: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if any(name == stub or name.startswith(stub + ".") for stub in STUBS):
            # The class itself is the loader (create_module and exec_module are static).
            return importlib.machinery.ModuleSpec(name, cls, is_package=True)  # type: ignore[arg-type]
        return None

    @staticmethod
    def create_module(spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return StubModule(spec.name)

    @staticmethod
    def exec_module(module: types.ModuleType) -> None:
        pass


def is_stub(value: object) -> bool:
    return isinstance(value, (StubModule, Stub, StubMeta))


def text(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__} that cannot be printed>"


def frame_record(frame: types.FrameType, lineno: int | None) -> dict[str, object]:
    filename = frame.f_code.co_filename
    # The module's globals let linecache ask its loader for a source served from a wheel.
    module = frame.f_globals if frame.f_globals.get("__file__") == filename else None
    try:
        touches = bool(STUBS) and any(is_stub(v) for v in list(frame.f_globals.values()))
    except Exception:
        touches = False
    return {
        "file": filename,
        "line": lineno,
        "function": frame.f_code.co_name,
        "code": linecache.getline(filename, lineno or 0, module).strip(),
        "touches_stub": touches,
    }


def describe(exc: BaseException) -> dict[str, object]:
    kind = type(exc)
    facts: dict[str, object] = {
        "type": kind.__name__
        if kind.__module__ == "builtins"
        else kind.__module__ + "." + kind.__qualname__,
        "mro": [base.__name__ for base in kind.__mro__],
        "message": text(exc),
        "frames": [frame_record(f, n) for f, n in traceback.walk_tb(exc.__traceback__)],
    }
    if isinstance(exc, ImportError):
        facts["module"] = exc.name
        facts["path"] = exc.path
        facts["module_loaded"] = exc.name in sys.modules
    if isinstance(exc, SyntaxError):
        facts["syntax"] = {
            "file": exc.filename,
            "line": exc.lineno,
            "text": (exc.text or "").strip(),
            "message": text(exc.msg),
        }
    return facts


def causes(exc: BaseException | None) -> list[BaseException]:
    # Follow __context__ too, even when suppressed: the root cause decides the verdict.
    seen: list[BaseException] = []
    while exc is not None and not any(exc is other for other in seen):
        seen.append(exc)
        exc = exc.__cause__ if exc.__cause__ is not None else exc.__context__
    return seen


EVENT_KINDS = {
    "S3EventConfig": "s3",
    "SNSEventConfig": "sns",
    "SQSEventConfig": "sqs",
    "KinesisEventConfig": "kinesis",
    "DynamoDBEventConfig": "dynamodb",
    "CloudWatchEventConfig": "cloudwatch",
    "ScheduledEventConfig": "schedule",
}


def lambda_functions(app: Any) -> tuple[list[list[str]], list[str]]:
    # The order and names of chalice.deploy.appgraph.ApplicationGraphBuilder.build. ``app`` is
    # the shipped Chalice's, whose attributes may differ from the build host's: typed as Any.
    found = [[f.name, f.handler_string, "lambda_function"] for f in app.pure_lambda_functions]
    unknown = []
    for source in app.event_sources:
        kinds = [EVENT_KINDS[c.__name__] for c in type(source).__mro__ if c.__name__ in EVENT_KINDS]
        if kinds:
            found.append([source.name, source.handler_string, kinds[0]])
        else:
            unknown.append(type(source).__name__)
    if app.routes:
        found.append(["api_handler", "app.app", "api"])
        found += [[a.name, a.handler_string, "authorizer"] for a in app.builtin_auth_handlers]
    sockets = {h.route_key_handled: h.handler_string for h in app.websocket_handlers.values()}
    for key, name in (("$connect", "websocket_connect"), ("$disconnect", "websocket_disconnect")):
        if key in sockets:
            found.append([name, sockets.pop(key), "websocket"])
    if sockets:
        found.append(["websocket_message", next(iter(sockets.values())), "websocket"])
    return found, unknown


def missing_handlers(found: list[list[str]]) -> list[list[str]]:
    missing = []
    for name, handler, _ in found:
        module_name, _, attribute = handler.rpartition(".")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            missing.append([name, handler, f"importing {module_name} failed: {text(exc)}"])
            continue
        if not hasattr(module, attribute):
            missing.append([name, handler, f"{module_name} has no {attribute}"])
    return missing


def inspect_app() -> dict[str, object]:
    module = importlib.import_module("app")
    absent = object()
    app = getattr(module, "app", absent)
    if app is absent:
        return {"no_app": True}
    import chalice.app  # the shipped runtime: app.app must be an instance of its Chalice

    if not isinstance(app, chalice.app.Chalice):
        return {"not_chalice": type(app).__module__ + "." + type(app).__qualname__}
    found, unknown = lambda_functions(app)
    return {
        "loaded": {
            "app_name": app.app_name,
            "functions": found,
            "unknown_events": unknown,
            "missing_handlers": missing_handlers(found),
        }
    }


class StagedSourceLoader(importlib.machinery.SourceFileLoader):
    """The source loader for modules staged for this check alone: it writes no bytecode."""

    def set_data(self, path: str, data: object, *, _mode: int = 0o666) -> None:
        pass  # the only data a source loader writes is bytecode


def cache_bytecode(prefix: str, staged: Sequence[str]) -> None:
    """Read and write bytecode under ``prefix``, except for modules below ``staged``."""
    sys.pycache_prefix = prefix
    sys.dont_write_bytecode = False
    staged_finder = importlib.machinery.FileFinder.path_hook(
        (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES),
        (StagedSourceLoader, importlib.machinery.SOURCE_SUFFIXES),
        (importlib.machinery.SourcelessFileLoader, importlib.machinery.BYTECODE_SUFFIXES),
    )

    def staged_hook(path: str) -> PathEntryFinder:
        # Package and namespace directories below a root come here too, one by one.
        if any(path == root or path.startswith(root + os.sep) for root in staged):
            return staged_finder(path)
        raise ImportError(f"{path} is not staged")  # the standard hooks take it

    sys.path_hooks.insert(0, staged_hook)


# The installed dependencies' .py files not on disk, served from their wheels: by folder, by
# file name, [wheel, member, size, mtime, offset, method, compressed size, crc]. When the import
# fails with them, the parent writes them and imports the app again (a dependency listing its
# own folder sees no .py file here).
SERVED: dict[str, dict[str, list[Any]]] = {}
FOLDERS: set[str] = set()  # those holding served files, or packages whose __init__.py is


class WheelSourceLoader(importlib.machinery.SourceFileLoader):
    """The source loader of a module served from its wheel: the source file's bytes and
    stats are the wheel member's; bytecode (under ``sys.pycache_prefix``) is read and
    written as for any source."""

    def __init__(self, fullname: str, path: str, served: list[Any]) -> None:
        super().__init__(fullname, path)
        self.served = served

    def get_data(self, path: str) -> bytes:
        if path != self.path:
            return super().get_data(path)
        return read_member(*self.served)

    def path_stats(self, path: str) -> Mapping[str, Any]:
        if path != self.path:
            return super().path_stats(path)
        return {"size": self.served[2], "mtime": self.served[3]}


def read_member(
    wheel: str, member: str, size: int, mtime: int, offset: int, method: int, compressed: int,
    crc: int,
) -> bytes:  # fmt: skip
    """A member's bytes, read at its offset (no ``zipfile``: nothing the app would not load
    itself is imported), checked against its CRC and size."""
    import zlib

    with open(wheel, "rb") as handle:
        handle.seek(offset)
        header = handle.read(30)
        if header[:4] != b"PK\x03\x04":
            raise OSError(f"{wheel}: no {member} at offset {offset}")
        skip = int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")
        handle.seek(offset + 30 + skip)
        data = handle.read(compressed)
    if method == 8:  # deflated; else stored
        data = zlib.decompress(data, -15)
    if len(data) != size or zlib.crc32(data) != crc:
        raise OSError(f"{member} in {wheel} is damaged (its CRC or size differs)")
    return data


STANDARD_LOADERS = (
    (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES),
    (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES),
    (importlib.machinery.SourcelessFileLoader, importlib.machinery.BYTECODE_SUFFIXES),
)


class WheelServingFinder:
    """The finder of a folder holding served files: FileFinder's, with the served files
    found in the order FileFinder would find them were they on disk (a package folder, then
    an extension module, then a source, then bytecode)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.files = importlib.machinery.FileFinder(path, *STANDARD_LOADERS)

    def invalidate_caches(self) -> None:
        self.files.invalidate_caches()

    def find_spec(
        self, fullname: str, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        tail = fullname.rpartition(".")[2]
        folder = os.path.join(self.path, tail)
        init = SERVED.get(folder, {}).get("__init__.py")
        if init is not None and not any(
            os.path.isfile(os.path.join(folder, "__init__" + suffix))
            for suffix in importlib.machinery.EXTENSION_SUFFIXES
        ):
            return served_spec(fullname, os.path.join(folder, "__init__.py"), init, [folder])
        found = self.files.find_spec(fullname, target)
        module = SERVED.get(self.path, {}).get(tail + ".py")
        if module is None or not (
            found is None
            or found.loader is None  # a namespace portion: any module wins over it
            or (
                isinstance(found.loader, importlib.machinery.SourcelessFileLoader)
                and found.submodule_search_locations is None
            )
        ):
            return found
        return served_spec(fullname, os.path.join(self.path, tail + ".py"), module, None)

    def iter_modules(self, prefix: str = "") -> Iterator[tuple[str, bool]]:
        """What ``pkgutil.iter_modules`` lists for the folder: its modules and packages as
        for a FileFinder (pkgutil's rules), the served files included."""
        served = SERVED.get(self.path, {})
        try:
            names = sorted({*os.listdir(self.path), *served})
        except OSError:
            names = sorted(served)
        yielded = set()
        for name in names:
            module, path, package = module_name(name), os.path.join(self.path, name), False
            if module == "__init__" or module in yielded:
                continue
            if not module and "." not in name and os.path.isdir(path):
                try:
                    inside = {*os.listdir(path), *SERVED.get(path, {})}
                except OSError:
                    continue
                if not any(module_name(item) == "__init__" for item in inside):
                    continue  # not a package (a namespace portion is not listed either)
                module, package = name, True
            if module and "." not in module:
                yielded.add(module)
                yield prefix + module, package


def module_name(filename: str) -> str | None:
    """``inspect.getmodulename``: the name less the longest module suffix it ends with."""
    for suffix in sorted(importlib.machinery.all_suffixes(), key=len, reverse=True):
        if filename.endswith(suffix):
            return filename[: -len(suffix)]
    return None


def served_spec(
    fullname: str, path: str, served: list[Any], search: list[str] | None
) -> importlib.machinery.ModuleSpec | None:
    import importlib.util

    loader = WheelSourceLoader(fullname, path, served)
    return importlib.util.spec_from_file_location(
        fullname, path, loader=loader, submodule_search_locations=search
    )


def serve_from_wheels(listing: str) -> None:
    """Import the files ``listing`` names from their wheels (see ``SERVED``)."""
    with open(listing, encoding="utf-8") as handle:
        for path, served in json.load(handle).items():
            folder, name = os.path.split(path)
            SERVED.setdefault(folder, {})[name] = served
            FOLDERS.add(folder)
            if name == "__init__.py":  # the package is found in the folder above
                FOLDERS.add(os.path.dirname(folder))

    def serving_hook(path: str) -> PathEntryFinder:
        if path in FOLDERS and os.path.isdir(path):
            return WheelServingFinder(path)  # type: ignore[return-value]
        raise ImportError(f"{path} holds no file served from a wheel")  # the others take it

    sys.path_hooks.insert(0, serving_hook)


def write_json(path: str, value: object) -> None:
    with open(path + ".partial", "w", encoding="utf-8") as handle:
        json.dump(value, handle, default=text)
    os.replace(path + ".partial", path)


def dump_stack(signum: int, frame: types.FrameType | None) -> None:
    records = [frame_record(f, n) for f, n in traceback.walk_stack(frame)]
    write_json(SPEC["stack"], records[::-1])


# What Lambda's Python runtime (awslambdaric's bootstrap and its modules) has imported before
# it imports the handler's module: an app's own ``logging.py`` does not shadow these there.
LAMBDA_BOOTSTRAP_IMPORTS = ("decimal", "http.client", "logging", "warnings")


def read_spec() -> dict[str, Any]:
    """The parent's spec: the last argument, or with ``-`` one line on stdin (a child started
    ahead of its check waits there; end of input means there is no check to run)."""
    argument = sys.argv.pop()
    if argument != "-":
        return dict(json.loads(argument))
    line = sys.stdin.buffer.readline()
    if not line.strip():
        os._exit(0)
    null = os.open(os.devnull, os.O_RDONLY)  # the app reads what Lambda gives it: nothing
    os.dup2(null, 0)
    os.close(null)
    spec = dict(json.loads(line))
    os.chdir(spec["tree"])  # /var/task (a child started for its check starts there)
    return spec


def main() -> None:
    global STUBS
    for name in LAMBDA_BOOTSTRAP_IMPORTS:
        importlib.import_module(name)
    SPEC.update(read_spec())
    keys = ("tree", "layer", "dependencies", "runtime")
    roots = [SPEC[key] for key in keys if SPEC[key]]
    STUBS = tuple(SPEC["stubs"])
    if SPEC["pycache"]:
        cache_bytecode(SPEC["pycache"], [SPEC[key] for key in ("tree", "layer") if SPEC[key]])
    if SPEC.get("served"):
        serve_from_wheels(SPEC["served"])
    # /var/task, the layer (its vendor files, then the installed dependencies when those are
    # not staged with them), /var/runtime, then the stdlib (-S: no site).
    sys.path[:0] = roots
    if STUBS:
        sys.meta_path.insert(0, StubFinder)
    faulthandler.enable()
    if hasattr(signal, "SIGUSR1"):
        signal.signal(signal.SIGUSR1, dump_stack)
    try:
        try:
            report = inspect_app()
        except BaseException as exc:
            report = {"failed": [describe(item) for item in causes(exc)]}
        write_json(SPEC["result"], report)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                continue  # a closed or broken stream: nothing more to save from it
        # Skip atexit handlers and non-daemon threads the app started: they are not the import.
        os._exit(0)


if __name__ == "__main__":
    main()
