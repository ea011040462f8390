"""Which distributions to install for the target, and which cannot be made to run on it.

1. pip resolves requirements.txt for the target (its Python, ABI, manylinux platforms up to
   the runtime's glibc, wheels only), with markers evaluated for the target. Usually that is
   all; source trees named directly (paths, VCS, sdist URLs) are then built and checked.
2. When that fails, a resolution with the platform ignored names every distribution. Each
   whose chosen file the target cannot load is a suspect: if some other release allowed by
   requirements.txt has a target wheel, the final resolution will pick it; else its sdist is
   built and kept when it runs on the target (see ``sdist``); else it is missing.
3. The final resolution runs for the target again, with the wheels built here and stand-in
   wheels for the missing ones (same name, version and dependencies, never installed), so
   everything else still resolves to releases the target can load.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
)

from chalicepack.deps.buildrecord import SourceBuild
from chalicepack.deps.deadline import Deadline
from chalicepack.deps.pip import PipResult, dry_run_report, redact
from chalicepack.deps.sourcebuild import BuiltWheel, Unusable, build_for_target, retag_for_target
from chalicepack.deps.uvbuild import SdistFile
from chalicepack.errors import BuildFailure, RequirementsError
from chalicepack.inputs.locks import locked_hashes, unlisted_file
from chalicepack.inputs.requirements import RequirementLine, index_options, lines_by_name
from chalicepack.inputs.target import Target

log = logging.getLogger(__name__)

# With the platform ignored, a distribution still needs *some* wheel or an sdist to be named.
_OTHER_PLATFORMS = (
    "macosx_15_0_arm64",
    "macosx_15_0_x86_64",
    "win_amd64",
    "win_arm64",
    "win32",
    "musllinux_1_2_x86_64",
    "musllinux_1_2_aarch64",
    "linux_x86_64",
    "linux_aarch64",
    "manylinux_2_39_x86_64",
    "manylinux_2_39_aarch64",
)


@dataclass(frozen=True)
class Distribution:
    """One distribution pip picked, and the file it picked for it."""

    name: str  # canonical
    version: str
    url: str
    filename: str
    sha256: str | None
    requested: bool
    requires: tuple[str, ...]  # canonical names of the resolved projects it depends on
    requires_dist: tuple[str, ...] = ()  # its Requires-Dist lines, markers included
    is_direct: bool = False  # named by URL or path in requirements.txt, not found on an index
    direct: str | None = None  # how to ask pip for a direct source reference (path, VCS, URL)
    built_from_source: bool = False
    # Fetch the file at ``url`` (hash-checked) rather than ask the index for the release again:
    # the file was picked outside pip (by uv), from an index pip reads the same way.
    by_url: bool = False

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class MissingDistribution:
    name: str
    version: str
    reason: str
    fix: str = ""
    build_log: str | None = None
    only_needed_by_it: tuple[str, ...] = ()  # resolved projects nothing else requires


@dataclass(frozen=True)
class Resolution:
    distributions: tuple[Distribution, ...]
    missing: tuple[MissingDistribution, ...]
    source_builds: tuple[SourceBuild, ...] = ()  # every wheel built here, kept or not


@dataclass(frozen=True)
class _Context:
    requirements: Path
    lines: tuple[RequirementLine, ...]
    target: Target
    workdir: Path
    cache_dir: Path | None
    build_cache: Path  # source builds: zig's cache, pip's wheels built with our toolchain
    # Answers of _newest_target_release: a suspect with no requirements.txt line is asked
    # about twice (does another release fit? which one to suggest?), one pip run each.
    newest: dict[str, Distribution | None] = field(default_factory=dict)
    deadline: Deadline | None = None  # for every pip run but the source builds

    def dry_run(self, args: Sequence[str], label: str) -> tuple[PipResult, dict[str, Any] | None]:
        return dry_run_report(
            args,
            self.workdir / f"{label}.json",
            cache_dir=self.cache_dir,
            markers=self.target.marker_environment(),
            deadline=self.deadline,
        )

    @property
    def wheels_only(self) -> list[str]:
        return [*self.target.pip_options(), "--only-binary", ":all:"]


def resolve(
    requirements: Path,
    lines: tuple[RequirementLine, ...],
    target: Target,
    *,
    workdir: Path,
    cache_dir: Path | None,
    build_cache: Path | None = None,
    deadline: Deadline | None = None,
) -> Resolution:
    """Resolve for ``target``; raise only when a requirement cannot resolve at all, or
    when ``deadline`` passes."""
    builds = build_cache or workdir / "build-cache"
    context = _Context(requirements, lines, target, workdir, cache_dir, builds, deadline=deadline)
    result, report = context.dry_run([*context.wheels_only, "-r", str(requirements)], "target")
    if report is not None:
        return _build_direct_references(context, distributions_from_report(report))
    _raise_for_failure(result, context)
    log.info(
        "some requirements have no wheel for %s %s; finding which", target.runtime, target.arch
    )
    return _resolve_with_stand_ins(context, *_resolve_ignoring_platform(context))


def _resolve_ignoring_platform(
    context: _Context,
) -> tuple[list[Distribution], dict[str, MissingDistribution]]:
    """Every distribution, by a resolution that ignores the platform; and the ones whose
    source distribution could not even be prepared (old sdists that no longer build here),
    which stand-ins replace so that the rest still resolves."""
    unbuildable: dict[str, MissingDistribution] = {}
    while True:
        result, report, host = _loose_attempt(context, unbuildable)
        if report is not None:
            return distributions_from_report(report), unbuildable
        failed = _unbuildable(result, context)
        if failed is None or failed.name in unbuildable or len(unbuildable) >= 10:
            _raise_for_failure(result, context)
            raise _unresolvable(result, context, host.error if host is not result else None)
        log.info("%s==%s: its source distribution does not build here", failed.name, failed.version)
        unbuildable[failed.name] = failed


def _loose_attempt(
    context: _Context, unbuildable: Mapping[str, MissingDistribution]
) -> tuple[PipResult, dict[str, Any] | None, PipResult]:
    """The last attempt's result and report, and the first (host) attempt's result."""
    # First as this host would install it (sdists allowed), then wheels of any platform: a
    # project with only macOS wheels resolves in neither on a Linux host but in the second.
    args = ["-r", str(context.requirements)]
    if unbuildable:
        stand_ins = _stand_in_dir(context)
        for item in unbuildable.values():
            _write_stand_in(stand_ins, item.name, item.version, ())
        pins = context.workdir / "unbuildable-pins.txt"
        pins.write_text("".join(f"{m.name}=={m.version}\n" for m in unbuildable.values()))
        args += ["--find-links", str(stand_ins), "-c", str(pins)]
    host, report = context.dry_run(args, "host")
    if report is None and _unbuildable(host, context) is None:
        _raise_for_failure(host, context)
        any_platform = [*context.wheels_only, *args]
        for platform in _OTHER_PLATFORMS:
            any_platform += ["--platform", platform]
        result, report = context.dry_run(any_platform, "any-platform")
        return result, report, host
    return host, report, host


def _unbuildable(result: PipResult, context: _Context) -> MissingDistribution | None:
    """The distribution whose metadata pip could not prepare, with its version, if known."""
    name = result.failed_build
    if name is None:
        return None
    name = canonicalize_name(name)
    version = _pinned_version(context, name) or result.sdist_version(name)
    if version is None:
        return None
    reason = "its source distribution could not be prepared on this host (metadata build failed)"
    return MissingDistribution(
        name, version, reason, build_log=result.metadata_output or result.tail(20)
    )


def _pinned_version(context: _Context, name: str) -> str | None:
    line = lines_by_name(context.lines).get(name)
    parsed = _parse(line.text) if line else None
    if parsed is None:
        return None
    pins = [s.version for s in parsed.specifier if s.operator in ("==", "===")]
    return pins[0] if len(pins) == 1 and "*" not in pins[0] else None


def _resolve_with_stand_ins(
    context: _Context,
    loose: list[Distribution],
    unbuildable: Mapping[str, MissingDistribution],
) -> Resolution:
    built: dict[str, Path] = {}
    missing = {name: replace(m, fix=_fix(context, name)) for name, m in unbuildable.items()}
    suspects = [
        d for d in loose if d.name not in missing and not context.target.accepts_wheel(d.filename)
    ]
    to_build = [
        suspect
        for suspect in suspects
        # When another release fits, the final resolution picks it.
        if suspect.direct is not None or not _another_release_fits(context, suspect)
    ]
    outcomes = _build_all(context, to_build)
    for suspect, outcome in zip(to_build, outcomes, strict=True):
        if isinstance(outcome, BuiltWheel):
            built[suspect.name] = retag_for_target(
                outcome.path, context.target, _built_dir(context)
            )
        else:
            missing[suspect.name] = _missing(context, suspect, outcome)

    report = _final_resolution(context, loose, built, missing)
    if report is None:
        # Requirements of other projects ruled out the releases that fit: keep every
        # suspect at the version the platform-free resolution chose.
        for suspect in suspects:
            if suspect.name not in built and suspect.name not in missing:
                missing[suspect.name] = _missing(
                    context,
                    suspect,
                    Unusable(
                        f"no wheel for {context.target.runtime} "
                        f"{context.target.arch} within the other requirements' constraints"
                    ),
                )
        report = _final_resolution(context, loose, built, missing)
    if report is None:
        raise BuildFailure(
            "pip could not resolve the requirements for the target even with "
            "the missing dependencies set aside; run with -v to see pip's output"
        )
    stand_ins = _stand_in_dir(context).as_uri()
    distributions = [
        replace(d, built_from_source=d.name in built)
        for d in distributions_from_report(report)
        if not d.url.startswith(stand_ins)
    ]
    ordered_missing = [_with_only_needed(m, loose) for m in missing.values()]
    return Resolution(tuple(distributions), tuple(ordered_missing), _records(outcomes))


def _another_release_fits(context: _Context, suspect: Distribution) -> bool:
    """Whether requirements.txt allows a release of ``suspect`` that has a target wheel."""
    line = lines_by_name(context.lines).get(suspect.name)
    requirement = suspect.name
    if line is not None:
        parsed = _parse(line.text)
        if parsed is not None:
            requirement = f"{suspect.name}{parsed.specifier}"
    return _newest_target_release(context, requirement) is not None


def _newest_target_release(context: _Context, requirement: str) -> Distribution | None:
    if requirement not in context.newest:
        args = [*context.wheels_only, "--no-deps", *index_options(context.requirements)]
        label = "newest-" + hashlib.sha256(requirement.encode()).hexdigest()[:12]
        _, report = context.dry_run([*args, requirement], label)
        found = None if report is None else distributions_from_report(report)[0]
        context.newest[requirement] = found
    return context.newest[requirement]


def _build_all(context: _Context, suspects: Sequence[Distribution]) -> list[BuiltWheel | Unusable]:
    """Build each suspect from source; several at once, as a build mostly waits on its
    compiler and pip processes."""
    if len(suspects) <= 1:
        return [_build_from_source(context, suspect) for suspect in suspects]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda suspect: _build_from_source(context, suspect), suspects))


def _records(outcomes: Iterable[BuiltWheel | Unusable]) -> tuple[SourceBuild, ...]:
    return tuple(outcome.record for outcome in outcomes if outcome.record is not None)


def _build_from_source(context: _Context, suspect: Distribution) -> BuiltWheel | Unusable:
    target = context.target
    if suspect.direct is None and suspect.filename.endswith(".whl"):
        # A release that ships wheels, none for the target (numpy 2.3.0, pillow 13.0.0 for
        # python3.11: manylinux_2_28 only). It may have an sdist, but its build needs what the
        # wheels bundle (system libraries, a long native build): not tried. Name a wheel it
        # has rather than claim there is no source.
        return Unusable(
            f"no wheel for {target.runtime} on {target.arch}: its wheels are for other "
            f"platforms or a newer glibc (such as {suspect.filename}); "
            "a release that ships wheels is not built from source here"
        )
    requirement = suspect.direct or suspect.pin
    workdir = context.workdir / "source-builds" / suspect.name
    options = [] if suspect.direct else index_options(context.requirements)
    hashes = () if suspect.direct else locked_hashes(context.requirements, suspect.name)
    outcome = build_for_target(
        requirement,
        context.target,
        workdir,
        pip_options=options,
        cache_dir=context.build_cache,
        name=suspect.name,
        version=suspect.version,
        hashes=hashes,
        sdist=_sdist_file(suspect),
    )
    if isinstance(outcome, Unusable) and outcome.unlisted_sha256:
        # The sdist is not the lock's: refused as a tampered wheel is, never reported missing.
        raise unlisted_file(context.requirements, suspect.name, outcome.unlisted_sha256)
    return outcome


def _sdist_file(suspect: Distribution) -> SdistFile | None:
    """The sdist file pip picked from an index (by http), as uv's build frontend takes it."""
    if suspect.direct is not None or suspect.sha256 is None:
        return None
    if not suspect.url.startswith(("https://", "http://")) or suspect.filename.endswith(".whl"):
        return None
    return SdistFile(suspect.url, suspect.filename, suspect.sha256)


