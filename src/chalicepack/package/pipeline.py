"""The packaging pipeline: inputs -> resolution -> installed tree -> zips (while the app is
imported from what they hold) -> build-report.json.

Each step is a function of the step before; the report is built as the steps go, as values
(``report.BuildReport``), and written once, last. A failure before that leaves the previous
artifacts and report as they were.
"""

from __future__ import annotations

import base64
import functools
import logging
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from packaging.utils import canonicalize_name

from chalicepack import __version__
from chalicepack.deps.deadline import Deadline
from chalicepack.deps.pip import redact
from chalicepack.deps.pip_resolver import Distribution, Resolution, requirements_on_target
from chalicepack.deps.resolver import (
    Request,
    Requirements,
    Resolved,
    fetch_dependency_wheels,
    resolution_deadline,
    resolve_requirements,
)
from chalicepack.errors import BuildFailure, MissingDependencies, ProjectError
from chalicepack.inputs.locks import hold_to_lock
from chalicepack.inputs.project import Project
from chalicepack.inputs.requirements import RequirementLine, lines_by_name
from chalicepack.lambda_env import refuse_over_unzipped_limit

# BuildOptions and BuildResult live where an unchanged build, which never imports this module,
# finds them; callers know them as the pipeline's.
from chalicepack.options import BuildOptions as BuildOptions
from chalicepack.package.archive import (
    RawMember,
    StagedZip,
    ZipEntry,
    ZipSummary,
    entry_for,
    stage_zip,
)
from chalicepack.package.cache import resolution_token, save_resolution
from chalicepack.package.chaliceruntime import installed_runtime, runtime_from_wheel
from chalicepack.package.digest import DigestRecord, file_sha256
from chalicepack.package.exclude import exclude, runtime_provided
from chalicepack.package.layerzip import LAYER_ZIP as LAYER_ZIP
from chalicepack.package.layerzip import LayerReuse, reusable_layer
from chalicepack.package.outlock import output_lock
from chalicepack.package.sbom import preload, shipped_distributions, write_sbom
from chalicepack.package.uptodate import (
    BuildInputs,
    build_fingerprint,
    unchanged_build,
    zip_digests_path,
)
from chalicepack.report import (
    CHECK_REPORT_NAME,
    REPORT_NAME,
    Artifact,
    BuildReport,
    Dependency,
    LeftOut,
    LeftOutDistribution,
    MissingDependency,
    RequirementSource,
    missing_dependencies_warning,
    missing_dependency_details,
    write_report,
)
from chalicepack.report import BuildResult as BuildResult

if TYPE_CHECKING:
    from chalicepack.deps.install import InstalledTree
    from chalicepack.importcheck.check import WaitingChild
    from chalicepack.importcheck.staging import Shipped, ShippedImport

log = logging.getLogger(__name__)
T = TypeVar("T")

DEPLOYMENT_ZIP = "deployment.zip"


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
    requirements = Requirements.read(
        inputs.project.requirements,
        inputs.target,
        inputs.cache_dir,
        refresh=options.refresh,
        resolver=options.resolver,
    )
    with tempfile.TemporaryDirectory(prefix="chalicepack-") as scratch:
        return _build_in(Path(scratch), inputs, requirements)


def _build_in(workdir: Path, inputs: BuildInputs, requirements: Requirements) -> BuildResult:
    if inputs.options.check_only:
        return _build_with(workdir, inputs, requirements, None)
    # While uv resolves, a thread imports what the later steps need and starts the import
    # check's interpreter.
    waiting = _in_background(functools.partial(_preload, inputs, workdir))
    try:
        return _build_with(workdir, inputs, requirements, waiting)
    finally:
        # Waited for (imports: a fraction of a second at most), so that nothing is created
        # in ``workdir`` while it is removed; then ended, unless the check took it.
        _dismiss(waiting)


