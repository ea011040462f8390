"""The cache: an unchanged, pinned rebuild needs no index; builds can share one cache."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import make_project
from pkgindex import PackageIndex


def test_a_pinned_rebuild_with_a_warm_cache_needs_no_index(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("alpha", "1.0", requires=["beta==2.0"])
    index.add_wheel("beta", "2.0")
    index.add_sdist("gamma", "0.3")
    project = make_project(
        tmp_path / "app", {"requirements.txt": "alpha==1.0\nbeta==2.0\ngamma==0.3\n"}
    )
    first = chalicepack("build", project, "--json", "--out", tmp_path / "first")
    assert first.returncode == 0, first.stderr

    index.stop()
    second = chalicepack("build", project, "--json", "--out", tmp_path / "second")

    assert second.returncode == 0, second.stderr
    assert "reusing its cached resolution" in second.stderr
    for name in ("first", "second"):
        digest = hashlib.sha256((tmp_path / name / "deployment.zip").read_bytes()).hexdigest()
        assert digest == first.json()["artifacts"]["deployment"]["sha256"]


def test_unpinned_requirements_keep_their_recent_resolution_until_refresh(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("alpha", "1.0")
    project = make_project(tmp_path / "app", {"requirements.txt": "alpha\n"})
    assert chalicepack("build", project).returncode == 0

    index.add_wheel("alpha", "1.1")
    kept = chalicepack("build", project, "--json", "--out", tmp_path / "kept")
    refreshed = chalicepack("build", project, "--json", "--refresh")

    assert kept.returncode == 0, kept.stderr
    assert kept.json()["dependencies"][0]["version"] == "1.0"
    assert "--refresh to resolve again" in kept.stderr
    assert refreshed.returncode == 0, refreshed.stderr
    assert refreshed.json()["dependencies"][0]["version"] == "1.1"


def test_refresh_asks_the_index_again_even_for_pinned_requirements(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("alpha", "1.0")
    project = make_project(tmp_path / "app", {"requirements.txt": "alpha==1.0\n"})
    assert chalicepack("build", project).returncode == 0

    index.stop()  # a pinned resolution is reused for good: only --refresh notices
    kept = chalicepack("build", project, "--out", tmp_path / "kept")
    refreshed = chalicepack("build", project, "--refresh")

    assert kept.returncode == 0, kept.stderr
    assert "reusing its cached resolution" in kept.stderr
    assert refreshed.returncode == 1, refreshed.stderr
    assert "reusing its cached resolution" not in refreshed.stderr
    assert "could not reach" in refreshed.stderr


def test_a_changed_requirements_file_is_resolved_again(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("alpha", "1.0")
    index.add_wheel("alpha", "1.1")
    project = make_project(tmp_path / "app", {"requirements.txt": "alpha==1.0\n"})
    assert chalicepack("build", project).returncode == 0

    (project / "requirements.txt").write_text("alpha==1.1\n")
    run = chalicepack("build", project, "--json")

    assert run.returncode == 0, run.stderr
    assert run.json()["dependencies"][0]["version"] == "1.1"


def test_two_builds_at_once_share_one_cache(tmp_path: Path, index: PackageIndex) -> None:
    for name in ("alpha", "beta", "gamma"):
        index.add_wheel(name, "1.0")
    project = make_project(tmp_path / "app", {"requirements.txt": "alpha\nbeta\ngamma\n"})
    cache = tmp_path / "shared-cache"
    builds = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chalicepack",
                "build",
                str(project),
                "--cache-dir",
                str(cache),
                "--out",
                str(tmp_path / f"out{n}"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    results = [(build.wait(timeout=300), build.communicate()) for build in builds]

    for returncode, (_, stderr) in results:
        assert returncode == 0, stderr
    digests = {
        hashlib.sha256((tmp_path / f"out{n}" / "deployment.zip").read_bytes()).hexdigest()
        for n in range(2)
    }
    assert len(digests) == 1


def test_an_unchanged_dependency_set_reuses_the_installed_tree_unless_it_was_tampered_with(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("alpha", "1.0")
    project = make_project(tmp_path / "app", {"requirements.txt": "alpha==1.0\n"})
    first = chalicepack("build", project, "--json")
    assert first.returncode == 0, first.stderr
    assert "reusing the installed tree" not in first.stderr

    second = chalicepack("build", project, "--json", "--out", tmp_path / "second")
    assert "reusing the installed tree" in second.stderr

    # (Its .py files stay in the wheel until a real file is needed: one appears, corrupted.)
    (site_packages,) = (tmp_path / "cache" / "trees").glob("*/site-packages")
    (site_packages / "alpha" / "__init__.py").write_text("corrupted = True\n")
    third = chalicepack("build", project, "--json", "--out", tmp_path / "third")

    assert third.returncode == 0, third.stderr
    assert "reusing the installed tree" not in third.stderr
    digests = {run.json()["artifacts"]["deployment"]["sha256"] for run in (first, second, third)}
    assert len(digests) == 1


def test_a_ci_rerun_with_checkout_and_cache_restored_elsewhere_needs_no_index(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    """A CI job restores the checkout and the cache (actions/cache, a tarball) under paths of
    its own, not the previous job's: the pinned build reuses what was cached, offline."""
    index.add_wheel("alpha", "1.0", requires=["beta==2.0"])
    index.add_wheel("beta", "2.0")
    files = {
        "requirements.txt": "-c constraints.txt\nalpha==1.0\n",
        "constraints.txt": "beta==2.0\n",
    }
    project = make_project(tmp_path / "job1" / "app", files)
    job1, job2 = tmp_path / "job1", tmp_path / "job2"
    first = chalicepack(
        "build", project, "--json", "--cache-dir", job1 / "cache",
        env={"PIP_CACHE_DIR": str(job1 / "cache" / "pip-own")},
    )  # fmt: skip
    assert first.returncode == 0, first.stderr

    index.stop()
    shutil.copytree(job1, job2, symlinks=True)
    shutil.rmtree(job1)
    moved = job2 / "app"
    second = chalicepack(
        "build", moved, "--json", "--cache-dir", job2 / "cache",
        env={"PIP_CACHE_DIR": str(job2 / "cache" / "pip-own")},
    )  # fmt: skip

    assert second.returncode == 0, second.stderr
    assert "reusing its cached resolution" in second.stderr
    digest = hashlib.sha256((moved / "dist" / "deployment.zip").read_bytes()).hexdigest()
    assert digest == first.json()["artifacts"]["deployment"]["sha256"]
