"""image/requirements.txt, what the Action's image installs (with --require-hashes): every
run-time dependency of pyproject.toml pinned within its range, with hashes, for the Pythons
the image may have; `make image-lock` writes it again when pyproject.toml changes."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from conftest import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # tomli is a dependency there
    import tomli as tomllib

# Left out on purpose: chalice declares them for its own packager, which chalicepack replaces.
NOT_AT_RUN_TIME = {"setuptools", "wheel"}
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;]+)(?:\s*;\s*([^\\]+?))?\s*\\?$")


def locked(path: Path) -> dict[NormalizedName, tuple[str, str | None, int]]:
    """name -> (version, marker, number of hashes) of a `uv pip compile --generate-hashes` file."""
    pins: dict[NormalizedName, tuple[str, str | None, int]] = {}
    name: NormalizedName | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := _PIN.match(line):
            name = canonicalize_name(match[1])
            pins[name] = (match[2], match[3], 0)
        elif line.strip().startswith("--hash=sha256:") and name is not None:
            version, marker, hashes = pins[name]
            pins[name] = (version, marker, hashes + 1)
    return pins


@pytest.mark.parametrize("python", ["3.11", "3.13"])
def test_every_run_time_dependency_is_pinned_in_range_with_hashes(python: str) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = locked(ROOT / "image" / "requirements.txt")
    environment = {**default_environment(), "python_version": python, "sys_platform": "linux"}
    for text in pyproject["project"]["dependencies"]:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in image/requirements.txt: run make image-lock"
        version, _, _ = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"image/requirements.txt pins {name}=={version}, outside {requirement.specifier}:"
            " run make image-lock"
        )
    assert all(hashes > 0 for _, _, hashes in pins.values())
    assert not NOT_AT_RUN_TIME & set(pins)
