"""The Chalice runtime every package ships: ``chalice/__init__.py`` and ``chalice/app.py``.

``chalice package`` adds exactly these two files; the rest of the chalice distribution (the
CLI, deployer, dist-info) never ships. They come from the chalice release requirements.txt
resolves to when it names chalice, else from the chalice release chalicepack runs with.
"""

from __future__ import annotations

import zipfile
from importlib import metadata
from pathlib import Path

from .errors import BuildFailure

RUNTIME_FILES = ("chalice/__init__.py", "chalice/app.py")


def installed_runtime(workdir: Path) -> tuple[str, dict[str, Path]]:
    """The runtime of the chalice release installed beside chalicepack: (version, files)."""
    distribution = metadata.distribution("chalice")
    files = {}
    for arcname in RUNTIME_FILES:
        located = Path(str(distribution.locate_file(arcname)))
        if not located.is_file():
            raise BuildFailure(f"the installed chalice {distribution.version} lacks {arcname}")
        files[arcname] = located
    return distribution.version, files


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
