"""Wheels into a site-packages tree: fetched once into a content-addressed store, then
installed with ``installer`` (RECORD verified, ``.data`` mapped, paths validated).

A tree in the cache leaves its ``.py`` files in the wheels (``VirtualFile``: checked against
RECORD, not written; its record lists them), since creating thousands of small files is most
of an install's time and the zips copy those members from the wheels anyway. The import check
serves them from the wheels; ``materialize`` writes them when a real file is needed (see
``importcheck.staging``)."""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import io
import itertools
import json
import logging
import os
import shutil
import stat
import tempfile
import time
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from urllib.parse import urlsplit
from urllib.request import url2pathname

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.exceptions import InstallerError
from installer.records import Hash, RecordEntry, parse_record_file
from installer.scripts import Script
from installer.sources import WheelFile
from installer.utils import SCHEME_NAMES, Scheme, copyfileobj_with_hashing

from chalicepack import __version__
from chalicepack.deps.deadline import Deadline
from chalicepack.deps.fetch import Network, fetch_into_store, fetchable
from chalicepack.deps.pip import redact, run_pip
from chalicepack.deps.pip_resolver import Distribution
from chalicepack.errors import BadInput, BuildFailure
from chalicepack.inputs.target import Target
from chalicepack.package.archive import raw_copyable
from chalicepack.package.digest import DigestRecord, file_sha256

if TYPE_CHECKING:
    from installer.scripts import ScriptSection

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent builds must not share a cache
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VirtualFile:
    """A ``.py`` file of an installed tree left in its wheel: its bytes were checked against the
    wheel's RECORD when the tree was installed, and the zips copy the member from the wheel, so
    only the import check reads it (served from the wheel, see ``importcheck/_child.py``). It
    is written when a real file is needed (``materialize``)."""

    wheel: Path  # in the store
    member: str
    size: int
    mtime: int  # the member's zip date (UTC): cached bytecode stays valid once it is written
    executable: bool
    hash: str  # RECORD's ``name=value``, checked again when it is written
    # Where its bytes are in the wheel (read there without ``zipfile``; see ``raw_copyable``):
    offset: int  # of its local header
    method: int  # stored or deflated
    compressed: int  # its compressed size
    crc: int


@dataclass(frozen=True)
class InstalledDistribution:
    distribution: Distribution
    wheel: Path
    files: tuple[str, ...]  # paths relative to site-packages, virtual ones too
    unpacked_size: int
    virtual: tuple[tuple[str, VirtualFile], ...] = ()  # not written (``install_wheels(lazy)``)


def fetch_wheels(
    distributions: Iterable[Distribution],
    target: Target,
    *,
    store: Path,
    cache_dir: Path | None,
    index_options: Sequence[str] = (),
    deadline: Deadline | None = None,
) -> dict[str, Path]:
    """The wheel file of each distribution (by name), downloading only what the store lacks
    (before ``deadline``, if given).

    Files uv picked are fetched by their URLs (``fetch``). pip downloads those it resolved
    by asking the index again for ``name==version`` with the file's hash rather than
    fetching the file's URL: pip then authenticates exactly as it did while resolving
    (credentials live in the index URL, not in the file links).
    """
    wheels: dict[str, Path] = {}
    to_download: list[Distribution] = []
    record = DigestRecord(store / _STORE_DIGESTS)
    for distribution in distributions:
        cached = _stored(store, distribution, record)
        if cached is not None:
            wheels[distribution.name] = cached
        elif distribution.url.startswith("file:"):
            local = Path(url2pathname(urlsplit(distribution.url).path))
            wheels[distribution.name] = _keep(local, distribution, store, move=False)
        else:
            to_download.append(distribution)
    record.save()
    # What uv picked is fetched by URL here; pip downloads the rest as it resolved them.
    picked = [d for d in to_download if fetchable(d)]
    if picked:
        network = Network.from_environment(os.environ, index_options)
        wheels.update(fetch_into_store(picked, store, network, deadline))
    by_pip = [d for d in to_download if not fetchable(d)]
    if by_pip:
        wheels.update(_download(by_pip, target, store, cache_dir, index_options, deadline))
    return wheels


# Verified digests of stored wheels: a wheel whose stat is unchanged since it was hashed is
# not hashed again on every build (see ``digest``).
_STORE_DIGESTS = "digests.json"


