"""Which dependency file a build reads, and a lock file as the exact requirements it pins.

requirements.txt is pip's to read, as it always was. A lock (``pylock.toml``, ``uv.lock``,
``poetry.lock``, ``Pipfile.lock``) is not resolved again: its packages for the target (markers
evaluated for the Lambda runtime, Linux and the architecture, never this host; production
groups only, plus those asked for) become a requirements file of ``name==version`` pins with
the lock's index URLs. Every package pinned, pip has exactly one answer: the locked one. The
lock's hashes and the line of each package's entry are kept beside that file, so each file
that ships is checked against the lock and every message points at the lock's own line.

The generated files live in the cache (``locks/<key>.txt`` and ``.json``), keyed by the lock's
bytes, the target and the groups: an unchanged rebuild only hashes the lock to find them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from chalicepack import __version__
from chalicepack.errors import BadInput, RequirementsError
from chalicepack.inputs.requirements import RequirementLine
from chalicepack.inputs.target import Target

if TYPE_CHECKING:
    from chalicepack.deps.pip_resolver import Resolution

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

log = logging.getLogger(__name__)

Kind = Literal["requirements", "pylock", "uv", "poetry", "pipfile", "pyproject"]

# What each lock is called, in the order a project directory is searched after requirements.txt.
_LOCK_NAMES: dict[str, Kind] = {"uv.lock": "uv", "poetry.lock": "poetry", "Pipfile.lock": "pipfile"}
_PYLOCK_NAME = re.compile(r"^pylock\.([^.]+\.)?toml$")
# What updates one package in each kind of lock (the fix a missing build names).
_UPDATE: dict[Kind, str] = {
    "uv": "uv lock --upgrade-package {name}",
    "poetry": "poetry update {name}",
    "pipfile": "pipenv update {name}",
    "pylock": "update it in the tool that wrote {lock} (uv: uv lock --upgrade-package {name},"
    " then uv export --format pylock.toml)",
}
# Bumped when what a generated file says for the same lock changes.
_FORMAT = "chalicepack lock requirements 1"


@dataclass(frozen=True)
class DependencyFile:
    """The file a build takes its dependencies from, and what kind of file it is."""

    path: Path
    kind: Kind


@dataclass(frozen=True)
class LockedPackage:
    """One package of a lock, as the target installs it."""

    name: str  # canonical
    version: str
    hashes: frozenset[str]  # sha256 hex digests of every file the lock allows for it
    line: int  # the line of its entry in the lock (``name = ...``), for messages and annotations
    index: str | None  # the index it is locked from; None: the configured one
    requirement: str | None = None  # pyproject.toml's requirement as written (nothing locked)


@dataclass(frozen=True)
class LockedSet:
    """The packages of a lock the target installs: the record kept beside the generated file."""

    lock: Path
    kind: Kind
    packages: tuple[LockedPackage, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "lock": str(self.lock),
            "kind": self.kind,
            "packages": [{**vars(p), "hashes": sorted(p.hashes)} for p in self.packages],
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> LockedSet:
        packages = tuple(
            LockedPackage(**{**item, "hashes": frozenset(item["hashes"])})
            for item in document["packages"]
        )
        return cls(Path(document["lock"]), document["kind"], packages)

    def lines(self) -> tuple[RequirementLine, ...]:
        """Each package as a requirement at its line in the lock (see ``requirements``)."""
        return tuple(
            RequirementLine(self.lock, p.line, p.requirement or f"{p.name}=={p.version}", p.name)
            for p in self.packages
        )


# --- which file ------------------------------------------------------------------------------


def dependency_file(root: Path, explicit: Path | None) -> DependencyFile | None:
    """The file the project's dependencies come from: ``explicit`` (``--requirements``) when
    given, else requirements.txt, else the one lock in ``root``, else pyproject.toml's
    ``[project].dependencies``; None when there is none of them."""
    if explicit is not None:
        path = explicit.resolve()
        if not path.is_file():
            raise BadInput(
                f"--requirements {explicit}: {path} does not exist; name a requirements file,"
                " pylock.toml, uv.lock, poetry.lock or Pipfile.lock"
            )
        return DependencyFile(path, recognise(path))
    if (root / "requirements.txt").is_file():
        return DependencyFile(root / "requirements.txt", "requirements")
    locks = [p for p in sorted(root.glob("pylock*.toml")) if _PYLOCK_NAME.match(p.name)]
    locks += [root / name for name in _LOCK_NAMES if (root / name).is_file()]
    if len(locks) > 1:
        names = ", ".join(p.name for p in locks)
        raise BadInput(
            f"{root} holds more than one lock file ({names}) and no requirements.txt; choose"
            " the one to build from with --requirements FILE (the Action: the requirements input)"
        )
    if locks:
        return DependencyFile(locks[0], recognise(locks[0]))
    if (root / "Pipfile").is_file():
        # Else the package would be built with none of the Pipfile's dependencies.
        raise BadInput(
            f"{root} has a Pipfile but no Pipfile.lock (and no requirements.txt); run"
            " `pipenv lock` and keep Pipfile.lock beside it, or name the dependency file with"
            " --requirements FILE"
        )
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and "dependencies" in _read_toml(pyproject).get("project", {}):
        return DependencyFile(pyproject, "pyproject")
    return None


def is_lock(name: str) -> bool:
    """Whether a dependency file of this name is a lock (for messages about its lines)."""
    base = Path(name).name
    return base in _LOCK_NAMES or bool(_PYLOCK_NAME.match(base))


def recognise(path: Path) -> Kind:
    """A dependency file's kind, by its name, else by what it holds."""
    if path.name in _LOCK_NAMES:
        return _LOCK_NAMES[path.name]
    if _PYLOCK_NAME.match(path.name):
        return "pylock"
    if path.name == "pyproject.toml":
        return "pyproject"
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        document = json.loads(text)
    except ValueError:
        pass
    else:
        if isinstance(document, dict) and "_meta" in document:
            return "pipfile"
    try:
        toml = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return "requirements"
    if "lock-version" in toml and "packages" in toml:
        return "pylock"
    if "content-hash" in toml.get("metadata", {}):
        return "poetry"
    if isinstance(toml.get("version"), int) and "package" in toml:
        return "uv"
    return "requirements"


