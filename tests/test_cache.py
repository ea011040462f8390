"""The cache: an unchanged, pinned rebuild needs no index; builds can share one cache."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


def test_an_unchanged_rebuild_keeps_the_zips_and_a_change_rebuilds(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("alpha", "1.0")
    project = make_project(tmp_path / "app", {"requirements.txt": "alpha==1.0\n"})
    first = chalicepack("build", project, "--json")
    assert first.returncode == 0, first.stderr
    index.stop()

    unchanged = chalicepack("build", project, "--json")
    (project / "app.py").write_text((project / "app.py").read_text() + "# edited\n")
    edited = chalicepack("build", project, "--json")

    assert unchanged.returncode == 0, unchanged.stderr
    assert "nothing changed since the last build" in unchanged.stderr
    assert unchanged.json() == first.json()
    assert edited.returncode == 0, edited.stderr
    assert "nothing changed" not in edited.stderr
    assert (
        edited.json()["artifacts"]["deployment"]["sha256"]
        != first.json()["artifacts"]["deployment"]["sha256"]
    )


def test_a_damaged_zip_is_rebuilt_even_when_nothing_else_changed(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    project = make_project(tmp_path / "app")
    first = chalicepack("build", project, "--json")
    zip_path = project / "dist" / "deployment.zip"
    zip_path.write_bytes(zip_path.read_bytes()[:-10] + b"0123456789")

    again = chalicepack("build", project, "--json")

    assert again.returncode == 0, again.stderr
    assert "nothing changed" not in again.stderr
    assert (
        hashlib.sha256(zip_path.read_bytes()).hexdigest()
        == first.json()["artifacts"]["deployment"]["sha256"]
    )


def _replace_keeping_size_and_mtime(path: Path) -> None:
    """Other bytes of the same size in the same file, its mtime set back as it was: only the
    ctime, which no one can set, tells it changed."""
    before = path.stat()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] + bytes(len(data) - len(data) // 2))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )


@pytest.mark.parametrize("age", ["just built", "verified since"])
def test_a_zip_rewritten_with_its_size_and_mtime_kept_is_rebuilt(
    age: str, tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    project = make_project(tmp_path / "app")
    first = chalicepack("build", project, "--json")
    assert first.returncode == 0, first.stderr
    zip_path = project / "dist" / "deployment.zip"
    if age == "verified since":
        # An unchanged build then records the zip's digest with its stat, which only counts
        # for a zip last changed a while before it was recorded (racy clean, as git says).
        time.sleep(2.5)
        unchanged = chalicepack("build", project)
        assert "nothing changed since the last build" in unchanged.stderr
        assert list((tmp_path / "cache" / "outputs").glob("*.json"))

    _replace_keeping_size_and_mtime(zip_path)
    again = chalicepack("build", project, "--json")

    assert again.returncode == 0, again.stderr
    assert "nothing changed" not in again.stderr
    assert f"{zip_path} changed since the last build; building again" in again.stderr
    assert (
        hashlib.sha256(zip_path.read_bytes()).hexdigest()
        == first.json()["artifacts"]["deployment"]["sha256"]
    )


def test_an_unchanged_rebuild_after_its_zips_were_verified_keeps_them(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("alpha", "1.0")
    project = make_project(tmp_path / "app", {"requirements.txt": "alpha==1.0\n"})
    first = chalicepack("build", project, "--json")
    assert first.returncode == 0, first.stderr
    zip_path = project / "dist" / "deployment.zip"
    built = zip_path.stat()
    time.sleep(2.5)

    runs = [chalicepack("build", project, "--json") for _ in range(3)]

    for run in runs:
        assert run.returncode == 0, run.stderr
        assert "nothing changed since the last build" in run.stderr
        assert run.json() == first.json()
    assert zip_path.stat().st_ctime_ns == built.st_ctime_ns  # never written again


def test_an_unchanged_build_loads_none_of_the_pipeline(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    """What keeps an unchanged rebuild fast: it imports no pip, installer, zip writer or
    import check (they take longer to import than the whole check takes)."""
    index.add_wheel("alpha", "1.0")
    project = make_project(tmp_path / "app", {"requirements.txt": "alpha==1.0\n"})
    cache = tmp_path / "cache"
    assert chalicepack("build", project, "--cache-dir", cache).returncode == 0
    script = (
        "import sys\n"
        "from chalicepack.cli import main\n"
        f"code = main(['build', {str(project)!r}, '--cache-dir', {str(cache)!r}])\n"
        "print(sorted(name for name in sys.modules if name.startswith('chalicepack')))\n"
        "sys.exit(code)\n"
    )

    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)

    assert run.returncode == 0, run.stderr
    assert "nothing changed since the last build" in run.stderr
    loaded = run.stdout.splitlines()[-1]
    pipeline = (
        "package.pipeline",
        "deps.install",
        "deps.pip_resolver",
        "deps.pip",
        "deps.sourcebuild",
        "package.archive",
        "importcheck.check",
        "deploy.templates",
    )
    for module in pipeline:
        assert f"'chalicepack.{module}'" not in loaded


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

    (installed,) = (tmp_path / "cache" / "trees").glob("*/site-packages/alpha/__init__.py")
    installed.write_text("corrupted = True\n")
    third = chalicepack("build", project, "--json", "--out", tmp_path / "third")

    assert third.returncode == 0, third.stderr
    assert "reusing the installed tree" not in third.stderr
    digests = {run.json()["artifacts"]["deployment"]["sha256"] for run in (first, second, third)}
    assert len(digests) == 1