def stored_sha256(wheel: Path) -> str:
    """The sha256 of a wheel ``fetch_wheels`` returned: its content address in the store
    (``<sha256>/<file>``), verified when it was fetched or taken from the store."""
    return wheel.parent.name


def _stored(store: Path, distribution: Distribution, record: DigestRecord) -> Path | None:
    """The stored wheel, verified against its content address; a damaged one is removed."""
    if distribution.sha256 is None:
        return None
    path = store / distribution.sha256 / distribution.filename
    if not path.is_file():
        return None
    if record.sha256(path) != distribution.sha256:
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
    deadline: Deadline | None,
) -> dict[str, Path]:
    store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=store, prefix=".download-") as scratch:
        pins = Path(scratch) / "pins.txt"
        pins.write_text("".join(f"{_pinned(d)}\n" for d in distributions))
        destination = Path(scratch) / "wheels"
        args = ["download", "--no-deps", "--only-binary", ":all:", *target.pip_options()]
        args += [*index_options, "--dest", str(destination), "-r", str(pins)]
        result = run_pip(args, cache_dir=cache_dir, deadline=deadline)
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
    wheels: dict[str, Path],
    distributions: Iterable[Distribution],
    site_packages: Path,
    *,
    lazy: bool = False,
) -> list[InstalledDistribution]:
    """Install each wheel into ``site_packages``; data, scripts and headers are not shipped.
    ``lazy``: the ``.py`` files the zips copy from the wheels are checked but not written
    (``VirtualFile``): creating thousands of small files is most of an install's time.

    Every wheel is checked before anything is written: its paths, its RECORD's listing, and
    that no two wheels ship one file. Then the wheels are installed side by side (inflating,
    hashing and writing release the GIL), each member inflated once: its RECORD hash is
    checked on the bytes as they are written. The error raised is the first wheel's, in the
    order of their file names, whichever thread finds its own first.
    """
    distributions = list(distributions)
    ordered = sorted(distributions, key=lambda d: wheels[d.name].name)
    plans = []
    files: dict[str, Path] = {}  # site-packages path -> the wheel that ships that file
    folders: dict[str, Path] = {}  # site-packages folder -> the first wheel that needs it
    for distribution in ordered:
        plan = _plan(wheels[distribution.name], distribution)
        _refuse_collisions(plan, files, folders)
        plans.append(plan)
    try:
        # Made here, parents first: threads making a shared folder at once would collide.
        for folder in [".", *sorted(folders)]:
            os.makedirs(os.path.join(site_packages, folder), exist_ok=True)
    except OSError as error:
        raise BuildFailure(f"cannot install into {site_packages}: {error}") from error
    discard = site_packages.parent / "not-shipped"
    scheme: dict[str, str] = {name: str(discard / name) for name in SCHEME_NAMES}
    scheme["purelib"] = scheme["platlib"] = str(site_packages)
    umask = os.umask(0)  # installer reads it this way for each executable: not from threads
    os.umask(umask)
    installed = {}
    with warnings.catch_warnings():
        # installer warns (RuntimeWarning) for each .pyc a wheel carries and skips it, as we
        # want. Filtered here, not in the threads: the filters are the whole process's.
        warnings.filterwarnings("ignore", message="Skip installing", category=RuntimeWarning)
        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            # Biggest first: the wheels left to start last are the quickest to install.
            by_size = sorted(plans, key=lambda plan: plan.size, reverse=True)
            futures = {p.wheel: pool.submit(_install_one, p, scheme, umask, lazy) for p in by_size}
            try:
                for plan in plans:  # in order: the first failure raises
                    installed[plan.distribution.name] = futures[plan.wheel].result()
            except BaseException:
                pool.shutdown(cancel_futures=True)  # and wait for those already writing
                raise
    return [installed[d.name] for d in distributions]


_WORKERS = min(4, os.cpu_count() or 1)


@dataclass(frozen=True)
class _Plan:
    """A wheel checked before anything of it is written, and what it will write."""

    distribution: Distribution
    wheel: Path
    size: int  # of the wheel file
    expected: dict[str, RecordEntry]  # the wheel's RECORD, by member
    paths: list[str]  # the files it writes in site-packages, sorted


