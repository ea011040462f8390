"""Build tiny wheels and sdists on the fly, so tests never depend on what an index happens to hold.

Wheels are written directly (a wheel is a zip with METADATA, WHEEL and RECORD); sdists carry a
small in-tree PEP 517 backend with no build requirements, so pip can build them with no network.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from packaging.utils import canonicalize_name

Files = Mapping[str, "str | bytes"]


def import_name(name: str) -> str:
    return canonicalize_name(name).replace("-", "_")


def _metadata(
    name: str,
    version: str,
    requires: Sequence[str],
    requires_python: str | None,
    fields: Sequence[str] = (),
) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", *fields]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    # Build backends declare each extra their Requires-Dist markers use (pip ignores an extra
    # a wheel does not declare).
    extras = dict.fromkeys(re.findall(r"extra\s*==\s*['\"]([^'\"]+)['\"]", " ".join(requires)))
    lines += [f"Provides-Extra: {extra}" for extra in extras]
    lines += [f"Requires-Dist: {requirement}" for requirement in requires]
    return "\n".join(lines) + "\n\n"


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def _as_bytes(content: str | bytes) -> bytes:
    return content.encode() if isinstance(content, str) else content


def build_wheel(
    out_dir: Path,
    name: str,
    version: str,
    *,
    tag: str = "py3-none-any",
    files: Files | None = None,
    requires: Sequence[str] = (),
    requires_python: str | None = None,
    data_files: Files | None = None,
    bad_record: bool = False,
    metadata: Sequence[str] = (),
) -> Path:
    """Write ``<name>-<version>-<tag>.whl`` and return its path.

    ``files`` default to one module package ``<name>/__init__.py``; ``data_files`` go under
    ``<name>-<version>.data/`` (e.g. ``{"scripts/tool": "..."}``); ``bad_record`` writes a
    RECORD whose hash for the first file is wrong; ``metadata`` lines (``"License: MIT"``) are
    added to METADATA.
    """
    dist = f"{import_name(name)}-{version}"
    payload = dict(files or {f"{import_name(name)}/__init__.py": f'__version__ = "{version}"\n'})
    payload[f"{dist}.dist-info/METADATA"] = _metadata(
        name, version, requires, requires_python, metadata
    )
    payload[f"{dist}.dist-info/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: chalicepack-tests\nRoot-Is-Purelib: "
        f"{'true' if tag.endswith('-none-any') else 'false'}\nTag: {tag}\n"
    )
    for path, content in (data_files or {}).items():
        payload[f"{dist}.data/{path}"] = content
    record_path = f"{dist}.dist-info/RECORD"
    records = [_record_line(path, _as_bytes(content)) for path, content in payload.items()]
    if bad_record:
        first = next(iter(payload))
        records[0] = _record_line(first, b"not what the file holds")
    payload[record_path] = "\n".join([*records, f"{record_path},,"]) + "\n"

    out_dir.mkdir(parents=True, exist_ok=True)
    wheel_path = out_dir / f"{dist}-{tag}.whl"
    with zipfile.ZipFile(wheel_path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for path, content in payload.items():
            wheel.writestr(path, _as_bytes(content))
    return wheel_path


# A PEP 517 backend small enough to ship inside each test sdist: it copies the sdist's package
# into a wheel, compiling ``ext.c`` into an extension module when the sdist has one.
_BACKEND = textwrap.dedent(
    """
    import base64, hashlib, os, shlex, subprocess, sys, sysconfig, zipfile
    from pathlib import Path

    NAME = {name!r}
    VERSION = {version!r}
    REQUIRES = {requires!r}
    OPTIONAL_EXT = {optional_ext!r}
    UNBUILDABLE = {unbuildable!r}
    LINK_ARGS = {link_args!r}

    def _tag(compiled):
        if not compiled:
            return "py3-none-any"
        python = "cp%d%d" % sys.version_info[:2]
        platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
        return "%s-%s-%s" % (python, python, platform)

    def _compile(package, build_dir):
        # As setuptools does: LDSHARED links (else CC -shared), SETUPTOOLS_EXT_SUFFIX names
        # the module, and _PYTHON_HOST_PLATFORM reaches the tag through sysconfig.
        source = Path("ext.c")
        if not source.exists():
            return None
        suffix = os.environ.get("SETUPTOOLS_EXT_SUFFIX") or sysconfig.get_config_var("EXT_SUFFIX")
        out = Path(build_dir) / ("_speedups" + suffix)
        link = os.environ.get("LDSHARED") or os.environ.get("CC", "cc") + " -shared"
        command = shlex.split(link) + ["-fPIC", "-I" + sysconfig.get_paths()["include"],
                                       str(source), "-o", str(out), *LINK_ARGS]
        subprocess.run(command, check=True)
        return out

    def get_requires_for_build_wheel(config_settings=None):
        if UNBUILDABLE:
            raise ModuleNotFoundError("No module named 'pkg_resources'")
        return []

    def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
        dist_name = "%s-%s.dist-info" % (NAME.replace("-", "_"), VERSION)
        dist_info = Path(metadata_directory) / dist_name
        dist_info.mkdir(parents=True, exist_ok=True)
        (dist_info / "METADATA").write_text(_metadata())
        return dist_info.name

    def _metadata():
        lines = ["Metadata-Version: 2.1", "Name: " + NAME, "Version: " + VERSION]
        lines += ["Requires-Dist: " + r for r in REQUIRES]
        return "\\n".join(lines) + "\\n\\n"

    def _record(path, data):
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        return "%s,sha256=%s,%d" % (path, digest, len(data))

    def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
        package = NAME.replace("-", "_")
        compiled = None
        try:
            compiled = _compile(package, wheel_directory)
        except Exception:
            if not OPTIONAL_EXT:
                raise
        files = {{}}
        for path in sorted(Path(package).rglob("*.py")):
            files[path.as_posix()] = path.read_bytes()
        if compiled is not None:
            files[package + "/" + compiled.name] = compiled.read_bytes()
            compiled.unlink()
        tag = _tag(compiled is not None)
        dist = "%s-%s" % (package, VERSION)
        files[dist + ".dist-info/METADATA"] = _metadata().encode()
        files[dist + ".dist-info/WHEEL"] = (
            "Wheel-Version: 1.0\\nGenerator: test-backend\\nRoot-Is-Purelib: %s\\nTag: %s\\n"
            % ("true" if compiled is None else "false", tag)).encode()
        record = [_record(p, d) for p, d in files.items()] + [dist + ".dist-info/RECORD,,"]
        files[dist + ".dist-info/RECORD"] = ("\\n".join(record) + "\\n").encode()
        name = "%s-%s.whl" % (dist, tag)
        with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as wheel:
            for path, data in files.items():
                wheel.writestr(path, data)
        return name

    # PEP 660, for -e: the editable wheel is a plain copy (enough for what is packaged).
    get_requires_for_build_editable = get_requires_for_build_wheel
    prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel
    build_editable = build_wheel

    def build_sdist(sdist_directory, config_settings=None):
        raise NotImplementedError("test sdists are built by the test suite")
    """
)

_EXT_SOURCE = textwrap.dedent(
    """
    #include <Python.h>
    static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, NULL};
    PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
    """
)


def build_sdist(
    out_dir: Path,
    name: str,
    version: str,
    *,
    files: Files | None = None,
    requires: Sequence[str] = (),
    c_extension: bool = False,
    optional_c_extension: bool = False,
    unbuildable: bool = False,
    ext_source: str | None = None,
    link_args: Sequence[str] = (),
    build_requires: Sequence[str] = (),
) -> Path:
    """Write ``<name>-<version>.tar.gz``, a PEP 517 sdist that builds with no network.

    ``c_extension`` adds ``ext.c``, compiled into ``<name>/_speedups`` (a platform wheel);
    with ``optional_c_extension`` a failed compile (e.g. with ``CC=false``)
    gives a pure wheel instead, like packages whose C speedups are optional. ``unbuildable``
    makes even its metadata fail, like old sdists whose setup.py needs what is gone.
    ``ext_source`` replaces the extension's C source and ``link_args`` are added to its link
    command (e.g. ``-L DIR -lfoo`` to link a library outside the wheel). ``build_requires``
    are its build-system requirements (its backend uses none of them), fetched from the index
    into each build environment.
    """
    package = import_name(name)
    root = f"{package}-{version}"
    members: dict[str, str | bytes] = dict(
        files or {f"{package}/__init__.py": f'__version__ = "{version}"\n'}
    )
    members["pyproject.toml"] = (
        f"[build-system]\nrequires = {json.dumps(list(build_requires))}\n"
        'build-backend = "test_backend"\nbackend-path = ["."]\n'
    )
    members["test_backend.py"] = _BACKEND.format(
        name=name,
        version=version,
        requires=list(requires),
        optional_ext=optional_c_extension,
        unbuildable=unbuildable,
        link_args=list(link_args),
    )
    members["PKG-INFO"] = _metadata(name, version, requires, None)
    if c_extension or optional_c_extension:
        members["ext.c"] = ext_source or _EXT_SOURCE

    return _write_sdist(out_dir, root, members)


def build_shared_library(out_dir: Path, name: str, source: str, zig_target: str) -> Path:
    """Compile C ``source`` into ``<out_dir>/lib<name>.so`` (soname ``lib<name>.so``) with
    chalicepack's own zig for ``zig_target`` (``x86_64-linux-gnu.2.17``): a library outside
    any wheel, for an extension to link."""
    out_dir.mkdir(parents=True, exist_ok=True)
    source_path = out_dir / f"{name}.c"
    source_path.write_text(source)
    library = out_dir / f"lib{name}.so"
    command = [sys.executable, "-m", "ziglang", "cc", "-target", zig_target, "-shared", "-fPIC"]
    command += [f"-Wl,-soname,lib{name}.so", str(source_path), "-o", str(library)]
    subprocess.run(command, check=True, capture_output=True)
    return library


# The project files of an sdist built by a real build backend (fetched from the index into
# its build environment, as for any user): the backend's own configuration and one C
# extension module, ``<package>/_speedups``.
_BACKEND_PROJECTS: dict[str, dict[str, str]] = {
    "scikit-build-core": {
        "requires": '["scikit-build-core"]',
        "build-backend": "scikit_build_core.build",
        "CMakeLists.txt": textwrap.dedent(
            """
            cmake_minimum_required(VERSION 3.15...3.31)
            project(${{SKBUILD_PROJECT_NAME}} LANGUAGES C)
            find_package(Python COMPONENTS Interpreter Development.Module REQUIRED)
            python_add_library(_speedups MODULE ext.c WITH_SOABI)
            install(TARGETS _speedups DESTINATION {package})
            """
        ),
    },
    "meson-python": {
        "requires": '["meson-python"]',
        "build-backend": "mesonpy",
        "meson.build": textwrap.dedent(
            """
            project('{name}', 'c', version: '{version}')
            py = import('python').find_installation(pure: false)
            py.extension_module('_speedups', 'ext.c', install: true, subdir: '{package}')
            py.install_sources('{package}/__init__.py', subdir: '{package}')
            """
        ),
    },
    "maturin": {
        # cffi bindings: maturin builds their Python side with cffi.
        "requires": '["maturin>=1,<2", "cffi"]',
        "build-backend": "maturin",
        "Cargo.toml": textwrap.dedent(
            """
            [package]
            name = "{package}"
            version = "0.1.0"
            edition = "2021"

            [lib]
            name = "_speedups"
            crate-type = ["cdylib"]

            [dependencies]
            """
        ),
        # No pyo3 (its crate would come from crates.io): maturin then takes it for cffi
        # bindings, a C function in a cdylib.
        "src/lib.rs": '#[no_mangle]\npub extern "C" fn answer() -> i32 {{ 42 }}\n',
    },
}


def build_backend_sdist(
    out_dir: Path, name: str, version: str, backend: str, *, ext: str | None = None
) -> Path:
    """Write ``<name>-<version>.tar.gz``, an sdist whose ``backend`` (``scikit-build-core``,
    ``meson-python`` or ``maturin``) builds ``<package>/_speedups`` from C (``ext``, else a
    module with no functions; Rust for maturin), its build requirements coming from the
    index."""
    package = import_name(name)
    project = _BACKEND_PROJECTS[backend]
    values = {"name": name, "version": version, "package": package}
    members: dict[str, str | bytes] = {
        f"{package}/__init__.py": f'__version__ = "{version}"\n',
        "pyproject.toml": (
            f"[build-system]\nrequires = {project['requires']}\n"
            f'build-backend = "{project["build-backend"]}"\n\n'
            f'[project]\nname = "{name}"\nversion = "{version}"\n\n'
            + project.get("tool", "").format(**values)
        ),
        # As these backends write it: static metadata a resolver reads without building.
        "PKG-INFO": _metadata(name, version, (), None).replace("Version: 2.1", "Version: 2.4"),
        "ext.c": ext or _EXT_SOURCE,
    }
    for path, content in project.items():
        if path not in ("requires", "build-backend", "tool"):
            members[path] = content.format(**values)
    return _write_sdist(out_dir, f"{package}-{version}", members)


def _write_sdist(out_dir: Path, root: str, members: Files) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    sdist_path = out_dir / f"{root}.tar.gz"
    with tarfile.open(sdist_path, "w:gz") as sdist:
        for path, content in members.items():
            data = _as_bytes(content)
            info = tarfile.TarInfo(f"{root}/{path}")
            info.size = len(data)
            info.mode = 0o644
            sdist.addfile(info, io.BytesIO(data))
    return sdist_path
