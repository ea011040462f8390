"""The import check loads the dependencies straight from the installed tree in the cache when
that tree is exactly what ships, and caches their bytecode in the cache; otherwise it stages
every file as Lambda unzips them. Either way an import finds what it would find on Lambda, and
nothing is written into the package or the project."""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import make_project
from pkgindex import PackageIndex

PYC = f".{sys.implementation.cache_tag}.pyc"


def app_importing(*lines: str) -> str:
    return "\n".join(["from chalice import Chalice", *lines, "app = Chalice(app_name='testapp')"])


@pytest.fixture(params=["--no-automatic-layer", "--automatic-layer"])
def layout(request: pytest.FixtureRequest) -> str:
    """Dependencies and vendor/ beside app.py in /var/task, or in the layer's site-packages."""
    return str(request.param)


def app_output(stderr: str) -> list[str]:
    """What the app printed while it was imported (the build logs it)."""
    return [line.split("app: ", 1)[1] for line in stderr.splitlines() if "app: " in line]


# --- what an import finds -----------------------------------------------------------------------


# Each case: the wheels on the index (all required, at 1.0), the project's vendor/ files, the
# app's import and print lines, and what the import printed.
WHAT_AN_IMPORT_FINDS = {
    # Both land in one directory on Lambda, where Python finds the package x/ before x.py.
    "a dependency's package wins over a vendor module of the same name": (
        {"xdist": {"x/__init__.py": "WHERE = 'the dependency'\n"}},
        {"vendor/x.py": "WHERE = 'vendor/'\n"},
        ("import x", "print('x from', x.WHERE)"),
        "x from the dependency",
    ),
    "a vendor module added to a dependency's package is found in it": (
        {"pkgdist": {"pkg/__init__.py": "", "pkg/base.py": "NAME = 'base'\n"}},
        {"vendor/pkg/patch.py": "NAME = 'patch'\n"},
        ("from pkg import base, patch", "print(base.NAME, patch.NAME)"),
        "base patch",
    ),
    "a namespace package split across dependencies imports whole": (
        {"ns-one": {"ns/one/__init__.py": "N = 1\n"}, "ns-two": {"ns/two/__init__.py": "N = 2\n"}},
        {},
        ("import ns.one, ns.two", "print(ns.one.N + ns.two.N)"),
        "3",
    ),
    "a namespace package split across dependencies and vendor imports whole": (
        {"ns-one": {"ns/one/__init__.py": "N = 1\n"}, "ns-two": {"ns/two/__init__.py": "N = 2\n"}},
        {"vendor/ns/three/__init__.py": "N = 3\n"},
        ("import ns.one, ns.two, ns.three", "print(ns.one.N + ns.two.N + ns.three.N)"),
        "6",
    ),
    "a dependency file replaced from vendor is the one imported": (
        {"patched": {"patched/__init__.py": "WHERE = 'wheel'\n"}},
        {"vendor/patched/__init__.py": "WHERE = 'vendor'\n"},
        ("import patched", "print(patched.WHERE)"),
        "vendor",
    ),
}


@pytest.mark.parametrize(
    ("wheels", "vendor", "app", "printed"),
    WHAT_AN_IMPORT_FINDS.values(),
    ids=WHAT_AN_IMPORT_FINDS.keys(),
)
def test_an_import_finds_what_it_would_find_on_lambda(
    tmp_path: Path,
    index: PackageIndex,
    chalicepack,
    layout: str,
    wheels: dict[str, dict[str, str]],
    vendor: dict[str, str],
    app: tuple[str, str],
    printed: str,
) -> None:
    for name, files in wheels.items():
        index.add_wheel(name, "1.0", files=files)
    requirements = "".join(f"{name}==1.0\n" for name in wheels)
    project = make_project(
        tmp_path / "app",
        {"requirements.txt": requirements, **vendor, "app.py": app_importing(*app)},
    )

    run = chalicepack("build", project, layout)

    assert run.returncode == 0, run.stderr
    assert app_output(run.stderr) == [printed]


