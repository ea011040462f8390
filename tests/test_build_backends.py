"""Source distributions of the other build backends built for the target (issue 14, item 3):
scikit-build-core (CMake) and meson-python compile with zig aimed at the target, as
setuptools does; maturin (Rust) needs a Rust toolchain for the target, else the release is
missing saying so. The sdists are made here and served by a local index; the backends (and
what they require) come from the real PyPI, the index users have them from."""

from __future__ import annotations

import io
import os
import platform
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from arm64root import Arm64Root
from chalicepack.deps.crossbuild import rust_missing, toolchain
from chalicepack.deps.policy import glibc_versions, module_problem
from chalicepack.inputs.target import Target
from conftest import make_project, require_pypi
from distfactory import build_backend_sdist, build_shared_library, build_wheel
from pkgindex import PackageIndex

PYPI = "https://pypi.org/simple/"
_MACHINE = {"x86_64": ("x86_64", "EM_X86_64"), "arm64": ("aarch64", "EM_AARCH64")}


@pytest.fixture
def backend_index(index: PackageIndex, monkeypatch: pytest.MonkeyPatch) -> Iterator[PackageIndex]:
    """The local index for the sdists, PyPI as the extra index for their backends."""
    require_pypi()
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", PYPI)
    yield index


# A module answering from C code compiled for the CPU it runs on.
_EXT_ARCH = r"""
#include <Python.h>
static PyObject *arch(PyObject *self, PyObject *unused) {
#if defined(__aarch64__)
    return PyUnicode_FromString("aarch64");
#else
    return PyUnicode_FromString("other");
#endif
}
static PyMethodDef methods[] = {{"arch", arch, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, methods};
PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
"""


