"""The packaging pipeline: config, project, target, resolve, install, archive, report."""

from __future__ import annotations

import base64
import functools
import hashlib
import inspect
import json
import logging
import os
import re
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from chalicepack import __version__
from chalicepack.deps.install import (
    fetch_wheels,
    install_tree,
    installed_files,
    shipped_members,
    stored_sha256,
)
from chalicepack.deps.pip import redact
from chalicepack.deps.pip_resolver import Distribution, Resolution, resolve
from chalicepack.deps.treecheck import refuse_damaged_tree
from chalicepack.deps.uv_resolver import resolve_with_uv, with_dependencies
from chalicepack.errors import AppImportError, MissingDependencies, ProjectError
from chalicepack.importcheck.check import bytecode_mirror, check_app_import
from chalicepack.inputs.config import StageConfig
from chalicepack.inputs.names import function_name_warnings
from chalicepack.inputs.project import Project
from chalicepack.inputs.requirements import (
    RequirementLine,
    index_options,
    lines_by_name,
    read_requirement_lines,
)
from chalicepack.inputs.target import Target
from chalicepack.lambda_env import refuse_over_unzipped_limit

# BuildOptions and BuildResult live where an unchanged build, which never imports this module,
# finds them; callers know them as build's.
from chalicepack.options import BuildOptions as BuildOptions
from chalicepack.package.archive import (
    RawMember,
    StagedZip,
    ZipEntry,
    ZipSummary,
    entry_for,
    raw_copyable,
    stage_zip,
    zip_timestamp,
)
from chalicepack.package.cache import (
    DEFAULT_MAX_AGE,
    load_resolution,
    resolution_key,
    resolution_token,
    save_resolution,
)
from chalicepack.package.chaliceruntime import installed_runtime, runtime_from_wheel
from chalicepack.package.digest import DigestRecord, file_sha256
from chalicepack.package.exclude import exclude, runtime_provided
from chalicepack.package.outlock import output_lock
from chalicepack.package.uptodate import (
    BuildInputs,
    build_fingerprint,
    unchanged_build,
    zip_digests_path,
)
from chalicepack.report import (
    CHECK_REPORT_NAME,
    REPORT_NAME,
    missing_dependencies_warning,
    missing_dependency_details,
    write_json_atomically,
)
from chalicepack.report import BuildResult as BuildResult

log = logging.getLogger(__name__)

DEPLOYMENT_ZIP = "deployment.zip"
LAYER_ZIP = "layer-deployment.zip"


def build(options: BuildOptions) -> BuildResult:
    """Package the project; raise a ``ChalicepackError`` subclass on failure."""
    inputs = BuildInputs.read(options)
    if not options.check_only:
        unchanged = unchanged_build(inputs)
        if unchanged is not None:
            return unchanged
    return build_from(inputs)


def build_from(inputs: BuildInputs) -> BuildResult:
    """Package what ``inputs`` describe, without asking whether the last build still stands
    (``package.uptodate.unchanged_build`` answers that, and needs nothing imported here)."""
    options = inputs.options
    requirements = _read_requirements(
        inputs.project, inputs.target, inputs.cache_dir, options.refresh, options.resolver
    )
    with tempfile.TemporaryDirectory(prefix="chalicepack-") as scratch:
        return _build_in(
            Path(scratch), inputs.project, inputs.config, inputs.target, inputs.automatic_layer,
            inputs.out_dir, inputs.cache_dir, options, requirements, inputs.settings,
        )  # fmt: skip


