"""Wheels into a site-packages tree: fetched once into a content-addressed store, then
installed with ``installer`` (RECORD verified, ``.data`` mapped, paths validated)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import urlsplit
from urllib.request import url2pathname

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.exceptions import InstallerError
from installer.sources import WheelFile
from installer.utils import SCHEME_NAMES

from . import __version__
from .errors import BadInput, BuildFailure
from .pip import redact, run_pip
from .resolve import Distribution
from .target import Target

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent builds must not share a cache
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InstalledDistribution:
    distribution: Distribution
    wheel: Path
    files: tuple[str, ...]  # paths relative to site-packages
    unpacked_size: int


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheels(
    distributions: Iterable[Distribution],
    target: Target,
    *,
    store: Path,
    cache_dir: Path | None,
    index_options: Sequence[str] = (),
) -> dict[str, Path]:
    """The wheel file of each distribution (by name), downloading only what the store lacks.

    Downloads ask the index again for ``name==version`` with the file's hash rather than
    fetching the file's URL: pip then authenticates exactly as it did while resolving
    (credentials live in the index URL, not in the file links).
    """
    wheels: dict[str, Path] = {}
    to_download: list[Distribution] = []
    for distribution in distributions:
        cached = _stored(store, distribution)
        if cached is not None:
            wheels[distribution.name] = cached
        elif distribution.url.startswith("file:"):
            local = Path(url2pathname(urlsplit(distribution.url).path))
            wheels[distribution.name] = _keep(local, distribution, store, move=False)
        else:
            to_download.append(distribution)
    if to_download:
        wheels.update(_download(to_download, target, store, cache_dir, index_options))
    return wheels


def stored_sha256(wheel: Path) -> str:
    """The sha256 of a wheel ``fetch_wheels`` returned: its content address in the store
    (``<sha256>/<file>``), verified when it was fetched or taken from the store."""
    return wheel.parent.name


def _stored(store: Path, distribution: Distribution) -> Path | None:
    """The stored wheel, verified against its content address; a damaged one is removed."""
    if distribution.sha256 is None:
        return None
    path = store / distribution.sha256 / distribution.filename
    if not path.is_file():
        return None
    if file_sha256(path) != distribution.sha256:
        log.warning("%s in the cache is damaged (its sha256 changed); fetching it again", path)
        path.unlink(missing_ok=True)
        return None
    return path


def _download(
    distributions: list[Distribution],
    target: Target,
    store: Path,
    cache_dir: Path | None,
    index_options: Sequence[str],
) -> dict[str, Path]:
    store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=store, prefix=".download-") as scratch:
        pins = Path(scratch) / "pins.txt"
        pins.write_text("".join(f"{_pinned(d)}\n" for d in distributions))
        destination = Path(scratch) / "wheels"
        args = ["download", "--no-deps", "--only-binary", ":all:", *target.pip_options()]
        args += [*index_options, "--dest", str(destination), "-r", str(pins)]
        result = run_pip(args, cache_dir=cache_dir)
        if not result.ok:
            raise BuildFailure(f"could not download wheels:\n{result.tail()}")
        return {d.name: _keep(destination / d.filename, d, store) for d in distributions}


def _pinned(distribution: Distribution) -> str:
    if distribution.is_direct:
        return f"{distribution.name} @ {distribution.url}"
    if distribution.by_url and distribution.sha256 is not None:
        return f"{distribution.name} @ {distribution.url} --hash=sha256:{distribution.sha256}"
    if distribution.sha256 is None:
        return distribution.pin
    return f"{distribution.pin} --hash=sha256:{distribution.sha256}"


def _keep(downloaded: Path, distribution: Distribution, store: Path, move: bool = True) -> Path:
    if not downloaded.is_file():
        raise BuildFailure(f"pip did not download {distribution.filename}")
    digest = file_sha256(downloaded)
    if distribution.sha256 is not None and digest != distribution.sha256:
        raise BuildFailure(
            f"{distribution.filename} from {redact(distribution.url)} has sha256 {digest}, "
            f"but the index announced {distribution.sha256}; the index or a proxy is corrupt"
        )
    final = store / digest / distribution.filename
    final.parent.mkdir(parents=True, exist_ok=True)
    if not move:
        copy = final.with_name(f".{final.name}.{os.getpid()}")
        shutil.copyfile(downloaded, copy)
        downloaded = copy
    os.replace(downloaded, final)  # atomic: a concurrent build sees all of the file or none
    return final


def install_wheels(
    wheels: dict[str, Path], distributions: Iterable[Distribution], site_packages: Path
) -> list[InstalledDistribution]:
    """Install each wheel into ``site_packages``; data, scripts and headers are not shipped."""
    discard = site_packages.parent / "not-shipped"
    scheme: dict[str, str] = {name: str(discard / name) for name in SCHEME_NAMES}
    scheme["purelib"] = scheme["platlib"] = str(site_packages)
    destination = SchemeDictionaryDestination(
        scheme, interpreter="/var/lang/bin/python", script_kind="posix"
    )
    installed = []
    for distribution in distributions:
        wheel = wheels[distribution.name]
        installed.append(_install_one(wheel, distribution, destination, site_packages))
    return installed


def _install_one(
    wheel: Path,
    distribution: Distribution,
    destination: SchemeDictionaryDestination,
    site_packages: Path,
) -> InstalledDistribution:
    _refuse_paths_outside(wheel)
    try:
        with WheelFile.open(wheel) as source, warnings.catch_warnings():
            # installer warns (RuntimeWarning) for each .pyc a wheel carries and skips it, as
            # we want: say so in the debug log, not as a raw warning on stderr.
            warnings.filterwarnings("ignore", message="Skip installing", category=RuntimeWarning)
            source.validate_record()
            install(source, destination, additional_metadata={})
    except FileExistsError as error:
        raise BadInput(
            f"{wheel.name} would overwrite {error.filename}, installed by another "
            "dependency; two requirements ship the same file"
        ) from error
    except (InstallerError, ValueError) as error:
        # RECORD mismatches, paths outside site-packages (../, absolute): refused by installer.
        raise BadInput(
            f"{wheel.name} is not a valid wheel: {error}; it was refused and nothing of it"
            " ships: replace or remove the requirement that brings it in"
        ) from error
    except OSError as error:
        raise BuildFailure(f"cannot install {wheel.name}: {error}") from error
    # What the wheel put in site-packages: its shipped members and the RECORD installer wrote
    # (walking the whole tree after each wheel would cost time quadratic in its size).
    record = f"{source.dist_info_dir}/RECORD"
    candidates = [*shipped_members(wheel), record]
    files = sorted(name for name in candidates if (site_packages / name).is_file())
    size = sum((site_packages / name).stat().st_size for name in files)
    return InstalledDistribution(distribution, wheel, tuple(files), size)


def _refuse_paths_outside(wheel: Path) -> None:
    """Refuse, naming it, a member that would land outside site-packages (a "zip slip":
    ``../`` or an absolute path). ``installer`` refuses them too, less clearly."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as error:
        raise BadInput(f"{wheel.name} is not a valid wheel: {error}") from error
    for name in names:
        path = PurePosixPath(name.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or PureWindowsPath(name).drive:
            raise BadInput(
                f"{wheel.name} is not a valid wheel: it holds {name!r}, a path outside"
                " site-packages; it was refused and nothing of it was written: replace or"
                " remove the requirement that brings it in"
            )


@dataclass(frozen=True)
class InstalledTree:
    """An installed site-packages tree, possibly one an earlier build left in the cache."""

    site_packages: Path
    unpacked_sizes: dict[str, int]  # by distribution name
    reused: bool


_TREE_RECORD = "installed.json"
_TREES_KEPT = 5


def install_tree(
    wheels: dict[str, Path], distributions: Sequence[Distribution], trees: Path, target: Target
) -> InstalledTree:
    """The installed tree of these wheels: reused from ``trees`` when the same wheels were
    installed for the same target before (and the tree is intact), else installed there."""
    key = _tree_key(wheels, distributions, target)
    final = trees / key
    trees.mkdir(parents=True, exist_ok=True)
    # One build at a time checks, replaces or prunes trees: another build may be zipping
    # from the tree that a check made before its rename would find missing or damaged.
    with _locked(trees / ".lock"):
        return _install_tree_locked(wheels, distributions, trees, final)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` for this process (released if it dies, even by SIGKILL)."""
    with path.open("a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _install_tree_locked(
    wheels: dict[str, Path], distributions: Sequence[Distribution], trees: Path, final: Path
) -> InstalledTree:
    reused = _intact_tree(final)
    if reused is not None:
        os.utime(final / _TREE_RECORD)  # recently used trees survive pruning
        return InstalledTree(final / "site-packages", reused, reused=True)
    if final.exists():  # damaged or half-pruned: never reuse it
        shutil.rmtree(final, ignore_errors=True)
    for stale in trees.glob(".tree-*"):  # left by a killed build (a live one holds the lock)
        shutil.rmtree(stale, ignore_errors=True)
    scratch = Path(tempfile.mkdtemp(dir=trees, prefix=".tree-"))
    try:
        installed = install_wheels(wheels, distributions, scratch / "site-packages")
        sizes = {item.distribution.name: item.unpacked_size for item in installed}
        _write_tree_record(scratch, sizes)
        try:
            os.rename(scratch, final)
        except OSError:  # a concurrent build installed the same tree first: use that one
            shutil.rmtree(scratch, ignore_errors=True)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    _prune(trees, keep=final)
    return InstalledTree(final / "site-packages", sizes, reused=False)


def _tree_key(
    wheels: dict[str, Path], distributions: Sequence[Distribution], target: Target
) -> str:
    digest = hashlib.sha256(f"{__version__}\0{target.runtime}\0{target.arch}".encode())
    for distribution in sorted(distributions, key=lambda d: d.name):
        wheel = wheels[distribution.name]
        digest.update(f"\0{distribution.name}\0{wheel.name}\0{stored_sha256(wheel)}".encode())
    return digest.hexdigest()


def _write_tree_record(tree: Path, sizes: dict[str, int]) -> None:
    site_packages = tree / "site-packages"
    files = {
        path.relative_to(site_packages).as_posix(): path.stat().st_size
        for path in sorted(site_packages.rglob("*"))
        if path.is_file()
    }
    record = {"unpacked_sizes": sizes, "files": files}
    (tree / _TREE_RECORD).write_text(json.dumps(record), encoding="utf-8")


def _intact_tree(tree: Path) -> dict[str, int] | None:
    """The record of a cached tree whose files are all there with their sizes, else None."""
    try:
        record = json.loads((tree / _TREE_RECORD).read_text(encoding="utf-8"))
        site_packages = tree / "site-packages"
        for name, size in record["files"].items():
            if (site_packages / name).stat().st_size != size:
                return None
        actual = sum(1 for path in site_packages.rglob("*") if path.is_file())
        if actual != len(record["files"]):
            return None
        sizes: dict[str, int] = record["unpacked_sizes"]
        return sizes
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _prune(trees: Path, keep: Path) -> None:
    """Keep the most recently used trees; an hour's grace covers builds still reading one."""
    records = sorted(
        trees.glob(f"*/{_TREE_RECORD}"), key=lambda path: path.stat().st_mtime, reverse=True
    )
    for record in records[_TREES_KEPT:]:
        tree = record.parent
        if tree != keep and time.time() - record.stat().st_mtime > 3600:
            shutil.rmtree(tree, ignore_errors=True)


def shipped_members(wheel: Path) -> dict[str, zipfile.ZipInfo]:
    """The wheel's members that land in site-packages unchanged, by their path there.

    ``installer`` writes root members and ``.data/purelib`` / ``.data/platlib`` members
    byte for byte; it rewrites RECORD, and the other ``.data`` schemes do not ship.
    """
    with zipfile.ZipFile(wheel) as archive:
        infos = archive.infolist()
    members = {}
    for info in infos:
        name = info.filename
        if name.endswith("/"):
            continue
        top, _, rest = name.partition("/")
        if top.endswith(".data"):
            scheme, _, path = rest.partition("/")
            if scheme in ("purelib", "platlib") and path:
                members[path] = info
        elif not (top.endswith(".dist-info") and rest == "RECORD"):
            members[name] = info
    return members
