"""The installed tree leaves its dependencies' .py files in their wheels (creating thousands of
small files is most of an install's time): the zips copy them from the wheels anyway, and the
import check serves them from there. Whatever that changes can never fail a build: an import
that fails is run again once the files are written."""

from __future__ import annotations

import json
import shutil
import sys
import zipfile
from pathlib import Path

from chalicepack.deps.install import install_tree, materialize, virtual_files
from chalicepack.deps.pip_resolver import Distribution
from chalicepack.errors import AppImportError
from chalicepack.importcheck.check import check_app_import
from chalicepack.importcheck.staging import wheel_members
from chalicepack.inputs.target import Target
from chalicepack.package.chaliceruntime import installed_runtime
from conftest import make_project, write_tree
from distfactory import build_wheel
from pkgindex import PackageIndex

PYC = f".{sys.implementation.cache_tag}.pyc"

LAZYDEP = {
    "lazydep/__init__.py": "from lazydep.sub import VALUE\n",
    "lazydep/sub.py": "VALUE = 41\n",
    "lazydep/data.txt": "data\n",
    "plainmod.py": "ANSWER = 1\n",
}
USES_LAZYDEP = (
    "import lazydep, plainmod\n"
    "assert lazydep.VALUE + plainmod.ANSWER == 42\n"
    "print('file', lazydep.__file__, lazydep.sub.__file__, plainmod.__file__)\n"
    "from chalice import Chalice\n"
    "app = Chalice(app_name='testapp')\n"
)


def app_output(stderr: str) -> list[str]:
    return [line.split("app: ", 1)[1] for line in stderr.splitlines() if "app: " in line]


def the_tree(cache: Path) -> Path:
    (site_packages,) = cache.glob("trees/*/site-packages")
    return site_packages


def virtual_paths(site_packages: Path) -> list[str]:
    record = json.loads((site_packages.parent / "installed.json").read_text())
    return sorted(record["virtual"])