def _build_with(
    workdir: Path,
    inputs: BuildInputs,
    requirements: Requirements,
    waiting: Future[WaitingChild | None] | None,
) -> BuildResult:
    options = inputs.options
    deadline = resolution_deadline(requirements.path)  # one bound, from here to the wheels
    request = Request(requirements, inputs.target, workdir, inputs.cache_dir, deadline)
    resolved = resolve_requirements(request, options.resolver)
    # A lock's resolution: its files' hashes held to the lock's, its fixes naming the lock's tool.
    held = hold_to_lock(requirements.path, resolved.resolution, target=inputs.target)
    resolved = replace(resolved, resolution=held)
    warnings = _missing_warnings(resolved.resolution, strict=options.strict)
    report = resolved_report(inputs, resolved.resolution, requirements.lines)
    if options.check_only:
        check_report_path = inputs.out_dir / CHECK_REPORT_NAME
        write_report(check_report_path, report)
        return BuildResult(report, check_report_path, warnings)

    installed = _install(workdir, inputs, requirements, resolved, deadline)
    shipped, report = _shipped(
        inputs, installed, replace(report, fingerprint=installed.fingerprint)
    )
    report_path = inputs.out_dir / REPORT_NAME
    missing = resolved.resolution.missing
    if missing and options.strict:
        write_report(report_path, report)
        raise MissingDependencies(
            "missing dependencies under --strict: "
            + ", ".join(f"{m.name}=={m.version}" for m in missing)
            + "; vendor them or pin releases that have wheels for the target",
            report_path=report_path,
        )
    # What the SBOM says of each wheel (its license, its sha256) is read while the zips are
    # written and the app imported: the dependencies it lists are final here.
    sbom = _in_background(functools.partial(shipped_distributions, report, installed.wheels))
    with output_lock(inputs.out_dir):  # the zips, the layer kept or removed, and the report agree
        artifacts, imported = _write_artifacts(inputs, shipped, workdir, waiting)
        checked = None if imported is None else imported.check
        report = replace(report, artifacts=artifacts, import_check=checked)
        write_sbom(inputs.out_dir, report, installed.wheels, sbom.result())
        write_report(report_path, report)
    stand_ins = () if imported is None else imported.stand_ins
    return BuildResult(report, report_path, warnings, stand_ins)


def _preload(inputs: BuildInputs, workdir: Path) -> WaitingChild | None:
    """Import what the steps after the resolution need (0.1-0.5 s of a cold start): these
    imports are left out of the module's, so that uv starts without waiting for them. Then
    the import check's child, started ahead (its interpreter's start is off the build's path)."""
    import chalicepack.deps.install
    import chalicepack.importcheck.staging  # noqa: F401
    from chalicepack.importcheck.check import start_waiting_child

    preload()  # the SBOM's cyclonedx
    if not inputs.options.import_app:
        return None
    return start_waiting_child(inputs.config.environment_variables, workdir)


def _dismiss(waiting: Future[WaitingChild | None]) -> None:
    """End the child started ahead when no check used it (a failure before the check), once
    the thread starting it is done."""
    from chalicepack.importcheck.check import dismiss_waiting_child

    if waiting.exception() is None:
        dismiss_waiting_child(waiting.result())


def _waiting_child(waiting: Future[WaitingChild | None] | None) -> WaitingChild | None:
    if waiting is None or waiting.exception() is not None:
        return None  # (an import that failed there fails again, and is reported, here)
    return waiting.result()


def _in_background(function: Callable[[], T]) -> Future[T]:
    """``function`` run on a daemon thread: a SIGTERM or a failure never waits for it (a
    ThreadPoolExecutor's threads are joined at exit); its result or error in the future."""
    future: Future[T] = Future()

    def run() -> None:
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(function())
            except BaseException as error:  # handed to whoever asks for the result
                future.set_exception(error)

    threading.Thread(target=run, name="chalicepack-background", daemon=True).start()
    return future


def _missing_warnings(resolution: Resolution, *, strict: bool) -> list[str]:
    """Chalice's warning for missing dependencies (logged, with a line on each), if any."""
    if not resolution.missing:
        return []
    warning = missing_dependencies_warning(resolution.missing, strict=strict)
    log.warning("%s", warning)
    for line in missing_dependency_details(resolution.missing):
        log.warning("%s", line)
    return [warning]


@dataclass(frozen=True)
class _Installed:
    """The resolution installed: its tree, the wheels, what ships and what was left out."""

    tree: InstalledTree
    wheels: Mapping[str, Path]
    shipped: tuple[Distribution, ...]  # installed in ``tree``: neither chalice nor left out
    provided: frozenset[str]  # left out by --without-runtime-provided
    runtime: Mapping[str, Path]  # the Chalice runtime files, by their path in the zip
    chalice_runtime: str  # where they come from, in words
    fingerprint: str


