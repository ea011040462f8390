"""A user's requirements.txt against a real index: what ships, what is missing, what fails."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from conftest import make_project
from pkgindex import PackageIndex

CHALICE_WARNING = (
    "Could not install dependencies:\n"
    "macosonly==1.0\n"
    "You will have to build these yourself and vendor them in\n"
    "the chalice vendor folder."
)


def names_in(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def test_a_dependency_with_only_a_macos_wheel_is_reported_chalice_style_and_the_rest_ships(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("macosonly", "1.0", tag="cp311-cp311-macosx_11_0_arm64")
    index.add_wheel("puredep", "2.0")
    project = make_project(
        tmp_path / "app", {"requirements.txt": "puredep==2.0\n# needs a Mac\nmacosonly==1.0\n"}
    )

    run = chalicepack("build", project, "--runtime", "python3.11", "--json")

    assert run.returncode == 0, run.stderr
    assert CHALICE_WARNING in run.stderr
    report = run.json()
    assert [d["name"] for d in report["dependencies"]] == ["puredep"]
    (missing,) = report["missing_dependencies"]
    assert missing["name"] == "macosonly"
    assert missing["version"] == "1.0"
    assert missing["requirement"]["line"] == 3
    assert "puredep/__init__.py" in names_in(project / "dist" / "deployment.zip")
    assert not any(
        name.startswith("macosonly") for name in names_in(project / "dist" / "deployment.zip")
    )


def test_strict_turns_a_missing_dependency_into_exit_1_and_writes_no_zip(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("macosonly", "1.0", tag="cp311-cp311-macosx_11_0_arm64")
    project = make_project(tmp_path / "app", {"requirements.txt": "macosonly==1.0\n"})

    run = chalicepack("build", project, "--runtime", "python3.11", "--strict")

    assert run.returncode == 1
    assert CHALICE_WARNING in run.stderr
    assert "--strict" in run.stderr
    assert not (project / "dist" / "deployment.zip").exists()
    assert run.stdout == ""


def test_a_project_that_does_not_exist_on_the_index_is_bad_input_naming_the_line(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("puredep", "2.0")
    project = make_project(
        tmp_path / "app", {"requirements.txt": "puredep\nno-such-project==1.0\n"}
    )

    run = chalicepack("build", project)

    assert run.returncode == 2
    assert "requirements.txt:2" in run.stderr
    assert "no-such-project" in run.stderr
    assert not (project / "dist").exists()


def test_a_version_that_does_not_exist_is_bad_input_naming_the_line(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("puredep", "2.0")
    project = make_project(tmp_path / "app", {"requirements.txt": "puredep==9.9\n"})

    run = chalicepack("build", project)

    assert run.returncode == 2
    assert "requirements.txt:1" in run.stderr
    assert "puredep==9.9" in run.stderr


def test_an_unreachable_index_is_an_outside_failure(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("puredep", "2.0")
    index.stop()
    project = make_project(tmp_path / "app", {"requirements.txt": "puredep\n"})

    run = chalicepack("build", project)

    assert run.returncode == 1
    assert "could not reach the package index" in run.stderr
    assert not (project / "dist").exists()


def test_transitive_dependencies_ship_and_say_who_needs_them(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("toplevel", "1.0", requires=["helper>=2"])
    index.add_wheel("helper", "1.0")
    index.add_wheel("helper", "2.1")
    project = make_project(tmp_path / "app", {"requirements.txt": "toplevel\n"})

    run = chalicepack("build", project, "--json")

    assert run.returncode == 0, run.stderr
    dependencies = {d["name"]: d for d in run.json()["dependencies"]}
    assert dependencies["helper"]["version"] == "2.1"
    assert dependencies["helper"]["required_by"] == ["toplevel"]
    assert dependencies["helper"]["requirement"] is None
    assert dependencies["toplevel"]["requirement"]["line"] == 1


def test_who_needs_a_dependency_follows_the_targets_markers_and_the_extras_asked(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    # As pandas's metadata does: a self-reference for an "all" extra, a Windows-only
    # requirement, and one behind an extra the app asks for.
    index.add_wheel(
        "frames", "1.0", requires=[
            "helper", "frames[fast]; extra == 'all'", "winutils; sys_platform == 'win32'",
            "speedup; extra == 'fast'",
        ],
    )  # fmt: skip
    for name in ("helper", "winutils", "speedup"):
        index.add_wheel(name, "1.0")
    project = make_project(tmp_path / "app", {"requirements.txt": "frames[fast]\nwinutils\n"})

    run = chalicepack("build", project, "--json")

    assert run.returncode == 0, run.stderr
    required_by = {d["name"]: d["required_by"] for d in run.json()["dependencies"]}
    assert required_by == {
        "frames": [],  # not by itself
        "helper": ["frames"],
        "speedup": ["frames"],  # the extra the app asked for
        "winutils": [],  # on Lambda (Linux) nothing requires it; the app does
    }
    # The SBOM's graph: the app needs what requirements.txt names, frames what it needs here.
    sbom = json.loads((project / "dist" / "sbom.cdx.json").read_text())
    graph = {item["ref"]: item.get("dependsOn", []) for item in sbom["dependencies"]}
    assert graph["app:testapp"] == ["pkg:pypi/frames@1.0", "pkg:pypi/winutils@1.0"]
    assert graph["pkg:pypi/frames@1.0"] == ["pkg:pypi/helper@1.0", "pkg:pypi/speedup@1.0"]
    assert "Dependency Graph is incomplete" not in run.stderr


def test_a_manylinux_wheel_ships_and_a_wheel_for_the_other_architecture_does_not(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("fast", "1.0", tag="cp311-cp311-manylinux2014_x86_64")
    index.add_wheel("fast", "1.1", tag="cp311-cp311-manylinux2014_aarch64")
    project = make_project(tmp_path / "app", {"requirements.txt": "fast\n"})

    run = chalicepack("build", project, "--runtime", "python3.11", "--json")

    assert run.returncode == 0, run.stderr
    (dependency,) = run.json()["dependencies"]
    assert dependency["wheel"] == "fast-1.0-cp311-cp311-manylinux2014_x86_64.whl"


def test_chalice_pinned_in_requirements_gives_the_runtime_and_nothing_else_of_it(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel(
        "chalice",
        "1.30.0",
        files={
            "chalice/__init__.py": "# chalice 1.30.0 from the index\n",
            "chalice/app.py": "# app 1.30.0\n",
            "chalice/cli/__init__.py": "# the CLI never ships\n",
        },
    )
    project = make_project(tmp_path / "app", {"requirements.txt": "chalice==1.30.0\n"})

    # This stand-in chalice has no Chalice class, so the app could not be imported.
    run = chalicepack("build", project, "--json", "--no-import")

    assert run.returncode == 0, run.stderr
    zip_path = project / "dist" / "deployment.zip"
    assert names_in(zip_path) == ["app.py", "chalice/__init__.py", "chalice/app.py"]
    with zipfile.ZipFile(zip_path) as archive:
        assert archive.read("chalice/__init__.py") == b"# chalice 1.30.0 from the index\n"
    assert "chalice==1.30.0" in run.json()["chalice_runtime"]


def test_a_vendor_file_wins_over_a_dependency_file_and_the_report_says_so(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("puredep", "2.0")
    project = make_project(
        tmp_path / "app",
        {"requirements.txt": "puredep\n", "vendor/puredep/__init__.py": "PATCHED = True\n"},
    )

    run = chalicepack("build", project, "--json")

    assert run.returncode == 0, run.stderr
    assert run.json()["vendor_overrides"] == ["puredep/__init__.py"]
    assert "vendor/puredep/__init__.py replaces" in run.stderr
    with zipfile.ZipFile(project / "dist" / "deployment.zip") as archive:
        assert archive.read("puredep/__init__.py") == b"PATCHED = True\n"


def test_scripts_and_data_of_a_wheel_do_not_ship(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel(
        "withtools",
        "1.0",
        data_files={"scripts/withtools-cli": "#!python\nprint()\n", "data/share/doc.txt": "docs\n"},
    )
    project = make_project(tmp_path / "app", {"requirements.txt": "withtools\n"})

    run = chalicepack("build", project)

    assert run.returncode == 0, run.stderr
    names = names_in(project / "dist" / "deployment.zip")
    assert "withtools/__init__.py" in names
    assert not any("withtools-cli" in name or "doc.txt" in name for name in names)


def test_a_wheel_whose_record_does_not_match_is_refused(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("tampered", "1.0", bad_record=True)
    project = make_project(tmp_path / "app", {"requirements.txt": "tampered\n"})

    run = chalicepack("build", project)

    assert run.returncode == 2
    assert "tampered-1.0-py3-none-any.whl" in run.stderr
    assert not (project / "dist" / "deployment.zip").exists()


def test_turning_the_layer_off_removes_the_stale_layer_zip(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("puredep", "2.0")
    project = make_project(tmp_path / "app", {"requirements.txt": "puredep\n"})
    assert chalicepack("build", project, "--automatic-layer").returncode == 0
    assert (project / "dist" / "layer-deployment.zip").exists()

    run = chalicepack("build", project, "--no-automatic-layer")

    assert run.returncode == 0, run.stderr
    assert not (project / "dist" / "layer-deployment.zip").exists()


def test_a_layer_with_nothing_in_it_is_not_written(project: Path, chalicepack) -> None:
    run = chalicepack("build", project, "--automatic-layer", "--json")

    assert run.returncode == 0, run.stderr
    assert list(run.json()["artifacts"]) == ["deployment"]
    assert "no layer zip" in run.stderr