def _plan(wheel: Path, distribution: Distribution) -> _Plan:
    try:
        archive = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as error:
        raise BadInput(f"{wheel.name} is not a valid wheel: {error}") from error
    with archive:
        infos = archive.infolist()
        _refuse_paths_outside(wheel, [info.filename for info in infos])
        with _as_wheel_errors(wheel):
            source = WheelFile(archive)
            try:
                source.validate_record(validate_contents=False)  # reads RECORD only
            except Exception:
                # Refused with the message builds have always given, which also names
                # members whose bytes differ: installer's, from the full check.
                source.validate_record()
                raise
            rows = {
                row[0]: row
                for row in parse_record_file(source.read_dist_info("RECORD").splitlines())
            }
            record = f"{source.dist_info_dir}/RECORD"
    # validate_record accepted the rows of every member: they parse.
    expected = {
        info.filename: RecordEntry.from_elements(*rows[info.filename])
        for info in infos
        if info.filename in rows
    }
    # installer skips what a wheel holds in __pycache__ folders (and says so in a warning).
    shipped = (path for path, _ in _shipped(infos) if "__pycache__" not in path.split("/")[:-1])
    paths = sorted([*shipped, record])
    return _Plan(distribution, wheel, wheel.stat().st_size, expected, paths)


@contextlib.contextmanager
def _as_wheel_errors(wheel: Path) -> Iterator[None]:
    """installer's and zipfile's errors about ``wheel`` as ours: a bad wheel is bad input
    (exit 2, naming it), a file system failure an outside one (exit 1)."""
    try:
        yield
    except FileExistsError as error:
        raise BadInput(
            f"{wheel.name} would overwrite {error.filename}, installed by another "
            "dependency; two requirements ship the same file"
        ) from error
    except (InstallerError, ValueError) as error:
        raise _refused(wheel, error) from error
    except zipfile.BadZipFile as error:  # a member whose CRC is wrong
        raise BadInput(f"{wheel.name} is not a valid wheel: {error}") from error
    except OSError as error:
        raise BuildFailure(f"cannot install {wheel.name}: {error}") from error


def _refused(wheel: Path, error: Exception) -> BadInput:
    # RECORD mismatches, paths outside site-packages (../, absolute): refused by installer.
    return BadInput(
        f"{wheel.name} is not a valid wheel: {error}; it was refused and nothing of it"
        " ships: replace or remove the requirement that brings it in"
    )


def _refuse_collisions(plan: _Plan, files: dict[str, Path], folders: dict[str, Path]) -> None:
    """Refuse a file of ``plan``'s wheel that another wheel (or the same one) also ships,
    or that is a folder another needs, or the reverse; then record its files and folders."""
    for path in plan.paths:
        parents = list(itertools.accumulate(path.split("/")[:-1], lambda a, b: f"{a}/{b}"))
        clash = next((name for name in [path, *parents] if name in files), None)
        if clash is None and path in folders:
            clash = path
        if clash is not None:
            earlier = files.get(clash) or folders[clash]
            if earlier == plan.wheel:
                raise BadInput(
                    f"{plan.wheel.name} is not a valid wheel: two of its members install as"
                    f" {clash}; it was refused and nothing of it ships: replace or remove the"
                    " requirement that brings it in"
                )
            raise BadInput(
                f"{plan.wheel.name} would overwrite {clash}, installed by another dependency"
                f" ({earlier.name}); two requirements ship the same file"
            )
        files[path] = plan.wheel
        for folder in parents:
            folders.setdefault(folder, plan.wheel)


def _install_one(
    plan: _Plan, scheme: dict[str, str], umask: int, lazy: bool
) -> InstalledDistribution:
    wheel = plan.wheel
    destination = _CheckingDestination(scheme, plan.expected, umask)
    with _as_wheel_errors(wheel), zipfile.ZipFile(wheel) as archive:
        source = _TrackedWheel(archive)
        destination.source = source
        if lazy:
            destination.lazy = (wheel, _lazy_members(archive, plan.expected))
        try:
            install(source, destination, additional_metadata={})
        except Exception:
            source.validate_record()  # as before: members that differ are named first
            raise
        mismatched = _mismatched(archive, plan.expected, destination)
        if mismatched:
            source.validate_record()  # installer's message, naming every member that differs
            raise BadInput(
                f"{wheel.name} is not a valid wheel: {mismatched[0]} differs from RECORD"
            )
    files = sorted(destination.written)
    size = sum(destination.written.values())
    virtual = tuple(sorted(destination.virtual.items()))
    return InstalledDistribution(plan.distribution, wheel, tuple(files), size, virtual)


