"""The Chalice runtime every package ships: ``chalice/__init__.py`` and ``chalice/app.py``.

``chalice package`` adds exactly these two files; the rest of the chalice distribution (the
CLI, deployer, dist-info) never ships. They come from the chalice release requirements.txt
resolves to when it names chalice, else from the chalice release chalicepack runs with.
"""

from __future__ import annotations

import functools
import importlib.machinery
import os
import re
import zipfile
from pathlib import Path

from chalicepack.errors import BuildFailure

RUNTIME_FILES = ("chalice/__init__.py", "chalice/app.py")
_DIST_INFO = re.compile(r"chalice-([^-]+)\.dist-info", re.IGNORECASE)


def installed_runtime(workdir: Path) -> tuple[str, dict[str, Path]]:
    """The runtime of the chalice release installed beside chalicepack: (version, files)."""
    version = installed_version()
    site = _installed_site()
    if site is None:
        raise BuildFailure(f"the installed chalice {version} cannot be found on sys.path")
    files = {}
    for arcname in RUNTIME_FILES:
        located = site / arcname
        if not located.is_file():
            raise BuildFailure(f"the installed chalice {version} lacks {arcname}")
        files[arcname] = located
    return version, files


def installed_version() -> str:
    """The installed chalice's version (its runtime ships unless requirements.txt names chalice),
    read from the name of the dist-info directory pip puts beside the package; importlib.metadata
    answers when that is not where it is, at the cost of 20 ms of imports."""
    site = _installed_site()
    if site is not None:
        try:
            found = [_DIST_INFO.fullmatch(name) for name in os.listdir(site)]
        except OSError:
            found = []
        versions = [match.group(1) for match in found if match]
        if len(versions) == 1:
            return versions[0]
    from importlib import metadata

    return metadata.version("chalice")


@functools.cache  # where chalice is installed does not change while chalicepack runs
def _installed_site() -> Path | None:
    """The site-packages directory holding the chalice package chalicepack runs with."""
    spec = importlib.machinery.PathFinder.find_spec("chalice")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).parent


def runtime_from_wheel(wheel: Path, workdir: Path) -> dict[str, Path]:
    """The runtime files out of a chalice wheel, extracted below ``workdir``."""
    files = {}
    with zipfile.ZipFile(wheel) as archive:
        for arcname in RUNTIME_FILES:
            try:
                data = archive.read(arcname)
            except KeyError:
                raise BuildFailure(
                    f"{wheel.name} has no {arcname}; is it a chalice wheel?"
                ) from None
            path = workdir / "chalice-runtime" / arcname
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            files[arcname] = path
    return files
