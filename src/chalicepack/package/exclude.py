"""What a user may leave out to fit Lambda's limits, on request only.

- ``--without-runtime-provided``: the distributions Lambda's Python runtime already ships
  (boto3, botocore, s3transfer, jmespath) and those only they require (python-dateutil,
  urllib3, six... unless something else in the package needs them too). The runtime's copies
  are what the function then imports; pin nothing newer than the runtime's boto3 if you rely
  on a recent API.
- ``--exclude PATTERN``: dependency and vendor files whose path in the package matches a
  glob (``fnmatch``, ``*`` crosses ``/``), or lies below a directory that matches it:
  ``*/tests`` drops every package's ``tests/`` folder. App files are never excluded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase, translate
from pathlib import PurePosixPath

from chalicepack.deps.pip_resolver import Distribution
from chalicepack.lambda_env import RUNTIME_SDK
from chalicepack.package.archive import ZipEntry


def runtime_provided(distributions: Sequence[Distribution]) -> set[str]:
    """Names of the runtime-provided distributions and of those only they require."""
    provided = {d.name for d in distributions if d.name in RUNTIME_SDK}
    if not provided:
        return set()
    edges = {d.name: set(d.requires) for d in distributions}
    roots = [d.name for d in distributions if d.requested and d.name not in provided]
    needed: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in needed or name in provided:
            continue
        needed.add(name)
        stack.extend(edges.get(name, ()))
    below_provided: set[str] = set()
    stack = list(provided)
    while stack:
        name = stack.pop()
        if name in below_provided:
            continue
        below_provided.add(name)
        stack.extend(edges.get(name, ()))
    return {name for name in below_provided if name not in needed}


@dataclass(frozen=True)
class Excluded:
    kept: list[ZipEntry]
    removed: list[ZipEntry]
    unmatched: list[str]  # patterns that matched no file: probably a typo


def exclude(entries: Iterable[ZipEntry], patterns: Sequence[str]) -> Excluded:
    if not patterns:
        return Excluded(list(entries), [], [])
    matching = _Matcher(patterns)
    kept: list[ZipEntry] = []
    removed: list[ZipEntry] = []
    used: set[str] = set()
    for entry in entries:
        pattern = matching(entry.arcname)
        if pattern is None:
            kept.append(entry)
        else:
            removed.append(entry)
            used.add(pattern)
    return Excluded(kept, removed, [p for p in patterns if p not in used])


class _Matcher:
    """The first pattern that matches a path or a folder it lies in. A folder's answer is
    kept: thousands of files share a few hundred folders."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self._patterns = patterns
        # What fnmatchcase does for each call, done once.
        self._matches = [re.compile(translate(p)).match for p in patterns]
        self._folders: dict[str, int | None] = {}

    def __call__(self, arcname: str) -> str | None:
        parts = arcname.split("/")
        if "" in parts or "." in parts:  # not a normal path: let pathlib say what it means
            return _matching(arcname, self._patterns)
        folder = arcname.rpartition("/")[0]
        found = self._first([self._own(arcname), self._in_folder(folder) if folder else None])
        return None if found is None else self._patterns[found]

    def _own(self, name: str) -> int | None:
        return next((i for i, match in enumerate(self._matches) if match(name)), None)

    def _in_folder(self, folder: str) -> int | None:
        if folder not in self._folders:
            parent = folder.rpartition("/")[0]
            above = self._in_folder(parent) if parent else None
            self._folders[folder] = self._first([self._own(folder), above])
        return self._folders[folder]

    @staticmethod
    def _first(found: list[int | None]) -> int | None:
        return min((i for i in found if i is not None), default=None)


def _matching(arcname: str, patterns: Sequence[str]) -> str | None:
    path = PurePosixPath(arcname)
    candidates = [arcname, *(str(parent) for parent in path.parents if str(parent) != ".")]
    for pattern in patterns:
        if any(fnmatchcase(candidate, pattern) for candidate in candidates):
            return pattern
    return None
