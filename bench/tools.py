"""How each packager is run on a project, and which zips it leaves there.

Every tool targets python3.11 on x86_64: chalicepack by its options, ``chalice package`` by
running under the bench venv's Python 3.11 (Chalice uses the running interpreter's version),
uv by ``--python-version`` and ``--python-platform``.
"""

from __future__ import annotations

import compileall
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bench.apps import App
from bench.measure import Command

Variant = Literal[
    "cold", "warm", "app-change", "req-change", "other-target", "ci-rerun", "ci-moved"
]
VARIANTS: tuple[Variant, ...] = ("cold", "warm", "app-change", "req-change")
# chalicepack only. other-target: after one build for ARCH, each run builds for OTHER_ARCH
# into a new output dir with the same caches (apps built from source only). ci-rerun: after
# one cold build, the project and caches restored by tar elsewhere, rebuilt with no network.
# ci-moved: the same, restored under another path (a CI whose checkout path changes).
OURS_ONLY: tuple[Variant, ...] = ("other-target", "ci-rerun", "ci-moved")

RUNTIME, ARCH, OTHER_ARCH = "python3.11", "x86_64", "arm64"
SITE_PACKAGES = "python/lib/python3.11/site-packages"  # a layer's prefix
# uv knows manylinux_2_17 and _2_28 but not Lambda's python3.11 glibc (2.26). With 2_17 some
# resolved releases have no wheel at all (pandas 3.x ships manylinux_2_24/2_28 only), so the
# lower bound uses 2_28: a speed floor for the same versions, whose compiled wheels may need a
# newer glibc than Lambda's (not a deployable package).
UV_PLATFORM = "x86_64-manylinux_2_28"

# zipfile at deflate level 6 (zip's default), used when the zip program is not installed.
_PYTHON_ZIP = """\
import os, sys, zipfile
out, root = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "a", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
    if os.path.isfile(root):
        archive.write(root, os.path.basename(root))
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            archive.write(path, os.path.relpath(path, root))
"""


