"""Source distributions built for any Lambda runtime and architecture on this machine (issue
14): a CPython of the target's minor found here, zig aimed at the target's glibc and machine,
auditwheel's manylinux policy. Real sdists from the test factory, served by a real index,
built by real pip, zig and auditwheel; asserted on the zip and the report."""

from __future__ import annotations

import io
import os
import platform
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from elftools.elf.elffile import ELFFile

from chalicepack.deps.policy import glibc_versions
from conftest import make_project, require_pypi
from distfactory import build_shared_library
from pkgindex import PackageIndex
from reportschema import assert_valid_report

# Needs GLIBC_2.26 (reallocarray) on every target, and GLIBC_2.34 where the target's glibc
# has it (pthread_create moved into libc): the module's newest GLIBC_ version is the target's.
_EXT_USING_LIBC = """
#include <Python.h>
#include <pthread.h>
#include <stdlib.h>
static void *nothing(void *arg) { return arg; }
static PyObject *answer(PyObject *self, PyObject *args) {
    pthread_t thread;
    int *numbers = reallocarray(NULL, 4, sizeof(int));
    if (numbers == NULL || pthread_create(&thread, NULL, nothing, NULL) != 0) return NULL;
    pthread_join(thread, NULL);
    free(numbers);
    return PyLong_FromLong(42);
}
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, methods};
PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
"""

# An extension whose answer comes from a library outside the wheel (libextra.so).
_EXT_USING_LIBRARY = """
#include <Python.h>
int extra_value(void);
static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(extra_value()); }
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, methods};
PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
"""
_LIBRARY_FITS = "int extra_value(void) { return 7; }\n"
# arc4random is GLIBC_2.36: the library needs a newer glibc than any Lambda runtime has.
_LIBRARY_TOO_NEW = (
    "#include <stdlib.h>\nint extra_value(void) { return (int)(arc4random() & 1); }\n"
)

_MACHINE = {"x86_64": "EM_X86_64", "arm64": "EM_AARCH64"}
_GLIBC = {"python3.11": (2, 26), "python3.12": (2, 34)}
_ZIG_MACHINE = {"x86_64": "x86_64", "arm64": "aarch64"}


