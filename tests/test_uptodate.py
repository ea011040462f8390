"""The up-to-date check (chalicepack.package.uptodate): a rebuild keeps the last build's zips
only when nothing they are built from changed and they are intact; any change to what ships, to
the config, the requirements, the target or an option that shapes the package builds again."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import chalicepack_modules_loaded, make_project
from pkgindex import PackageIndex

KEPT = "nothing changed since the last build"
HOST = f"python{sys.version_info.major}.{sys.version_info.minor}"
OTHER = "python3.12" if HOST != "python3.12" else "python3.11"
BIG = 1024 * 1024 + 1  # over the size up to which the check hashes a vendor file's content


def edit(name: str, content: str | None) -> Callable[[Path], None]:
    """A change to the project: ``name`` written with ``content``, or removed when None."""

    def apply(project: Path) -> None:
        path = project / name
        if content is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)

    return apply


def append(name: str, text: str) -> Callable[[Path], None]:
    return lambda project: edit(name, (project / name).read_text() + text)(project)


def set_config(**stage: Any) -> Callable[[Path], None]:
    """config.json with ``stage`` merged into the dev stage."""

    def apply(project: Path) -> None:
        path = project / ".chalice" / "config.json"
        document = json.loads(path.read_text())
        document["stages"]["dev"].update(stage)
        path.write_text(json.dumps(document, indent=2))

    return apply


def rewrite_big_vendor_file(project: Path) -> None:
    """Other bytes of the same size: only its mtime, which the write moves, tells it changed."""
    (project / "vendor" / "model.bin").write_bytes(b"\1" * BIG)


def touch_app(project: Path) -> None:
    app = project / "app.py"
    later = app.stat().st_mtime_ns + 10**10
    os.utime(app, ns=(later, later))


def rewrite_app_unchanged(project: Path) -> None:
    app = project / "app.py"
    app.write_bytes(app.read_bytes())


def make_executable(name: str) -> Callable[[Path], None]:
    """``chmod +x``: the zip records the executable bit (a vendored tool must stay runnable)."""

    def apply(project: Path) -> None:
        path = project / name
        path.chmod(path.stat().st_mode | 0o111)

    return apply


def unchanged(project: Path) -> None:
    pass


@dataclass(frozen=True)
class Change:
    apply: Callable[[Path], None] = unchanged
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    zip_differs: bool = False  # whether the new deployment.zip must hold other bytes


MUST_REBUILD = {
    "app.py edited": Change(append("app.py", "# edited\n"), zip_differs=True),
    "a chalicelib file edited": Change(edit("chalicelib/util.py", "X = 2\n"), zip_differs=True),
    "a chalicelib file added": Change(edit("chalicelib/more.py", "Z = 1\n"), zip_differs=True),
    "a chalicelib file removed": Change(edit("chalicelib/util.py", None), zip_differs=True),
    "a vendor file edited": Change(edit("vendor/helper.py", "Y = 2\n"), zip_differs=True),
    "a vendor file added": Change(edit("vendor/extra.py", "E = 1\n"), zip_differs=True),
    "app.py made executable": Change(make_executable("app.py"), zip_differs=True),
    "a chalicelib file made executable": Change(
        make_executable("chalicelib/util.py"), zip_differs=True
    ),
    "a vendor file made executable": Change(make_executable("vendor/bin/tool"), zip_differs=True),
    "a big vendor file made executable": Change(
        make_executable("vendor/model.bin"), zip_differs=True
    ),
    "a big vendor file rewritten at the same size": Change(
        rewrite_big_vendor_file, zip_differs=True
    ),
    "config.json: a stage environment variable": Change(
        set_config(environment_variables={"TABLE": "t"})
    ),
    "config.json: the stage's architecture": Change(set_config(lambda_architecture="arm64")),
    "config.json: the stage's automatic_layer": Change(
        set_config(automatic_layer=True), zip_differs=True
    ),
    "requirements.txt: another pin": Change(
        append("requirements.txt", "beta==1.0\n"), zip_differs=True
    ),
    "--runtime": Change(args=("--runtime", OTHER)),
    "--arch": Change(args=("--arch", "arm64")),
    "--stage": Change(args=("--stage", "prod")),
    "--exclude": Change(args=("--exclude", "helper.py"), zip_differs=True),
    "--automatic-layer": Change(args=("--automatic-layer",), zip_differs=True),
    "--without-runtime-provided": Change(args=("--without-runtime-provided",)),
    "--strict": Change(args=("--strict",)),
    "--no-import": Change(args=("--no-import",)),
    "--resolver pip": Change(args=("--resolver", "pip")),
    "SOURCE_DATE_EPOCH": Change(env={"SOURCE_DATE_EPOCH": "1700000000"}, zip_differs=True),
    "deployment.zip removed": Change(edit("dist/deployment.zip", None)),
    "build-report.json removed": Change(edit("dist/build-report.json", None)),
}

MUST_KEEP = {
    "app.py touched, its content the same": Change(touch_app),
    "app.py written again with the same content": Change(rewrite_app_unchanged),
    "a file that does not ship added": Change(edit("README.md", "# notes\n")),
    "bytecode beside chalicelib": Change(edit("chalicelib/__pycache__/util.cpython-311.pyc", "")),
    "--import-timeout": Change(args=("--import-timeout", "30")),
    "-v": Change(args=("-v",)),
}


@pytest.fixture
def built(tmp_path: Path, index: PackageIndex, chalicepack) -> tuple[Path, dict[str, Any]]:
    """A project with every kind of input, built once; returns it and its report."""
    index.add_wheel("alpha", "1.0")
    index.add_wheel("beta", "1.0")
    project = make_project(
        tmp_path / "app",
        {
            "requirements.txt": "alpha==1.0\n",
            "chalicelib/__init__.py": "",
            "chalicelib/util.py": "X = 1\n",
            "vendor/helper.py": "Y = 1\n",
            "vendor/bin/tool": "#!/bin/sh\n",
            "vendor/model.bin": b"\0" * BIG,
        },
        config={"stages": {"dev": {}, "prod": {}}},
    )
    first = chalicepack("build", project, "--json")
    assert first.returncode == 0, first.stderr
    return project, first.json()


def deployment_sha256(project: Path) -> str:
    return hashlib.sha256((project / "dist" / "deployment.zip").read_bytes()).hexdigest()


@pytest.mark.parametrize("change", MUST_REBUILD.values(), ids=MUST_REBUILD.keys())
def test_a_change_to_what_the_package_is_built_from_builds_again(
    built: tuple[Path, dict[str, Any]], chalicepack, change: Change
) -> None:
    project, first = built
    change.apply(project)

    again = chalicepack("build", project, "--json", *change.args, env=change.env)

    assert again.returncode == 0, again.stderr
    assert KEPT not in again.stderr
    assert json.loads((project / "dist" / "build-report.json").read_text()) == again.json()
    sha256 = again.json()["artifacts"]["deployment"]["sha256"]
    assert deployment_sha256(project) == sha256
    if change.zip_differs:
        assert sha256 != first["artifacts"]["deployment"]["sha256"]


@pytest.mark.parametrize("change", MUST_KEEP.values(), ids=MUST_KEEP.keys())
def test_a_change_that_does_not_shape_the_package_keeps_the_last_build(
    built: tuple[Path, dict[str, Any]], chalicepack, change: Change
) -> None:
    project, first = built
    zip_path = project / "dist" / "deployment.zip"
    written = zip_path.stat().st_ctime_ns
    change.apply(project)

    again = chalicepack("build", project, "--json", *change.args, env=change.env)

    assert again.returncode == 0, again.stderr
    assert KEPT in again.stderr
    assert again.json() == first
    assert zip_path.stat().st_ctime_ns == written  # not written again


def test_unchanged_build_answers_from_the_last_build_only_while_its_inputs_are_the_same(
    built: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """The check itself, in process: what the CLI calls before it loads the pipeline."""
    from chalicepack.options import BuildOptions
    from chalicepack.package.uptodate import BuildInputs, unchanged_build

    project, _ = built
    options = BuildOptions(project, cache_dir=tmp_path / "cache")
    arm64 = BuildOptions(project, cache_dir=tmp_path / "cache", arch="arm64")

    kept = unchanged_build(BuildInputs.read(options))
    for_arm64 = unchanged_build(BuildInputs.read(arm64))
    append("app.py", "# edited\n")(project)
    after_edit = unchanged_build(BuildInputs.read(options))

    assert kept is not None
    assert for_arm64 is None
    assert after_edit is None


def test_an_unchanged_rebuild_keeps_the_zips_and_a_change_rebuilds_with_the_index_down(
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
    assert f"{KEPT} in {project / 'dist'}" in unchanged.stderr
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
    run, loaded = chalicepack_modules_loaded("build", project, "--cache-dir", cache)

    assert run.returncode == 0, run.stderr
    assert "nothing changed since the last build" in run.stderr
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