@dataclass(frozen=True)
class Toolchain:
    """The executables compared: chalicepack with the repo's venv, the rest from bench/.venv."""

    python: Path  # the repo's .venv Python, with chalicepack's dependencies
    # A copy of src/chalicepack taken when the harness starts (first on PYTHONPATH, ahead of
    # the editable install), so that edits to the working tree during a run do not mix versions.
    source: Path
    chalice: Path
    uv: Path
    bench_python: Path  # Python 3.11: runs chalice, and is the interpreter uv is given
    zip: Path | None  # None: zipfile at level 6 stands in for `zip -r -q`

    @classmethod
    def find(cls, repo: Path, workdir: Path) -> Toolchain:
        bench_bin = repo / "bench" / ".venv" / "bin"
        found = shutil.which("zip")
        source = workdir / "chalicepack-source" / "chalicepack"
        shutil.copytree(
            repo / "src" / "chalicepack", source, ignore=shutil.ignore_patterns("__pycache__")
        )
        # Byte-compiled as `pip install` leaves an installed package (chalice's is), so that no
        # run pays for compiling chalicepack's modules (PYTHONDONTWRITEBYTECODE may be set).
        compileall.compile_dir(source, quiet=1)
        toolchain = cls(
            python=repo / ".venv" / "bin" / "python",
            source=source,
            chalice=bench_bin / "chalice",
            uv=bench_bin / "uv",
            bench_python=bench_bin / "python",
            zip=Path(found) if found else None,
        )
        for path in (toolchain.python, toolchain.chalice, toolchain.uv):
            if not path.exists():
                raise SystemExit(f"{path} is missing: run `make bench`, which sets it up")
        version = subprocess.run(
            [str(toolchain.bench_python), "-c", "import sys; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if version != "(3, 11)":
            raise SystemExit(
                f"{toolchain.bench_python} is Python {version}, not 3.11 (chalice package "
                "targets its own version): remove bench/.venv and run `make bench` again"
            )
        return toolchain

    def chalicepack(self, *args: str, cwd: Path) -> Command:
        """``chalicepack ARGS`` run from the snapshot."""
        argv = (str(self.python), "-m", "chalicepack", *args)
        return Command(argv, cwd, (("PYTHONPATH", str(self.source.parent)),))

    def zip_tree(self, out: Path, root: Path, *, recursive: bool = True) -> Command:
        """Add ``root``'s files (or, not recursive, the file ``root``) to the zip ``out``."""
        if self.zip is None:
            argv = (str(self.bench_python), "-c", _PYTHON_ZIP, str(out), str(root))
            return Command(argv, root if recursive else root.parent)
        if recursive:
            return Command((str(self.zip), "-r", "-q", str(out), "."), root)
        return Command((str(self.zip), "-q", str(out), root.name), root.parent)


@dataclass(frozen=True)
class Resolved:
    """What chalicepack resolved for an app: the lower bound installs exactly this set."""

    pins: tuple[str, ...]  # name==version
    from_source: tuple[str, ...]  # names only available as sdists (built by every tool)


@dataclass(frozen=True)
class Tool:
    name: str
    variants: tuple[Variant, ...]
    commands: Callable[[Toolchain, App, Path, Resolved], list[Command]]
    outputs: Callable[[Path], dict[str, Path]]  # project -> {"deployment"|"layer": zip}
    # Before every run: remove what the tool must not find (the lower bound installs afresh).
    reset: Callable[[Path], None] = lambda project: None
    steps: tuple[str, ...] = ()  # what each command is, when there are several


def zips_in(folder: Path) -> dict[str, Path]:
    zips = {"deployment": folder / "deployment.zip", "layer": folder / "layer-deployment.zip"}
    return {name: path for name, path in zips.items() if path.exists()}


def chalicepack_build(tools: Toolchain, project: Path, out: Path, arch: str = ARCH) -> Command:
    """``chalicepack build`` of ``project`` into ``out`` for RUNTIME on ``arch``."""
    options = ["--stage", "dev", "--out", str(out), "--runtime", RUNTIME, "--arch", arch]
    return tools.chalicepack("build", str(project), *options, cwd=project)


def _chalicepack(tools: Toolchain, app: App, project: Path, resolved: Resolved) -> list[Command]:
    return [chalicepack_build(tools, project, project / "dist")]


def _chalicepack_pip(
    tools: Toolchain, app: App, project: Path, resolved: Resolved
) -> list[Command]:
    """chalicepack with its exact pip resolver only (``--resolver pip``), for comparison."""
    [command] = _chalicepack(tools, app, project, resolved)
    return [Command((*command.argv, "--resolver", "pip"), command.cwd, command.env)]


def _chalice(tools: Toolchain, app: App, project: Path, resolved: Resolved) -> list[Command]:
    argv = [str(tools.chalice), "--project-dir", str(project), "package", "--stage", "dev"]
    return [Command((*argv, str(project / "chalice-out")), project)]


def _lower_bound(tools: Toolchain, app: App, project: Path, resolved: Resolved) -> list[Command]:
    out = project / "lower-bound"
    tree = out / "tree"
    pins = project / "lower-bound-pins.txt"
    pins.write_text("".join(f"{pin}\n" for pin in resolved.pins))
    target = tree / SITE_PACKAGES if app.automatic_layer else tree
    install = [str(tools.uv), "pip", "install", "--quiet", "--python", str(tools.bench_python)]
    install += ["--target", str(target), "--python-platform", UV_PLATFORM]
    install += ["--python-version", "3.11", "--only-binary", ":all:"]
    for name in resolved.from_source:
        install += ["--no-binary", name]
    commands = [Command((*install, "-r", str(pins)), project)]
    dependencies_zip = out / ("layer-deployment.zip" if app.automatic_layer else "deployment.zip")
    commands.append(tools.zip_tree(dependencies_zip, tree))
    commands.append(tools.zip_tree(out / "deployment.zip", project / "app.py", recursive=False))
    return commands


def _reset_lower_bound(project: Path) -> None:
    shutil.rmtree(project / "lower-bound", ignore_errors=True)
    (project / "lower-bound").mkdir()


TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool("chalicepack", (*VARIANTS, *OURS_ONLY), _chalicepack, lambda p: zips_in(p / "dist")),
        # The same builds resolved by pip alone: what --resolver auto (uv) saves.
        Tool(
            "chalicepack-pip",
            ("cold", "req-change"),
            _chalicepack_pip,
            lambda p: zips_in(p / "dist"),
        ),
        Tool("chalice", VARIANTS, _chalice, lambda p: zips_in(p / "chalice-out")),
        # The floor: no resolution beyond pins, no checks; cold and warm (uv's cache) only.
        Tool(
            "uv+zip",
            ("cold", "warm"),
            _lower_bound,
            lambda p: zips_in(p / "lower-bound"),
            _reset_lower_bound,
            ("uv pip install", "zip the tree", "zip app.py"),
        ),
    )
}