def _lazy_members(
    archive: zipfile.ZipFile, expected: dict[str, RecordEntry]
) -> dict[str, zipfile.ZipInfo]:
    """The members that may stay in the wheel (if they land in site-packages, outside a
    ``.dist-info``: see ``_CheckingDestination.write_to_fs``): ``.py`` files the zips copy
    as they are (``raw_copyable``), with a RECORD hash to check them by when written."""
    return {
        info.filename: info
        for info in archive.infolist()
        if info.filename.endswith(".py")
        and raw_copyable(info)
        and (entry := expected.get(info.filename)) is not None
        and entry.hash_ is not None
    }


def _mismatched(
    archive: zipfile.ZipFile, expected: dict[str, RecordEntry], destination: _CheckingDestination
) -> list[str]:
    """The members whose bytes differ from the wheel's RECORD, in the wheel's order: those
    checked as they were written, and the others (.pyc files installer skips, scripts whose
    shebang it rewrites, hashes other than sha256) read here."""
    mismatched = []
    for info in archive.infolist():
        entry = expected.get(info.filename)
        if entry is None or entry.hash_ is None:  # RECORD itself, signatures
            continue
        if info.filename in destination.checked:
            if not destination.checked[info.filename]:
                mismatched.append(info.filename)
            continue
        with archive.open(info) as stream, open(os.devnull, "wb") as sink:
            digest, size = copyfileobj_with_hashing(cast(BinaryIO, stream), sink, entry.hash_.name)
        if digest != entry.hash_.value or size != entry.size:
            mismatched.append(info.filename)
    return mismatched


class _TrackedWheel(WheelFile):
    """A wheel that says which member ``installer`` is writing (it writes each one while
    ``get_contents`` waits)."""

    member: str | None = None

    def get_contents(self) -> Iterator[tuple[tuple[str, str, str], BinaryIO, bool]]:
        for element in super().get_contents():
            self.member = element[0][0]  # the member's name
            yield element
        self.member = None


class _CheckingDestination(SchemeDictionaryDestination):
    """site-packages: each member written there is checked against the wheel's RECORD with
    the hash installer computes while writing it. The other schemes do not ship: their
    files are hashed for the RECORD installer writes, and not written at all."""

    def __init__(self, scheme: dict[str, str], expected: dict[str, RecordEntry], umask: int):
        super().__init__(scheme, interpreter="/var/lang/bin/python", script_kind="posix")
        self.expected = expected
        self.umask = umask
        self.source: _TrackedWheel | None = None
        self.checked: dict[str, bool] = {}  # member -> whether it matched RECORD
        self.written: dict[str, int] = {}  # site-packages path -> size (virtual files too)
        # The wheel and the members that may be left in it, when installing lazily.
        self.lazy: tuple[Path, dict[str, zipfile.ZipInfo]] | None = None
        self.virtual: dict[str, VirtualFile] = {}  # site-packages path -> where it is

    def write_file(
        self, scheme: Scheme, path: str | os.PathLike[str], stream: BinaryIO, is_executable: bool
    ) -> RecordEntry:
        written = super().write_file(scheme, path, stream, is_executable)
        member = self.source.member if self.source is not None else None
        expected = self.expected.get(member) if member is not None else None
        # A script's hash is that of its rewritten shebang, and a RECORD may use another
        # hash than installer's: _mismatched reads those members again.
        if (
            member is not None
            and expected is not None
            and expected.hash_ is not None
            and written.hash_ is not None
            and expected.hash_.name == written.hash_.name
            and scheme != "scripts"
        ):
            matches = written.hash_.value == expected.hash_.value
            self.checked[member] = matches and written.size == expected.size
        return written

    def write_to_fs(
        self, scheme: Scheme, path: str, stream: BinaryIO, is_executable: bool
    ) -> RecordEntry:
        if scheme not in _SHIPPED_SCHEMES or self._left_in_wheel(path, is_executable):
            # Hashed all the same: write_file checks the hash against RECORD.
            with open(os.devnull, "wb") as sink:
                digest, size = copyfileobj_with_hashing(stream, sink, self.hash_algorithm)
            if path in self.virtual:
                self.written[path] = size
            return RecordEntry(path, Hash(self.hash_algorithm, digest), size)
        written = super().write_to_fs(scheme, path, stream, is_executable=False)
        if is_executable:
            # installer's mode for executables, with the umask read before the threads
            # started: installer reads it by setting it, which threads would race on.
            os.chmod(os.path.join(self.scheme_dict[scheme], path), 0o777 & ~self.umask | 0o111)
        self.written[path] = written.size or 0
        return written

    def _left_in_wheel(self, path: str, is_executable: bool) -> bool:
        """Whether the member being written is a ``.py`` file left in its wheel (recorded in
        ``virtual``); the caller writes a shipped file only when it is not."""
        member = self.source.member if self.source is not None else None
        if self.lazy is None or member is None or path.split("/")[0].endswith(".dist-info"):
            return False
        wheel, members = self.lazy
        info = members.get(member)
        entry = self.expected.get(member)
        if info is None or entry is None or entry.hash_ is None or not path.endswith(".py"):
            return False
        mtime = calendar.timegm((*info.date_time, 0, 0, 0))
        hash_ = f"{entry.hash_.name}={entry.hash_.value}"
        self.virtual[path] = VirtualFile(
            wheel, member, info.file_size, mtime, is_executable, hash_,
            info.header_offset, info.compress_type, info.compress_size, info.CRC,
        )  # fmt: skip
        return True

    def write_script(
        self, name: str, module: str, attr: str, section: ScriptSection
    ) -> RecordEntry:
        """The RECORD line of an entry point's launcher; scripts do not ship."""
        script_name, data = Script(name, module, attr, section).generate(
            self.interpreter, self.script_kind
        )
        with io.BytesIO(data) as stream:
            return self.write_to_fs(Scheme("scripts"), script_name, stream, is_executable=True)