def _build_in(
    workdir: Path,
    project: Project,
    config: StageConfig,
    target: Target,
    automatic_layer: bool,
    out_dir: Path,
    cache_dir: Path,
    options: BuildOptions,
    requirements: _Requirements,
    settings: Mapping[str, Any],
) -> BuildResult:
    lines = requirements.lines
    resolution, fetched = _resolve_requirements(
        project, target, requirements, workdir, cache_dir, options.resolver
    )
    warnings = []
    if resolution.missing:
        warnings.append(missing_dependencies_warning(resolution.missing))
        log.warning("%s", warnings[-1])
        for line in missing_dependency_details(resolution.missing):
            log.warning("%s", line)
    report = _report(project, config, target, automatic_layer, resolution, lines)
    report_path = out_dir / REPORT_NAME
    if options.check_only:
        check_report_path = out_dir / CHECK_REPORT_NAME
        write_json_atomically(check_report_path, report)
        return BuildResult(report, check_report_path, warnings)

    chalice = [d for d in resolution.distributions if d.name == "chalice"]
    shipped = [d for d in resolution.distributions if d.name != "chalice"]
    provided = runtime_provided(shipped) if options.without_runtime_provided else set()
    shipped = [d for d in shipped if d.name not in provided]
    wheels = fetched or _fetch_wheels(project, resolution.distributions, target, cache_dir)
    if requirements.key is not None:
        if requirements.cached is None:
            save_resolution(cache_dir, requirements.key, resolution, lines, wheels)
        token: str | None = resolution_token(cache_dir, requirements.key)
    else:
        token = None
    report["fingerprint"] = build_fingerprint(project, config.path, settings, token)
    tree = install_tree(wheels, shipped, cache_dir / "trees", target)
    if tree.reused:
        log.info("dependencies unchanged: reusing the installed tree from the cache")
    site_packages = tree.site_packages
    if chalice:
        runtime = runtime_from_wheel(wheels["chalice"], workdir)
        report["chalice_runtime"] = f"chalice=={chalice[0].version} from requirements.txt"
    else:
        version, runtime = installed_runtime(workdir)
        report["chalice_runtime"] = f"chalice=={version} installed with chalicepack"

    app_entries = [entry_for(f.arcname, f.path) for f in project.app_files]
    app_entries += [ZipEntry(arcname, path) for arcname, path in runtime.items()]
    vendor_entries = [entry_for(f.arcname, f.path) for f in project.vendor_files]
    dependency_entries = _dependency_entries(site_packages, [wheels[d.name] for d in shipped])
    library_entries, overridden = _vendor_over_dependencies(vendor_entries, dependency_entries)
    trimmed = exclude(library_entries, options.exclude)
    library_entries = trimmed.kept
    for pattern in trimmed.unmatched:
        log.warning("--exclude %r matched no dependency or vendor file", pattern)
    report["left_out"] = _left_out(report, provided, wheels, trimmed.removed)
    for arcname in overridden:
        log.warning("vendor/%s replaces the file of the same path from a dependency", arcname)
    _refuse_app_collisions(app_entries, library_entries, project)
    refuse_over_unzipped_limit([*app_entries, *library_entries], project.root)
    report["dependencies"] = [d for d in report["dependencies"] if d["name"] not in provided]
    for entry in report["dependencies"]:
        entry["wheel"] = wheels[entry["name"]].name
        entry["unpacked_size"] = tree.unpacked_sizes[entry["name"]]
    report["vendor_overrides"] = overridden

    if resolution.missing and options.strict:
        write_json_atomically(report_path, report)
        raise MissingDependencies(
            "missing dependencies under --strict: "
            + ", ".join(f"{m.name}=={m.version}" for m in resolution.missing)
            + "; vendor them or pin releases that have wheels for the target",
            report_path=report_path,
        )

    function_entries = app_entries if automatic_layer else [*app_entries, *library_entries]
    layer_entries = [_under(target.site_packages, e) for e in library_entries]
    if automatic_layer and not layer_entries:
        log.info("no layer zip: there are no dependencies or vendor files to put in it")
    planned = {DEPLOYMENT_ZIP: function_entries}
    if automatic_layer and layer_entries:
        planned[LAYER_ZIP] = layer_entries
    check = None
    if options.import_app:
        check = functools.partial(
            _check_import, report, config, target, project, app_entries, library_entries,
            automatic_layer, site_packages, workdir, cache_dir, options.import_timeout,
        )  # fmt: skip
    else:
        log.info("--no-import: the app was not imported, no functions are listed")
    digests = DigestRecord(zip_digests_path(cache_dir, out_dir))
    with output_lock(out_dir):  # the zips, the layer kept or removed, and the report agree
        report["artifacts"] = _write_artifacts(out_dir, planned, check, digests)
        write_json_atomically(report_path, report)
    return BuildResult(report, report_path, warnings)