def test_dependency_modules_and_packages_are_imported_from_their_wheels(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("lazydep", "1.0", files=LAZYDEP)
    files = {"requirements.txt": "lazydep==1.0\n", "app.py": USES_LAZYDEP}
    project = make_project(tmp_path / "app", files)

    run = chalicepack("build", project, "-v")

    assert run.returncode == 0, run.stderr
    site_packages = the_tree(tmp_path / "cache")
    expected = ["lazydep/__init__.py", "lazydep/sub.py", "plainmod.py"]
    assert virtual_paths(site_packages) == expected  # still not written: nothing needed them
    assert not (site_packages / "lazydep" / "__init__.py").exists()
    assert (site_packages / "lazydep" / "data.txt").read_text() == "data\n"
    assert "served from their wheels failed" not in run.stderr  # no second import
    # __file__ is the tree's path, as when the files are on disk; bytecode cached by it.
    shown = [str(site_packages / path) for path in expected]
    assert f"file {' '.join(shown)}" in app_output(run.stderr)
    compiled = {p.name for p in (tmp_path / "cache" / "pycache").rglob(f"*{PYC}")}
    assert {f"__init__{PYC}", f"sub{PYC}", f"plainmod{PYC}"} <= compiled


def test_a_rebuild_after_an_app_change_reuses_the_lazy_tree(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("lazydep", "1.0", files=LAZYDEP)
    files = {"requirements.txt": "lazydep==1.0\n", "app.py": USES_LAZYDEP}
    project = make_project(tmp_path / "app", files)
    assert chalicepack("build", project).returncode == 0

    (project / "app.py").write_text(USES_LAZYDEP + "print('changed')\n")
    again = chalicepack("build", project)

    assert again.returncode == 0, again.stderr
    assert "reusing the installed tree" in again.stderr
    assert "changed" in app_output(again.stderr)
    assert virtual_paths(the_tree(tmp_path / "cache")) == [
        "lazydep/__init__.py",
        "lazydep/sub.py",
        "plainmod.py",
    ]


def test_a_dependency_listing_its_own_folder_at_import_passes_once_its_files_are_written(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    plugins = (
        "import os\n"
        "here = os.path.dirname(__file__)\n"
        "NAMES = sorted(n[:-3] for n in os.listdir(here) if n.endswith('.py') and n[0] != '_')\n"
        "assert NAMES == ['a', 'b'], NAMES\n"
    )
    wheel = {"plugins/__init__.py": plugins, "plugins/a.py": "", "plugins/b.py": ""}
    index.add_wheel("plugins", "1.0", files=wheel)
    app = "import plugins\nprint('found', plugins.NAMES)\n" + USES_LAZYDEP.split("\n", 3)[3]
    project = make_project(tmp_path / "app", {"requirements.txt": "plugins==1.0\n", "app.py": app})

    run = chalicepack("build", project, "-v")

    assert run.returncode == 0, run.stderr
    assert "served from their wheels failed" in run.stderr  # then written, and imported again
    assert "found ['a', 'b']" in app_output(run.stderr)
    site_packages = the_tree(tmp_path / "cache")
    assert virtual_paths(site_packages) == []
    assert (site_packages / "plugins" / "a.py").is_file()
    again = chalicepack("build", project, "--out", tmp_path / "again", "-v")
    assert again.returncode == 0, again.stderr
    assert "reusing the installed tree" in again.stderr
    assert "served from their wheels failed" not in again.stderr


def test_pkgutil_lists_the_modules_served_from_a_wheel(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    listing = (
        "import pkgutil\n"
        "NAMES = [(m.name, m.ispkg) for m in pkgutil.iter_modules(__path__)]\n"
        "assert NAMES == [('a', False), ('b', False), ('sub', True)], NAMES\n"
    )
    wheel = {
        "plugs/__init__.py": listing,
        "plugs/a.py": "",
        "plugs/b.py": "",
        "plugs/sub/__init__.py": "",
        "plugs/data/notes.txt": "not a package\n",
    }
    index.add_wheel("plugs", "1.0", files=wheel)
    app = "import plugs\nprint('listed', plugs.NAMES)\n" + USES_LAZYDEP.split("\n", 3)[3]
    project = make_project(tmp_path / "app", {"requirements.txt": "plugs==1.0\n", "app.py": app})

    run = chalicepack("build", project, "-v")

    assert run.returncode == 0, run.stderr
    assert "served from their wheels failed" not in run.stderr  # found as files would be
    assert "listed [('a', False), ('b', False), ('sub', True)]" in app_output(run.stderr)


def test_a_vendor_file_over_a_dependency_stages_its_files_written(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("lazydep", "1.0", files=LAZYDEP)
    files = {
        "requirements.txt": "lazydep==1.0\n",
        "app.py": USES_LAZYDEP,
        "vendor/lazydep/data.txt": "vendored\n",  # the tree cannot stand on sys.path as it is
    }
    project = make_project(tmp_path / "app", files)

    run = chalicepack("build", project)

    assert run.returncode == 0, run.stderr
    site_packages = the_tree(tmp_path / "cache")
    assert virtual_paths(site_packages) == []
    assert (site_packages / "lazydep" / "sub.py").read_text() == "VALUE = 41\n"


def test_the_zips_are_byte_identical_whether_the_files_are_written_or_not(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    wheel = index.add_wheel("lazydep", "1.0", files=LAZYDEP)
    files = {"requirements.txt": "lazydep==1.0\n", "app.py": USES_LAZYDEP}
    project = make_project(tmp_path / "app", files)
    for layout in ("--automatic-layer", "--no-automatic-layer"):
        lazy = chalicepack("build", project, layout, "--out", tmp_path / f"lazy{layout}")
        assert lazy.returncode == 0, lazy.stderr
    site_packages = the_tree(tmp_path / "cache")
    materialize(site_packages, virtual_files(site_packages))
    assert virtual_paths(site_packages) == []

    for layout in ("--automatic-layer", "--no-automatic-layer"):
        out = tmp_path / f"written{layout}"
        written = chalicepack("build", project, layout, "--out", out)
        assert written.returncode == 0, written.stderr
        assert "reusing the installed tree" in written.stderr
        for name in ("deployment.zip", "layer.zip"):
            if (out / name).exists() or (tmp_path / f"lazy{layout}" / name).exists():
                lazy_zip = (tmp_path / f"lazy{layout}" / name).read_bytes()
                assert lazy_zip == (out / name).read_bytes(), name
    # And each shipped dependency file is the wheel's member, byte for byte.
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(out / "deployment.zip") as built:
        for path in LAZYDEP:
            assert built.read(path) == source.read(path)
            assert (site_packages / path).read_bytes() == source.read(path)


# --- the check itself, on a tree installed here -------------------------------------------------

TARGET = Target.parse(f"python3.{sys.version_info[1]}", "x86_64")


def test_an_error_in_a_served_module_names_its_file_line_and_code(tmp_path: Path) -> None:
    files = {
        "boomdep/__init__.py": "from boomdep.core import start\nstart()\n",
        "boomdep/core.py": (
            "import os\n\n\ndef start():\n    raise RuntimeError('boom at import')\n"
        ),
    }
    wheel = build_wheel(tmp_path / "wheels", "boomdep", "1.0", files=files)
    distribution = Distribution("boomdep", "1.0", wheel.as_uri(), wheel.name, None, True, ())
    tree = install_tree({"boomdep": wheel}, [distribution], tmp_path / "trees", TARGET)
    assert sorted(tree.virtual) == ["boomdep/__init__.py", "boomdep/core.py"]
    app = "import boomdep\nfrom chalice import Chalice\napp = Chalice(app_name='x')\n"
    task = write_tree(tmp_path / "task", {"app.py": app})
    for arcname, source in installed_runtime(tmp_path)[1].items():
        (task / arcname).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, task / arcname)
    (tmp_path / "project").mkdir()

    try:
        check_app_import(
            task,
            None,
            {},
            target_python=sys.version_info[:2],
            target_machine=TARGET.machine,
            project_root=tmp_path / "project",
            dependencies=tree.site_packages,
            served_from_wheels=wheel_members(tree.virtual),
        )
    except AppImportError as error:
        message = str(error)
    else:
        raise AssertionError("the import passed")

    assert message.startswith("importing app.py failed: RuntimeError: boom at import")
    assert "  app.py:1 in <module>\n    import boomdep\n" in message
    expected = (
        "  boomdep/core.py:5 in start (a dependency)\n    raise RuntimeError('boom at import')"
    )
    assert expected in message
    assert not (tree.site_packages / "boomdep" / "core.py").exists()  # served, not written


def test_an_import_past_the_timeout_is_not_run_again(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    # Run again with the files written, it would only wait as long again.
    index.add_wheel("lazydep", "1.0", files=LAZYDEP)
    app = "import lazydep, time\ntime.sleep(30)\n" + USES_LAZYDEP
    project = make_project(tmp_path / "app", {"requirements.txt": "lazydep==1.0\n", "app.py": app})

    run = chalicepack("build", project, "-v", "--import-timeout", "1")

    assert run.returncode == 2, run.stderr
    assert "did not finish within 1 s" in run.stderr
    assert "importing it again" not in run.stderr
