"""One wheel built here from source, as build-report.json's ``source_builds`` lists it.

Apart from the build itself (``deps.sourcebuild``) so that reading a report needs nothing of
pip, zig or auditwheel.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class SourceBuild:
    name: str
    version: str
    target: str  # "python3.12 arm64"
    interpreter: str | None  # the CPython that built it; None when none of the target's minor
    compiler: str  # "zig cc -target aarch64-linux-gnu.2.34", or "none (...)"
    policy: str  # the manylinux policy it was checked against
    verdict: str  # "pure", "fits", "repaired" (libraries grafted), "refused", "failed"
    grafted: tuple[str, ...] = ()
    reason: str | None = None  # why it was refused or failed (or its C extension left out)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "grafted": list(self.grafted)}

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> SourceBuild:
        return cls(**{**item, "grafted": tuple(item.get("grafted", ()))})