def _write_artifacts(
    out_dir: Path,
    planned: Mapping[str, list[ZipEntry]],
    check: Callable[[], None] | None,
    digests: DigestRecord,
) -> dict[str, Any]:
    """Write every zip under a temporary name while ``check`` (the import check) runs, then
    rename them all once it passed: a failure leaves the previous artifacts as they were, never
    a mix of old and new, nor the zip of a package whose import failed."""
    # The check mostly waits on a child process: the zips are written meanwhile. It stays on
    # this thread, where Ctrl-C and SIGTERM arrive and stop its child; the zips being written
    # then are removed once written.
    with ThreadPoolExecutor(max_workers=1) as pool:
        writing = pool.submit(_stage_artifacts, out_dir, planned, digests)
        try:
            if check is not None:
                check()
            staged, layer = writing.result()
        except BaseException:
            if writing.exception() is None:  # (a write that failed removed its own files)
                for item in writing.result()[0]:
                    item.discard()
            raise
    try:
        for item in staged:
            item.commit()
    except BaseException:
        for item in staged:
            item.discard()
        raise
    if LAYER_ZIP not in planned:
        # A layer zip left by an earlier build would be taken for this build's.
        (out_dir / LAYER_ZIP).unlink(missing_ok=True)
    names = {DEPLOYMENT_ZIP: "deployment", LAYER_ZIP: "layer"}
    artifacts = {names[item.summary.path.name]: _artifact(item.summary) for item in staged}
    if LAYER_ZIP in planned:
        artifacts["layer"] = {**(layer.kept or artifacts["layer"]), "inputs_sha256": layer.inputs}
    return artifacts


def _stage_artifacts(
    out_dir: Path, planned: Mapping[str, list[ZipEntry]], digests: DigestRecord
) -> tuple[list[StagedZip], _LayerReuse]:
    layer = _reusable_layer(out_dir, planned.get(LAYER_ZIP), digests)
    staged: list[StagedZip] = []
    try:
        for name, entries in planned.items():
            if name != LAYER_ZIP or layer.kept is None:
                staged.append(stage_zip(out_dir / name, entries))
    except BaseException:
        for item in staged:
            item.discard()
        raise
    return staged, layer


@dataclass(frozen=True)
class _LayerReuse:
    inputs: str | None  # what the layer zip's bytes are made of (see _layer_inputs)
    kept: dict[str, Any] | None  # the last build's layer artifact, made of the same, kept


def _reusable_layer(
    out_dir: Path, entries: Sequence[ZipEntry] | None, digests: DigestRecord
) -> _LayerReuse:
    """The layer zip the last build left in ``out_dir``, when it was made of the same inputs
    and is still, byte for byte, what that build reported: it is kept rather than written
    again (the same bytes; its modification time stays too, for tools that look at it)."""
    if entries is None:
        return _LayerReuse(None, None)
    inputs = _layer_inputs(entries)
    path = out_dir / LAYER_ZIP
    try:
        last = json.loads((out_dir / REPORT_NAME).read_text(encoding="utf-8"))["artifacts"]["layer"]
        if (
            inputs is not None
            and last["inputs_sha256"] == inputs
            and Path(last["path"]) == path
            and last.keys() >= _ARTIFACT_FIELDS
            and path.stat().st_size == last["size"]
            and digests.sha256(path) == last["sha256"]  # hashed, unless verified unchanged
        ):
            digests.save()
            log.info("the layer's contents are unchanged: keeping %s", path)
            return _LayerReuse(inputs, dict(last))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # no usable report of a layer: write it
    return _LayerReuse(inputs, None)


# What a layer artifact in the report has, for it to be reported again as it is.
_ARTIFACT_FIELDS = {"path", "size", "unzipped_size", "files", "sha256", "sha256_base64"}
_LAYER_INPUTS_FORMAT = "chalicepack layer inputs 1"  # a new digest when what it covers changes
_SHA256_HEX = re.compile("[0-9a-f]{64}")


