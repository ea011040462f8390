"""One bound for the whole resolution: uv, then pip if it runs, then the downloads.

Each request to an index has its own timeout and retries (``pip.network_limits``), but a
resolution makes many requests, by up to two resolvers and a download after them: an index
that answers slowly, or a resolution that backtracks through it, could hold a build for the
sum of them all. A ``Deadline`` is made once per build, before the first of these starts,
and every child process and download waits only for the time it has left; when it runs
out, the build stops (exit 1), naming what it was waiting for and the indexes it asked.
Source builds are not bounded by it: they wait on a compiler, not on an index.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from chalicepack.errors import BadInput, BuildFailure

VARIABLE = "CHALICEPACK_RESOLVE_TIMEOUT"
# Long enough for a large resolution on a slow network; short enough that a CI job stuck on
# an index fails well before the job's own limit (GitHub's is 6 h).
DEFAULT_SECONDS = 600.0


@dataclass(frozen=True)
class Deadline:
    """When the resolution must be over (``time.monotonic()``), and what to say if not."""

    seconds: float
    ends: float
    requirements: Path
    indexes: tuple[str, ...]  # the index URLs asked, credentials hidden

    @classmethod
    def start(
        cls, environ: Mapping[str, str], requirements: Path, indexes: Sequence[str]
    ) -> Deadline:
        seconds = bound_seconds(environ)
        return cls(seconds, time.monotonic() + seconds, requirements, tuple(indexes))

    def remaining(self) -> float:
        """Seconds left, never below zero."""
        return max(0.0, self.ends - time.monotonic())

    def exceeded(self, waiting_for: str) -> BuildFailure:
        """The failure to raise when the bound ran out ``waiting_for`` something."""
        return BuildFailure(
            f"{self.requirements}: resolving did not end within {self.seconds:g} s (the bound "
            f"for the whole resolution); it was waiting for {waiting_for}, from the package "
            f"index {', '.join(self.indexes)}; check the network and the index URL, then "
            f"retry, or set {VARIABLE} to more seconds to wait longer"
        )


def bound_seconds(environ: Mapping[str, str]) -> float:
    """The bound in seconds: ``CHALICEPACK_RESOLVE_TIMEOUT`` if set, else the default."""
    text = environ.get(VARIABLE, "").strip()
    if not text:
        return DEFAULT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise BadInput(f"{VARIABLE}={text!r}: give the bound in seconds, a number above 0")
    return seconds


def remaining(deadline: Deadline | None) -> float | None:
    """Seconds left before ``deadline``; None when there is none."""
    return None if deadline is None else deadline.remaining()
