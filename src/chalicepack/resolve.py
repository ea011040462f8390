"""Which distributions to install for the target, and which have no build it can load.

pip resolves (``install --dry-run --report``) with the target's platform options. When that
fails, a second resolution with the platform ignored names every distribution, and each one
with no target-compatible wheel is reported missing while the rest still install.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from .errors import BuildFailure, RequirementsError
from .pip import PipResult, dry_run_report, redact
from .requirements import RequirementLine, index_options, lines_by_name
from .target import Target

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
    requires: tuple[str, ...]  # canonical names of the projects it depends on

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class MissingDistribution:
    name: str
    version: str
    reason: str


@dataclass(frozen=True)
class Resolution:
    distributions: tuple[Distribution, ...]
    missing: tuple[MissingDistribution, ...]


def resolve(
    requirements: Path,
    lines: tuple[RequirementLine, ...],
    target: Target,
    *,
    workdir: Path,
    cache_dir: Path | None,
) -> Resolution:
    """Resolve for ``target``; raise only when a requirement cannot resolve at all."""
    strict = [*target.pip_options(), "--only-binary", ":all:", "-r", str(requirements)]
    result, report = dry_run_report(strict, workdir / "target.json", cache_dir=cache_dir)
    if report is not None:
        return Resolution(tuple(distributions_from_report(report)), ())
    _raise_if_unreachable(result, requirements)
    log.info("some requirements have no wheel for %s; finding which", target.runtime)

    loose = _resolve_ignoring_platform(requirements, lines, target, workdir, cache_dir)
    installable: list[Distribution] = []
    missing: list[MissingDistribution] = []
    for distribution in loose:
        found = _target_wheel_for(distribution, requirements, target, workdir, cache_dir)
        if found is not None:
            installable.append(found)
        else:
            reason = f"no wheel for {target.runtime} on {target.arch}"
            missing.append(MissingDistribution(distribution.name, distribution.version, reason))
    return Resolution(tuple(installable), tuple(missing))


def _resolve_ignoring_platform(
    requirements: Path,
    lines: tuple[RequirementLine, ...],
    target: Target,
    workdir: Path,
    cache_dir: Path | None,
) -> list[Distribution]:
    # First as the host would install it (sdists allowed), then wheels of any platform: a
    # project with only macOS wheels resolves in neither on a Linux host but in the second.
    host_args = ["-r", str(requirements)]
    result, report = dry_run_report(host_args, workdir / "host.json", cache_dir=cache_dir)
    if report is None:
        platforms = [*target.platforms, *_OTHER_PLATFORMS]
        any_args = [*target.pip_options(), "--only-binary", ":all:", "-r", str(requirements)]
        for platform in platforms[len(target.platforms) :]:
            any_args += ["--platform", platform]
        result, report = dry_run_report(any_args, workdir / "any.json", cache_dir=cache_dir)
    if report is None:
        _raise_if_unreachable(result, requirements)
        raise _unresolvable(result, requirements, lines)
    return distributions_from_report(report)


def _target_wheel_for(
    distribution: Distribution,
    requirements: Path,
    target: Target,
    workdir: Path,
    cache_dir: Path | None,
) -> Distribution | None:
    if target.accepts_wheel(distribution.filename):
        return distribution
    args = [*target.pip_options(), "--only-binary", ":all:", "--no-deps"]
    args += [*index_options(requirements), distribution.pin]
    report_path = workdir / f"check-{distribution.name}.json"
    _, report = dry_run_report(args, report_path, cache_dir=cache_dir)
    if report is None:
        return None
    (found,) = distributions_from_report(report)
    # Keep the dependency edges of the full resolution; this run had --no-deps.
    return Distribution(
        **{**found.__dict__, "requires": distribution.requires, "requested": distribution.requested}
    )


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
    requires = sorted(
        name
        for name in _required_names(metadata.get("requires_dist", []))
        if name in resolved_names
    )
    return Distribution(
        name=canonicalize_name(metadata["name"]),
        version=metadata["version"],
        url=url,
        filename=url.rsplit("/", 1)[-1].split("#", 1)[0],
        sha256=hashes.get("sha256"),
        requested=bool(item.get("requested")),
        requires=tuple(requires),
    )


def _required_names(requires_dist: Iterable[str]) -> Iterable[NormalizedName]:
    for text in requires_dist:
        try:
            yield canonicalize_name(Requirement(text).name)
        except InvalidRequirement:
            continue


def _raise_if_unreachable(result: PipResult, requirements: Path) -> None:
    if result.index_unreachable:
        raise BuildFailure(
            f"{requirements}: could not reach the package index; check the network and the "
            f"index URL, then retry.\npip said:\n{result.tail()}"
        )


def _unresolvable(
    result: PipResult, requirements: Path, lines: Sequence[RequirementLine]
) -> RequirementsError:
    unmatched = result.unmatched_requirement
    where = str(requirements)
    if unmatched is not None:
        try:
            name = canonicalize_name(Requirement(unmatched).name)
        except InvalidRequirement:
            name = None
        line = lines_by_name(tuple(lines)).get(name) if name else None
        if line is not None:
            where = f"{line.where()}: {line.text!r}"
            return RequirementsError(
                f"{where}: no release of {unmatched} exists on the configured index; "
                f"fix the name or version (pip said: {redact(result.tail(1))})",
                file=line.path,
                line=line.lineno,
            )
    return RequirementsError(
        f"{where}: pip could not resolve these requirements; fix the line pip names below.\n"
        f"{result.tail()}",
        file=requirements,
    )