def _layer_inputs(entries: Sequence[ZipEntry]) -> str | None:
    """A digest of everything the bytes of a zip of ``entries`` depend on: each entry's path,
    mode and data (a wheel member's, named by the wheel's sha256 and the member's name; else
    the file's sha256), the timestamp, zlib (which deflates files) and the writer's own code.
    None when a wheel is not named by its sha256 in the store."""
    writer = Path(inspect.getfile(stage_zip)).read_bytes()
    header = [
        _LAYER_INPUTS_FORMAT, __version__, hashlib.sha256(writer).hexdigest(),
        zlib.ZLIB_RUNTIME_VERSION, list(zip_timestamp()),
    ]  # fmt: skip
    digest = hashlib.sha256(json.dumps(header).encode())
    for entry in sorted(entries, key=lambda entry: entry.arcname):
        if entry.raw is not None and raw_copyable(entry.raw.info):  # as the writer decides
            wheel = stored_sha256(entry.raw.archive)
            if not _SHA256_HEX.fullmatch(wheel):
                return None
            info = entry.raw.info
            data = f"{wheel}\0{info.filename}\0{info.header_offset}\0{info.CRC}"
        else:
            data = file_sha256(entry.source)
        digest.update(f"\0{entry.arcname}\0{entry.mode:o}\0{data}".encode())
    return digest.hexdigest()


def _check_import(
    report: dict[str, Any],
    config: StageConfig,
    target: Target,
    project: Project,
    app_entries: Sequence[ZipEntry],
    library_entries: Sequence[ZipEntry],
    automatic_layer: bool,
    site_packages: Path,
    workdir: Path,
    cache_dir: Path,
    timeout: float,
) -> None:
    """Import the app from exactly what ships, as Lambda lays it out; list its functions."""
    staging = workdir / "import"
    beside = [] if automatic_layer else app_entries  # what shares a directory with libraries
    vendor = _apart_from_tree(library_entries, site_packages, beside)
    if vendor is None:  # stage every file, as Lambda unzips them
        dependencies = None
        function_entries = app_entries if automatic_layer else [*app_entries, *library_entries]
        layer_entries = library_entries if automatic_layer else []
    else:  # the installed tree is on sys.path itself, after the files staged beside it
        dependencies = site_packages
        function_entries = app_entries if automatic_layer else [*app_entries, *vendor]
        layer_entries = vendor if automatic_layer else []
    task = _link_tree(staging / "task", function_entries)
    layer = _link_tree(staging / "layer", layer_entries) if layer_entries else None
    runtime = _runtime_provided(cache_dir / "runtime-provided")
    bytecode = cache_dir / "pycache"
    _drop_unused_bytecode(bytecode, [cache_dir / "trees", cache_dir / "runtime-provided"])
    log.info("importing app.py as Lambda would (AWS_CHALICE_CLI_MODE=true, stage environment)")
    try:
        checked = check_app_import(
            task,
            layer,
            config.environment_variables,
            target_python=target.python_version,
            target_machine=target.machine,
            project_root=project.root,
            timeout=timeout,
            runtime_provided=runtime,
            dependencies=dependencies,
            bytecode_cache=bytecode,
        )
    except AppImportError as error:
        _log_app_output(error.output)
        refuse_damaged_tree(site_packages, cache_dir)  # the cache's fault, not the app's
        raise
    _log_app_output(checked.output)
    for warning in checked.warnings:
        log.warning("%s", warning)
    if checked.app_name and checked.app_name != config.app_name:
        log.warning(
            "app.py names the app %r but %s says %r; Chalice names resources after config.json",
            checked.app_name, config.path, config.app_name,
        )  # fmt: skip
    for warning in function_name_warnings(config, [(f.name, f.kind) for f in checked.functions]):
        log.warning("%s", warning)
    report["imported_app_name"] = checked.app_name
    report["functions"] = [
        {"name": f.name, "handler": f.handler, "kind": f.kind} for f in checked.functions
    ]


