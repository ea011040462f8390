"""Installing a dependency tree in one pass, wheels side by side, and reusing it: the tree is
exactly what ``installer`` writes, a wheel that does not match its RECORD is refused with the
message ``installer``'s own check gives, and every error is the same whatever thread finds it."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import stat
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile
from installer.utils import SCHEME_NAMES

from aftermath import error_line
from chalicepack.deps.install import (
    InstalledTree,
    install_tree,
    install_wheels,
    installed_files,
    materialize,
)
from chalicepack.deps.pip_resolver import Distribution
from chalicepack.errors import BadInput, BuildFailure
from chalicepack.inputs.target import Target
from chalicepack.package.archive import ZipEntry
from chalicepack.package.exclude import exclude
from conftest import make_project
from pkgindex import PackageIndex

TARGET = Target.parse("python3.12", "x86_64")

# --- wheels written here, RECORD and all ------------------------------------------------------


def record_hash(data: bytes, algorithm: str = "sha256") -> str:
    digest = base64.urlsafe_b64encode(hashlib.new(algorithm, data).digest()).rstrip(b"=")
    return f"{algorithm}={digest.decode()}"


def wheel_file(
    directory: Path,
    name: str,
    files: Mapping[str, bytes | str],
    *,
    version: str = "1.0",
    record: Mapping[str, str | None] | None = None,
    algorithm: str = "sha256",
    executable: tuple[str, ...] = (),
    entry_points: str | None = None,
) -> Path:
    """``<name>-<version>-py3-none-any.whl`` holding ``files`` (``.data/`` paths are written
    under ``<name>-<version>.data/``) and a RECORD listing each with its ``algorithm`` hash.
    ``record`` replaces a member's "hash,size" in RECORD, or drops its row (None)."""
    dist = f"{name}-{version}"
    payload = {
        (f"{dist}{path}" if path.startswith(".data/") else path): (
            content.encode() if isinstance(content, str) else content
        )
        for path, content in files.items()
    }
    payload[f"{dist}.dist-info/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n".encode()
    )
    payload[f"{dist}.dist-info/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    if entry_points is not None:
        payload[f"{dist}.dist-info/entry_points.txt"] = entry_points.encode()
    rows = {path: f"{record_hash(data, algorithm)},{len(data)}" for path, data in payload.items()}
    for path, value in (record or {}).items():
        member = f"{dist}{path}" if path.startswith(".data/") else path
        if value is None:
            del rows[member]
        else:
            rows[member] = value
    record_path = f"{dist}.dist-info/RECORD"
    lines = [f"{path},{value}" for path, value in rows.items()] + [f"{record_path},,"]
    payload[record_path] = ("\n".join(lines) + "\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in payload.items():
            info = zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o755 if path in executable else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            archive.writestr(info, data)
    return wheel


def distribution(wheel: Path) -> Distribution:
    name, version = wheel.name.split("-")[:2]
    return Distribution(name, version, wheel.as_uri(), wheel.name, None, True, ())


def installing(wheels: list[Path]) -> tuple[dict[str, Path], list[Distribution]]:
    distributions = [distribution(wheel) for wheel in wheels]
    return {d.name: wheel for d, wheel in zip(distributions, wheels, strict=True)}, distributions


def refusal_of(wheel: Path) -> str:
    """How builds have always refused a wheel that fails ``installer``'s RECORD check."""
    with WheelFile.open(wheel) as source, pytest.raises(ValueError) as refused:
        source.validate_record()
    return (
        f"{wheel.name} is not a valid wheel: {refused.value}; it was refused and nothing of it"
        " ships: replace or remove the requirement that brings it in"
    )


def tree_of(site_packages: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of a tree: its bytes and mode."""
    return {
        path.relative_to(site_packages).as_posix(): (
            path.read_bytes(),
            stat.S_IMODE(path.stat().st_mode),
        )
        for path in site_packages.rglob("*")
        if path.is_file()
    }


@pytest.fixture
def umask() -> Iterator[int]:
    """A known umask for the test, the process's own restored after it."""
    previous = os.umask(0o022)
    yield 0o022
    os.umask(previous)


INIT = b"from kit import core\n"
EVERYTHING: dict[str, str | bytes] = {
    "kit/__init__.py": INIT,
    "kit/core.py": "VALUE = 1\n" * 2000,
    "kit/_speedups.so": os.urandom(70_000),
    "kit/__pycache__/core.cpython-312.pyc": b"\x00stale bytecode",
    ".data/purelib/kit_extra/__init__.py": "EXTRA = True\n",
    ".data/scripts/kit-tool": "#!python\nimport kit\n",
    ".data/data/share/kit/notes.txt": "not shipped\n",
    ".data/headers/kit.h": "/* not shipped */\n",
}
ENTRY_POINTS = "[console_scripts]\nkit = kit.core:main\n"


# --- the tree --------------------------------------------------------------------------------


@pytest.mark.parametrize("lazy", [False, True], ids=["written", "lazy-then-written"])
def test_the_tree_is_byte_for_byte_and_mode_for_mode_what_installer_writes(
    tmp_path: Path, umask: int, lazy: bool
) -> None:
    kit = wheel_file(
        tmp_path / "wheels",
        "kit",
        EVERYTHING,
        executable=("kit/_speedups.so", "kit/core.py"),
        entry_points=ENTRY_POINTS,
    )
    other = wheel_file(tmp_path / "wheels", "other", {"other.py": "import kit\n"})
    wheels, distributions = installing([kit, other])
    ours = tmp_path / "ours" / "site-packages"

    installed = install_wheels(wheels, distributions, ours, lazy=lazy)
    virtual = {path: item for each in installed for path, item in each.virtual}
    if lazy:  # its .py files were checked, not written: they are written from the wheels
        expected = ["kit/__init__.py", "kit/core.py", "kit_extra/__init__.py", "other.py"]
        assert sorted(virtual) == expected
        assert not (ours / "kit" / "core.py").exists()
        materialize(ours, virtual)
    else:
        assert virtual == {}

    # installer on its own, one wheel after the other, writing every scheme to disk.
    reference = tmp_path / "reference" / "site-packages"
    scheme = {name: str(reference.parent / "not-shipped" / name) for name in SCHEME_NAMES}
    scheme["purelib"] = scheme["platlib"] = str(reference)
    destination = SchemeDictionaryDestination(
        scheme, interpreter="/var/lang/bin/python", script_kind="posix"
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skip installing", category=RuntimeWarning)
        for wheel in (kit, other):
            with WheelFile.open(wheel) as source:
                install(source, destination, additional_metadata={})
    assert tree_of(ours) == tree_of(reference)
    record = (ours / "kit-1.0.dist-info" / "RECORD").read_text()
    assert "../not-shipped/scripts/kit-tool," in record  # listed as installer lists it ...
    assert not (ours.parent / "not-shipped").exists()  # ... but scripts and data never ship
    assert stat.S_IMODE((ours / "kit" / "_speedups.so").stat().st_mode) == 0o755
    assert stat.S_IMODE((ours / "kit" / "core.py").stat().st_mode) == 0o755
    assert [item.distribution.name for item in installed] == ["kit", "other"]
    for item in installed:
        assert item.unpacked_size == sum((ours / name).stat().st_size for name in item.files)
    assert os.umask(umask) == umask  # threads left the process's umask alone


def test_many_executables_in_parallel_keep_their_modes_and_the_umask(
    tmp_path: Path, umask: int
) -> None:
    wheels = [
        wheel_file(
            tmp_path / "wheels",
            f"tool{n}",
            {f"tool{n}/bin{i}.so": os.urandom(2000) for i in range(40)} | {f"tool{n}/a.py": ""},
            executable=tuple(f"tool{n}/bin{i}.so" for i in range(40)),
        )
        for n in range(6)
    ]
    site_packages = tmp_path / "site-packages"

    install_wheels(*installing(wheels), site_packages)

    modes = {name: mode for name, (_, mode) in tree_of(site_packages).items()}
    assert {mode for name, mode in modes.items() if name.endswith(".so")} == {0o755}
    assert {mode for name, mode in modes.items() if not name.endswith(".so")} == {0o644}
    assert os.umask(umask) == umask


# --- RECORD, checked while writing ------------------------------------------------------------

WRONG = record_hash(b"something else")

TAMPERED: dict[str, dict[str, str | None]] = {
    "a shipped file's hash": {"kit/core.py": f"{WRONG},20000"},
    "a shipped file's size": {"kit/__init__.py": record_hash(INIT) + ",5"},
    "a file from .data/purelib": {".data/purelib/kit_extra/__init__.py": f"{WRONG},13"},
    "a .pyc installer skips": {"kit/__pycache__/core.cpython-312.pyc": f"{WRONG},15"},
    "a script whose shebang installer rewrites": {".data/scripts/kit-tool": f"{WRONG},21"},
    "a data file that does not ship": {".data/data/share/kit/notes.txt": f"{WRONG},12"},
    "a member RECORD does not list": {"kit/core.py": None},
    "a RECORD row with no hash": {"kit/core.py": ","},
    "a hash and a listing at once": {"kit/core.py": None, "kit/__init__.py": f"{WRONG},21"},
}


@pytest.mark.parametrize("tampered", list(TAMPERED.values()), ids=list(TAMPERED))
def test_a_wheel_that_differs_from_its_record_is_refused_as_installer_would_refuse_it(
    tmp_path: Path, tampered: dict[str, str | None]
) -> None:
    kit = wheel_file(tmp_path / "wheels", "kit", EVERYTHING, record=tampered)
    fine = wheel_file(tmp_path / "wheels", "fine", {"fine.py": ""})
    trees = tmp_path / "trees"

    with pytest.raises(BadInput) as refused:
        install_tree(*installing([fine, kit]), trees, TARGET)

    assert str(refused.value) == refusal_of(kit)
    assert sorted(path.name for path in trees.iterdir()) == [".lock"]  # no tree, no scratch


@pytest.mark.parametrize("algorithm", ["sha384", "sha512"])
def test_a_record_with_a_stronger_hash_is_checked_with_it(tmp_path: Path, algorithm: str) -> None:
    good = wheel_file(tmp_path / "good", "kit", EVERYTHING, algorithm=algorithm)
    bad = wheel_file(
        tmp_path / "bad",
        "kit",
        EVERYTHING,
        algorithm=algorithm,
        record={"kit/core.py": f"{record_hash(b'x', algorithm)},20000"},
    )

    tree = written(install_tree(*installing([good]), tmp_path / "trees", TARGET))
    with pytest.raises(BadInput) as refused:
        install_tree(*installing([bad]), tmp_path / "other-trees", TARGET)

    assert (tree.site_packages / "kit" / "core.py").read_text() == "VALUE = 1\n" * 2000
    assert str(refused.value) == refusal_of(bad)


def test_the_first_failing_wheel_by_name_is_named_whichever_thread_fails_first(
    tmp_path: Path,
) -> None:
    wrong = {"big/data.bin": f"{WRONG},3000000"}
    # "big" fails last (3 MB to inflate and hash), "small" at once: "big" is named.
    big = wheel_file(tmp_path / "w", "big", {"big/data.bin": os.urandom(3_000_000)}, record=wrong)
    small = wheel_file(
        tmp_path / "w", "small", {"small/a.py": "A = 1\n"}, record={"small/a.py": f"{WRONG},6"}
    )
    others = [wheel_file(tmp_path / "w", f"ok{n}", {f"ok{n}/m.py": "M = 1\n"}) for n in range(4)]
    messages = set()
    for attempt in range(4):
        wheels = [big, small, *others]
        random.Random(attempt).shuffle(wheels)
        with pytest.raises(BadInput) as refused:
            install_tree(*installing(wheels), tmp_path / f"trees{attempt}", TARGET)
        messages.add(str(refused.value))

    assert messages == {refusal_of(big)}


# --- two wheels, one file ---------------------------------------------------------------------


def test_two_wheels_shipping_one_file_are_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    alpha = wheel_file(tmp_path / "w", "alpha", {"alpha.py": "", "shared/util.py": "A = 1\n"})
    zeta = wheel_file(tmp_path / "w", "zeta", {"zeta.py": "", "shared/util.py": "Z = 1\n"})
    site_packages = tmp_path / "site-packages"
    messages = set()

    for order in ([alpha, zeta], [zeta, alpha]):
        with pytest.raises(BadInput) as refused:
            install_wheels(*installing(order), site_packages)
        messages.add(str(refused.value))

    assert messages == {
        "zeta-1.0-py3-none-any.whl would overwrite shared/util.py, installed by another"
        " dependency (alpha-1.0-py3-none-any.whl); two requirements ship the same file"
    }
    assert not site_packages.exists()


def test_a_file_where_another_wheel_needs_a_folder_is_refused(tmp_path: Path) -> None:
    alpha = wheel_file(tmp_path / "w", "alpha", {"alpha.py": "", "shared": "a file\n"})
    beta = wheel_file(tmp_path / "w", "beta", {"shared/util.py": "B = 1\n"})

    with pytest.raises(BadInput) as refused:
        install_wheels(*installing([beta, alpha]), tmp_path / "site-packages")

    assert str(refused.value).startswith(
        "beta-1.0-py3-none-any.whl would overwrite shared, installed by another dependency"
        " (alpha-1.0-py3-none-any.whl)"
    )


def test_a_wheel_with_two_members_for_one_path_is_refused(tmp_path: Path) -> None:
    kit = wheel_file(
        tmp_path / "w", "kit", {"kit/a.py": "ROOT = 1\n", ".data/purelib/kit/a.py": "DATA = 1\n"}
    )

    with pytest.raises(BadInput) as refused:
        install_wheels(*installing([kit]), tmp_path / "site-packages")

    assert str(refused.value).startswith(
        "kit-1.0-py3-none-any.whl is not a valid wheel: two of its members install as kit/a.py"
    )


def test_scripts_and_data_of_the_same_name_in_two_wheels_do_not_collide(tmp_path: Path) -> None:
    """They do not ship: nothing of them is written, so neither overwrites the other."""
    files = {".data/scripts/tool": "#!python\n", ".data/data/share/doc.txt": "doc\n"}
    entry_points = "[console_scripts]\nrun = tool:main\n"
    alpha = wheel_file(
        tmp_path / "w", "alpha", {"alpha/main.py": "", **files}, entry_points=entry_points
    )
    beta = wheel_file(
        tmp_path / "w", "beta", {"beta/main.py": "", **files}, entry_points=entry_points
    )
    site_packages = tmp_path / "site-packages"

    install_wheels(*installing([alpha, beta]), site_packages)

    assert sorted(path for path in tree_of(site_packages) if ".dist-info/" not in path) == [
        "alpha/main.py", "beta/main.py",
    ]  # fmt: skip


def test_two_requirements_shipping_one_file_fail_the_build_naming_both(
    tmp_path: Path, index: PackageIndex, chalicepack: Any
) -> None:
    for name in ("alpha", "zeta"):
        index.add_file(wheel_file(tmp_path / "w", name, {f"{name}.py": "", "shared.py": name}))
    project = make_project(tmp_path / "app", {"requirements.txt": "zeta\nalpha\n"})

    run = chalicepack("build", project, "--no-import")

    assert run.returncode == 2, run.stderr
    assert error_line(run.stderr) == (
        "zeta-1.0-py3-none-any.whl would overwrite shared.py, installed by another dependency"
        " (alpha-1.0-py3-none-any.whl); two requirements ship the same file"
    )
    assert not list((tmp_path / "cache").glob("trees/*/site-packages"))


# --- the cached tree --------------------------------------------------------------------------


def written(tree: InstalledTree) -> InstalledTree:
    """``tree`` with its virtual files (its .py files left in their wheels) written."""
    materialize(tree.site_packages, tree.virtual)
    return tree


def cached_tree(tmp_path: Path) -> Callable[[], Any]:
    kit = wheel_file(tmp_path / "w", "kit", EVERYTHING, executable=("kit/_speedups.so",))
    return lambda: install_tree(*installing([kit]), tmp_path / "trees", TARGET)


def test_an_untouched_cached_tree_is_reused(tmp_path: Path) -> None:
    tree = cached_tree(tmp_path)
    first = tree()

    second = tree()

    assert (first.reused, second.reused) == (False, True)
    assert second.site_packages == first.site_packages
    assert second.unpacked_sizes == first.unpacked_sizes


def forget_executables(record: Path) -> None:
    """The record as builds wrote it before it kept executable bits."""
    document = json.loads(record.read_text())
    del document["executable"]
    record.write_text(json.dumps(document))


@pytest.mark.parametrize(
    "damage",
    [
        lambda site: (site / "kit" / "core.py").write_text("changed = True\n"),
        lambda site: (site / "kit" / "core.py").unlink(),
        lambda site: (site / "kit" / "planted.py").write_text(""),
        lambda site: (site / "kit" / "core.py").chmod(0o755),
        lambda site: (site / "kit" / "_speedups.so").chmod(0o644),
        lambda site: forget_executables(site.parent / "installed.json"),
    ],
    ids=["size", "missing", "added", "made-executable", "no-longer-executable", "old-record"],
)
def test_a_cached_tree_that_changed_is_installed_again(
    tmp_path: Path, damage: Callable[[Path], object], umask: int
) -> None:
    tree = cached_tree(tmp_path)
    first = written(tree())
    before = tree_of(first.site_packages)
    damage(first.site_packages)

    again = tree()

    assert not again.reused
    assert tree_of(written(again).site_packages) == before


def test_a_cached_tree_whose_wheel_is_gone_is_installed_again(tmp_path: Path) -> None:
    tree = cached_tree(tmp_path)
    first = tree()
    assert first.virtual  # its .py files are read from the wheel
    record = first.site_packages.parent / "installed.json"
    document = json.loads(record.read_text())
    for item in document["virtual"].values():
        item[0] = "../../gone/kit-1.0-py3-none-any.whl"  # its wheel, as if the store lost it
    record.write_text(json.dumps(document))

    again = tree()

    assert not again.reused
    assert again.virtual == first.virtual


def test_a_file_left_by_a_build_killed_while_writing_keeps_the_tree_from_being_reused(
    tmp_path: Path,
) -> None:
    tree = cached_tree(tmp_path)
    first = tree()
    (first.site_packages / "kit" / ".core.py.4242").write_text("VALUE")  # half written
    materialize(first.site_packages, first.virtual)  # another build, later

    again = tree()

    assert not again.reused
    assert not (again.site_packages / "kit" / ".core.py.4242").exists()


def test_a_virtual_file_is_written_only_with_the_bytes_its_record_says(tmp_path: Path) -> None:
    kit = wheel_file(tmp_path / "w", "kit", EVERYTHING)
    tree = install_tree(*installing([kit]), tmp_path / "trees", TARGET)
    changed = {**EVERYTHING, "kit/core.py": "VALUE = 2\n" * 2000}  # the same size
    other = wheel_file(tmp_path / "other", "kit", changed)
    moved = {path: replace(item, wheel=other) for path, item in tree.virtual.items()}

    with pytest.raises(BuildFailure) as refused:
        materialize(tree.site_packages, moved)

    assert "kit/core.py differs from its RECORD" in str(refused.value)
    assert "the installed tree was dropped from the cache: build again" in str(refused.value)
    assert not (tree.site_packages.parent / "installed.json").exists()  # not reused
    assert not (tree.site_packages / "kit" / "core.py").exists()


def test_installed_files_list_the_tree_as_a_sorted_walk_of_it_would(tmp_path: Path) -> None:
    files = {
        "a.py": "",
        "a-b/c.py": "C = 1\n",
        "a/b.py": "B = 2\n",
        "a/b/c.py": "",
        "a/b/run.so": os.urandom(100),
        "a_b.py": "",
    }
    kit = wheel_file(tmp_path / "w", "a", files, executable=("a/b/run.so",))
    tree = install_tree(*installing([kit]), tmp_path / "trees", TARGET)
    site_packages = tree.site_packages
    from_record = installed_files(site_packages)  # with its virtual files, not on disk
    written(tree)
    walked = [
        (
            path.relative_to(site_packages).as_posix(),
            path.stat().st_size,
            bool(path.stat().st_mode & stat.S_IXUSR),
        )
        for path in sorted(site_packages.rglob("*"))
        if path.is_file()
    ]

    assert installed_files(site_packages) == from_record  # once they are written
    (site_packages.parent / "installed.json").unlink()
    from_walk = installed_files(site_packages)

    assert from_record == walked
    assert from_walk == walked
    assert ("a/b/run.so", 100, True) in walked


# --- --exclude ---------------------------------------------------------------------------------


def excluded_by_the_definition(arcname: str, patterns: list[str]) -> str | None:
    """The rule of --exclude: the first pattern matching the path or a folder it is in."""
    path = PurePosixPath(arcname)
    candidates = [arcname, *(str(p) for p in path.parents if str(p) != ".")]
    return next((p for p in patterns if any(fnmatchcase(c, p) for c in candidates)), None)


PATHS = [
    "numpy/__init__.py", "numpy/tests/test_a.py", "numpy/core/tests/data/x.npy",
    "numpy/core/_multiarray.so", "pandas/tests", "pandas/testsuite/x.py", "tests/conftest.py",
    "a-b/c.pyi", "a/b.pyi", "six.py", "x.dist-info/RECORD", "odd//tests/x.py",
    "./tests/y.py", "/abs/tests/z.py", "up/../tests/w.py", "trailing/tests/",
]  # fmt: skip
PATTERNS = [
    [], ["*/tests"], ["tests"], ["*.pyi", "numpy/*"], ["numpy/core", "*/tests", "nothing"],
    ["*.so", "*", "*/tests"], ["a", "a-b"], ["*/tests/*", "*/tests"], ["[ab]/*"],
]  # fmt: skip


@pytest.mark.parametrize("patterns", PATTERNS, ids=[" ".join(p) or "none" for p in PATTERNS])
def test_exclude_follows_its_definition(patterns: list[str]) -> None:
    entries = [ZipEntry(name, Path("/nowhere") / str(n)) for n, name in enumerate(PATHS)]

    result = exclude(entries, patterns)

    expected = {e.arcname: excluded_by_the_definition(e.arcname, patterns) for e in entries}
    assert result.kept == [e for e in entries if expected[e.arcname] is None]
    assert result.removed == [e for e in entries if expected[e.arcname] is not None]
    assert result.unmatched == [p for p in patterns if p not in expected.values()]