def test_a_module_left_out_by_exclude_cannot_be_imported(
    tmp_path: Path, index: PackageIndex, chalicepack, layout: str
) -> None:
    index.add_wheel(
        "extras", "1.0", files={"extras/__init__.py": "", "extras/optional.py": "X = 1\n"}
    )
    project = make_project(
        tmp_path / "app",
        {"requirements.txt": "extras==1.0\n", "app.py": app_importing("import extras.optional")},
    )

    kept = chalicepack("build", project, layout)
    left_out = chalicepack("build", project, layout, "--exclude", "extras/optional.py")

    assert kept.returncode == 0, kept.stderr
    assert left_out.returncode == 2
    assert "No module named 'extras.optional'" in left_out.stderr


# --- bytecode -----------------------------------------------------------------------------------


def test_dependency_bytecode_is_cached_in_the_cache_and_nothing_is_written_into_the_package(
    tmp_path: Path, index: PackageIndex, chalicepack, layout: str
) -> None:
    index.add_wheel("cachedep", "1.0", files={"cachedep/__init__.py": "VALUE = 1\n"})
    project = make_project(
        tmp_path / "app",
        {
            "requirements.txt": "cachedep==1.0\n",
            "chalicelib/__init__.py": "",
            "chalicelib/own_module.py": "",
            "vendor/vendored_module.py": "",
            "app.py": app_importing("import cachedep, chalicelib.own_module, vendored_module"),
        },
    )
    cache = tmp_path / "cache"

    run = chalicepack("build", project, layout)

    assert run.returncode == 0, run.stderr
    compiled = list((cache / "pycache").rglob(f"*{PYC}"))
    assert [path for path in compiled if path.parent.name == "cachedep"]  # for the next build
    cached = {path.name for path in compiled}
    # app.py, chalicelib/ and vendor/ are staged anew for each build: no bytecode for them.
    assert not {f"app{PYC}", f"own_module{PYC}", f"vendored_module{PYC}"} & cached
    trees = cache / "trees"
    for place in (project, trees):
        assert not [p for p in place.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc"]
    for artifact in (project / "dist").glob("*.zip"):
        with zipfile.ZipFile(artifact) as archive:
            assert not [name for name in archive.namelist() if "__pycache__" in name]


def test_a_new_release_of_a_dependency_is_imported_not_the_old_bytecode(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    # The same path in the package, the same size: only the contents differ.
    index.add_wheel("moving", "1.0", files={"moving/__init__.py": "VALUE = 1\n"})
    index.add_wheel("moving", "2.0", files={"moving/__init__.py": "VALUE = 2\n"})
    app = app_importing("import moving", "print('value', moving.VALUE)")
    project = make_project(tmp_path / "app", {"requirements.txt": "moving==1.0\n", "app.py": app})

    first = chalicepack("build", project, "--automatic-layer")
    (project / "requirements.txt").write_text("moving==2.0\n")
    second = chalicepack("build", project, "--automatic-layer")

    assert first.returncode == 0, first.stderr
    assert app_output(first.stderr) == ["value 1"]
    assert second.returncode == 0, second.stderr
    assert app_output(second.stderr) == ["value 2"]


def test_the_bytecode_of_a_tree_pruned_from_the_cache_goes_with_it(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("prunable", "1.0")
    index.add_wheel("prunable", "2.0")
    app = app_importing("import prunable")
    project = make_project(tmp_path / "app", {"requirements.txt": "prunable==1.0\n", "app.py": app})
    cache = tmp_path / "cache"
    assert chalicepack("build", project).returncode == 0
    (old_tree,) = [path for path in (cache / "trees").iterdir() if path.is_dir()]
    (project / "requirements.txt").write_text("prunable==2.0\n")
    assert chalicepack("build", project).returncode == 0

    shutil.rmtree(old_tree)  # as the cache's pruning removes a tree unused for long
    (project / "app.py").write_text(app + "\n# edited\n")
    run = chalicepack("build", project)

    assert run.returncode == 0, run.stderr
    # The cache mirrors each source's absolute path, as sys.pycache_prefix does.
    trees = (cache / "trees").resolve()
    mirrored = {path.name for path in (cache / "pycache" / trees.relative_to("/")).iterdir()}
    assert mirrored == {path.name for path in trees.iterdir() if path.is_dir()}
    assert old_tree.name not in mirrored
