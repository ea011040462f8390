"""The arm64 test root works: a C extension compiled here for aarch64 by zig loads and runs in
bookworm's arm64 python3.11 under qemu-user, and this machine's x86_64 CPython refuses it. And
the user's story: an sdist with a C extension, packaged by chalicepack for python3.11 arm64 on
this x86_64 machine, is imported from the deployment zip by an arm64 CPython.

Runs under ``make test-arm64`` (marked ``arm64``; needs root and binfmt_misc)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from arm64root import Arm64Root
from conftest import make_project
from pkgindex import PackageIndex

pytestmark = pytest.mark.arm64

SOURCE = r"""
#include <Python.h>

/* Which CPU the compiler generated code for, decided when the module was compiled. */
static PyObject *arch(PyObject *self, PyObject *unused) {
#if defined(__aarch64__)
    return PyUnicode_FromString("aarch64");
#elif defined(__x86_64__)
    return PyUnicode_FromString("x86_64");
#else
    return PyUnicode_FromString("other");
#endif
}

/* 1 + 2 + ... + n, computed by the CPU the module runs on. */
static PyObject *triangle(PyObject *self, PyObject *arg) {
    long long n = PyLong_AsLongLong(arg), total = 0;
    if (n == -1 && PyErr_Occurred()) return NULL;
    for (long long i = 1; i <= n; i++) total += i;
    return PyLong_FromLongLong(total);
}

static PyMethodDef methods[] = {
    {"arch", arch, METH_NOARGS, NULL},
    {"triangle", triangle, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "probe", NULL, -1, methods};
PyMODINIT_FUNC PyInit_probe(void) { return PyModule_Create(&module); }
"""
# Loads the module from its path whatever its name says, so a refusal is the loader's (the
# ELF file), not the import system's suffix list.
LOAD = """\
import importlib.machinery, importlib.util, sys
loader = importlib.machinery.ExtensionFileLoader("probe", sys.argv[1])
spec = importlib.util.spec_from_file_location("probe", sys.argv[1], loader=loader)
probe = importlib.util.module_from_spec(spec)
loader.exec_module(probe)
print(probe.arch(), probe.triangle(100000))
"""
ELF_MACHINE = {62: "x86_64", 183: "aarch64"}


def python311() -> Path:
    """This machine's CPython 3.11: its headers build the module, and it is the host that must
    refuse the aarch64 build."""
    found = shutil.which("python3.11")
    assert found, "python3.11 is not on PATH (pyenv install 3.11, or apt-get install python3.11)"
    return Path(found)


def compile_probe(folder: Path, arch: str) -> Path:
    include = subprocess.run(
        [python311(), "-c", "import sysconfig; print(sysconfig.get_paths()['include'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "probe.c"
    source.write_text(SOURCE)
    module = folder / f"probe.cpython-311-{arch}-linux-gnu.so"
    compiler = [sys.executable, "-m", "ziglang", "cc", "-target", f"{arch}-linux-gnu.2.26"]
    completed = subprocess.run(
        [*compiler, "-shared", "-fPIC", "-O2", f"-I{include}", source, "-o", module],
        capture_output=True, text=True,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    return module


def elf_machine(path: Path) -> str:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path} is not an ELF file"
    return ELF_MACHINE.get(int.from_bytes(header[18:20], "little"), "other")


def test_an_aarch64_extension_built_here_runs_in_the_arm64_root(
    arm64_root: Arm64Root, tmp_path: Path
) -> None:
    module = compile_probe(tmp_path / "share", "aarch64")
    assert elf_machine(module) == "aarch64"

    ran = arm64_root.python(
        "import platform, sys, probe\n"
        "print(platform.machine(), '.'.join(map(str, sys.version_info[:2])),"
        " probe.arch(), probe.triangle(100000), probe.__file__)",
        share=module.parent,
    )

    assert ran.returncode == 0, ran.stderr
    machine, version, compiled_for, total, path = ran.stdout.split()
    assert (machine, version, compiled_for, total) == ("aarch64", "3.11", "aarch64", "5000050000")
    # Found by its name through the import system, as Lambda's python3.11 on arm64 finds it.
    assert path.endswith("/probe.cpython-311-aarch64-linux-gnu.so")


def test_this_machine_refuses_the_aarch64_build_and_loads_the_x86_64_one(tmp_path: Path) -> None:
    aarch64 = compile_probe(tmp_path / "aarch64", "aarch64")
    x86_64 = compile_probe(tmp_path / "x86_64", "x86_64")

    refused = subprocess.run([python311(), "-c", LOAD, aarch64], capture_output=True, text=True)
    loaded = subprocess.run([python311(), "-c", LOAD, x86_64], capture_output=True, text=True)

    # glibc's words for an ELF file of another machine.
    assert refused.returncode == 1
    assert f"ImportError: {aarch64}: cannot open shared object file" in refused.stderr
    # The same source and compiler load here when built for this machine: the refusal above
    # is the architecture's.
    assert (loaded.returncode, loaded.stdout) == (0, "x86_64 5000050000\n"), loaded.stderr


def test_a_c_sdist_packaged_for_python311_arm64_here_loads_from_the_zip_on_arm64(
    arm64_root: Arm64Root, tmp_path: Path, index: PackageIndex, chalicepack: Any
) -> None:
    index.add_sdist(
        "speedy", "1.0", c_extension=True, ext_source=SOURCE.replace("probe", "_speedups")
    )
    project = make_project(tmp_path / "app", {"requirements.txt": "speedy==1.0\n"})

    run = chalicepack("build", project, "--runtime", "python3.11", "--arch", "arm64")

    assert run.returncode == 0, run.stderr
    unzipped = tmp_path / "task"
    with zipfile.ZipFile(project / "dist" / "deployment.zip") as archive:
        archive.extractall(unzipped)
    module = unzipped / "speedy" / "_speedups.cpython-311-aarch64-linux-gnu.so"
    assert elf_machine(module) == "aarch64"
    ran = arm64_root.python(
        "import platform, app, speedy._speedups as s\n"
        "print(platform.machine(), app.app.app_name, s.arch(), s.triangle(100000))",
        share=unzipped,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["aarch64", "testapp", "aarch64", "5000050000"]