_SHIPPED_SCHEMES = ("purelib", "platlib")


def _refuse_paths_outside(wheel: Path, names: Iterable[str]) -> None:
    """Refuse, naming it, a member that would land outside site-packages (a "zip slip":
    ``../`` or an absolute path). ``installer`` refuses them too, less clearly."""
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
    # Its .py files left in their wheels (``VirtualFile``) when it was checked or installed.
    # Written later or not, the tree's files are these and the others, with the same bytes.
    virtual: Mapping[str, VirtualFile] = field(default_factory=dict)


_TREE_RECORD = "installed.json"
_TREE_FORMAT = "virtual-py-1"  # .py files left in their wheels (``VirtualFile``)
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
        sizes, virtual = reused
        return InstalledTree(final / "site-packages", sizes, True, virtual)
    if final.exists():  # damaged or half-pruned: never reuse it
        shutil.rmtree(final, ignore_errors=True)
    for stale in trees.glob(".tree-*"):  # left by a killed build (a live one holds the lock)
        shutil.rmtree(stale, ignore_errors=True)
    scratch = Path(tempfile.mkdtemp(dir=trees, prefix=".tree-"))
    try:
        installed = install_wheels(wheels, distributions, scratch / "site-packages", lazy=True)
        sizes = {item.distribution.name: item.unpacked_size for item in installed}
        virtual = {path: item for each in installed for path, item in each.virtual}
        _write_tree_record(scratch, sizes, virtual)
        try:
            os.rename(scratch, final)
        except OSError:  # a concurrent build installed the same tree first: use that one
            shutil.rmtree(scratch, ignore_errors=True)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    _prune(trees, keep=final)
    # (The wheels are where they were: a concurrent build's tree has the same ones.)
    return InstalledTree(final / "site-packages", sizes, False, virtual)


def _tree_key(
    wheels: dict[str, Path], distributions: Sequence[Distribution], target: Target
) -> str:
    # The tree's format too: a build of another format (one that would take a tree's files
    # on disk for all of them) never picks up a tree whose .py files are in the wheels.
    head = f"{__version__}\0{_TREE_FORMAT}\0{target.runtime}\0{target.arch}"
    digest = hashlib.sha256(head.encode())
    for distribution in sorted(distributions, key=lambda d: d.name):
        wheel = wheels[distribution.name]
        digest.update(f"\0{distribution.name}\0{wheel.name}\0{stored_sha256(wheel)}".encode())
    return digest.hexdigest()


