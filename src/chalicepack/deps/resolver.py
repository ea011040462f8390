"""The resolver policy: which engine answers for requirements.txt, and the resolution's wheels.

Two engines stand behind one ``Resolver`` protocol. uv is fast but wheels-only and may read a
requirements file differently from pip, so it answers only when its answer is provably the one
pip would give for the target (``uv_resolver``), else it declines; pip always answers, and is
the only engine that builds from source and diagnoses what is missing (``pip_resolver``). A
resolution the cache still holds for the same inputs is reused before either runs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from chalicepack.deps.deadline import Deadline
from chalicepack.deps.pip import index_urls, redact
from chalicepack.deps.pip_resolver import Distribution, Resolution, resolve
from chalicepack.deps.uv_resolver import resolve_with_uv, with_dependencies
from chalicepack.inputs.locks import requirement_lines
from chalicepack.inputs.requirements import RequirementLine, index_options, read_requirement_lines
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
    # What each release requires is in its wheel: fetch them now (the build would).
    wheels = fetch_dependency_wheels(
        request.path, picked, request.target, request.cache_dir, request.deadline
    )
    return Resolved(Resolution(with_dependencies(picked, wheels), ()), wheels)


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
        log.info(
            "requirements.txt unchanged: reusing its cached resolution (--refresh to resolve again)"
        )
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
    environ = {} if any(o in ("-i", "--index-url") for o in options) else os.environ
    indexes = [redact(url) for url in index_urls(environ, options)]
    return Deadline.start(os.environ, requirements, indexes or [_PYPI])


_PYPI = "https://pypi.org/simple/"
