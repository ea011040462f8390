"""The Lambda target: runtime + architecture -> the wheel tags Lambda can load.

``packaging.tags`` reads the *host's* glibc when it lists manylinux platforms, so the
target's platform list is built here from Lambda's documented glibc per runtime instead.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from chalicepack.errors import BadInput

Arch = Literal["x86_64", "arm64"]
ARCHES: tuple[Arch, ...] = ("x86_64", "arm64")

# glibc of the Lambda base image per runtime: Amazon Linux 2 for python3.10/3.11,
# Amazon Linux 2023 for python3.12 and later.
RUNTIME_GLIBC: dict[str, tuple[int, int]] = {
    "python3.10": (2, 26),
    "python3.11": (2, 26),
    "python3.12": (2, 34),
    "python3.13": (2, 34),
    "python3.14": (2, 34),
}

# Lambda's arm64 is aarch64 in wheel tags and in platform_machine.
_MACHINE: dict[Arch, str] = {"x86_64": "x86_64", "arm64": "aarch64"}

# The legacy manylinux names and the glibc each stands for (PEP 600).
_LEGACY_MANYLINUX = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}


def host_runtime() -> str:
    """The runtime matching the running interpreter, as Chalice picks its default."""
    return f"python{sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class Target:
    """A Lambda runtime (``python3.X``) on one architecture."""

    runtime: str
    arch: Arch = "x86_64"

    @classmethod
    def parse(cls, runtime: str, arch: str = "x86_64") -> Target:
        if runtime not in RUNTIME_GLIBC:
            supported = ", ".join(RUNTIME_GLIBC)
            raise BadInput(
                f"runtime {runtime!r} is not a Lambda Python runtime; use one of {supported}"
            )
        if arch not in ARCHES:
            raise BadInput(
                f"architecture {arch!r} is not a Lambda architecture; use x86_64 or arm64"
            )
        return cls(runtime, arch)

    @property
    def python_version(self) -> tuple[int, int]:
        major, minor = self.runtime.removeprefix("python").split(".")
        return int(major), int(minor)

    @property
    def version_text(self) -> str:
        """``3.11``: the form of ``python_version`` markers and pip's ``--python-version``."""
        return "{}.{}".format(*self.python_version)

    @property
    def abi(self) -> str:
        return "cp{}{}".format(*self.python_version)

    @property
    def glibc(self) -> tuple[int, int]:
        return RUNTIME_GLIBC[self.runtime]

    @property
    def machine(self) -> str:
        return _MACHINE[self.arch]

    @property
    def site_packages(self) -> str:
        """Where the runtime looks for a layer's packages, relative to the layer root."""
        return f"python/lib/python{self.version_text}/site-packages"

    @cached_property
    def platforms(self) -> tuple[str, ...]:
        """Platform tags the target accepts, most specific first (pip tries them in order)."""
        return tuple(_manylinux_platforms(self.glibc, self.machine))

    @cached_property
    def tag_ranks(self) -> dict[Tag, int]:
        """Each tag the target accepts and its rank, 0 the most preferred: pip's order (its
        interpreter's tags, then the compatible ones), in which pip picks among a release's
        files."""
        python = self.python_version
        ordered = [
            *cpython_tags(python, abis=[self.abi], platforms=self.platforms),
            *compatible_tags(python, interpreter=self.abi, platforms=self.platforms),
        ]
        ranks: dict[Tag, int] = {}
        for tag in ordered:
            ranks.setdefault(tag, len(ranks))
        return ranks

    def wheel_rank(self, filename: str) -> int | None:
        """The rank of the most preferred tag of a wheel the target can load, else None."""
        try:
            _, _, _, wheel_tags = parse_wheel_filename(filename)
        except InvalidWheelFilename:
            return None
        ranks = [self.tag_ranks[tag] for tag in wheel_tags if tag in self.tag_ranks]
        return min(ranks, default=None)

    def accepts_wheel(self, filename: str) -> bool:
        """Whether a wheel with this file name can be loaded by the target runtime."""
        return self.wheel_rank(filename) is not None

    def marker_environment(self) -> dict[str, str]:
        """PEP 508 marker values on the target (Amazon Linux, CPython of the runtime)."""
        # Lambda does not promise a patch release; X.Y.0 keeps python_full_version markers
        # about the minor version right.
        full_version = f"{self.version_text}.0"
        return {
            "implementation_name": "cpython",
            "implementation_version": full_version,
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_system": "Linux",
            "python_full_version": full_version,
            "python_version": self.version_text,
            "sys_platform": "linux",
        }

    def pip_options(self) -> list[str]:
        """pip's target options: only wheels the target accepts, judged by their tags."""
        options = ["--python-version", self.version_text, "--implementation", "cp"]
        options += ["--abi", self.abi, "--abi", "abi3", "--abi", "none"]
        for platform in self.platforms:
            options += ["--platform", platform]
        return options


def _manylinux_platforms(glibc: tuple[int, int], machine: str) -> Iterator[str]:
    major, newest_minor = glibc
    # manylinux1 (2_5) and manylinux2010 (2_12) were only ever defined for x86 machines.
    oldest_minor = 5 if machine in ("x86_64", "i686") else 17
    for minor in range(newest_minor, oldest_minor - 1, -1):
        yield f"manylinux_{major}_{minor}_{machine}"
        for legacy, (legacy_major, legacy_minor) in _LEGACY_MANYLINUX.items():
            if (legacy_major, legacy_minor) == (major, minor):
                yield f"{legacy}_{machine}"
