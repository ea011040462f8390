"""Stage exactly what ships, as Lambda lays it out, and import the app from it.

The function's files go in one directory (``/var/task``), the layer's in another
(``/opt/python``); links, not copies, so staging costs little. When the installed dependency
tree can stand on ``sys.path`` as it is (see ``_apart_from_tree``), its files are not staged
at all. What Lambda's runtime provides comes from this host's copies (``lambda_env``), and
bytecode is cached under the cache's ``pycache``, never beside what ships.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from chalicepack.deps.install import VirtualFile, materialize
from chalicepack.deps.treecheck import refuse_damaged_tree
from chalicepack.errors import AppImportError
from chalicepack.importcheck.check import ImportCheck as CheckedImport
from chalicepack.importcheck.check import (
    WaitingChild,
    WheelMember,
    bytecode_mirror,
    check_app_import,
)
from chalicepack.inputs.names import function_name_warnings
from chalicepack.lambda_env import RUNTIME_PROVIDED
from chalicepack.package.archive import ZipEntry
from chalicepack.package.uptodate import BuildInputs
from chalicepack.report import Function, ImportCheck

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shipped:
    """What the zips hold: the app's entries and the libraries' (dependencies and vendor
    files), and the installed tree the dependency entries come from, with its virtual files
    (``InstalledTree.virtual``)."""

    app: Sequence[ZipEntry]
    libraries: Sequence[ZipEntry]
    automatic_layer: bool
    site_packages: Path
    not_installed: tuple[str, ...] = ()  # name==version of the distributions left missing
    virtual: Mapping[str, VirtualFile] = field(default_factory=dict)

    @property
    def function(self) -> list[ZipEntry]:
        return [*self.app] if self.automatic_layer else [*self.app, *self.libraries]


@dataclass(frozen=True)
class ShippedImport:
    check: ImportCheck  # what the report says of the import
    stand_ins: tuple[str, ...]  # modules left out as this interpreter cannot load them


def import_shipped(
    shipped: Shipped, inputs: BuildInputs, workdir: Path, waiting: WaitingChild | None = None
) -> ShippedImport:
    """Import the app from exactly what ships, as Lambda lays it out; list its functions
    (``waiting``: the check's child, started ahead).

    The installed tree's virtual files (its ``.py`` files left in their wheels, see
    ``deps.install``) are served from the wheels. What differs: a dependency that looks for
    its own ``.py`` files on disk at import (``os.listdir`` of its folder, ``os.path.exists``,
    ``importlib.resources`` on a ``.py`` file) does not find them. So when that import fails,
    the files are written and the app is imported again; only that second result counts, and
    leaving files unwritten can never fail a build.
    """
    cache_dir = inputs.cache_dir
    parents = [cache_dir / "trees", cache_dir / "runtime-provided"]
    _drop_unused_bytecode(cache_dir / "pycache", parents)
    log.info("importing app.py as Lambda would (AWS_CHALICE_CLI_MODE=true, stage environment)")
    checked = _checked_import(shipped, inputs, workdir, waiting)
    _log_app_output(checked.output)
    for warning in checked.warnings:
        log.warning("%s", warning)
    config = inputs.config
    if checked.app_name and checked.app_name != config.app_name:
        log.warning(
            "app.py names the app %r but %s says %r; Chalice names resources after config.json",
            checked.app_name, config.path, config.app_name,
        )  # fmt: skip
    for warning in function_name_warnings(config, [(f.name, f.kind) for f in checked.functions]):
        log.warning("%s", warning)
    functions = tuple(Function(f.name, f.handler, f.kind) for f in checked.functions)
    return ShippedImport(ImportCheck(checked.app_name, functions), checked.stand_ins)


def _checked_import(
    shipped: Shipped, inputs: BuildInputs, workdir: Path, waiting: WaitingChild | None
) -> CheckedImport:
    """The import check, the installed tree's virtual files served from their wheels; if it
    fails, then again once they are written (see ``import_shipped``)."""
    task, layer, dependencies = _staged(shipped, workdir / "import")
    # (When every file is staged, the virtual ones were written first: none is served.)
    served = wheel_members(shipped.virtual) if dependencies is not None else {}
    try:
        return _check(inputs, shipped, (task, layer, dependencies), served, waiting)
    except AppImportError as error:
        # A timeout is not for want of a file: importing again would only wait as long again.
        if not served or error.timed_out:
            _refuse(error, shipped, inputs.cache_dir)
        log.debug("importing app.py with the dependencies' .py files served from their wheels"
                  " failed (%s): writing them and importing it again", error)  # fmt: skip
    materialize(shipped.site_packages, shipped.virtual)
    task, layer, dependencies = _staged(shipped, workdir / "import-again")
    try:
        return _check(inputs, shipped, (task, layer, dependencies), {}, None)
    except AppImportError as error:
        _refuse(error, shipped, inputs.cache_dir)


def wheel_members(virtual: Mapping[str, VirtualFile]) -> dict[str, WheelMember]:
    """Where the import check reads the installed tree's virtual files, by path in it."""
    return {
        path: WheelMember(
            item.wheel,
            item.member,
            item.size,
            item.mtime,
            item.offset,
            item.method,
            item.compressed,
            item.crc,
        )
        for path, item in virtual.items()
    }


