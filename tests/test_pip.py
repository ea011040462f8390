"""The one seam to pip (chalicepack.deps.pip): pip has no machine-readable form for most of its
failures, so what this module reads from pip's messages is checked against the pip installed
with chalicepack, run for real against the local index."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from chalicepack.deps.pip import PipResult, dry_run_report, redact
from pkgindex import PackageIndex


def dry_run(tmp_path: Path, requirements: str, *args: str) -> PipResult:
    """``pip install --dry-run -r requirements.txt`` against the index in PIP_INDEX_URL; the
    resolution must fail, as every case here is one pip refuses."""
    file = tmp_path / "requirements.txt"
    file.write_text(requirements)
    result, report = dry_run_report(
        [*args, "-r", str(file)], tmp_path / "report.json", cache_dir=tmp_path / "pip-cache"
    )
    assert report is None, report
    assert not result.ok
    return result


def test_a_resolution_returns_pips_report_evaluating_markers_for_the_target(
    tmp_path: Path, index: PackageIndex
) -> None:
    index.add_wheel("alpha", "1.0", requires=["beta ; python_version == '3.99'"])
    index.add_wheel("beta", "1.0")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("alpha\n")
    target = {"python_version": "3.99", "python_full_version": "3.99.0"}

    result, report = dry_run_report(
        ["-r", str(requirements)], tmp_path / "report.json", markers=target
    )
    _, host_report = dry_run_report(["-r", str(requirements)], tmp_path / "host.json")

    assert result.ok, result.stderr
    assert report is not None and host_report is not None
    assert sorted(i["metadata"]["name"] for i in report["install"]) == ["alpha", "beta"]
    assert [i["metadata"]["name"] for i in host_report["install"]] == ["alpha"]


def test_no_release_matching_names_the_requirement(tmp_path: Path, index: PackageIndex) -> None:
    index.add_wheel("alpha", "1.0")

    result = dry_run(tmp_path, "alpha==9.9\n")

    assert result.unmatched_requirement == "alpha==9.9"
    assert result.not_found_pages == ()
    assert result.index_problem is None


def test_a_project_the_index_does_not_have_is_a_404_page_not_an_index_problem(
    tmp_path: Path, index: PackageIndex
) -> None:
    result = dry_run(tmp_path, "nowhere==1.0\n")

    assert result.unmatched_requirement == "nowhere==1.0"
    assert result.not_found_pages == (f"{index.url}nowhere/",)
    assert result.index_problem is None


def test_an_index_that_is_down_is_an_index_problem(tmp_path: Path, index: PackageIndex) -> None:
    index.stop()

    result = dry_run(tmp_path, "alpha==1.0\n", "--retries", "0", "--timeout", "2")

    assert result.index_problem is not None
    assert "127.0.0.1" in result.index_problem


def test_an_sdist_whose_metadata_does_not_build_is_named(
    tmp_path: Path, index: PackageIndex
) -> None:
    index.add_sdist("cryptic", "1.9", unbuildable=True)

    result = dry_run(tmp_path, "cryptic==1.9\n")

    assert result.failed_build == "cryptic"


def test_a_hash_mismatch_is_read_with_its_file_line_and_both_digests(
    tmp_path: Path, index: PackageIndex
) -> None:
    wheel = index.add_wheel("alpha", "1.0")
    actual = hashlib.sha256(wheel.read_bytes()).hexdigest()

    result = dry_run(tmp_path, f"# pinned\nalpha==1.0 --hash=sha256:{'0' * 64}\n")

    assert result.hash_mismatch
    (mismatch,) = result.hash_mismatches
    assert mismatch.requirement == "alpha==1.0"
    assert (mismatch.file, mismatch.line) == (tmp_path / "requirements.txt", 2)
    assert (mismatch.expected, mismatch.got) == ("0" * 64, actual)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://user:s3cret@example.com/simple/", "https://***@example.com/simple/"),
        ("https://token@example.com/simple/", "https://***@example.com/simple/"),
        ("a@b.c and https://example.com/simple/", "a@b.c and https://example.com/simple/"),
    ],
    ids=["user-and-password", "token", "no-credentials"],
)
def test_redact_hides_the_credentials_of_a_url_only(text: str, shown: str) -> None:
    assert redact(text) == shown
