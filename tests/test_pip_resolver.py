"""pip's resolution for the target (chalicepack.deps.pip_resolver): when some requirement has no
file Lambda can load, which distributions are missing, why, and the fix each entry names; the
rest still resolves and ships. Every case runs ``--resolver pip`` against the local index."""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import make_project
from pkgindex import PackageIndex

TARGET = ("--runtime", "python3.11", "--arch", "x86_64")
MACOS = "cp311-cp311-macosx_11_0_arm64"
LINUX = "cp311-cp311-manylinux2014_x86_64"
VENDOR_IT = "vendor a build for the target in vendor/"
HOST = f"python{sys.version_info.major}.{sys.version_info.minor}"
OTHER = "python3.12" if HOST != "python3.12" else "python3.11"
# A C extension that no compiler builds, for any target.
DOES_NOT_BUILD = "#error needs a library Lambda lacks\n"


def pin_fix(name: str, version: str) -> str:
    return (
        f"pin {name}=={version}, the newest release with a wheel for python3.11 x86_64, "
        "or vendor it"
    )


def wheels_elsewhere(example: str) -> str:
    """The reason for a release that ships wheels, none of them for the target."""
    return (
        "no wheel for python3.11 on x86_64: its wheels are for other platforms or a newer glibc"
        f" (such as {example}); a release that ships wheels is not built from source here"
    )


def macos_only_in_every_release(index: PackageIndex) -> str:
    index.add_wheel("macosonly", "1.0", tag=MACOS)
    index.add_wheel("macosonly", "2.0", tag=MACOS)
    return "macosonly\n"


def an_old_pin_where_a_newer_release_fits(index: PackageIndex) -> str:
    index.add_wheel("numeric", "1.0", tag=MACOS)
    index.add_wheel("numeric", "2.0", tag=MACOS)
    index.add_wheel("numeric", "2.0", tag=LINUX)
    return "numeric==1.0\n"


def the_fitting_release_ruled_out_by_another_requirement(index: PackageIndex) -> str:
    # Alone, numeric would resolve to 2.0, which fits; legacy allows only 1.x.
    index.add_wheel("numeric", "1.0", tag=MACOS)
    index.add_wheel("numeric", "2.0", tag=LINUX)
    index.add_wheel("legacy", "1.0", requires=["numeric<2"])
    return "numeric\nlegacy\n"


def a_dependency_of_a_dependency(index: PackageIndex) -> str:
    index.add_wheel("macosonly", "1.0", tag=MACOS, requires=["tiny"])
    index.add_wheel("tiny", "1.0")
    index.add_wheel("shared", "1.0")
    index.add_wheel("client", "1.0", requires=["macosonly", "shared"])
    return "client\n"


@dataclass(frozen=True)
class Diagnosis:
    """What the report says of one missing distribution, and what still ships."""

    publish: Callable[[PackageIndex], str]  # fills the index; returns requirements.txt
    name: str
    version: str
    reason: str
    fix: str
    only_needed_by_it: list[str]
    ships: dict[str, str]


DIAGNOSES = {
    "only other platforms' wheels, in every release": Diagnosis(
        macos_only_in_every_release,
        "macosonly",
        "2.0",
        wheels_elsewhere("macosonly-2.0-cp311-cp311-macosx_11_0_arm64.whl"),
        VENDOR_IT,
        [],
        {},
    ),
    "an old pin, where a newer release has a wheel": Diagnosis(
        an_old_pin_where_a_newer_release_fits,
        "numeric",
        "1.0",
        wheels_elsewhere("numeric-1.0-cp311-cp311-macosx_11_0_arm64.whl"),
        pin_fix("numeric", "2.0"),
        [],
        {},
    ),
    "the release that fits is ruled out by another requirement": Diagnosis(
        the_fitting_release_ruled_out_by_another_requirement,
        "numeric",
        "1.0",
        "no wheel for python3.11 x86_64 within the other requirements' constraints",
        pin_fix("numeric", "2.0"),
        [],
        {"legacy": "1.0"},
    ),
    "a dependency of a dependency": Diagnosis(
        a_dependency_of_a_dependency,
        "macosonly",
        "1.0",
        wheels_elsewhere("macosonly-1.0-cp311-cp311-macosx_11_0_arm64.whl"),
        VENDOR_IT,
        ["tiny"],
        {"client": "1.0", "shared": "1.0", "tiny": "1.0"},
    ),
}


def build(chalicepack: Any, project: Path) -> dict[str, Any]:
    run = chalicepack("build", project, "--json", "--resolver", "pip", *TARGET)
    assert run.returncode == 0, run.stderr
    report: dict[str, Any] = run.json()
    return report


@pytest.mark.parametrize("case", DIAGNOSES.values(), ids=DIAGNOSES.keys())
def test_a_distribution_lambda_cannot_load_is_missing_with_its_reason_and_fix(
    tmp_path: Path, index: PackageIndex, chalicepack, case: Diagnosis
) -> None:
    requirements = case.publish(index)
    project = make_project(tmp_path / "app", {"requirements.txt": requirements})

    report = build(chalicepack, project)

    (missing,) = report["missing_dependencies"]
    assert (missing["name"], missing["version"]) == (case.name, case.version)
    assert missing["reason"] == case.reason
    assert missing["fix"] == case.fix
    assert missing["only_needed_by_it"] == case.only_needed_by_it
    assert {d["name"]: d["version"] for d in report["dependencies"]} == case.ships
    with zipfile.ZipFile(project / "dist" / "deployment.zip") as archive:
        shipped = {name.split("/", 1)[0] for name in archive.namelist()}
    assert case.name not in shipped
    assert set(case.ships) <= shipped


def test_a_source_tree_named_by_path_that_does_not_run_on_lambda_is_missing_with_vendor_it(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    """A path has no other release to pin: the only fix is a build in vendor/."""
    sdist = index.add_sdist("speedy", "1.0", c_extension=True, ext_source=DOES_NOT_BUILD)
    index.add_wheel("puredep", "1.0")
    project = make_project(tmp_path / "app", {"requirements.txt": f"{sdist}\npuredep\n"})

    run = chalicepack("build", project, "--json", "--resolver", "pip", "--runtime", OTHER)

    assert run.returncode == 0, run.stderr
    (missing,) = run.json()["missing_dependencies"]
    assert missing["name"] == "speedy"
    assert "needs a library Lambda lacks" in missing["build_log"]
    assert missing["fix"] == VENDOR_IT
    assert [d["name"] for d in run.json()["dependencies"]] == ["puredep"]