def _refuse(error: AppImportError, shipped: Shipped, cache_dir: Path) -> NoReturn:
    """Raise the import check's ``error``, or a BuildFailure when the installed tree the app
    was imported from is damaged: the cache's fault, not the app's."""
    _log_app_output(error.output)
    refuse_damaged_tree(shipped.site_packages, cache_dir)
    raise error


def _check(
    inputs: BuildInputs,
    shipped: Shipped,
    staged: tuple[Path, Path | None, Path | None],
    served: Mapping[str, WheelMember],
    waiting: WaitingChild | None,
) -> CheckedImport:
    """``check_app_import`` of what ``_staged`` staged (function tree, layer, installed tree)."""
    task, layer, dependencies = staged
    cache_dir = inputs.cache_dir
    return check_app_import(
        task,
        layer,
        inputs.config.environment_variables,
        target_python=inputs.target.python_version,
        target_machine=inputs.target.machine,
        project_root=inputs.project.root,
        timeout=inputs.options.import_timeout,
        runtime_provided=_runtime_provided(cache_dir / "runtime-provided"),
        dependencies=dependencies,
        bytecode_cache=cache_dir / "pycache",
        waiting=waiting,
        not_installed=shipped.not_installed,
        served_from_wheels=served,
    )


def _staged(shipped: Shipped, staging: Path) -> tuple[Path, Path | None, Path | None]:
    """The function's directory, the layer's (if any) and the installed tree to put on
    ``sys.path`` as it is (None when every file is staged: its virtual files are written
    then, to be linked)."""
    beside = [] if shipped.automatic_layer else shipped.app  # what shares libraries' directory
    vendor = _apart_from_tree(shipped.libraries, shipped.site_packages, beside, shipped.virtual)
    if vendor is None and shipped.virtual:
        materialize(shipped.site_packages, shipped.virtual)
    if vendor is None:  # stage every file, as Lambda unzips them
        dependencies = None
        function_entries = shipped.function
        layer_entries = list(shipped.libraries) if shipped.automatic_layer else []
    else:  # the installed tree is on sys.path itself, after the files staged beside it
        dependencies = shipped.site_packages
        function_entries = [*shipped.app] if shipped.automatic_layer else [*shipped.app, *vendor]
        layer_entries = vendor if shipped.automatic_layer else []
    task = _link_tree(staging / "task", function_entries)
    layer = _link_tree(staging / "layer", layer_entries) if layer_entries else None
    return task, layer, dependencies


def _apart_from_tree(
    library: Sequence[ZipEntry],
    site_packages: Path,
    beside: Sequence[ZipEntry],
    virtual: Mapping[str, object],
) -> list[ZipEntry] | None:
    """The library entries that are not the installed tree's files, when the others are all
    of that tree's files and the tree can go on ``sys.path`` as it is, after a directory of
    them and ``beside``: else None, and every file is staged.

    On Lambda they all lie in one directory. Two directories find the same modules when no
    top-level name (``x`` of ``x/``, ``x.py``, ``x.cpython-311-x86_64-linux-gnu.so``,
    ``x-1.0.dist-info``) is in both: an import then finds what it would in the merged
    directory, in whichever of the two holds that name. A vendor file replacing a dependency's,
    a file ``--exclude`` left out, or an empty directory (no zip holds it) rule the tree out.
    What stays apart: without a layer, a dependency's file is not in the working directory
    (``/var/task``) as on Lambda, so a relative path to one (``open("dep/data.json")``) fails.
    """
    prefix = f"{site_packages}{os.sep}"
    shipped: set[str] = set()
    apart: list[ZipEntry] = []
    for entry in library:
        if str(entry.source) == prefix + entry.arcname.replace("/", os.sep):
            shipped.add(entry.arcname)
        else:
            apart.append(entry)
    if not shipped or shipped != _files_below(site_packages, virtual):
        return None
    names = {_top_level_name(arcname) for arcname in shipped}
    if any(_top_level_name(entry.arcname) in names for entry in [*apart, *beside]):
        return None
    return apart