def _apart_from_tree(
    library: Sequence[ZipEntry], site_packages: Path, beside: Sequence[ZipEntry]
) -> list[ZipEntry] | None:
    """The library entries that are not the installed tree's files, when the others are all
    of that tree's files and the tree can go on ``sys.path`` as it is, after a directory of
    them and ``beside``: else None, and every file is staged.

    On Lambda they all lie in one directory. Two directories find the same modules when no
    top-level name (``x`` of ``x/``, ``x.py``, ``x.cpython-311-x86_64-linux-gnu.so``,
    ``x-1.0.dist-info``) is in both: an import then finds what it would in the merged
    directory, in whichever of the two holds that name. A vendor file replacing a dependency's,
    a file ``--exclude`` left out, or an empty directory (no zip holds it) rule the tree out.
    What stays apart: without a layer, a dependency's file is not in the working directory
    (``/var/task``) as on Lambda, so a relative path to one (``open("dep/data.json")``) fails.
    """
    prefix = f"{site_packages}{os.sep}"
    shipped: set[str] = set()
    apart: list[ZipEntry] = []
    for entry in library:
        if str(entry.source) == prefix + entry.arcname.replace("/", os.sep):
            shipped.add(entry.arcname)
        else:
            apart.append(entry)
    if not shipped or shipped != _files_below(site_packages):
        return None
    names = {_top_level_name(arcname) for arcname in shipped}
    if any(_top_level_name(entry.arcname) in names for entry in [*apart, *beside]):
        return None
    return apart


def _files_below(root: Path) -> set[str] | None:
    """The paths of the files below ``root``, relative to it; None if a directory is empty."""
    found: set[str] = set()
    top = str(root)
    for directory, subdirectories, files in os.walk(top):
        if not files and not subdirectories:
            return None
        below = directory[len(top) + 1 :].replace(os.sep, "/")  # os.walk joins onto ``top``
        found.update(f"{below}/{name}" if below else name for name in files)
    return found


def _top_level_name(arcname: str) -> str:
    # casefold: a case-insensitive file system finds X.py for `import x`.
    return re.split(r"[.-]", arcname.split("/", 1)[0], maxsplit=1)[0].casefold()


def _drop_unused_bytecode(bytecode: Path, parents: Sequence[Path]) -> None:
    """Drop the cached bytecode of the directories ``parents`` no longer hold: installed
    trees pruned from the cache, runtime link sets of another chalicepack installation."""
    for parent in parents:
        try:
            mirrored = list(bytecode_mirror(bytecode, parent).iterdir())
        except OSError:
            continue  # nothing cached there yet
        for mirror in mirrored:
            if not (parent / mirror.name).is_dir():
                shutil.rmtree(mirror, ignore_errors=True)


def _link_tree(root: Path, entries: Iterable[ZipEntry]) -> Path:
    """A directory holding ``entries`` at their zip paths, as symlinks to their sources."""
    root.mkdir(parents=True)
    made = {root}
    for entry in entries:
        link = root / entry.arcname
        if link.parent not in made:
            link.parent.mkdir(parents=True, exist_ok=True)
            made.add(link.parent)
        # Sources are absolute already (project files resolved, the cached tree's own paths).
        os.symlink(entry.source, link)
    return root


# What Lambda's Python runtime puts on sys.path itself (/var/runtime): an app may import
# boto3 without listing it, as Chalice's documentation allows.
_RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")


def _runtime_provided(parent: Path) -> Path:
    """A directory of links to this host's copies of what Lambda's runtime provides. It stays
    in the cache, named after where the links point, so that their bytecode is cached too."""
    import importlib.util

    links = {}
    for name in _RUNTIME_PROVIDED:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        links[source.name] = str(source)
    root = parent / hashlib.sha256(json.dumps(links, sort_keys=True).encode()).hexdigest()[:16]
    if _links_in_place(root, links):
        return root
    parent.mkdir(parents=True, exist_ok=True)
    for other in parent.iterdir():  # those of chalicepack installations since removed
        if not other.name.startswith(".") and not all(x.exists() for x in other.iterdir()):
            shutil.rmtree(other, ignore_errors=True)
    scratch = Path(tempfile.mkdtemp(dir=parent, prefix=".links-"))
    for name, target in links.items():
        (scratch / name).symlink_to(target)
    try:
        os.rename(scratch, root)  # all links at once, or none: concurrent builds read them
    except OSError:
        if _links_in_place(root, links):  # a concurrent build made the same links first
            shutil.rmtree(scratch, ignore_errors=True)
            return root
        shutil.rmtree(root, ignore_errors=True)  # someone changed them
        os.rename(scratch, root)
    return root


def _links_in_place(root: Path, links: Mapping[str, str]) -> bool:
    try:
        return sorted(os.listdir(root)) == sorted(links) and all(
            os.readlink(root / name) == target for name, target in links.items()
        )
    except OSError:
        return False