def _missing(context: _Context, suspect: Distribution, outcome: Unusable) -> MissingDistribution:
    fix = _fix(context, suspect.name) if suspect.direct is None else _VENDOR_IT
    if outcome.fix is not None:
        fix = outcome.fix if suspect.direct else f"{outcome.fix}; or {fix}"
    return MissingDistribution(
        suspect.name, suspect.version, outcome.reason, fix, outcome.build_log
    )


_VENDOR_IT = "vendor a build for the target in vendor/"


def _fix(context: _Context, name: str) -> str:
    newest = _newest_target_release(context, name)
    if newest is None:
        return _VENDOR_IT
    target = context.target
    return (
        f"pin {name}=={newest.version}, the newest release with a wheel for "
        f"{target.runtime} {target.arch}, or vendor it"
    )


def _final_resolution(
    context: _Context,
    loose: list[Distribution],
    built: Mapping[str, Path],
    missing: Mapping[str, MissingDistribution],
) -> dict[str, Any] | None:
    stand_in_dir = _stand_in_dir(context)
    by_name = {d.name: d for d in loose}
    for name in missing:
        stand_in = by_name[name]
        _write_stand_in(stand_in_dir, name, stand_in.version, stand_in.requires_dist)
    constraints = context.workdir / "pins.txt"
    pins = [by_name[name].pin for name in [*built, *missing]]
    constraints.write_text("".join(f"{pin}\n" for pin in pins))
    args = [*context.wheels_only, "--find-links", str(stand_in_dir)]
    args += ["--find-links", str(_built_dir(context)), "-c", str(constraints)]
    _, report = context.dry_run([*args, "-r", str(context.requirements)], "final")
    return report