def _files_below(root: Path, virtual: Iterable[str]) -> set[str] | None:
    """The paths of the files below ``root``, relative to it, with its ``virtual`` ones (not
    on disk, or written since); None if a directory is empty (no file, virtual or not)."""
    found = set(virtual)
    holding = {path.rpartition("/")[0] for path in found}  # the folders of virtual files
    top = str(root)
    for directory, subdirectories, files in os.walk(top):
        below = directory[len(top) + 1 :].replace(os.sep, "/")  # os.walk joins onto ``top``
        if not files and not subdirectories and below not in holding:
            return None
        found.update(f"{below}/{name}" if below else name for name in files)
    return found


def _top_level_name(arcname: str) -> str:
    # casefold: a case-insensitive file system finds X.py for `import x`.
    return re.split(r"[.-]", arcname.split("/", 1)[0], maxsplit=1)[0].casefold()


def _drop_unused_bytecode(bytecode: Path, parents: Sequence[Path]) -> None:
    """Drop the cached bytecode of the directories ``parents`` no longer hold: installed
    trees pruned from the cache, runtime link sets of another chalicepack installation."""
    for parent in parents:
        try:
            mirrored = list(bytecode_mirror(bytecode, parent).iterdir())
        except OSError:
            continue  # nothing cached there yet
        for mirror in mirrored:
            if not (parent / mirror.name).is_dir():
                shutil.rmtree(mirror, ignore_errors=True)


def _link_tree(root: Path, entries: Iterable[ZipEntry]) -> Path:
    """A directory holding ``entries`` at their zip paths, as symlinks to their sources."""
    root.mkdir(parents=True)
    made = {root}
    for entry in entries:
        link = root / entry.arcname
        if link.parent not in made:
            link.parent.mkdir(parents=True, exist_ok=True)
            made.add(link.parent)
        # Sources are absolute already (project files resolved, the cached tree's own paths).
        os.symlink(entry.source, link)
    return root


def _runtime_provided(parent: Path) -> Path:
    """A directory of links to this host's copies of what Lambda's runtime provides. It stays
    in the cache, named after where the links point, so that their bytecode is cached too."""
    import importlib.util

    links = {}
    for name in RUNTIME_PROVIDED.values():
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        links[source.name] = str(source)
    root = parent / hashlib.sha256(json.dumps(links, sort_keys=True).encode()).hexdigest()[:16]
    if _links_in_place(root, links):
        return root
    parent.mkdir(parents=True, exist_ok=True)
    for other in parent.iterdir():  # those of chalicepack installations since removed
        if not other.name.startswith(".") and not all(x.exists() for x in other.iterdir()):
            shutil.rmtree(other, ignore_errors=True)
    scratch = Path(tempfile.mkdtemp(dir=parent, prefix=".links-"))
    for name, target in links.items():
        (scratch / name).symlink_to(target)
    try:
        os.rename(scratch, root)  # all links at once, or none: concurrent builds read them
    except OSError:
        if _links_in_place(root, links):  # a concurrent build made the same links first
            shutil.rmtree(scratch, ignore_errors=True)
            return root
        shutil.rmtree(root, ignore_errors=True)  # someone changed them
        os.rename(scratch, root)
    return root


def _links_in_place(root: Path, links: Mapping[str, str]) -> bool:
    try:
        return sorted(os.listdir(root)) == sorted(links) and all(
            os.readlink(root / name) == target for name, target in links.items()
        )
    except OSError:
        return False


def _log_app_output(output: str) -> None:
    for line in output.splitlines():
        log.info("app: %s", line)