def _log_app_output(output: str) -> None:
    for line in output.splitlines():
        log.info("app: %s", line)


@dataclass(frozen=True)
class _Requirements:
    """requirements.txt as read, its resolution cache key, and a reusable cached resolution."""

    lines: tuple[RequirementLine, ...] = ()
    key: str | None = None
    cached: Resolution | None = None


def _read_requirements(
    project: Project, target: Target, cache_dir: Path, refresh: bool, resolver: str
) -> _Requirements:
    if project.requirements is None:
        return _Requirements()
    lines = read_requirement_lines(project.requirements)
    key = resolution_key(project.requirements, target, resolver)
    max_age = 0.0 if refresh else DEFAULT_MAX_AGE
    return _Requirements(lines, key, load_resolution(cache_dir, key, max_age))


def _resolve_requirements(
    project: Project,
    target: Target,
    requirements: _Requirements,
    workdir: Path,
    cache_dir: Path,
    resolver: str,
) -> tuple[Resolution, dict[str, Path] | None]:
    """The resolution, and its wheels when resolving had to fetch them already."""
    if project.requirements is None:
        return Resolution((), ()), None
    if requirements.cached is not None:
        log.info(
            "requirements.txt unchanged: reusing its cached resolution (--refresh to resolve again)"
        )
        return requirements.cached, None
    if resolver == "auto":
        picked = resolve_with_uv(
            project.requirements,
            requirements.lines,
            target,
            workdir=workdir,
            cache_dir=cache_dir / "uv",
        )
        if picked is not None:
            # What each release requires is in its wheel: fetch them now (the build would).
            wheels = _fetch_wheels(project, picked, target, cache_dir)
            return Resolution(with_dependencies(picked, wheels), ()), wheels
    resolution = resolve(
        project.requirements,
        requirements.lines,
        target,
        workdir=workdir,
        cache_dir=cache_dir / "pip",
    )
    return resolution, None


def _fetch_wheels(
    project: Project, distributions: Sequence[Distribution], target: Target, cache_dir: Path
) -> dict[str, Path]:
    """The wheels of ``distributions`` from the cache's store, fetching what it lacks with
    the index options requirements.txt names."""
    return fetch_wheels(
        distributions,
        target,
        store=cache_dir / "wheels",
        cache_dir=cache_dir / "pip",
        index_options=index_options(project.requirements) if project.requirements else [],
    )


def _left_out(
    report: Mapping[str, Any],
    provided: set[str],
    wheels: Mapping[str, Path],
    excluded: Sequence[ZipEntry],
) -> dict[str, Any]:
    """What ``--without-runtime-provided`` and ``--exclude`` kept out, and the bytes saved."""
    runtime = [
        {
            "name": d["name"],
            "version": d["version"],
            "unpacked_size": sum(i.file_size for i in shipped_members(wheels[d["name"]]).values()),
        }
        for d in report["dependencies"]
        if d["name"] in provided
    ]
    excluded_bytes = sum(entry.size for entry in excluded)
    return {
        "runtime_provided": runtime,
        "excluded_files": [e.arcname for e in excluded],
        "bytes_saved": sum(item["unpacked_size"] for item in runtime) + excluded_bytes,
    }


def _under(prefix: str, entry: ZipEntry) -> ZipEntry:
    return replace(entry, arcname=f"{prefix}/{entry.arcname}")


def _dependency_entries(site_packages: Path, wheels: Iterable[Path]) -> list[ZipEntry]:
    """The installed tree's files; those a wheel holds unchanged are copied from the wheel
    in compressed form (see ``archive``), the rest (RECORD) are deflated from the tree."""
    members: dict[str, RawMember] = {}
    for wheel in wheels:
        for arcname, info in shipped_members(wheel).items():
            members[arcname] = RawMember(wheel, info)
    entries = []
    for arcname, size, executable in installed_files(site_packages):
        member = members.get(arcname)
        raw = member if member is not None and member.info.file_size == size else None
        entries.append(ZipEntry(arcname, site_packages / arcname, executable, raw))
    return entries