# --- the generated requirements file -----------------------------------------------------------


def requirements_file(
    root: Path,
    explicit: Path | None,
    target: Target,
    cache_dir: Path,
    groups: Sequence[str] = (),
    extras: Sequence[str] = (),
) -> Path | None:
    """The requirements file pip reads for this project: requirements.txt (or the file named)
    as it is; for a lock or pyproject.toml, the file generated from it for ``target``."""
    chosen = dependency_file(root, explicit)
    if chosen is None:
        if groups or extras:
            raise BadInput("--group and --extra need a lock file or pyproject.toml; there is none")
        return None
    if chosen.kind == "requirements":
        if groups or extras:
            raise BadInput(
                f"--group and --extra choose what to ship from a lock, and {chosen.path} is a"
                " requirements file; drop them, or name the lock with --requirements FILE"
            )
        return chosen.path
    if chosen.kind == "pyproject":
        log.warning(
            "%s: no lock file; resolving [project].dependencies as requirements. A lock"
            " (uv lock, poetry lock) makes the package reproducible",
            chosen.path,
        )
    key = _key(chosen, target, groups, extras)
    generated = cache_dir / "locks" / f"{key}.txt"
    if generated.is_file() and generated.with_suffix(".json").is_file():
        return generated
    if chosen.kind == "pyproject":
        text, locked = _from_pyproject(chosen.path)
    else:
        locked = read_lock(chosen, target, groups, extras)
        text = _pins(locked)
    header = f"# {_FORMAT}: {chosen.path} for {target.runtime} {target.arch}\n"
    _write_atomically(generated.with_suffix(".json"), json.dumps(locked.to_json()))
    _write_atomically(generated, header + text)
    return generated