def _install(
    workdir: Path,
    inputs: BuildInputs,
    requirements: Requirements,
    resolved: Resolved,
    deadline: Deadline | None,
) -> _Installed:
    from chalicepack.deps.install import install_tree

    resolution, cache_dir = resolved.resolution, inputs.cache_dir
    chalice = [d for d in resolution.distributions if d.name == "chalice"]
    others = [d for d in resolution.distributions if d.name != "chalice"]
    without = inputs.options.without_runtime_provided
    provided = frozenset(runtime_provided(others) if without else ())
    shipped = tuple(d for d in others if d.name not in provided)
    wheels = resolved.wheels or fetch_dependency_wheels(
        requirements.path, resolution.distributions, inputs.target, cache_dir, deadline
    )
    hold_to_lock(requirements.path, resolution, wheels)  # the files themselves
    token = None
    if requirements.key is not None:
        if requirements.cached is None:
            save_resolution(cache_dir, requirements.key, resolution, requirements.lines, wheels)
        token = resolution_token(cache_dir, requirements.key)
    project = inputs.project
    fingerprint = build_fingerprint(project, inputs.config.path, inputs.settings, token)
    tree = install_tree(wheels, list(shipped), cache_dir / "trees", inputs.target)
    if tree.reused:
        log.info("dependencies unchanged: reusing the installed tree from the cache")
    if chalice:
        runtime = runtime_from_wheel(wheels["chalice"], workdir)
        source = f"chalice=={chalice[0].version} from requirements.txt"
    else:
        version, runtime = installed_runtime(workdir)
        source = f"chalice=={version} installed with chalicepack"
    return _Installed(tree, wheels, shipped, provided, runtime, source, fingerprint)


def _shipped(
    inputs: BuildInputs, installed: _Installed, report: BuildReport
) -> tuple[Shipped, BuildReport]:
    """What the zips hold (refused when Lambda could not load it), and the report with what
    installing it told: the dependencies' wheels and sizes, what was left out or replaced."""
    from chalicepack.importcheck.staging import Shipped

    project, tree = inputs.project, installed.tree
    app = [entry_for(f.arcname, f.path) for f in project.app_files]
    app += [ZipEntry(arcname, path) for arcname, path in installed.runtime.items()]
    vendor = [entry_for(f.arcname, f.path) for f in project.vendor_files]
    wheels = installed.wheels
    dependencies = _dependency_entries(tree, [wheels[d.name] for d in installed.shipped])
    libraries, overridden = _vendor_over_dependencies(vendor, dependencies)
    trimmed = exclude(libraries, inputs.options.exclude)
    for pattern in trimmed.unmatched:
        log.warning("--exclude %r matched no dependency or vendor file", pattern)
    for arcname in overridden:
        log.warning("vendor/%s replaces the file of the same path from a dependency", arcname)
    _refuse_app_collisions(app, trimmed.kept, project)
    refuse_over_unzipped_limit([*app, *trimmed.kept], project.root)
    left_out = _left_out(report.dependencies, installed.provided, wheels, trimmed.removed)
    report = replace(
        report,
        chalice_runtime=installed.chalice_runtime,
        left_out=left_out,
        dependencies=tuple(
            replace(d, wheel=wheels[d.name].name, unpacked_size=tree.unpacked_sizes[d.name])
            for d in report.dependencies
            if d.name not in installed.provided
        ),
        vendor_overrides=tuple(overridden),
    )
    missing = tuple(f"{m.name}=={m.version}" for m in report.missing_dependencies)
    shipped = Shipped(
        app,
        trimmed.kept,
        inputs.automatic_layer,
        tree.site_packages,
        not_installed=missing,
        virtual=tree.virtual,
    )
    return shipped, report