def _modules(project: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(project / "dist" / "deployment.zip") as archive:
        return {name: archive.read(name) for name in archive.namelist() if ".so" in name}


@pytest.mark.network
@pytest.mark.parametrize(
    ("arch", "cflags"),
    [
        ("x86_64", ""),
        # Flags that choose a CPU: this machine's gcc is not tried, zig builds for x86_64.
        ("x86_64", "-mcpu=baseline"),
        ("arm64", ""),
    ],
)
def test_scikit_build_core_and_meson_python_sdists_are_built_for_the_target(
    tmp_path: Path,
    backend_index: PackageIndex,
    chalicepack,
    monkeypatch: pytest.MonkeyPatch,
    arch: str,
    cflags: str,
) -> None:
    monkeypatch.setenv("CFLAGS", cflags)
    backend_index.add_file(
        build_backend_sdist(tmp_path / "dists", "cmakespeedy", "1.0", "scikit-build-core")
    )
    backend_index.add_file(
        build_backend_sdist(tmp_path / "dists", "mesonspeedy", "1.0", "meson-python")
    )
    requirements = "cmakespeedy==1.0\nmesonspeedy==1.0\n"
    project = make_project(tmp_path / "app", {"requirements.txt": requirements})

    run = chalicepack(
        "build", project, "--json", "--runtime", "python3.11", "--arch", arch, "--no-import"
    )

    assert run.returncode == 0, run.stderr
    report = run.json()
    assert report["missing_dependencies"] == [], run.stderr
    machine, elf_machine = _MACHINE[arch]
    tags = {d["name"]: d["tag"] for d in report["dependencies"]}
    expected = f"cp311-cp311-manylinux_2_26_{machine}"
    assert tags == {"cmakespeedy": expected, "mesonspeedy": expected}
    records = {r["name"]: r for r in report["source_builds"]}
    assert {r["verdict"] for r in records.values()} == {"fits"}
    modules = _modules(project)
    assert sorted(Path(name).parent.name for name in modules) == ["cmakespeedy", "mesonspeedy"]
    for name, data in modules.items():
        # A name the target's Python imports: its own machine's suffix, or a plain ".so".
        assert re.fullmatch(rf"\w+/_speedups(\.cpython-311-{machine}-linux-gnu)?\.so", name)
        elf = ELFFile(io.BytesIO(data))
        assert elf["e_machine"] == elf_machine, name
        assert max(glibc_versions(elf), default=(0, 0)) <= (2, 26), name
    # meson names modules as the target's Python would (its PEP 739 build details).
    assert f"mesonspeedy/_speedups.cpython-311-{machine}-linux-gnu.so" in modules
    if arch == "arm64" or cflags:
        for record in records.values():
            assert record["compiler"] == f"zig cc -target {machine}-linux-gnu.2.26"


@pytest.mark.network
def test_a_maturin_sdist_without_rust_for_the_target_is_missing_saying_so(
    tmp_path: Path, backend_index: PackageIndex, chalicepack
) -> None:
    target = Target.parse("python3.11", "arm64")
    premise = rust_missing(target)
    # This kind of machine has Rust for x86_64 only (no skip: a premise that fails is a failure).
    assert premise is not None, "this test needs a machine without Rust for aarch64"
    backend_index.add_file(build_backend_sdist(tmp_path / "dists", "rustspeedy", "1.0", "maturin"))
    project = make_project(tmp_path / "app", {"requirements.txt": "rustspeedy==1.0\n"})

    run = chalicepack(
        "build", project, "--json", "--runtime", "python3.11", "--arch", "arm64", "--no-import"
    )

    assert run.returncode == 0, run.stderr
    report = run.json()
    (missing,) = report["missing_dependencies"]
    assert missing["name"] == "rustspeedy"
    assert missing["reason"] == f"it is a Rust extension (built by maturin), and {premise}"
    assert "rustup target add aarch64-unknown-linux-gnu" in missing["fix"]
    assert "use a release of rustspeedy with a wheel for python3.11 on arm64" in missing["fix"]
    assert missing["build_log"] is None  # no build was tried: no log to puzzle over
    (record,) = report["source_builds"]
    assert record["verdict"] == "failed"
    assert record["compiler"] == "none (no Rust toolchain for the target)"
    assert not _modules(project)
    assert "it is a Rust extension (built by maturin)" in run.stderr


@pytest.mark.network
def test_a_maturin_sdist_on_a_machine_without_cargo_is_missing_not_an_unknown_release(
    tmp_path: Path, backend_index: PackageIndex, chalicepack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No cargo anywhere on PATH; and maturin not allowed to download a Rust toolchain of its
    # own (it does by default, to read an sdist's metadata on a machine without one).
    path = [d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "cargo").exists()]
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    monkeypatch.setenv("MATURIN_NO_INSTALL_RUST", "1")
    backend_index.add_file(build_backend_sdist(tmp_path / "dists", "rustspeedy", "1.0", "maturin"))
    project = make_project(tmp_path / "app", {"requirements.txt": "rustspeedy==1.0\n"})

    run = chalicepack(
        "build", project, "--json", "--runtime", "python3.11", "--arch", "arm64", "--no-import"
    )

    # pip resolves it again after uv's build is not kept, and cannot even read its metadata
    # here: missing, saying so (it was "no release of rustspeedy==1.0 exists", exit 2).
    assert run.returncode == 0, run.stderr
    (missing,) = run.json()["missing_dependencies"]
    assert missing["name"] == "rustspeedy"
    assert missing["reason"] == (
        "its source distribution could not be prepared on this host (metadata build failed)"
    )
    # The backend's own words, from pip's log: what is missing and where to get it.
    assert "Cargo, the Rust package manager, is not installed" in missing["build_log"]
    assert "https://rustup.rs/" in missing["build_log"]
    assert not _modules(project)


@pytest.mark.network
def test_a_maturin_sdist_is_linked_by_zig_for_the_runtimes_glibc_where_rust_is_installed(
    tmp_path: Path, backend_index: PackageIndex, chalicepack
) -> None:
    target = Target.parse("python3.11", "x86_64")
    # This kind of machine has rustup's x86_64 toolchain (no skip: its absence is a failure).
    assert rust_missing(target) is None, "this test needs cargo and Rust for x86_64 on PATH"
    backend_index.add_file(build_backend_sdist(tmp_path / "dists", "rustspeedy", "1.0", "maturin"))
    project = make_project(tmp_path / "app", {"requirements.txt": "rustspeedy==1.0\n"})

    run = chalicepack(
        "build", project, "--json", "--runtime", "python3.11", "--arch", "x86_64", "--no-import"
    )

    assert run.returncode == 0, run.stderr
    report = run.json()
    assert report["missing_dependencies"] == [], run.stderr
    (dependency,) = report["dependencies"]
    assert dependency["tag"] == "cp311-cp311-manylinux_2_26_x86_64"
    (record,) = report["source_builds"]
    assert record["verdict"] == "fits"
    # Not this machine's linker (its glibc's symbol versions): zig's, for glibc 2.26.
    assert record["compiler"] == "zig cc -target x86_64-linux-gnu.2.26"
    ((name, data),) = _modules(project).items()
    assert name == "_speedups/lib_speedups.so"  # cffi's library, loaded by its ffi module
    elf = ELFFile(io.BytesIO(data))
    assert elf["e_machine"] == "EM_X86_64"
    assert max(glibc_versions(elf), default=(0, 0)) <= (2, 26)


def test_a_module_named_for_another_machine_is_refused_though_its_elf_is_the_targets(
    tmp_path: Path,
) -> None:
    # An aarch64 library named as x86_64's Python names modules: Python on arm64 would not
    # import it, whatever its ELF machine.
    library = build_shared_library(tmp_path / "lib", "speedups", "int f(void) { return 1; }\n",
                                   "aarch64-linux-gnu.2.26")  # fmt: skip
    name = "speedy/_speedups.cpython-311-x86_64-linux-gnu.so"
    wheel = build_wheel(
        tmp_path / "wheels", "speedy", "1.0", tag="cp311-cp311-linux_aarch64",
        files={"speedy/__init__.py": "", name: library.read_bytes()},
    )  # fmt: skip

    problem = module_problem(wheel, Target.parse("python3.11", "arm64"))

    assert problem == f"{name} is named for x86_64: Python on aarch64 would not import it"


@pytest.mark.arm64
@pytest.mark.network
def test_the_cmake_and_meson_modules_built_for_arm64_import_on_arm64_from_the_zip(
    arm64_root: Arm64Root, tmp_path: Path, backend_index: PackageIndex, chalicepack
) -> None:
    for name, backend in (("cmakespeedy", "scikit-build-core"), ("mesonspeedy", "meson-python")):
        sdist = build_backend_sdist(tmp_path / "dists", name, "1.0", backend, ext=_EXT_ARCH)
        backend_index.add_file(sdist)
    requirements = "cmakespeedy==1.0\nmesonspeedy==1.0\n"
    project = make_project(tmp_path / "app", {"requirements.txt": requirements})

    run = chalicepack("build", project, "--runtime", "python3.11", "--arch", "arm64")

    assert run.returncode == 0, run.stderr
    unzipped = tmp_path / "task"
    with zipfile.ZipFile(project / "dist" / "deployment.zip") as archive:
        archive.extractall(unzipped)
    # Imported by name, as Lambda's python3.11 on arm64 imports them: CMake's plain ".so" and
    # meson's ".cpython-311-aarch64-linux-gnu.so" alike.
    ran = arm64_root.python(
        "import cmakespeedy._speedups as c, mesonspeedy._speedups as m\nprint(c.arch(), m.arch())",
        share=unzipped,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["aarch64", "aarch64"]


def test_only_a_build_for_another_machine_is_a_cmake_cross_build(tmp_path: Path) -> None:
    # A CMake cross build cannot run what it compiles (try_run, check_c_source_runs): a zig
    # build for this machine's architecture (another glibc only) must stay a native one.
    here = "arm64" if platform.machine() == "aarch64" else "x86_64"
    other = "x86_64" if here == "arm64" else "arm64"

    native = toolchain(Target.parse("python3.11", here), tmp_path)
    cross = toolchain(Target.parse("python3.11", other), tmp_path)

    assert native.compiler.startswith("zig cc")
    assert "CMAKE_TOOLCHAIN_FILE" not in native.env
    assert "CMAKE_SYSTEM_PROCESSOR" in Path(cross.env["CMAKE_TOOLCHAIN_FILE"]).read_text()
