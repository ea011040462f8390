"""The resolver policy: which engine answers for requirements.txt, and the resolution's wheels.

Two engines stand behind one ``Resolver`` protocol. uv is fast but wheels-only and may read a
requirements file differently from pip, so it answers only when its answer is provably the one
pip would give for the target (``uv_resolver``), else it declines; pip always answers, and is
the engine that diagnoses what is missing (``pip_resolver``). Source builds: when uv's
answer holds sdists pip would build too (requirements.txt lines whose release has only an
sdist, ``uv_resolver``), they are built here for the target (``sourcebuild``) and uv answers;
a build not kept leaves the whole resolution to pip, which builds and explains. A resolution
the cache still holds for the same inputs is reused before either runs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from chalicepack.deps.buildrecord import SourceBuild
from chalicepack.deps.deadline import Deadline
from chalicepack.deps.pip import index_urls, redact
from chalicepack.deps.pip_resolver import Distribution, Resolution, resolve
from chalicepack.deps.sourcebuild import BuiltWheel, Unusable, build_for_target, retag_for_target
from chalicepack.deps.uv_resolver import resolve_with_uv, with_dependencies
from chalicepack.deps.uvbuild import SdistFile
from chalicepack.inputs.locks import locked_hashes, requirement_lines, unlisted_file
from chalicepack.inputs.requirements import (
    RequirementLine,
    index_options,
    is_exact_pin,
    read_requirement_lines,
)
from chalicepack.inputs.target import Target
from chalicepack.package.cache import DEFAULT_MAX_AGE, load_resolution, resolution_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Requirements:
    """requirements.txt as read, its resolution cache key, and a reusable cached resolution."""

    path: Path | None = None  # None: the project has no requirements.txt
    lines: tuple[RequirementLine, ...] = ()
    key: str | None = None
    cached: Resolution | None = None

    @classmethod
    def read(
        cls, path: Path | None, target: Target, cache_dir: Path, *, refresh: bool, resolver: str
    ) -> Requirements:
        if path is None:
            return cls()
        lines = requirement_lines(path) or read_requirement_lines(path)  # a lock's own lines
        key = resolution_key(path, target, resolver)
        # --refresh: resolve again, however pinned the requirements are.
        cached = None if refresh else load_resolution(cache_dir, key, DEFAULT_MAX_AGE)
        return cls(path, lines, key, cached)


@dataclass(frozen=True)
class Resolved:
    """A resolution, and its wheels when resolving had to fetch them already (else None)."""

    resolution: Resolution
    wheels: dict[str, Path] | None = None


@dataclass(frozen=True)
class Request:
    """What a resolver is asked: ``requirements`` (with a path) for ``target``."""

    requirements: Requirements
    target: Target
    workdir: Path  # scratch space, removed after the build
    cache_dir: Path  # chalicepack's cache
    deadline: Deadline | None = None  # one bound for resolving and downloading (deadline.py)

    @property
    def path(self) -> Path:
        assert self.requirements.path is not None  # (resolvers are asked only then)
        return self.requirements.path


class Resolver(Protocol):
    def __call__(self, request: Request) -> Resolved | None:
        """The resolution for the target, or None when this engine cannot answer exactly."""


def uv(request: Request) -> Resolved | None:
    picked = resolve_with_uv(
        request.path,
        request.requirements.lines,
        request.target,
        workdir=request.workdir,
        cache_dir=request.cache_dir / "uv",
        deadline=request.deadline,
    )
    if picked is None:
        return None
    built = build_sdists(request, picked)
    if built is None:
        return None
    picked, records = built
    # What each release requires is in its wheel: fetch them now (the build would).
    wheels = fetch_dependency_wheels(
        request.path, picked, request.target, request.cache_dir, request.deadline
    )
    distributions = with_dependencies(picked, wheels)
    unresolved = _unresolved_requirements(distributions, request.target)
    if unresolved:
        log.info("resolving with pip: a wheel built here requires %s", ", ".join(unresolved))
        return None
    # An sdist picked for its requirements.txt line alone: pip's resolution for this machine
    # (which chooses the release pip builds) may be held to another by what requires it.
    pinned = {line.name for line in request.requirements.lines if is_exact_pin(line)}
    loose = {d.name for d in distributions if d.built_from_source and d.name not in pinned}
    required = sorted({name for d in distributions for name in d.requires if name in loose})
    if required:
        log.info("resolving with pip: %s, built here, is required by others too", required[0])
        return None
    return Resolved(Resolution(distributions, (), records), wheels)


def build_sdists(
    request: Request, picked: Sequence[Distribution]
) -> tuple[list[Distribution], tuple[SourceBuild, ...]] | None:
    """``picked`` with each sdist uv picked replaced by the wheel built from it for the
    target (``sourcebuild``, as pip's resolution builds it), and the build records; None when
    one is not kept: pip then resolves, and says why."""
    sdists = [d for d in picked if not d.filename.endswith(".whl")]
    options = index_options(request.path)
    outcomes = [_build_sdist(request, d, options) for d in sdists]
    by_name: dict[str, Distribution] = {}
    for sdist, outcome in zip(sdists, outcomes, strict=True):
        if isinstance(outcome, Unusable) and outcome.unlisted_sha256:
            # The sdist is not the lock's: refused as a tampered wheel is.
            raise unlisted_file(request.path, sdist.name, outcome.unlisted_sha256)
        if not isinstance(outcome, BuiltWheel):
            return None
        wheel = retag_for_target(outcome.path, request.target, request.workdir / "built-wheels")
        by_name[sdist.name] = replace(
            sdist, url=wheel.as_uri(), filename=wheel.name, sha256=None, by_url=False,
            built_from_source=True,
        )  # fmt: skip
    records = tuple(o.record for o in outcomes if o.record is not None)
    return [by_name.get(d.name, d) for d in picked], records


def _build_sdist(
    request: Request, sdist: Distribution, options: list[str]
) -> BuiltWheel | Unusable:
    return build_for_target(
        sdist.pin,
        request.target,
        request.workdir / "source-builds" / sdist.name,
        pip_options=options,
        cache_dir=request.cache_dir / "build",
        name=sdist.name,
        version=sdist.version,
        sdist=SdistFile(sdist.url, sdist.filename, str(sdist.sha256)),
        hashes=locked_hashes(request.path, sdist.name),
    )


def _unresolved_requirements(distributions: Sequence[Distribution], target: Target) -> list[str]:
    """The requirements of wheels built here, on the target, that no distribution meets:
    uv read them from the sdist's metadata, which a build may change."""
    names = {d.name for d in distributions}
    environment = {**target.marker_environment(), "extra": ""}
    unresolved = []
    for distribution in (d for d in distributions if d.built_from_source):
        for text in distribution.requires_dist:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                unresolved.append(text)
                continue
            applies = requirement.marker is None or requirement.marker.evaluate(environment)
            if applies and canonicalize_name(requirement.name) not in names:
                unresolved.append(text)
    return unresolved


def pip(request: Request) -> Resolved:
    resolution = resolve(
        request.path,
        request.requirements.lines,
        request.target,
        workdir=request.workdir,
        cache_dir=request.cache_dir / "pip",
        build_cache=request.cache_dir / "build",
        deadline=request.deadline,
    )
    return Resolved(resolution)


# --resolver: the engines asked, in order; the first answer wins, and pip always answers.
RESOLVERS: dict[str, tuple[Resolver, ...]] = {"auto": (uv, pip), "pip": (pip,)}


def resolve_requirements(request: Request, resolver: str) -> Resolved:
    """The resolution of ``request``: the cache's, else the first engine's that answers."""
    if request.requirements.path is None:
        return Resolved(Resolution((), ()))
    if request.requirements.cached is not None:
        lines = request.requirements.lines  # a lock's lines name the lock itself
        name = lines[0].path.name if lines else request.requirements.path.name
        log.info("%s unchanged: reusing its cached resolution (--refresh to resolve again)", name)
        return Resolved(request.requirements.cached)
    for engine in RESOLVERS[resolver]:
        resolved = engine(request)
        if resolved is not None:
            return resolved
    raise AssertionError("pip always answers")  # (RESOLVERS ends every policy with pip)


def fetch_dependency_wheels(
    requirements: Path | None,
    distributions: Sequence[Distribution],
    target: Target,
    cache_dir: Path,
    deadline: Deadline | None = None,
) -> dict[str, Path]:
    """The wheels of ``distributions`` from the cache's store, fetching what it lacks with
    the index options requirements.txt names: the files uv picked by their URLs, all at once
    (``fetch``), what pip resolved by pip."""
    # Imported here: installing and fetching (installer, urllib, ssl) are not needed to
    # start uv, and are imported meanwhile (``package.pipeline``).
    from chalicepack.deps.install import fetch_wheels

    return fetch_wheels(
        distributions,
        target,
        store=cache_dir / "wheels",
        cache_dir=cache_dir / "pip",
        index_options=index_options(requirements) if requirements else [],
        deadline=deadline,
    )


def resolution_deadline(requirements: Path | None) -> Deadline | None:
    """The one bound for resolving ``requirements`` and downloading what it needs, started
    now; None without requirements (nothing is asked of an index)."""
    if requirements is None:
        return None
    options = index_options(requirements)
    # pip drops the environment's indexes when requirements.txt names its own (--index-url).
    environ = {} if "--index-url" in options else os.environ  # (index_options spells -i so)
    indexes = [redact(url) for url in index_urls(environ, options)]
    return Deadline.start(os.environ, requirements, indexes or [_PYPI])


_PYPI = "https://pypi.org/simple/"