def _write_artifacts(
    inputs: BuildInputs,
    shipped: Shipped,
    workdir: Path,
    waiting: Future[WaitingChild | None] | None,
) -> tuple[dict[str, Artifact], ShippedImport | None]:
    """Write every zip under a temporary name while the app is imported from what they hold,
    then rename them all once the import passed: a failure leaves the previous artifacts as
    they were, never a mix of old and new, nor the zip of a package whose import failed."""
    out_dir = inputs.out_dir
    planned = _planned_zips(shipped, inputs.target.site_packages)
    digests = DigestRecord(zip_digests_path(inputs.cache_dir, out_dir))
    checked = None
    # The check mostly waits on a child process: the zips are written meanwhile. It stays on
    # this thread, where Ctrl-C and SIGTERM arrive and stop its child; the zips being written
    # then are removed once written.
    written = _Written()

    def stage() -> tuple[list[StagedZip], LayerReuse]:
        staged, layer = _stage_artifacts(out_dir, planned, digests)
        written.hand_over(staged)
        return staged, layer

    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            writing = pool.submit(stage)
            if inputs.options.import_app:
                from chalicepack.importcheck.staging import import_shipped

                checked = import_shipped(shipped, inputs, workdir, _waiting_child(waiting))
            else:
                log.info("--no-import: the app was not imported, no functions are listed")
            staged, layer = writing.result()
        _commit(staged)
    except BaseException:
        written.discard()
        raise
    if LAYER_ZIP not in planned:
        # A layer zip left by an earlier build would be taken for this build's.
        (out_dir / LAYER_ZIP).unlink(missing_ok=True)
    names = {DEPLOYMENT_ZIP: "deployment", LAYER_ZIP: "layer"}
    artifacts = {names[item.summary.path.name]: _artifact(item.summary) for item in staged}
    if LAYER_ZIP in planned:
        kept = layer.kept or artifacts["layer"]
        artifacts["layer"] = replace(kept, inputs_sha256=layer.inputs)
    return artifacts, checked