def build(chalicepack: Any, project: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    run = chalicepack("build", project, "--json", *args, env=env)
    assert run.returncode == 0, run.stderr
    return run


def host_glibc() -> tuple[int, int]:
    major, minor = os.confstr("CS_GNU_LIBC_VERSION").split()[1].split(".")[:2]  # "glibc 2.36"
    return int(major), int(minor)


def host_build_fits(machine: str, glibc: tuple[int, int]) -> bool:
    """Whether _EXT_USING_LIBC built with this machine's gcc fits a target of ``machine`` and
    ``glibc``: pthread_create is GLIBC_2.34 where this machine's glibc has 2.34 or newer."""
    needs = max((2, 26), (2, 34) if host_glibc() >= (2, 34) else (2, 2))
    return machine == platform.machine() and needs <= glibc


def modules_in(project: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(project / "dist" / "deployment.zip") as archive:
        return {name: archive.read(name) for name in archive.namelist() if ".so" in name}


def newest_glibc(data: bytes) -> tuple[int, int]:
    return max(glibc_versions(ELFFile(io.BytesIO(data))))


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
@pytest.mark.parametrize("runtime", ["python3.11", "python3.12"])
def test_a_c_extension_sdist_is_built_for_the_targets_python_machine_and_glibc(
    tmp_path: Path, index: PackageIndex, chalicepack, runtime: str, arch: str
) -> None:
    index.add_sdist("speedy", "1.0", c_extension=True, ext_source=_EXT_USING_LIBC)
    project = make_project(tmp_path / "app", {"requirements.txt": "speedy==1.0\n"})

    run = build(chalicepack, project, "--runtime", runtime, "--arch", arch, "--no-import")

    report = run.json()
    assert report["missing_dependencies"] == []
    (dependency,) = report["dependencies"]
    assert dependency["built_from_source"] is True
    machine = _ZIG_MACHINE[arch]
    abi = runtime.removeprefix("python").replace(".", "")
    glibc = _GLIBC[runtime]
    assert dependency["tag"] == f"cp{abi}-cp{abi}-manylinux_{glibc[0]}_{glibc[1]}_{machine}"
    (name, data) = next(iter(modules_in(project).items()))
    assert name == f"speedy/_speedups.cpython-{abi}-{machine}-linux-gnu.so"
    elf = ELFFile(io.BytesIO(data))
    assert elf["e_machine"] == _MACHINE[arch]
    (record,) = report["source_builds"]
    assert record["verdict"] == "fits"
    assert record["policy"] == f"manylinux_{glibc[0]}_{glibc[1]}_{machine}"
    if host_build_fits(machine, glibc):
        # This machine's compiler first: its module needs no newer glibc than the target's.
        assert record["compiler"] == "gcc (this machine's)"
        assert newest_glibc(data) <= glibc
    else:
        assert record["compiler"].endswith(f"-target {machine}-linux-gnu.{glibc[0]}.{glibc[1]}")
        assert newest_glibc(data) == glibc
    version = runtime.removeprefix("python")
    assert record["interpreter"].startswith(f"CPython {version}.")
    # The log names the interpreter that built it.
    assert re.search(rf"building speedy==1.0 from source .* with CPython {version}\.", run.stderr)


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="loads the module with this CPython")
def test_a_library_that_fits_the_policy_is_grafted_and_the_module_loads_from_the_zip(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    libs, project = _linked_project(tmp_path, index, _LIBRARY_FITS, "x86_64-linux-gnu.2.17")

    run = build(chalicepack, project, "--runtime", "python3.11", "--no-import")

    (record,) = run.json()["source_builds"]
    assert record["verdict"] == "repaired"
    assert record["grafted"] == ["libextra.so"]
    modules = modules_in(project)
    assert any(re.fullmatch(r"linked\.libs/libextra-[0-9a-f]+\.so", name) for name in modules)
    # Without the library it was linked against, the module loads what the zip carries.
    for path in libs.iterdir():
        path.unlink()
    unpacked = tmp_path / "task"
    with zipfile.ZipFile(project / "dist" / "deployment.zip") as archive:
        archive.extractall(unpacked)
    loaded = subprocess.run(
        [sys.executable, "-c", "import linked._speedups as m; print(m.answer())"],
        cwd=unpacked,
        capture_output=True,
        text=True,
    )
    assert loaded.stdout.strip() == "7", loaded.stderr


def test_a_library_that_fits_the_policy_is_grafted_into_an_arm64_wheel(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    _, project = _linked_project(tmp_path, index, _LIBRARY_FITS, "aarch64-linux-gnu.2.17")

    run = build(chalicepack, project, "--runtime", "python3.12", "--arch", "arm64", "--no-import")

    (record,) = run.json()["source_builds"]
    assert record["verdict"] == "repaired"
    grafted = [name for name in modules_in(project) if name.startswith("linked.libs/")]
    assert len(grafted) == 1
    assert ELFFile(io.BytesIO(modules_in(project)[grafted[0]]))["e_machine"] == "EM_AARCH64"
    assert_valid_report(project / "dist" / "build-report.json")


def test_a_library_needing_a_newer_glibc_is_reported_missing_naming_it(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    _, project = _linked_project(tmp_path, index, _LIBRARY_TOO_NEW, "x86_64-linux-gnu.2.36")

    run = build(chalicepack, project, "--runtime", "python3.11", "--no-import")

    report = run.json()
    assert report["dependencies"] == []
    (missing,) = report["missing_dependencies"]
    assert missing["name"] == "linked"
    assert "libextra.so" in missing["reason"]
    assert "GLIBC_2.36" in missing["reason"]
    assert "python3.11's Lambda has glibc 2.26" in missing["reason"]
    assert "psycopg2-binary" in missing["fix"]
    assert "Could not install dependencies:\nlinked==1.0" in run.stderr
    (record,) = report["source_builds"]
    assert record["verdict"] == "refused"
    assert not modules_in(project)
    assert_valid_report(project / "dist" / "build-report.json")
    # Built once: pip, resolving after uv's answer was not kept, is given the same outcome.
    assert run.stderr.count("building linked==1.0 from source for python3.11 x86_64") == 1


def test_a_library_not_on_this_machine_for_the_target_is_reported_missing_naming_it(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    # Linked with no run path: auditwheel finds no libextra.so in the loader's paths to graft.
    _, project = _linked_project(
        tmp_path, index, _LIBRARY_FITS, "aarch64-linux-gnu.2.17", run_path=False
    )

    run = build(chalicepack, project, "--runtime", "python3.11", "--arch", "arm64", "--no-import")

    (missing,) = run.json()["missing_dependencies"]
    assert "libextra.so" in missing["reason"]
    assert "does not find" in missing["reason"]


def test_an_optional_c_extension_that_does_not_fit_ships_pure(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    libs = tmp_path / "libs"
    build_shared_library(libs, "extra", _LIBRARY_TOO_NEW, "x86_64-linux-gnu.2.36")
    link = ["-L", str(libs), "-lextra", f"-Wl,-rpath,{libs}"]
    index.add_sdist(
        "maybefast",
        "1.0",
        optional_c_extension=True,
        ext_source=_EXT_USING_LIBRARY,
        link_args=link,
    )
    project = make_project(tmp_path / "app", {"requirements.txt": "maybefast==1.0\n"})

    run = build(chalicepack, project, "--runtime", "python3.12")

    report = run.json()
    assert [d["name"] for d in report["dependencies"]] == ["maybefast"]
    assert not modules_in(project)
    (record,) = report["source_builds"]
    assert record["verdict"] == "pure"
    assert "libextra.so" in record["reason"]


def test_without_a_cpython_of_the_targets_minor_a_c_extension_is_missing_with_how_to_get_one(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_sdist("speedy", "1.0", c_extension=True)
    index.add_sdist("docopt-like", "0.6.2")
    requirements = "speedy==1.0\ndocopt-like==0.6.2\n"
    project = make_project(tmp_path / "app", {"requirements.txt": requirements})
    empty = tmp_path / "no-pythons"
    empty.mkdir()
    hidden = {"PATH": "/usr/sbin:/sbin", "PYENV_ROOT": str(empty)}
    hidden["UV_PYTHON_INSTALL_DIR"] = str(empty)
    runtime = "python3.13" if sys.version_info[:2] != (3, 13) else "python3.12"

    run = build(chalicepack, project, "--runtime", runtime, env=hidden)

    report = run.json()
    assert [d["name"] for d in report["dependencies"]] == ["docopt-like"]
    (missing,) = report["missing_dependencies"]
    version = runtime.removeprefix("python")
    assert f"no CPython {version} is installed here" in missing["reason"]
    assert f"uv python install {version}" in missing["fix"]
    # Once the interpreter is there, --refresh resolves again (every requirement is pinned,
    # which once kept a resolution for good even then) and builds it.
    again = build(chalicepack, project, "--runtime", runtime, "--no-import", "--refresh").json()
    assert {d["name"] for d in again["dependencies"]} == {"docopt-like", "speedy"}
    assert again["missing_dependencies"] == []


def test_a_release_with_wheels_for_a_newer_glibc_is_missing_naming_that_wheel(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    # This machine would take the manylinux_2_28 wheel; python3.11 (glibc 2.26) cannot. The
    # release has an sdist too: the reason must not say there is no source (it named only
    # the host's pick), and a release that ships wheels is not built from source.
    index.add_wheel("newglibc", "1.0", tag="cp311-cp311-manylinux_2_28_x86_64")
    index.add_sdist("newglibc", "1.0", c_extension=True)
    project = make_project(tmp_path / "app", {"requirements.txt": "newglibc==1.0\n"})

    run = build(chalicepack, project, "--runtime", "python3.11", "--no-import")

    report = run.json()
    assert report["dependencies"] == []
    (missing,) = report["missing_dependencies"]
    assert "no source to build" not in missing["reason"]
    assert "newglibc-1.0-cp311-cp311-manylinux_2_28_x86_64.whl" in missing["reason"]
    assert report["source_builds"] == []


def test_a_build_for_another_architecture_does_not_reuse_the_first_ones_wheel(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_sdist("speedy", "1.0", c_extension=True)
    project = make_project(tmp_path / "app", {"requirements.txt": "speedy==1.0\n"})
    build(chalicepack, project, "--runtime", "python3.12", "--no-import")
    # pip's cache holds the x86_64 wheel; the arm64 build must not take it.
    run = build(chalicepack, project, "--runtime", "python3.12", "--arch", "arm64", "--no-import")

    (name,) = modules_in(project)
    assert name.endswith("aarch64-linux-gnu.so")
    assert run.json()["source_builds"][0]["verdict"] == "fits"


def _needed(data: bytes) -> list[str]:
    from elftools.elf.dynamic import DynamicSection

    elf = ELFFile(io.BytesIO(data))
    return [
        tag.needed
        for section in elf.iter_sections()
        if isinstance(section, DynamicSection)
        for tag in section.iter_tags()
        if tag.entry.d_tag == "DT_NEEDED"
    ]


def _policy_libraries(policy: str) -> set[str]:
    """The libraries a manylinux policy lets a wheel need from the system (auditwheel's list)."""
    import json
    from importlib.resources import files

    policies = json.loads((files("auditwheel") / "policy" / "manylinux-policy.json").read_text())
    (entry,) = [item for item in policies if item["name"] == policy]
    return set(entry["lib_whitelist"])


@pytest.mark.network
def test_real_psycopg2_never_ships_needing_a_library_the_zip_lacks(
    tmp_path: Path, chalicepack
) -> None:
    project = make_project(tmp_path / "app", {"requirements.txt": "psycopg2==2.9.10\n"})

    require_pypi()
    run = chalicepack("build", project, "--json", "--runtime", "python3.11", "--no-import")

    assert run.returncode == 0, run.stderr
    report = run.json()
    (record,) = report["source_builds"]
    modules = modules_in(project)
    if record["verdict"] == "refused":
        # This machine's libpq (or what it needs) wants a newer glibc: named, nothing shipped.
        (missing,) = report["missing_dependencies"]
        assert "libpq.so.5" in missing["reason"] or "GLIBC_" in missing["reason"]
        assert not modules
        return
    assert record["verdict"] == "repaired", record
    assert any("libpq" in name for name in record["grafted"])
    shipped = {Path(name).name for name in modules}
    allowed = _policy_libraries("manylinux_2_26")
    for name, data in modules.items():
        for needed in _needed(data):
            assert needed in shipped or needed in allowed, f"{name} needs {needed}"


@pytest.mark.network
def test_real_ciso8601_sdist_builds_with_setuptools_for_arm64(tmp_path: Path, chalicepack) -> None:
    # ciso8601 2.2.0 has no wheel for CPython 3.12: its sdist, built by setuptools.
    project = make_project(tmp_path / "app", {"requirements.txt": "ciso8601==2.2.0\n"})

    require_pypi()
    run = chalicepack("build", project, "--json", "--runtime", "python3.12", "--arch", "arm64")

    assert run.returncode == 0, run.stderr
    (dependency,) = run.json()["dependencies"]
    assert dependency["tag"] == "cp312-cp312-manylinux_2_34_aarch64"
    ((name, data),) = modules_in(project).items()
    assert name == "ciso8601.cpython-312-aarch64-linux-gnu.so"
    assert ELFFile(io.BytesIO(data))["e_machine"] == "EM_AARCH64"
    assert newest_glibc(data) <= (2, 34)


def test_a_second_build_for_another_target_reuses_the_cached_build_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chalicepack
) -> None:
    # Files served as PyPI serves them (immutable).
    index = PackageIndex(tmp_path / "index", immutable_files=True)
    index.start()
    monkeypatch.setenv("PIP_INDEX_URL", index.url)
    try:
        tool = index.add_wheel("buildtool", "1.0").name
        index.add_sdist("speedy", "1.0", c_extension=True, build_requires=["buildtool"])
        project = make_project(tmp_path / "app", {"requirements.txt": "speedy==1.0\n"})
        first = build(chalicepack, project, "--runtime", "python3.12", "--no-import")
        assert tool in index.downloads()
        assert "from source: speedy==1.0" in first.stderr  # resolved by uv
        assert "by uv build" in first.stderr
        fetched_before = len(index.downloads())

        second = build(
            chalicepack, project, "--runtime", "python3.12", "--arch", "arm64", "--no-import"
        )
    finally:
        index.stop()

    # The build environment came from the cache: its requirement was not fetched again, nor
    # the sdist (kept in the cache): no file at all.
    assert tool not in index.downloads()[fetched_before:]
    assert index.downloads()[fetched_before:] == []
    (name,) = modules_in(project)
    assert name == "speedy/_speedups.cpython-312-aarch64-linux-gnu.so"
    (record,) = second.json()["source_builds"]
    assert record["verdict"] == "fits"
    assert record["compiler"] == "zig cc -target aarch64-linux-gnu.2.34"


def test_this_machines_compiler_builds_when_its_module_fits_and_zig_when_it_does_not(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    machine = platform.machine()
    arch = {"x86_64": "x86_64", "aarch64": "arm64"}[machine]
    index.add_sdist("speedy", "1.0", c_extension=True, ext_source=_EXT_USING_LIBC)
    project = make_project(tmp_path / "app", {"requirements.txt": "speedy==1.0\n"})

    for runtime in ("python3.12", "python3.11"):
        run = build(chalicepack, project, "--runtime", runtime, "--arch", arch, "--no-import")

        glibc = _GLIBC[runtime]
        (record,) = run.json()["source_builds"]
        assert record["verdict"] == "fits"
        (data,) = modules_in(project).values()
        assert ELFFile(io.BytesIO(data))["e_machine"] == _MACHINE[arch]
        assert newest_glibc(data) <= glibc
        if host_build_fits(machine, glibc):
            assert record["compiler"] == "gcc (this machine's)"
        else:
            # Its pthread_create is GLIBC_2.34 from this machine's headers: over python3.11's
            # ceiling, so zig built it for the runtime's glibc instead.
            assert "not kept as built with gcc (this machine's)" in run.stderr
            assert "GLIBC_2.34" in run.stderr
            assert record["compiler"] == f"zig cc -target {machine}-linux-gnu.2.26"


def _linked_project(
    tmp_path: Path, index: PackageIndex, library: str, target: str, *, run_path: bool = True
) -> tuple[Path, Path]:
    """A project needing ``linked``, an sdist whose module links libextra.so (``library``,
    built for ``target`` into ``tmp_path/libs``, found at run time by a run path unless
    ``run_path`` is False): the libraries' folder and the project."""
    libs = tmp_path / "libs"
    build_shared_library(libs, "extra", library, target)
    link = ["-L", str(libs), "-lextra", *([f"-Wl,-rpath,{libs}"] if run_path else [])]
    index.add_sdist(
        "linked", "1.0", c_extension=True, ext_source=_EXT_USING_LIBRARY, link_args=link
    )
    return libs, make_project(tmp_path / "app", {"requirements.txt": "linked==1.0\n"})
