"""A user points chalicepack at a Chalice project: which of its files ship, and under what name."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from chalicepack.errors import ProjectError
from chalicepack.inputs.project import Project, scan_project

APP = 'from chalice import Chalice\n\napp = Chalice(app_name="demo")\n'


def write_files(root: Path, files: Mapping[str, str | bytes]) -> Path:
    """Write ``files`` under ``root``; return ``root`` resolved, as messages name real paths."""
    root = root.resolve()
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def make_project(root: Path, files: Mapping[str, str | bytes] | None = None) -> Path:
    return write_files(root, {"app.py": APP, **(files or {})})


def app_arcnames(project: Project) -> list[str]:
    return [item.arcname for item in project.app_files]


def vendor_arcnames(project: Project) -> list[str]:
    return [item.arcname for item in project.vendor_files]


def shipped_bytes(project: Project) -> dict[str, bytes]:
    return {item.arcname: item.path.read_bytes() for item in project.app_files}


def project_error(root: Path) -> str:
    with pytest.raises(ProjectError) as info:
        scan_project(root)
    return str(info.value)


# --- what ships -------------------------------------------------------------------------------


def test_app_and_chalicelib_ship_with_nested_packages_and_data_files(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "proj",
        {
            "chalicelib/__init__.py": "",
            "chalicelib/db.py": "TABLE = 'x'\n",
            "chalicelib/models/__init__.py": "",
            "chalicelib/models/user.py": "class User: ...\n",
            "chalicelib/templates/email.html": "<p>hi</p>\n",
            "chalicelib/data/zones.json": b'{"zone": 1}',
            # Neither of these is part of the deployed app.
            "README.md": "# demo\n",
            "tests/test_app.py": "def test(): ...\n",
        },
    )

    project = scan_project(root)

    assert app_arcnames(project) == [
        "app.py",
        "chalicelib/__init__.py",
        "chalicelib/data/zones.json",
        "chalicelib/db.py",
        "chalicelib/models/__init__.py",
        "chalicelib/models/user.py",
        "chalicelib/templates/email.html",
    ]
    assert shipped_bytes(project)["chalicelib/data/zones.json"] == b'{"zone": 1}'
    assert shipped_bytes(project)["app.py"] == APP.encode()
    assert project.root == root.resolve()


def test_project_with_only_app_py_ships_just_app_py(tmp_path: Path) -> None:
    project = scan_project(make_project(tmp_path))

    assert app_arcnames(project) == ["app.py"]
    assert project.vendor_files == ()


def test_vendor_contents_ship_at_the_top_of_the_package(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        {
            "vendor/mylib/__init__.py": "VERSION = 1\n",
            "vendor/mylib/native.so": b"\x7fELF",
            "vendor/single_module.py": "X = 1\n",
        },
    )

    project = scan_project(root)

    assert vendor_arcnames(project) == [
        "mylib/__init__.py",
        "mylib/native.so",
        "single_module.py",
    ]
    assert [item.path.read_bytes() for item in project.vendor_files][1] == b"\x7fELF"
    # vendor/ is not app code: none of it is listed under the app's files.
    assert app_arcnames(project) == ["app.py"]


def test_pycache_and_pyc_files_never_ship(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        {
            "__pycache__/app.cpython-312.pyc": b"\x00",
            "chalicelib/__init__.py": "",
            "chalicelib/__pycache__/__init__.cpython-312.pyc": b"\x00",
            "chalicelib/__pycache__/notes.txt": "even non-pyc files in __pycache__\n",
            "chalicelib/stale.pyc": b"\x00",
            "chalicelib/sub/__pycache__/deep.cpython-312.pyc": b"\x00",
            "chalicelib/sub/mod.py": "",
            "vendor/lib/__pycache__/lib.cpython-312.pyc": b"\x00",
            "vendor/lib/__init__.py": "",
            "vendor/old.pyc": b"\x00",
        },
    )

    project = scan_project(root)

    assert app_arcnames(project) == ["app.py", "chalicelib/__init__.py", "chalicelib/sub/mod.py"]
    assert vendor_arcnames(project) == ["lib/__init__.py"]


def test_arcnames_are_sorted_whatever_order_files_were_created_in(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        {
            "chalicelib/zeta.py": "",
            "chalicelib/Alpha.py": "",
            "chalicelib/mid/b.py": "",
            "chalicelib/mid/a.py": "",
            "chalicelib/alpha.py": "",
            "vendor/z.py": "",
            "vendor/a/x.py": "",
        },
    )

    project = scan_project(root)

    assert app_arcnames(project)[0] == "app.py"  # app.py first, then chalicelib sorted
    assert app_arcnames(project)[1:] == sorted(app_arcnames(project)[1:])
    assert len(app_arcnames(project)) == 6
    assert vendor_arcnames(project) == ["a/x.py", "z.py"]


def test_requirements_txt_is_found_when_present(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"requirements.txt": "requests\n"})

    assert scan_project(root).requirements == root.resolve() / "requirements.txt"


def test_no_requirements_txt_means_none(tmp_path: Path) -> None:
    root = make_project(tmp_path)

    assert scan_project(root).requirements is None


# --- projects that cannot be packaged ---------------------------------------------------------


def test_missing_app_py_is_refused_naming_the_path(tmp_path: Path) -> None:
    write_files(tmp_path, {"chalicelib/__init__.py": ""})

    message = project_error(tmp_path)

    assert str(tmp_path.resolve() / "app.py") in message
    assert "does not exist" in message


def test_app_py_that_is_a_directory_is_refused_naming_the_path(tmp_path: Path) -> None:
    (tmp_path / "app.py").mkdir()

    message = project_error(tmp_path)

    assert str(tmp_path.resolve() / "app.py") in message
    assert "is a directory" in message


def test_chalicelib_that_is_a_file_is_refused(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"chalicelib": "not a folder\n"})

    assert "chalicelib" in project_error(root)


# --- symlinks ---------------------------------------------------------------------------------


def test_symlink_to_a_file_inside_the_project_ships_its_content(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"shared/settings.py": "DEBUG = False\n"})
    (root / "chalicelib").mkdir()
    (root / "chalicelib" / "settings.py").symlink_to(Path("..") / "shared" / "settings.py")

    project = scan_project(root)

    assert shipped_bytes(project) == {
        "app.py": APP.encode(),
        "chalicelib/settings.py": b"DEBUG = False\n",
    }


def test_symlink_to_a_directory_inside_the_project_ships_its_files(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        {"common/__init__.py": "", "common/util.py": "def f(): ...\n", "chalicelib/a.py": ""},
    )
    (root / "chalicelib" / "common").symlink_to(root / "common", target_is_directory=True)

    project = scan_project(root)

    assert shipped_bytes(project) == {
        "app.py": APP.encode(),
        "chalicelib/a.py": b"",
        "chalicelib/common/__init__.py": b"",
        "chalicelib/common/util.py": b"def f(): ...\n",
    }


@pytest.mark.parametrize(
    ("outside_files", "files", "link", "target"),
    [
        (
            {"secret.py": "KEY = 1\n"},
            {"chalicelib/__init__.py": ""},
            "chalicelib/secret.py",
            "secret.py",
        ),
        ({"lib/__init__.py": ""}, {"vendor/ok.py": ""}, "vendor/lib", "lib"),
    ],
    ids=["file", "directory"],
)
def test_a_symlink_escaping_the_project_is_refused(
    tmp_path: Path, outside_files: dict[str, str], files: dict[str, str], link: str, target: str
) -> None:
    outside = write_files(tmp_path / "elsewhere", outside_files)
    root = make_project(tmp_path / "proj", files)
    (root / link).symlink_to(outside / target, target_is_directory=(outside / target).is_dir())

    message = project_error(root)

    assert str(root / link) in message
    assert str((outside / target).resolve()) in message
    assert "outside the project" in message


def test_app_py_linking_outside_the_project_is_refused(tmp_path: Path) -> None:
    outside = write_files(tmp_path / "elsewhere", {"app.py": APP})
    root = tmp_path.resolve() / "proj"
    root.mkdir()
    (root / "app.py").symlink_to(outside / "app.py")

    message = project_error(root)

    assert str((outside / "app.py").resolve()) in message
    assert "outside the project" in message


@pytest.mark.parametrize(
    ("files", "link", "target", "problem"),
    [
        ({"chalicelib/sub/mod.py": ""}, "chalicelib/sub/again", "..", "loop"),
        ({"chalicelib/__init__.py": ""}, "chalicelib/me.py", "me.py", "loop"),
        ({"chalicelib/__init__.py": ""}, "chalicelib/gone.py", "deleted.py", "broken symlink"),
    ],
    ids=["directory-link-to-its-parent", "self-referencing", "broken"],
)
def test_a_symlink_that_leads_nowhere_is_refused_naming_it(
    tmp_path: Path, files: dict[str, str], link: str, target: str, problem: str
) -> None:
    root = make_project(tmp_path, files)
    (root / link).symlink_to(target, target_is_directory=target == "..")

    message = project_error(root)

    assert problem in message
    assert str(root / link) in message


def test_a_file_that_is_neither_regular_nor_a_directory_is_refused(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"chalicelib/__init__.py": ""})
    os.mkfifo(root / "chalicelib" / "pipe")

    message = project_error(root)

    assert str(root.resolve() / "chalicelib" / "pipe") in message