class _Written:
    """The zips the writer thread staged, removed when the build is left early: by this
    thread if the writer had handed them over, else by the writer once it has written them.
    A SIGTERM can land inside ``pool.submit`` (while the new thread starts), before this
    thread holds the future or the pool knows its thread: nothing would wait for the writer
    then, and the process (which does wait for it at exit) would leave its zip behind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._staged: list[StagedZip] = []
        self._left = False

    def hand_over(self, staged: Sequence[StagedZip]) -> None:
        with self._lock:
            if not self._left:
                self._staged.extend(staged)
                return
        for item in staged:
            item.discard()

    def discard(self) -> None:
        with self._lock:
            self._left = True
            staged, self._staged = self._staged, []
        for item in staged:
            item.discard()  # (one already renamed into place is left there)


def _planned_zips(shipped: Shipped, site_packages: str) -> dict[str, list[ZipEntry]]:
    """Each zip to write, by file name, with its entries."""
    planned = {DEPLOYMENT_ZIP: shipped.function}
    if shipped.automatic_layer:
        if shipped.libraries:
            planned[LAYER_ZIP] = [_under(site_packages, entry) for entry in shipped.libraries]
        else:
            log.info("no layer zip: there are no dependencies or vendor files to put in it")
    return planned


def _commit(staged: Sequence[StagedZip]) -> None:
    try:
        for item in staged:
            item.commit()
    except BaseException:
        for item in staged:
            item.discard()
        raise


def _stage_artifacts(
    out_dir: Path, planned: Mapping[str, list[ZipEntry]], digests: DigestRecord
) -> tuple[list[StagedZip], LayerReuse]:
    layer = reusable_layer(out_dir, planned.get(LAYER_ZIP), digests)
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


def _left_out(
    dependencies: Iterable[Dependency],
    provided: frozenset[str],
    wheels: Mapping[str, Path],
    excluded: Sequence[ZipEntry],
) -> LeftOut:
    """What ``--without-runtime-provided`` and ``--exclude`` kept out, and the bytes saved."""
    from chalicepack.deps.install import shipped_members

    runtime = tuple(
        LeftOutDistribution(
            d.name,
            d.version,
            sum(i.file_size for i in shipped_members(wheels[d.name]).values()),
        )
        for d in dependencies
        if d.name in provided
    )
    excluded_bytes = sum(entry.size for entry in excluded)
    return LeftOut(
        runtime_provided=runtime,
        excluded_files=tuple(e.arcname for e in excluded),
        bytes_saved=sum(item.unpacked_size for item in runtime) + excluded_bytes,
    )


def _under(prefix: str, entry: ZipEntry) -> ZipEntry:
    return replace(entry, arcname=f"{prefix}/{entry.arcname}")


def _dependency_entries(tree: InstalledTree, wheels: Iterable[Path]) -> list[ZipEntry]:
    """The installed tree's files; those a wheel holds unchanged are copied from the wheel
    in compressed form (see ``archive``), the rest (RECORD) are deflated from the tree. Its
    virtual files (not written: see ``install``) are such members by construction."""
    from chalicepack.deps.install import installed_files, shipped_members

    members: dict[str, RawMember] = {}
    for wheel in wheels:
        for arcname, info in shipped_members(wheel).items():
            members[arcname] = RawMember(wheel, info)
    site_packages = tree.site_packages
    entries = []
    for arcname, size, executable in installed_files(site_packages, tree.virtual):
        member = members.get(arcname)
        raw = member if member is not None and member.info.file_size == size else None
        if raw is None and arcname in tree.virtual:  # cannot be: the tree's key is its wheels
            raise BuildFailure(f"{arcname} of {site_packages} is in none of its wheels")
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


def _wheel_tag(filename: str) -> str:
    return "-".join(filename.removesuffix(".whl").split("-")[-3:])


def _artifact(summary: ZipSummary) -> Artifact:
    digest = file_sha256(summary.path)
    return Artifact(
        path=str(summary.path),
        size=summary.size,
        unzipped_size=summary.unzipped_size,
        files=summary.entries,
        sha256=digest,
        sha256_base64=base64.b64encode(bytes.fromhex(digest)).decode(),
    )


def resolved_report(
    inputs: BuildInputs, resolution: Resolution, lines: tuple[RequirementLine, ...]
) -> BuildReport:
    """The report as resolution leaves it (check's); installing adds sizes and the artifacts."""
    every = resolution.distributions
    project, config, target = inputs.project, inputs.config, inputs.target

    requires = requirements_on_target(
        every,
        [line.text for line in lines if line.name],
        target.marker_environment(),
        missing=[gap.name for gap in resolution.missing],
    )

    def origin(name: str) -> tuple[RequirementSource | None, tuple[str, ...]]:
        return _origin(name, requires, lines, project.root)

    dependencies = []
    for item in sorted(every, key=lambda item: item.name):
        if item.name != "chalice":
            source, required_by = origin(item.name)
            dependencies.append(
                Dependency(
                    item.name,
                    item.version,
                    item.filename,
                    _wheel_tag(item.filename),
                    None,
                    item.built_from_source,
                    redact(item.url),
                    source,
                    required_by,
                )
            )
    missing = []
    for gap in resolution.missing:
        source, required_by = origin(gap.name)
        missing.append(
            MissingDependency(
                gap.name,
                gap.version,
                gap.reason,
                gap.fix,
                gap.build_log,
                tuple(gap.only_needed_by_it),
                source,
                required_by,
            )
        )
    return BuildReport(
        chalicepack_version=__version__,
        project=str(project.root),
        app_name=config.app_name,
        stage=config.stage,
        runtime=target.runtime,
        architecture=target.arch,
        automatic_layer=inputs.automatic_layer,
        chalice_runtime=None,
        artifacts={},
        dependencies=tuple(dependencies),
        vendor_files=tuple(file.arcname for file in project.vendor_files),
        vendor_overrides=(),
        missing_dependencies=tuple(missing),
        source_builds=resolution.source_builds,
    )


def _origin(
    name: str,
    requires: Mapping[str, frozenset[str]],
    lines: tuple[RequirementLine, ...],
    root: Path,
) -> tuple[RequirementSource | None, tuple[str, ...]]:
    """Where a dependency comes from: its requirements.txt line, and which projects need it."""
    line = lines_by_name(lines).get(canonicalize_name(name))
    required_by = tuple(sorted(parent for parent, names in requires.items() if name in names))
    if line is None:
        return None, required_by
    file = line.path.relative_to(root) if line.path.is_relative_to(root) else line.path
    return RequirementSource(str(file), line.lineno, redact(line.text)), required_by