def _built_dir(context: _Context) -> Path:
    path = context.workdir / "built-wheels"
    path.mkdir(exist_ok=True)
    return path


def _stand_in_dir(context: _Context) -> Path:
    path = context.workdir / "stand-ins"
    path.mkdir(exist_ok=True)
    return path


def _write_stand_in(directory: Path, name: str, version: str, requires: Iterable[str]) -> None:
    """A pure wheel with the same name, version and dependencies; resolved, never installed."""
    stem = name.replace("-", "_")
    dist_info = f"{stem}-{version}.dist-info"
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        *(f"Requires-Dist: {line}" for line in requires),
    ]
    path = directory / f"{stem}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{dist_info}/METADATA", "\n".join(metadata) + "\n\n")
        wheel.writestr(
            f"{dist_info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        wheel.writestr(f"{dist_info}/RECORD", "")


def _with_only_needed(
    missing: MissingDistribution, loose: list[Distribution]
) -> MissingDistribution:
    """Add the projects that are in the resolution only because ``missing`` requires them."""
    edges = {d.name: set(d.requires) for d in loose}
    roots = [d.name for d in loose if d.requested and d.name != missing.name]
    reachable: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in reachable or name == missing.name:
            continue
        reachable.add(name)
        stack.extend(edges.get(name, ()))
    only = sorted(name for name in edges if name not in reachable and name != missing.name)
    return replace(missing, only_needed_by_it=tuple(only))


def _build_direct_references(context: _Context, distributions: list[Distribution]) -> Resolution:
    """Build the source trees named directly (paths, VCS, sdist URLs) and check them."""
    kept: list[Distribution] = []
    missing: list[MissingDistribution] = []
    records: list[SourceBuild] = []
    for distribution in distributions:
        if context.target.accepts_wheel(distribution.filename):
            kept.append(distribution)
            continue
        outcome = _build_from_source(context, distribution)
        records.extend(_records([outcome]))
        if isinstance(outcome, Unusable):
            missing.append(_missing(context, distribution, outcome))
            continue
        wheel = retag_for_target(outcome.path, context.target, _built_dir(context))
        kept.append(
            replace(
                distribution,
                url=wheel.as_uri(),
                filename=wheel.name,
                sha256=None,
                built_from_source=True,
            )
        )
    return Resolution(tuple(kept), tuple(missing), tuple(records))


def distributions_from_report(report: Mapping[str, Any]) -> list[Distribution]:
    """The distributions of a pip installation report (``pip install --report``)."""
    items = report.get("install", [])
    names = {canonicalize_name(item["metadata"]["name"]) for item in items}
    return [_distribution(item, names) for item in items]


def _distribution(item: Mapping[str, Any], resolved_names: set[NormalizedName]) -> Distribution:
    metadata = item["metadata"]
    download = item["download_info"]
    url: str = download["url"]
    hashes = download.get("archive_info", {}).get("hashes", {})
    requires_dist = tuple(metadata.get("requires_dist", []))
    required = required_names(requires_dist)
    name = canonicalize_name(metadata["name"])
    return Distribution(
        name=name,
        version=metadata["version"],
        url=url,
        filename=url.rsplit("/", 1)[-1].split("#", 1)[0],
        sha256=hashes.get("sha256"),
        requested=bool(item.get("requested")),
        requires=tuple(sorted(n for n in required if n in resolved_names)),
        requires_dist=requires_dist,
        is_direct=bool(item.get("is_direct")),
        direct=_direct_requirement(name, download) if item.get("is_direct") else None,
    )


def _direct_requirement(name: str, download: Mapping[str, Any]) -> str | None:
    """How to ask pip for this direct reference again (PEP 610 ``direct_url`` data)."""
    url = download["url"]
    vcs = download.get("vcs_info")
    if vcs is not None:
        return f"{name} @ {vcs['vcs']}+{url}@{vcs['commit_id']}"
    if url.endswith(".whl"):
        return None  # a wheel URL is judged by its tags like any other wheel
    sha256 = download.get("archive_info", {}).get("hashes", {}).get("sha256")
    if url.startswith("file:") and sha256 and "#" not in url:
        # pip caches the wheel it builds from an archive by its URL, and by its hash when the
        # URL gives one: without it, a local sdist rebuilt under its name gets the old wheel.
        return f"{name} @ {url}#sha256={sha256}"
    return f"{name} @ {url}"


def required_names(requires_dist: Iterable[str]) -> Iterable[NormalizedName]:
    for text in requires_dist:
        parsed = _parse(text)
        if parsed is not None:
            yield canonicalize_name(parsed.name)


def requirements_on_target(
    distributions: Sequence[Distribution],
    requested: Iterable[str],
    environment: Mapping[str, str],
    missing: Iterable[str] = (),
) -> dict[str, frozenset[str]]:
    """For each distribution, the resolved ones it requires on the target: its Requires-Dist
    whose markers hold there, ``extra == ...`` ones only for the extras someone asked of it
    (``requested``: requirements.txt's lines), never itself (``pandas[all]`` in pandas's own
    metadata). A distribution whose Requires-Dist is unknown keeps what the resolver said.
    ``missing``: the names resolved but not installed, which may be required too."""
    resolved = {d.name for d in distributions} | set(missing)
    extras: dict[str, set[str]] = {name: {""} for name in resolved}
    for line in requested:
        asked = _parse(line)
        if asked is not None and canonicalize_name(asked.name) in extras:
            extras[canonicalize_name(asked.name)] |= set(asked.extras)
    while True:  # an extra asked by a dependency may ask for more extras: until none is new
        found = _edges(distributions, extras, environment)
        grown = False
        for requirement in (r for edges in found.values() for r in edges):
            new = set(requirement.extras) - extras[canonicalize_name(requirement.name)]
            extras[canonicalize_name(requirement.name)] |= new
            grown = grown or bool(new)
        if not grown:
            break
    return {
        d.name: frozenset(canonicalize_name(r.name) for r in found[d.name])
        if d.requires_dist
        else frozenset(d.requires)
        for d in distributions
    }


def _edges(
    distributions: Sequence[Distribution],
    extras: Mapping[str, set[str]],
    environment: Mapping[str, str],
) -> dict[str, list[Requirement]]:
    found: dict[str, list[Requirement]] = {}
    for distribution in distributions:
        found[distribution.name] = []
        for text in distribution.requires_dist:
            requirement = _parse(text)
            if requirement is None:
                continue
            name = canonicalize_name(requirement.name)
            if name == distribution.name or name not in extras:
                continue
            marker = requirement.marker
            if marker is None or any(
                marker.evaluate({**environment, "extra": extra})
                for extra in extras[distribution.name]
            ):
                found[distribution.name].append(requirement)
    return found


def _parse(text: str) -> Requirement | None:
    try:
        return Requirement(text.split(" --", 1)[0])
    except InvalidRequirement:
        return None


def _raise_for_failure(result: PipResult, context: _Context) -> None:
    if result.unreachable_repositories:
        raise _unreachable_repository(result.unreachable_repositories[0], context)
    problem = result.index_problem
    if problem is not None:
        raise BuildFailure(
            f"{context.requirements}: could not reach the package index ({problem}); "
            "check the network and the index URL, then retry"
        )
    if result.hash_mismatch:
        raise _hash_error(result, context)
    unsafe = result.unsafe_archive
    if unsafe is not None:
        archive, reason = unsafe
        line = lines_by_name(context.lines).get(_archive_project(archive))
        where = f"{line.where()}: {line.text!r}" if line else str(context.requirements)
        raise RequirementsError(
            f"{where}: pip refused to unpack the source distribution {archive}: {reason}; it "
            "would write outside its own folder (a broken or malicious sdist): pin another "
            "release or remove the requirement that brings it in",
            file=line.path if line else context.requirements,
            line=line.lineno if line else None,
        )


def _unreachable_repository(failure: str, context: _Context) -> BuildFailure:
    """git could not reach a repository a requirement names: the network's fault (exit 1)."""
    location, _, reason = failure.partition(": ")
    url = location.rstrip("/").removesuffix(".git")
    line = next(
        (line for line in context.lines if url and url in redact(line.text)),
        None,
    )
    where = f"{line.where()}: {redact(line.text)!r}" if line else str(context.requirements)
    target = "its git repository" if location == "ssh" else location
    return BuildFailure(
        f"{where}: could not reach {target} ({reason}); check the network, the host name "
        "and any proxy, then retry",
        file=line.path if line else context.requirements,
        line=line.lineno if line else None,
    )


def _archive_project(filename: str) -> str:
    """The canonical project name of an sdist file name (``name-1.0.tar.gz``)."""
    try:
        return canonicalize_name(parse_sdist_filename(filename)[0])
    except InvalidSdistFilename:
        return canonicalize_name(filename.split("-", 1)[0])


def _hash_error(result: PipResult, context: _Context) -> RequirementsError:
    for mismatch in result.hash_mismatches:
        file = mismatch.file or context.requirements
        where = f"{file}:{mismatch.line}" if mismatch.line else str(file)
        return RequirementsError(
            f"{where}: {mismatch.requirement}: the downloaded file does not match its --hash "
            f"(its sha256 is {mismatch.got}, not {mismatch.expected}); update the --hash only "
            "if the release was re-published legitimately, else someone tampered with it",
            file=file,
            line=mismatch.line,
        )
    return RequirementsError(
        f"{context.requirements}: a downloaded file does not match its --hash; update the "
        "--hash only if the release was re-published legitimately (run with -v for pip's output)",
        file=context.requirements,
    )


def _unresolvable(
    result: PipResult, context: _Context, host_error: str | None = None
) -> RequirementsError:
    """``host_error``: what went wrong when pip tried the release it found (with sdists
    allowed), if that was not "no match": the real reason, e.g. a malformed sdist."""
    unmatched = result.unmatched_requirement
    parsed = _parse(unmatched) if unmatched else None
    line = lines_by_name(context.lines).get(canonicalize_name(parsed.name)) if parsed else None
    if line is not None and host_error is not None:
        return RequirementsError(
            f"{line.where()}: {line.text!r}: pip found a release but could not use it: "
            f"{host_error}; pin another release or remove the requirement",
            file=line.path,
            line=line.lineno,
        )
    if line is not None and parsed is not None:
        page = next(
            (url for url in result.not_found_pages if url.rstrip("/").endswith(f"/{line.name}")),
            None,
        )
        if page is not None:
            return RequirementsError(
                f"{line.where()}: {line.text!r}: no release of {unmatched} exists on the "
                f"configured index ({page} answered 404 Not Found); fix the name or version, "
                "or the index URL",
                file=line.path,
                line=line.lineno,
            )
        return RequirementsError(
            f"{line.where()}: {line.text!r}: no release of {unmatched} exists on the configured "
            f"index; fix the name or version (pip said: {redact(result.tail(1))})",
            file=line.path,
            line=line.lineno,
        )
    return RequirementsError(
        f"{context.requirements}: pip could not resolve these requirements; fix the line pip "
        f"names below.\n{result.tail()}",
        file=context.requirements,
    )
