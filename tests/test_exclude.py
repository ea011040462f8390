"""Fitting Lambda's limits on request: leave out what the runtime provides, or excluded paths."""

from __future__ import annotations

import zipfile
from pathlib import Path

from conftest import make_project
from pkgindex import PackageIndex


def names_in(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def publish_aws_sdk(index: PackageIndex) -> None:
    index.add_wheel("boto3", "1.0", requires=["botocore", "s3transfer", "jmespath"])
    index.add_wheel("botocore", "1.0", requires=["jmespath", "python-dateutil", "urllib3"])
    index.add_wheel("s3transfer", "1.0", requires=["botocore"])
    index.add_wheel("jmespath", "1.0")
    index.add_wheel("python-dateutil", "1.0", requires=["six"])
    index.add_wheel("six", "1.0")
    index.add_wheel("urllib3", "1.0")
    index.add_wheel("requests", "1.0", requires=["urllib3"])


def test_without_runtime_provided_leaves_out_boto3_and_what_only_it_needs(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    publish_aws_sdk(index)
    project = make_project(tmp_path / "app", {"requirements.txt": "boto3\nrequests\n"})

    run = chalicepack("build", project, "--json", "--without-runtime-provided")

    assert run.returncode == 0, run.stderr
    report = run.json()
    assert [d["name"] for d in report["dependencies"]] == ["requests", "urllib3"]
    left_out = report["left_out"]
    assert sorted(d["name"] for d in left_out["runtime_provided"]) == [
        "boto3", "botocore", "jmespath", "python-dateutil", "s3transfer", "six",
    ]  # fmt: skip
    assert left_out["bytes_saved"] == sum(d["unpacked_size"] for d in left_out["runtime_provided"])
    assert left_out["bytes_saved"] > 0
    shipped = names_in(project / "dist" / "deployment.zip")
    assert "urllib3/__init__.py" in shipped
    assert not any(name.startswith(("boto3", "botocore", "six")) for name in shipped)


def test_by_default_boto3_ships_like_any_requirement(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    publish_aws_sdk(index)
    project = make_project(tmp_path / "app", {"requirements.txt": "boto3\n"})

    run = chalicepack("build", project, "--json")

    assert run.returncode == 0, run.stderr
    assert "boto3/__init__.py" in names_in(project / "dist" / "deployment.zip")
    assert run.json()["left_out"]["runtime_provided"] == []


def test_exclude_patterns_drop_matching_files_and_folders_and_warn_when_unused(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel(
        "bulky",
        "1.0",
        files={
            "bulky/__init__.py": "",
            "bulky/tests/test_bulky.py": "def test(): pass\n",
            "bulky/docs/guide.md": "# guide\n",
        },
    )
    project = make_project(
        tmp_path / "app",
        {"requirements.txt": "bulky\n", "vendor/notes.md": "vendor notes\n",
         "chalicelib/README.md": "app files always ship\n"},
    )  # fmt: skip

    run = chalicepack(
        "build", project, "--json", "--exclude", "*/tests", "--exclude", "*.md",
        "--exclude", "nothing/*",
    )  # fmt: skip

    assert run.returncode == 0, run.stderr
    shipped = names_in(project / "dist" / "deployment.zip")
    assert "bulky/__init__.py" in shipped
    assert "chalicelib/README.md" in shipped
    assert not any("tests/" in n or n.endswith("guide.md") or n == "notes.md" for n in shipped)
    assert sorted(run.json()["left_out"]["excluded_files"]) == [
        "bulky/docs/guide.md", "bulky/tests/test_bulky.py", "notes.md",
    ]  # fmt: skip
    assert "--exclude 'nothing/*' matched no dependency or vendor file" in run.stderr