def _key(
    chosen: DependencyFile, target: Target, groups: Sequence[str], extras: Sequence[str]
) -> str:
    digest = hashlib.sha256()
    header = [_FORMAT, __version__, str(chosen.path), target.runtime, target.arch]
    digest.update(json.dumps([*header, sorted(groups), sorted(extras)]).encode())
    # Which indexes the environment names decides the generated index options (see _pins).
    digest.update(json.dumps(sorted(_bare(url) for url in _environment_indexes())).encode())
    digest.update(chosen.path.read_bytes())
    pyproject = chosen.path.parent / "pyproject.toml"
    if chosen.kind == "uv" and pyproject.is_file():  # uv export reads its groups there
        digest.update(b"\0" + pyproject.read_bytes())
    return digest.hexdigest()


def _pins(locked: LockedSet) -> str:
    """pip's requirements for exactly the locked releases, from the indexes they are locked to.

    A lock's index that the environment already names (``PIP_INDEX_URL``,
    ``PIP_EXTRA_INDEX_URL``, compared without credentials) is left to the environment, which
    holds its credentials (locks do not; nor may the cache). When every package names an
    index and the environment names none of them, the first is pip's ``--index-url``: a
    lock from a private index builds without configuring it again. Else the lock's indexes
    are added to the configured one, which serves the packages that name none (Poetry's
    PyPI packages). Which index serves a file does not matter to what ships: its sha256
    must be one the lock lists.
    """
    configured = {_bare(url) for url in _environment_indexes()}
    indexes = list(dict.fromkeys(p.index for p in locked.packages if p.index))
    uncovered = [url for url in indexes if _bare(url) not in configured]
    options = []
    if uncovered and len(uncovered) == len(indexes) and all(p.index for p in locked.packages):
        options.append(f"--index-url {uncovered.pop(0)}")
    options += [f"--extra-index-url {url}" for url in uncovered]
    pins = [f"{p.name}=={p.version}" for p in locked.packages]
    return "".join(f"{line}\n" for line in [*options, *pins])


def _environment_indexes() -> list[str]:
    return [
        *os.environ.get("PIP_INDEX_URL", "").split(),
        *os.environ.get("PIP_EXTRA_INDEX_URL", "").split(),
    ]


def _bare(url: str) -> str:
    """An index URL without credentials, scheme case or trailing slash, for comparing."""
    parts = urlsplit(url.strip())
    host = parts.netloc.rpartition("@")[2].lower()
    return f"{parts.scheme.lower()}://{host}{parts.path.rstrip('/')}"


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(scratch, path)