def _write_tree_record(tree: Path, sizes: dict[str, int], virtual: dict[str, VirtualFile]) -> None:
    files, executable = _scan(tree / "site-packages")
    record = {
        "unpacked_sizes": sizes,
        "files": files,
        "executable": executable,
        "virtual": {path: _virtual_json(item, tree) for path, item in sorted(virtual.items())},
    }
    _write_json(tree / _TREE_RECORD, record)


def _write_json(path: Path, value: object) -> None:
    """Replace ``path`` at once: a concurrent build reads all of it or none."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(value), encoding="utf-8")
    os.replace(partial, path)


def _virtual_json(item: VirtualFile, tree: Path) -> list[object]:
    # The wheel by its path from the tree: the cache may be used from another path (a
    # container mounts it elsewhere), and the store and the trees move together. A list, not
    # an object: a warm build reads thousands of them.
    wheel = os.path.relpath(item.wheel, tree)
    return [
        wheel, item.member, item.size, item.mtime, item.executable, item.hash, item.offset,
        item.method, item.compressed, item.crc,
    ]  # fmt: skip


def _virtual_files(record: dict[str, object], tree: Path) -> dict[str, VirtualFile]:
    """A tree record's virtual files (none in a record without them); KeyError, TypeError
    or ValueError when it is malformed."""
    listed = cast(dict[str, list[Any]], record.get("virtual", {}))
    wheels: dict[str, Path] = {}
    virtual = {}
    for path, row in listed.items():
        wheel, member, size, mtime, executable, hash_, *place = row
        if not all(type(number) is int for number in (size, mtime, *place)) or len(place) != 4:
            raise ValueError(f"{path} is malformed in the tree's record")
        if wheel not in wheels:
            wheels[wheel] = Path(os.path.normpath(os.path.join(tree, wheel)))
        virtual[path] = VirtualFile(
            wheels[wheel], str(member), size, mtime, bool(executable), str(hash_), *place
        )
    return virtual


def virtual_files(site_packages: Path) -> dict[str, VirtualFile]:
    """The files of a tree ``install_tree`` returned that its record says are left in their
    wheels (none when it cannot be read)."""
    try:
        record = json.loads((site_packages.parent / _TREE_RECORD).read_text(encoding="utf-8"))
        return _virtual_files(record, site_packages.parent)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _intact_tree(tree: Path) -> tuple[dict[str, int], dict[str, VirtualFile]] | None:
    """The sizes recorded with a cached tree whose files are exactly those of its record, with
    their sizes and executable bits, and its virtual files (whose wheels must be there; they
    are not on disk), else None (a record written before those bits were kept is not
    intact)."""
    try:
        record = json.loads((tree / _TREE_RECORD).read_text(encoding="utf-8"))
        files, executable = _scan(tree / "site-packages")
        if record["files"] != files or record["executable"] != executable:
            return None
        virtual = _virtual_files(record, tree)
        if not all(wheel.is_file() for wheel in {item.wheel for item in virtual.values()}):
            return None
        sizes: dict[str, int] = record["unpacked_sizes"]
        return sizes, virtual
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _scan(site_packages: Path) -> tuple[dict[str, int], list[str]]:
    """The files of a tree (path in it -> size) and, sorted, those its owner may execute:
    one ``os.scandir`` walk, one ``stat`` per file and no ``Path`` per file (which cost more
    than the ``stat``: a warm build checks thousands)."""
    files: dict[str, int] = {}
    executable: list[str] = []
    folders = [("", os.fspath(site_packages))]
    while folders:
        prefix, folder = folders.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    folders.append((f"{prefix}{entry.name}/", entry.path))
                elif entry.is_file():
                    status = entry.stat()
                    files[prefix + entry.name] = status.st_size
                    if status.st_mode & stat.S_IXUSR:
                        executable.append(prefix + entry.name)
    executable.sort()
    return files, executable


def materialize(site_packages: Path, virtual: Mapping[str, VirtualFile]) -> None:
    """Write the virtual files of a tree (``InstalledTree.virtual``) from their wheels, each
    checked against its RECORD hash, and drop them from the tree's record. Each file appears
    at once (renamed into place), so a concurrent build reading the tree sees all of it or
    none; one written already (by another build) is left as it is."""
    with _locked(site_packages.parent.parent / ".lock"):
        by_wheel: dict[Path, list[tuple[str, VirtualFile]]] = {}
        for path, item in sorted(virtual.items()):
            target = site_packages / path
            if not (target.is_file() and target.stat().st_size == item.size):
                by_wheel.setdefault(item.wheel, []).append((path, item))
        for wheel, items in by_wheel.items():
            _write_virtual(site_packages, wheel, items)
        _record_written(site_packages.parent / _TREE_RECORD, virtual)


def _record_written(record_path: Path, virtual: Mapping[str, VirtualFile]) -> None:
    """The tree's record with ``virtual`` (now written) among its files, by what is known of
    them, not by a walk: a stray file (left by a build killed while writing) must keep the
    tree from being reused, not become one of its files."""
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        listed, files = record["virtual"], record["files"]
        executable = set(record["executable"])
    except (OSError, ValueError, KeyError, TypeError):
        return  # dropped or damaged meanwhile: the tree is not reused, nothing to say
    for path, item in virtual.items():
        if listed.pop(path, None) is not None:
            files[path] = item.size
            if item.executable:
                executable.add(path)
    record["executable"] = sorted(executable)
    _write_json(record_path, record)


def _write_virtual(
    site_packages: Path, wheel: Path, items: Sequence[tuple[str, VirtualFile]]
) -> None:
    """Write ``items`` from ``wheel``; a BuildFailure (and the tree no longer reused) when
    the wheel is gone or its bytes are not those checked when the tree was installed."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            for path, item in items:
                data = archive.read(item.member)
                if not Hash.parse(item.hash).validate(data) or len(data) != item.size:
                    raise ValueError(f"{item.member} differs from its RECORD")
                target = site_packages / path
                partial = target.with_name(f".{target.name}.{os.getpid()}")
                partial.write_bytes(data)  # mode 0o666 less the umask, as installer's
                if item.executable:  # installer's 0o777 less the umask, plus 0o111
                    os.chmod(partial, stat.S_IMODE(partial.stat().st_mode) | 0o111)
                os.utime(partial, (item.mtime, item.mtime))
                os.replace(partial, target)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        (site_packages.parent / _TREE_RECORD).unlink(missing_ok=True)
        raise BuildFailure(
            f"cannot write the installed dependencies' files from {wheel} in the cache:"
            f" {error}; the installed tree was dropped from the cache: build again (it is"
            f" installed afresh from verified wheels), or remove {site_packages.parent.parent}"
        ) from error


