"""Dependencies installed for the Lambda target, not for the build host (issue: Lambda-correct
dependencies). Every case goes through real pip against a real index on 127.0.0.1."""

from __future__ import annotations

import platform
import sys
import zipfile
from pathlib import Path
from typing import Any

from conftest import make_project
from pkgindex import PackageIndex

HOST = f"python{sys.version_info.major}.{sys.version_info.minor}"
# C that no compiler builds: the sdist's build fails for every target.
BROKEN_C = "this is not C;\n"
OTHER = "python3.12" if HOST != "python3.12" else "python3.11"
# The Lambda architecture this machine's compiler builds for.
HOST_ARCH = {"x86_64": "x86_64", "aarch64": "arm64"}[platform.machine()]


def build(
    chalicepack: Any, project: Path, *args: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    run = chalicepack("build", project, "--json", *args, env=env)
    assert run.returncode == 0, run.stderr
    report: dict[str, Any] = run.json()
    report["stderr"] = run.stderr
    return report


def installed(report: dict[str, Any]) -> dict[str, str]:
    return {d["name"]: d["version"] for d in report["dependencies"]}


def missing(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in report["missing_dependencies"]}


def test_python_version_markers_are_evaluated_for_the_target_not_the_host(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("six", "1.16.0")
    index.add_wheel("app-helper", "1.0", requires=['backport; python_version < "3.12"'])
    index.add_wheel("backport", "1.0")
    project = make_project(
        tmp_path / "app",
        {"requirements.txt": 'six; python_version < "3.12"\napp-helper\n'},
    )

    old = build(chalicepack, project, "--runtime", "python3.11")
    new = build(chalicepack, project, "--runtime", "python3.12")

    assert installed(old) == {"six": "1.16.0", "app-helper": "1.0", "backport": "1.0"}
    assert installed(new) == {"app-helper": "1.0"}


def test_platform_machine_markers_follow_the_target_architecture(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("armonly", "1.0")
    project = make_project(
        tmp_path / "app", {"requirements.txt": 'armonly; platform_machine == "aarch64"\n'}
    )

    x86 = build(chalicepack, project, "--arch", "x86_64")
    arm = build(chalicepack, project, "--arch", "arm64")

    assert installed(x86) == {}
    assert installed(arm) == {"armonly": "1.0"}


def test_arm64_gets_the_aarch64_wheel(tmp_path: Path, index: PackageIndex, chalicepack) -> None:
    index.add_wheel("fast", "1.0", tag="cp311-cp311-manylinux2014_x86_64")
    index.add_wheel("fast", "1.0", tag="cp311-cp311-manylinux2014_aarch64")
    project = make_project(tmp_path / "app", {"requirements.txt": "fast==1.0\n"})

    report = build(chalicepack, project, "--runtime", "python3.11", "--arch", "arm64")

    (dependency,) = report["dependencies"]
    assert dependency["wheel"] == "fast-1.0-cp311-cp311-manylinux2014_aarch64.whl"
    assert report["architecture"] == "arm64"


def test_lambda_architecture_in_config_json_is_honoured_and_the_cli_wins(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("fast", "1.0", tag="cp311-cp311-manylinux2014_x86_64")
    index.add_wheel("fast", "1.0", tag="cp311-cp311-manylinux2014_aarch64")
    project = make_project(
        tmp_path / "app", {"requirements.txt": "fast\n"}, config={"lambda_architecture": "arm64"}
    )

    from_config = build(chalicepack, project, "--runtime", "python3.11")
    from_cli = build(chalicepack, project, "--runtime", "python3.11", "--arch", "x86_64")

    assert from_config["dependencies"][0]["tag"] == "cp311-cp311-manylinux2014_aarch64"
    assert from_cli["dependencies"][0]["tag"] == "cp311-cp311-manylinux2014_x86_64"


def test_a_wheel_needing_a_newer_glibc_falls_back_to_an_older_release(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("numeric", "1.0", tag="cp311-cp311-manylinux2014_x86_64")
    index.add_wheel("numeric", "2.0", tag="cp311-cp311-manylinux_2_28_x86_64")
    index.add_wheel("numeric", "1.0", tag="cp312-cp312-manylinux2014_x86_64")
    index.add_wheel("numeric", "2.0", tag="cp312-cp312-manylinux_2_28_x86_64")
    project = make_project(tmp_path / "app", {"requirements.txt": "numeric\n"})

    amazon_linux_2 = build(chalicepack, project, "--runtime", "python3.11")
    amazon_linux_2023 = build(chalicepack, project, "--runtime", "python3.12")

    assert installed(amazon_linux_2) == {"numeric": "1.0"}
    assert installed(amazon_linux_2023) == {"numeric": "2.0"}


def test_the_glibc_fallback_still_works_when_another_dependency_is_missing(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("numeric", "1.0", tag="cp311-cp311-manylinux2014_x86_64")
    index.add_wheel("numeric", "2.0", tag="cp311-cp311-manylinux_2_28_x86_64")
    index.add_wheel("macosonly", "1.0", tag="cp311-cp311-macosx_11_0_arm64", requires=["tiny"])
    index.add_wheel("tiny", "1.0")
    project = make_project(tmp_path / "app", {"requirements.txt": "numeric\nmacosonly\n"})

    report = build(chalicepack, project, "--runtime", "python3.11")

    assert installed(report) == {"numeric": "1.0", "tiny": "1.0"}
    assert list(missing(report)) == ["macosonly"]
    assert missing(report)["macosonly"]["only_needed_by_it"] == ["tiny"]


def test_a_missing_dependency_gets_a_fix_naming_a_release_that_has_a_wheel(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_sdist("cryptic", "1.9", c_extension=True, ext_source=BROKEN_C)
    index.add_wheel("cryptic", "41.0", tag="cp37-abi3-manylinux2014_x86_64")
    project = make_project(tmp_path / "app", {"requirements.txt": "cryptic==1.9\n"})

    report = build(chalicepack, project, "--runtime", OTHER)

    entry = missing(report)["cryptic"]
    assert entry["version"] == "1.9"
    assert "pin cryptic==41.0" in entry["fix"]
    assert report["stderr"].index("Could not install dependencies:\ncryptic==1.9") < report[
        "stderr"
    ].index("pin cryptic==41.0")


def test_a_pure_sdist_is_built_and_shipped(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_sdist("docopt-like", "0.6.2")
    project = make_project(tmp_path / "app", {"requirements.txt": "docopt-like==0.6.2\n"})

    report = build(chalicepack, project, "--runtime", OTHER)

    (dependency,) = report["dependencies"]
    assert dependency["name"] == "docopt-like"
    assert dependency["built_from_source"] is True
    with zipfile.ZipFile(project / "dist" / "deployment.zip") as archive:
        assert "docopt_like/__init__.py" in archive.namelist()


def test_a_c_extension_sdist_built_on_a_matching_host_ships_after_its_glibc_check(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_sdist("speedy", "1.0", c_extension=True)
    project = make_project(tmp_path / "app", {"requirements.txt": "speedy==1.0\n"})

    report = build(chalicepack, project, "--runtime", HOST, "--arch", HOST_ARCH)

    (dependency,) = report["dependencies"]
    assert dependency["built_from_source"] is True
    with zipfile.ZipFile(project / "dist" / "deployment.zip") as archive:
        assert any(name.startswith("speedy/_speedups") for name in archive.namelist())


def test_a_failing_sdist_build_is_reported_with_its_log(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_sdist("broken", "1.0", c_extension=True, ext_source=BROKEN_C)
    project = make_project(tmp_path / "app", {"requirements.txt": "broken==1.0\n"})

    report = build(chalicepack, project, "--runtime", HOST)

    entry = missing(report)["broken"]
    assert "failed to build with CPython" in entry["reason"]
    assert "zig cc -target" in entry["reason"]
    assert "error: unknown type name 'this'" in entry["build_log"]


def test_an_old_sdist_that_no_longer_builds_is_missing_and_the_rest_still_ships(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_sdist("cryptic", "1.9", unbuildable=True)
    index.add_wheel("cryptic", "41.0", tag="cp37-abi3-manylinux2014_x86_64")
    index.add_wheel("puredep", "1.0")
    project = make_project(tmp_path / "app", {"requirements.txt": "cryptic==1.9\npuredep\n"})

    report = build(chalicepack, project, "--runtime", "python3.12")

    assert installed(report) == {"puredep": "1.0"}
    entry = missing(report)["cryptic"]
    assert entry["version"] == "1.9"
    assert "could not be prepared" in entry["reason"]
    assert "pin cryptic==41.0" in entry["fix"]
    assert "Could not install dependencies:\ncryptic==1.9" in report["stderr"]