def locked_set(requirements: Path) -> LockedSet | None:
    """The lock a generated requirements file was made from; None for any other file."""
    record = requirements.with_suffix(".json")
    if requirements.suffix != ".txt" or requirements.parent.name != "locks":
        return None
    try:
        return LockedSet.from_json(json.loads(record.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def requirement_lines(requirements: Path) -> tuple[RequirementLine, ...] | None:
    """The lines to name for each package of a generated file: the lock's; else None."""
    locked = locked_set(requirements)
    return None if locked is None else locked.lines()


def _from_pyproject(path: Path) -> tuple[str, LockedSet]:
    """``[project].dependencies`` as requirement lines, each named at its line in the file."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    dependencies = _read_toml(path)["project"]["dependencies"]
    lines = path.read_text(encoding="utf-8").splitlines()
    packages = []
    for text in dependencies:
        try:
            name = canonicalize_name(Requirement(text).name)
        except InvalidRequirement as error:
            raise RequirementsError(
                f"{path}: [project].dependencies: cannot parse {text!r}: {error}; write it as"
                " 'name' or 'name>=version'",
                file=path,
            ) from error
        line = next((n for n, raw in enumerate(lines, 1) if text in raw), 1)
        packages.append(LockedPackage(name, "", frozenset(), line, None, requirement=text))
    locked = LockedSet(path, "pyproject", tuple(packages))
    return "".join(f"{text}\n" for text in dependencies), locked


# --- reading each kind of lock ---------------------------------------------------------------


def read_lock(
    chosen: DependencyFile, target: Target, groups: Sequence[str], extras: Sequence[str]
) -> LockedSet:
    """The packages of the lock ``chosen`` that ``target`` installs, with the groups and
    extras asked for; raise ``RequirementsError`` naming the lock for what cannot be read."""
    readers = {"pylock": _read_pylock, "uv": _read_uv, "poetry": _read_poetry}
    if chosen.kind == "pipfile":
        packages = _read_pipfile(chosen.path, target, groups, extras)
    else:
        packages = readers[chosen.kind](chosen.path, target, groups, extras)
    return LockedSet(chosen.path, chosen.kind, tuple(sorted(packages, key=lambda p: p.name)))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise RequirementsError(
            f"{path}: cannot read it as TOML: {error}; regenerate it with the tool that wrote it",
            file=path,
        ) from error


def _applies(
    marker: str | None,
    target: Target,
    *,
    extras: Iterable[str] = (),
    groups: Iterable[str] | None = None,
) -> bool:
    """Whether ``marker`` holds on the target: for a lock file's markers (PEP 751, which may
    ask about ``extras`` and ``dependency_groups``) when ``groups`` is given, else for a
    requirement's (``extra == ...``), true if it holds for any of the ``extras``."""
    if not marker:
        return True
    from packaging.markers import InvalidMarker, Marker, UndefinedEnvironmentName

    environment: dict[str, Any] = target.marker_environment()
    try:
        parsed = Marker(marker)
        if groups is not None:
            lock_environment = {
                **environment,
                "extras": frozenset(extras),
                "dependency_groups": frozenset(groups),
            }
            return parsed.evaluate(lock_environment, context="lock_file")
        return any(parsed.evaluate({**environment, "extra": extra}) for extra in [*extras, ""])
    except (InvalidMarker, UndefinedEnvironmentName) as error:
        raise RequirementsError(f"cannot evaluate the marker {marker!r}: {error}") from error


def _sha256(value: str) -> str | None:
    algorithm, _, digest = value.partition(":")
    return digest if algorithm == "sha256" and digest else None


def _read_pylock(
    path: Path,
    target: Target,
    groups: Sequence[str],
    extras: Sequence[str],
    shown: Path | None = None,
) -> list[LockedPackage]:
    """``shown``: the lock messages name (uv.lock, when ``path`` is uv's export of it)."""
    document = _read_toml(path)
    _validate_pylock(path, document)
    default = [g for g in document.get("default-groups", []) if g != "dev"]
    selected = {*default, *groups}
    declared = {*document.get("dependency-groups", []), *document.get("default-groups", [])}
    _refuse_unknown(path, "group", set(groups) - declared, declared)
    lines = _entry_lines(path, "[[packages]]")
    shown_lines = lines if shown is None else _entry_lines(shown, "[[package]]")
    packages = []
    for item in document["packages"]:
        if not _applies(item.get("marker"), target, extras=extras, groups=selected):
            continue
        files = [*item.get("wheels", []), *([item["sdist"]] if "sdist" in item else [])]
        hashes = frozenset(f.get("hashes", {}).get("sha256", "") for f in files) - {""}
        name = _canonical(item["name"])
        for key in ("vcs", "directory", "archive"):
            if key in item:
                where = item[key].get("url") or item[key].get("path", "")
                kind = item[key].get("type", key) if key == "vcs" else key
                line = _line(shown_lines, name, "")
                raise _not_from_index(shown or path, line, name, f"{kind} {where}")
        version = _locked_version(path, name, item.get("version"), lines)
        packages.append(
            LockedPackage(name, version, hashes, _line(lines, name, version), item.get("index"))
        )
    return packages


def _validate_pylock(path: Path, document: Mapping[str, Any]) -> None:
    """packaging's PEP 751 validation, where the installed packaging has it."""
    try:
        from packaging.pylock import Pylock, PylockValidationError
    except ImportError:  # packaging < 25
        return
    try:
        Pylock.from_dict(document)
    except PylockValidationError as error:
        raise RequirementsError(
            f"{path}: not a valid pylock.toml (PEP 751): {error}; export it again",
            file=path,
        ) from error


def _read_uv(
    path: Path, target: Target, groups: Sequence[str], extras: Sequence[str]
) -> list[LockedPackage]:
    """uv.lock through ``uv export --format pylock.toml``: uv walks its own graph (workspace,
    forks, groups); its markers stay universal, and are evaluated here for the target."""
    from chalicepack.deps.uv_resolver import uv_binary

    uv = uv_binary()
    if uv is None:
        raise BadInput(f"{path}: reading uv.lock needs uv, which is not installed with chalicepack")
    if path.name != "uv.lock" or not (path.parent / "pyproject.toml").is_file():
        raise BadInput(
            f"{path}: a uv lock is read by uv as uv.lock beside its pyproject.toml; keep it there"
        )
    command = [uv, "export", "--frozen", "--no-config", "--offline", "--no-cache"]
    command += ["--format", "pylock.toml"]
    # Production only: uv's default groups without dev, unless dev is asked for by name.
    command += ["--no-emit-project", "--no-header", *([] if "dev" in groups else ["--no-dev"])]
    command += [arg for group in groups for arg in ("--group", group)]
    command += [arg for extra in extras for arg in ("--extra", extra)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}
    env.update(UV_NO_PROGRESS="1", UV_PYTHON_DOWNLOADS="never")
    result = subprocess.run(
        command, cwd=path.parent, capture_output=True, text=True, env=env, timeout=120
    )
    if result.returncode != 0:
        raise RequirementsError(
            f"{path}: uv could not export it: {result.stderr.strip()}; run `uv lock` to"
            " update it (or fix the --group/--extra named)",
            file=path,
        )
    exported = path.parent / f".chalicepack-{os.getpid()}.pylock.toml"
    try:
        exported.write_text(result.stdout, encoding="utf-8")
        packages = _read_pylock(exported, target, (), extras, shown=path)
    finally:
        exported.unlink(missing_ok=True)
    lines = _entry_lines(path, "[[package]]")
    return [
        LockedPackage(p.name, p.version, p.hashes, _line(lines, p.name, p.version), p.index)
        for p in packages
    ]


def _read_poetry(
    path: Path, target: Target, groups: Sequence[str], extras: Sequence[str]
) -> list[LockedPackage]:
    """poetry.lock as Poetry 2 writes it (lock-version 2.1): each package names its groups
    and, per group, the markers under which it is installed."""
    document = _read_toml(path)
    version = str(document.get("metadata", {}).get("lock-version", ""))
    if not re.fullmatch(r"2\.([1-9]|\d\d+)", version):
        raise RequirementsError(
            f"{path}: lock-version {version or 'unknown'} does not say which group each package"
            " belongs to; run `poetry lock` with Poetry 2 to write lock-version 2.1",
            file=path,
        )
    selected = {"main", *groups}
    declared = {g for item in document.get("package", []) for g in item.get("groups", [])}
    _refuse_unknown(path, "group", set(groups) - declared, declared)
    chosen_extras = {_canonical(e) for e in extras}
    extra_packages = {
        _canonical(name)
        for extra, names in document.get("extras", {}).items()
        if _canonical(extra) in chosen_extras
        for name in names
    }
    lines = _entry_lines(path, "[[package]]")
    packages = []
    for item in document.get("package", []):
        name = _canonical(item["name"])
        if item.get("optional") and name not in extra_packages:
            continue
        if not any(
            _applies(_poetry_marker(item, group), target, extras=chosen_extras)
            for group in selected.intersection(item.get("groups", []))
        ):
            continue
        hashes = frozenset(h for f in item.get("files", []) if (h := _sha256(f.get("hash", ""))))
        source = item.get("source", {})
        index = source.get("url") if source.get("type") == "legacy" else None
        line = _line(lines, name, item["version"])
        if source.get("type") in ("directory", "file", "git", "url"):
            raise _not_from_index(path, line, name, f"{source['type']} {source.get('url', '')}")
        packages.append(LockedPackage(name, item["version"], hashes, line, index))
    return packages


def _poetry_marker(item: Mapping[str, Any], group: str) -> str | None:
    markers = item.get("markers")
    if isinstance(markers, dict):
        marker: str | None = markers.get(group)
        return marker
    return markers if isinstance(markers, str) else None


def _read_pipfile(
    path: Path, target: Target, groups: Sequence[str], extras: Sequence[str]
) -> list[LockedPackage]:
    """Pipfile.lock: ``default`` (and the categories asked for; ``dev`` is ``develop``), each
    package's ``version`` (``==X``), ``hashes``, ``markers`` and ``index``."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise RequirementsError(
            f"{path}: cannot read it as JSON: {error}; run `pipenv lock` again", file=path
        ) from error
    sources = {s["name"]: s["url"] for s in document.get("_meta", {}).get("sources", [])}
    sections = ["default", *("develop" if g in ("dev", "develop") else g for g in groups)]
    declared = {k for k in document if k != "_meta"}
    _refuse_unknown(path, "group", set(sections) - declared, declared)
    text = path.read_text(encoding="utf-8").splitlines()
    packages: dict[str, LockedPackage] = {}
    for section in sections:
        for raw_name, item in document[section].items():
            if not _applies(item.get("markers"), target, extras=extras):
                continue
            name = _canonical(raw_name)
            line = _json_entry_line(text, section, raw_name)
            for key in ("path", "file", "git", "hg", "svn", "bzr"):
                if key in item:
                    raise _not_from_index(path, line, raw_name, f"{key} {item[key]}")
            version = str(item.get("version", ""))
            if not version.startswith("=="):
                raise _unlocked_pipfile_entry(
                    path, line, raw_name, version, str(item.get("markers", "")), target
                )
            hashes = frozenset(h for value in item.get("hashes", []) if (h := _sha256(value)))
            index = sources.get(item.get("index", ""))
            version = version.removeprefix("==")
            packages.setdefault(name, LockedPackage(name, version, hashes, line, index))
    return list(packages.values())


def _unlocked_pipfile_entry(
    path: Path, line: int, name: str, version: str, marker: str, target: Target
) -> RequirementsError:
    # Pipenv's default resolver locks for one Python and one machine: a package whose markers
    # are false there is written with no version and no hashes, though the target needs it.
    return RequirementsError(
        f"{path}:{line}: {name} is not locked (version {version or 'missing'}, no hashes):"
        f" Pipenv evaluated its markers ({marker}) for the Python and machine it locked on,"
        f" where they are false, but {target.runtime} {target.arch} needs it; lock it for"
        f" every target with {_PURE_PYTHON}, or for this target only:"
        f" {_pipfile_lock_fix(path, marker, target)}, or use a lock that covers every target"
        " (uv lock, poetry lock)",
        file=path,
        line=line,
    )


# Pipenv's pure-python resolver locks what the Pipfile names whatever its markers, on any host
# (it still leaves out a dependency of another package whose markers are false there).
_PURE_PYTHON = (
    "`pipenv lock --backend pure-python` (Pipenv 2026.9 or later, experimental; or"
    ' resolver_backend = "pure-python" under [pipenv] in the Pipfile)'
)
# Marker variables Pipenv takes from the Pipfile's [requires] python_version, and those it
# takes from the machine it runs on (it has no setting for another machine).
_PYTHON_MARKERS = re.compile(r"\bpython_(full_)?version\b")
_MACHINE_MARKERS = re.compile(
    r"\b(platform_machine|platform_system|sys_platform|os_name|platform_release"
    r"|platform_version|implementation_name|platform_python_implementation)\b"
)


def _pipfile_lock_fix(path: Path, marker: str, target: Target) -> str:
    """How Pipenv's default resolver locks, for ``target``, an entry with ``marker``."""
    version = target.version_text
    requires = (
        f'put python_version = "{version}" under [requires] in {path.parent / "Pipfile"}'
        " (Pipenv evaluates python_version markers for it)"
    )
    if not _MACHINE_MARKERS.search(marker):
        return f"{requires} and run `pipenv lock`"
    platform = f"linux/{'arm64' if target.arch == 'arm64' else 'amd64'}"
    machine = (
        f"run `pipenv lock` on Linux {target.machine} (Pipenv evaluates these markers only"
        " for the machine it runs on, so such a Pipfile.lock serves one architecture): on an"
        f" {target.arch} machine, or in a container such as `docker run --rm --platform"
        f' {platform} -v "$PWD":/app -w /app python:{version} sh -c "pip install pipenv &&'
        ' pipenv lock"` (QEMU emulation on a machine of the other architecture)'
    )
    if _PYTHON_MARKERS.search(marker):
        return f"{requires}, and {machine}"
    return machine


def _refuse_unknown(path: Path, what: str, unknown: set[str], declared: set[str]) -> None:
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise BadInput(
            f"{path} has no {what} {', '.join(sorted(unknown))} (it has: {known});"
            f" fix the --{what} named"
        )


def _canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def _not_from_index(path: Path, line: int, name: str, source: str) -> RequirementsError:
    return RequirementsError(
        f"{path}:{line}: {name} is locked from a {source}, not from a package index;"
        " chalicepack ships from a lock only releases of an index, checked against the lock's"
        " hashes: publish it to an index and lock that release, or take it out of the lock's"
        " dependencies and put it, built for the target, in the project's vendor/",
        file=path,
        line=line,
    )


def _locked_version(
    path: Path, name: str, version: str | None, lines: Mapping[tuple[str, str], int]
) -> str:
    if not version:
        raise RequirementsError(
            f"{path}: {name} has no version (a path or VCS package); chalicepack builds only"
            " locked releases from an index: vendor it instead",
            file=path,
            line=_line(lines, name, ""),
        )
    return version


# --- where each entry is -----------------------------------------------------------------------


def _entry_lines(path: Path, header: str) -> dict[tuple[str, str], int]:
    """The line of each TOML array-of-tables entry's ``name = ...``, by (name, version);
    ``(name, "")`` the first entry of that name."""
    found: dict[tuple[str, str], int] = {}
    name_line: tuple[str, int] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if line == header:
            name_line = None
        elif name_line is None and (match := re.match(r'name\s*=\s*"([^"]+)"', line)):
            name_line = (_canonical(match[1]), number)
            found.setdefault((name_line[0], ""), number)
        elif name_line is not None and (match := re.match(r'version\s*=\s*"([^"]+)"', line)):
            found.setdefault((name_line[0], match[1]), name_line[1])
    return found


def _line(lines: Mapping[tuple[str, str], int], name: str, version: str) -> int:
    return lines.get((name, version)) or lines.get((name, ""), 1)


def _json_entry_line(text: Sequence[str], section: str, name: str) -> int:
    """The line of ``"name": {`` in ``section`` of a JSON lock written one key per line."""
    inside = False
    for number, raw in enumerate(text, start=1):
        if raw.strip().startswith(f'"{section}":'):
            inside = True
        elif inside and raw.strip().startswith(f'"{name}":'):
            return number
    return 1


# --- checking what resolved against the lock ---------------------------------------------------


def hold_to_lock(
    requirements: Path | None,
    resolution: Resolution,
    wheels: Mapping[str, Path] | None = None,
    target: Target | None = None,
) -> Resolution:
    """``resolution`` when it is the lock's: refuse (exit 2, naming the lock's line) a file
    whose sha256 the lock does not list, or a release the lock does not pin; the fix of each
    missing build names the command that updates the lock. ``wheels``: the files fetched,
    checked by their own sha256 (else by the sha256 the index announced). ``target``: what
    the fix for a dependency a Pipfile.lock left out names."""
    locked = None if requirements is None else locked_set(requirements)
    if locked is None or locked.kind == "pyproject":
        return resolution
    by_name = {p.name: p for p in locked.packages}
    resolved = [(d.name, d.version) for d in resolution.distributions]
    for name, version in [*resolved, *((m.name, m.version) for m in resolution.missing)]:
        package = by_name.get(name)
        if package is None or package.version != version:
            raise _not_locked(locked, name, version, target)
    for distribution in resolution.distributions:
        if distribution.built_from_source:
            continue  # built from the sdist pip downloaded, checked against the lock's hashes
        sha256 = distribution.sha256
        if wheels is not None:
            from chalicepack.deps.install import stored_sha256

            sha256 = stored_sha256(wheels[distribution.name])
        package = by_name[distribution.name]
        if sha256 is None or sha256 not in package.hashes:
            raise _tampered(locked, package, sha256)
    missing = tuple(
        replace(item, fix=_lock_fix(locked, item.name, item.fix)) for item in resolution.missing
    )
    return replace(resolution, missing=missing)


def _not_locked(
    locked: LockedSet, name: str, version: str, target: Target | None
) -> RequirementsError:
    fix = f"update the lock ({_update(locked.kind, name, locked.lock)})"
    if locked.kind == "pipfile" and target is not None:
        # Pipenv leaves out a dependency whose markers are false for the Python and machine it
        # locks on (not even an unlocked entry): updating it there changes nothing.
        fix = (
            "Pipenv leaves out a dependency whose markers are false for the Python and machine"
            f" it locks on; name {name} in the Pipfile with its marker and lock it for every"
            f" target with {_PURE_PYTHON}, or lock for this target only: "
            + _pipfile_lock_fix(locked.lock, "python_version platform_machine", target)
            + ", or use a lock that covers every target (uv lock, poetry lock)"
        )
    return RequirementsError(
        f"{locked.lock}: {name}=={version} is needed on the target but not locked; {fix}",
        file=locked.lock,
    )


def locked_hashes(requirements: Path, name: str) -> frozenset[str]:
    """The sha256 digests a lock lists for ``name`` (its wheels' and sdist's), when
    ``requirements`` was generated from a lock; else none (nothing to hold a build to)."""
    locked = locked_set(requirements)
    if locked is None or locked.kind == "pyproject":
        return frozenset()
    return next((p.hashes for p in locked.packages if p.name == name), frozenset())


def unlisted_file(requirements: Path, name: str, sha256: str) -> RequirementsError:
    """The refusal of a file of ``name`` whose ``sha256`` the lock does not list."""
    locked = locked_set(requirements)
    assert locked is not None, "only a lock lists hashes"
    return _tampered(locked, next(p for p in locked.packages if p.name == name), sha256)


def _tampered(locked: LockedSet, package: LockedPackage, sha256: str | None) -> RequirementsError:
    found = f"has sha256 {sha256}" if sha256 else "has no sha256 the index announced"
    return RequirementsError(
        f"{locked.lock}:{package.line}: {package.name}=={package.version}: the file from the"
        f" index {found}, which the lock does not list; someone changed the file or the lock:"
        " regenerate the lock only if the release was re-published legitimately"
        f" ({_update(locked.kind, package.name, locked.lock)})",
        file=locked.lock,
        line=package.line,
    )


def _update(kind: Kind, name: str, lock: Path) -> str:
    return _UPDATE.get(kind, "{name}").format(name=name, lock=lock.name)


# pip_resolver's fix for a missing build under requirements.txt, which a lock reads differently.
_PIN_FIX = re.compile(
    r"^pin (?P<name>\S+)==(?P<version>\S+), the newest release with a wheel for"
    r" (?P<target>.+), or vendor it$"
)


def _lock_fix(locked: LockedSet, name: str, fix: str) -> str:
    """The fix of a missing build, for a lock: the newest release with a build and the command
    that updates the lock to it, rather than a requirements.txt pin."""
    match = _PIN_FIX.match(fix)
    if match is None:
        return fix
    command = _update(locked.kind, name, locked.lock)
    return (
        f"{match['version']} is the newest release of {name} with a wheel for"
        f" {match['target']}: allow it and update the lock ({command}), or vendor it"
    )