def installed_files(
    site_packages: Path, virtual: Mapping[str, VirtualFile] | None = None
) -> list[tuple[str, int, bool]]:
    """The files of a tree ``install_tree`` returned, as (path in it, size, executable by its
    owner), in the order of ``sorted(site_packages.rglob("*"))`` once every file is written:
    from the record it checked or wrote beside the tree (no walk, no ``stat``), else from the
    tree itself; with its virtual files: ``virtual`` (its ``InstalledTree``'s, which stay the
    tree's files whether they are written since or not), else those of the record."""
    try:
        record = json.loads((site_packages.parent / _TREE_RECORD).read_text(encoding="utf-8"))
        files: dict[str, int] = dict(record["files"])
        executable = set(record["executable"])
        if virtual is None:
            virtual = _virtual_files(record, site_packages.parent)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        files, listed = _scan(site_packages)
        executable = set(listed)
    for path, item in (virtual or {}).items():
        files[path] = item.size
        if item.executable:
            executable.add(path)
    # Paths sort by their parts ("a/b" before "a-b/c"), as pathlib sorts them.
    names = sorted(files, key=lambda name: name.split("/"))
    return [(name, files[name], name in executable) for name in names]


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
        return dict(_shipped(archive.infolist()))


def _shipped(infos: Iterable[zipfile.ZipInfo]) -> Iterator[tuple[str, zipfile.ZipInfo]]:
    """``shipped_members`` as (path, member) pairs in the wheel's order, a path twice if two
    members land there."""
    for info in infos:
        name = info.filename
        if name.endswith("/"):
            continue
        top, _, rest = name.partition("/")
        if top.endswith(".data"):
            scheme, _, path = rest.partition("/")
            if scheme in _SHIPPED_SCHEMES and path:
                yield path, info
        elif not (top.endswith(".dist-info") and rest == "RECORD"):
            yield name, info
