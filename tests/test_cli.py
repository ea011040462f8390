"""The command line as a user meets it: exit codes, stdout for results, stderr for the rest."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import make_project


def test_a_directory_without_config_is_not_a_chalice_project(tmp_path: Path, chalicepack) -> None:
    (tmp_path / "app.py").write_text("")

    run = chalicepack("build", tmp_path)

    assert run.returncode == 2
    assert "not a Chalice project" in run.stderr
    assert str(tmp_path / ".chalice" / "config.json") in run.stderr
    assert run.stdout == ""


def test_an_unknown_stage_lists_the_stages_that_exist(tmp_path: Path, chalicepack) -> None:
    project = make_project(tmp_path / "app", config={"stages": {"dev": {}, "prod": {}}})

    run = chalicepack("build", project, "--stage", "staging")

    assert run.returncode == 2
    assert "staging" in run.stderr
    assert "dev, prod" in run.stderr
    assert not (project / "dist").exists()


def test_invalid_config_json_names_the_line_and_column(tmp_path: Path, chalicepack) -> None:
    project = make_project(tmp_path / "app")
    (project / ".chalice" / "config.json").write_text('{\n  "version": "2.0",\n}\n')

    run = chalicepack("build", project)

    assert run.returncode == 2
    assert "config.json:3:1" in run.stderr


def test_missing_app_py_is_bad_input(tmp_path: Path, chalicepack) -> None:
    project = make_project(tmp_path / "app")
    (project / "app.py").unlink()

    run = chalicepack("build", project)

    assert run.returncode == 2
    assert "app.py does not exist" in run.stderr


def test_an_unknown_runtime_is_bad_input_with_the_choices(project: Path, chalicepack) -> None:
    run = chalicepack("build", project, "--runtime", "python3.9")

    assert run.returncode == 2
    assert "python3.12" in run.stderr


def test_an_unparsable_requirement_names_its_line(tmp_path: Path, chalicepack) -> None:
    project = make_project(tmp_path / "app", {"requirements.txt": "# deps\nrequests>=2\nfoo==>1\n"})

    run = chalicepack("build", project)

    assert run.returncode == 2
    assert "requirements.txt:3" in run.stderr


def test_json_output_is_only_the_report_and_logs_go_to_stderr(project: Path, chalicepack) -> None:
    run = chalicepack("build", project, "--json", "--automatic-layer")

    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["artifacts"]["deployment"]["path"] == str(project / "dist" / "deployment.zip")
    assert "no layer zip" in run.stderr


def test_the_runtime_defaults_to_the_running_python_and_is_echoed(
    project: Path, chalicepack
) -> None:
    import sys

    run = chalicepack("build", project)

    assert run.returncode == 0, run.stderr
    runtime = f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert run.stdout.splitlines()[-1].startswith(f"{runtime} x86_64:")


def test_out_defaults_to_dist_inside_the_project(project: Path, chalicepack) -> None:
    run = chalicepack("build", project)

    assert run.returncode == 0, run.stderr
    assert (project / "dist" / "deployment.zip").is_file()
    assert (project / "dist" / "build-report.json").is_file()


def test_check_resolves_and_reports_missing_dependencies_without_writing_zips(
    tmp_path: Path, index, chalicepack
) -> None:
    index.add_wheel("macosonly", "1.0", tag="cp311-cp311-macosx_11_0_arm64")
    index.add_wheel("puredep", "2.0")
    project = make_project(tmp_path / "app", {"requirements.txt": "puredep\nmacosonly\n"})

    run = chalicepack("check", project, "--runtime", "python3.11", "--json")
    strict = chalicepack("check", project, "--runtime", "python3.11", "--strict")

    assert run.returncode == 0, run.stderr
    report = run.json()
    assert [d["name"] for d in report["dependencies"]] == ["puredep"]
    assert [m["name"] for m in report["missing_dependencies"]] == ["macosonly"]
    assert report["artifacts"] == {}
    assert not list((project / "dist").glob("*.zip"))
    assert strict.returncode == 1
    assert "Could not install dependencies:\nmacosonly==1.0" in strict.stderr
    assert "With --strict the build stops here" in strict.stderr
    assert "will continue" not in strict.stderr


def test_check_writes_its_own_report_and_leaves_the_builds_standing(
    tmp_path: Path, index, chalicepack
) -> None:
    index.add_wheel("puredep", "2.0")
    project = make_project(tmp_path / "app", {"requirements.txt": "puredep==2.0\n"})
    dist = project / "dist"
    built = chalicepack("build", project, "--json")
    assert built.returncode == 0, built.stderr
    zips = {path.name: path.read_bytes() for path in dist.glob("*.zip")}
    build_report = (dist / "build-report.json").read_bytes()

    checked = chalicepack("check", project, "--cache-dir", tmp_path / "cache")
    again = chalicepack("build", project, "--json")

    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.splitlines() == [
        str(dist / "check-report.json"),
        "python3.11 x86_64: 1 dependencies",
    ]
    check_report = json.loads((dist / "check-report.json").read_text())
    assert [d["name"] for d in check_report["dependencies"]] == ["puredep"]
    assert (dist / "build-report.json").read_bytes() == build_report
    assert again.returncode == 0, again.stderr
    assert "nothing changed since the last build" in again.stderr
    assert again.json() == built.json()
    assert {path.name: path.read_bytes() for path in dist.glob("*.zip")} == zips
