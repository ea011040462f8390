"""What a Chalice project holds: the files that ship and where they go in the package.

``app.py`` and ``chalicelib/`` ship as the app; ``vendor/``'s contents ship beside the
dependencies. Symlinks are followed while they stay inside the project; one that escapes it or
loops is refused. ``__pycache__`` and ``*.pyc`` never ship.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from chalicepack.errors import ProjectError

APP = "app.py"
CHALICELIB = "chalicelib"
VENDOR = "vendor"
REQUIREMENTS = "requirements.txt"


@dataclass(frozen=True)
class ProjectFile:
    arcname: str  # POSIX path inside the package
    path: Path  # the real file


@dataclass(frozen=True)
class Project:
    root: Path
    app_files: tuple[ProjectFile, ...]  # app.py, then chalicelib/...
    vendor_files: tuple[ProjectFile, ...]  # arcnames relative to vendor/
    requirements: Path | None


def scan_project(root: Path) -> Project:
    """Read the project tree at ``root``; raise ``ProjectError`` naming what to fix."""
    root = root.resolve()
    app = root / APP
    if not app.is_file():
        problem = "is a directory" if app.is_dir() else "does not exist"
        raise ProjectError(
            f"{app} {problem}: every Chalice project needs app.py at its root "
            "(point at the project directory, the one holding .chalice/)"
        )
    app_files = [ProjectFile(APP, _readable(_inside(root, app)))]
    app_files += _walk(root, root / CHALICELIB, prefix=CHALICELIB)
    vendor_files = _walk(root, root / VENDOR, prefix="")
    requirements = root / REQUIREMENTS
    return Project(
        root=root,
        app_files=tuple(app_files),
        vendor_files=tuple(vendor_files),
        requirements=requirements if requirements.is_file() else None,
    )


def _walk(root: Path, top: Path, prefix: str) -> list[ProjectFile]:
    if not top.exists() and not top.is_symlink():
        return []
    if not top.is_dir():
        raise ProjectError(f"{top} is not a directory; {top.name}/ must be a folder")
    return sorted(_files_below(root, top, prefix, seen=()), key=lambda item: item.arcname)


def _files_below(
    root: Path, directory: Path, prefix: str, seen: tuple[Path, ...]
) -> Iterator[ProjectFile]:
    real = _inside(root, directory)
    if real in seen:
        raise ProjectError(
            f"{directory} is a symlink loop (it leads back to {real}); remove the link"
        )
    try:
        children = sorted(os.scandir(directory), key=lambda child: child.name)
    except OSError as error:
        raise ProjectError(
            f"{directory}: cannot read directory: {error.strerror}; "
            f"{_READABLE_FIX if error.errno == errno.EACCES else 'fix or remove it'}"
        ) from error
    for child in children:
        if child.name == "__pycache__" or child.name.endswith(".pyc"):
            continue
        path = Path(child.path)
        _utf8_name(directory, child.name)
        arcname = f"{prefix}/{child.name}" if prefix else child.name
        if path.is_dir():
            yield from _files_below(root, path, arcname, (*seen, real))
        elif path.is_file():
            yield ProjectFile(arcname, _readable(_inside(root, path)))
        else:
            _inside(root, path)  # raises for a loop or a broken link
            raise ProjectError(f"{path} is not a regular file or directory; remove it")


_READABLE_FIX = "make it readable by the user running the build (chmod a+rX), or remove it"


def _readable(path: Path) -> Path:
    """``path``, refused now (naming it) unless it can be opened: an unreadable file would
    otherwise fail the build later, while zipping. Opening reads nothing."""
    try:
        os.close(os.open(path, os.O_RDONLY))
    except OSError as error:
        fix = _READABLE_FIX if error.errno == errno.EACCES else "fix or remove it"
        raise ProjectError(f"{path}: cannot read: {error.strerror}; {fix}") from error
    return path


def _utf8_name(directory: Path, name: str) -> None:
    """Refuse a file name that is not valid UTF-8: a zip names its entries in UTF-8."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(name).decode("utf-8", errors="backslashreplace")
        raise ProjectError(
            f"{_shown(directory)}/{shown}: the file name is not valid UTF-8, and a zip entry"
            " name must be; rename it with UTF-8 characters only"
        ) from None


def _shown(path: Path) -> str:
    """``path`` printable whatever bytes it holds (undecodable bytes as \\xNN)."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def _inside(root: Path, path: Path) -> Path:
    """``path`` resolved, refused unless it stays inside the project."""
    try:
        real = path.resolve(strict=True)
    except RuntimeError as error:  # raised by resolve() on a symlink loop
        raise ProjectError(f"{path} is a symlink loop; remove the link") from error
    except FileNotFoundError as error:
        raise ProjectError(f"{path} is a broken symlink; remove it or fix its target") from error
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ProjectError(f"{path} is a symlink loop; remove the link") from error
        raise ProjectError(f"{path}: {error.strerror}") from error
    if not real.is_relative_to(root):
        raise ProjectError(
            f"{path} links to {real}, outside the project {root}; "
            "copy the file into the project instead of linking to it"
        )
    return real