def _vendor_over_dependencies(
    vendor: Sequence[ZipEntry], dependencies: Sequence[ZipEntry]
) -> tuple[list[ZipEntry], list[str]]:
    """Vendor files and dependency files together; a vendor file wins over a dependency's."""
    vendored = {entry.arcname for entry in vendor}
    overridden = sorted(entry.arcname for entry in dependencies if entry.arcname in vendored)
    kept = [entry for entry in dependencies if entry.arcname not in vendored]
    return [*vendor, *kept], overridden


def _refuse_app_collisions(
    app: Sequence[ZipEntry], libraries: Sequence[ZipEntry], project: Project
) -> None:
    app_paths = {entry.arcname for entry in app}
    # The app's chalicelib/ is its own package: nothing may replace or add a module in it.
    app_package = "chalicelib/" if any(p.startswith("chalicelib/") for p in app_paths) else None
    for entry in libraries:
        if entry.arcname in app_paths or (app_package and entry.arcname.startswith(app_package)):
            if entry.arcname in app_paths:
                what = f"replace the app's {entry.arcname} in the package"
            else:
                what = f"add {entry.arcname} to the app's own chalicelib/ package"
            raise ProjectError(
                f"{_shipped_from(entry)} would {what}; rename it, or remove it from"
                f" {project.root / 'vendor'} or requirements.txt"
            )


def _shipped_from(entry: ZipEntry) -> str:
    """The wheel a dependency's file comes from, else the file itself (vendor/)."""
    if entry.raw is not None:
        return f"the dependency wheel {entry.raw.archive.name}"
    return str(entry.source)


def _artifact(summary: ZipSummary) -> dict[str, Any]:
    digest = file_sha256(summary.path)
    return {
        "path": str(summary.path),
        "size": summary.size,
        "unzipped_size": summary.unzipped_size,
        "files": summary.entries,
        "sha256": digest,
        # What Lambda reports as CodeSha256 and Terraform's source_code_hash expects.
        "sha256_base64": base64.b64encode(bytes.fromhex(digest)).decode(),
    }


def _report(
    project: Project,
    config: StageConfig,
    target: Target,
    automatic_layer: bool,
    resolution: Resolution,
    lines: tuple[RequirementLine, ...],
) -> dict[str, Any]:
    """The report as resolution leaves it; installing fills in sizes and the artifacts."""
    every = resolution.distributions

    def origin(name: str) -> dict[str, Any]:
        return _origin(name, every, lines, project.root)

    return {
        "chalicepack_version": __version__,
        "project": str(project.root),
        "app_name": config.app_name,
        "stage": config.stage,
        "runtime": target.runtime,
        "architecture": target.arch,
        "automatic_layer": automatic_layer,
        "chalice_runtime": None,
        "artifacts": {},
        "dependencies": [
            {
                "name": item.name,
                "version": item.version,
                "wheel": item.filename,
                "tag": _wheel_tag(item.filename),
                "unpacked_size": None,
                "built_from_source": item.built_from_source,
                "url": redact(item.url),
                **origin(item.name),
            }
            for item in sorted(every, key=lambda item: item.name)
            if item.name != "chalice"
        ],
        "vendor_files": [file.arcname for file in project.vendor_files],
        "vendor_overrides": [],
        "missing_dependencies": [
            {
                "name": item.name,
                "version": item.version,
                "reason": item.reason,
                "fix": item.fix,
                "build_log": item.build_log,
                "only_needed_by_it": list(item.only_needed_by_it),
                **origin(item.name),
            }
            for item in resolution.missing
        ],
    }


def _wheel_tag(filename: str) -> str:
    return "-".join(filename.removesuffix(".whl").split("-")[-3:])


def _origin(
    name: str,
    distributions: Iterable[Distribution],
    lines: tuple[RequirementLine, ...],
    root: Path,
) -> dict[str, Any]:
    """Where a dependency comes from: its requirements.txt line, and which projects need it."""
    line = lines_by_name(lines).get(canonicalize_name(name))
    required_by = sorted(d.name for d in distributions if name in d.requires)
    return {
        "requirement": None
        if line is None
        else {
            "file": str(
                line.path.relative_to(root) if line.path.is_relative_to(root) else line.path
            ),
            "line": line.lineno,
            "text": redact(line.text),
        },
        "required_by": required_by,
    }
