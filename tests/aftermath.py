"""What a refused, failed or interrupted build leaves behind, as the user finds it: the previous
artifacts at the output paths, stray temporary files, the cache, and the one-line error."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

ERROR_PREFIX = "chalicepack: error: "


def seed_previous_build(out_dir: Path) -> dict[str, bytes]:
    """Artifacts an earlier build left at the output paths; returns their bytes by name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("deployment.zip", "layer-deployment.zip"):
        with zipfile.ZipFile(out_dir / name, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("app.py", f"# the previous build's {name}\n" * 50)
    (out_dir / "build-report.json").write_text(json.dumps({"previous": True}) + "\n")
    return snapshot(out_dir)


def snapshot(out_dir: Path) -> dict[str, bytes]:
    """Every file in ``out_dir`` (hidden temporary files included) and its bytes."""
    return {path.name: path.read_bytes() for path in sorted(out_dir.iterdir())}


def assert_untouched(out_dir: Path, before: dict[str, bytes]) -> None:
    """The output directory holds exactly what it held: no new, changed or temporary file."""
    assert snapshot(out_dir) == before


def assert_valid_zip(path: Path) -> list[str]:
    """``path`` is a complete zip (every member's CRC checks); returns its names."""
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        return archive.namelist()


def temporary_files(out_dir: Path) -> list[str]:
    """Hidden files in the output directory: what an atomic write leaves when not cleaned."""
    if not out_dir.exists():
        return []
    return sorted(path.name for path in out_dir.iterdir() if path.name.startswith("."))


def cache_scratch(cache: Path) -> list[str]:
    """Half-done work in the cache: scratch installs, downloads and records not renamed."""
    patterns = ("trees/.tree-*", "wheels/.download-*", "wheels/*/.*", "resolutions/.*")
    return sorted(
        p.relative_to(cache).as_posix() for pattern in patterns for p in cache.glob(pattern)
    )


def error_line(stderr: str) -> str:
    """The error message, which must be the single last line of stderr."""
    lines = stderr.rstrip("\n").splitlines()
    assert lines, "nothing on stderr"
    assert lines[-1].startswith(ERROR_PREFIX), f"the last line is not the error:\n{stderr}"
    return lines[-1].removeprefix(ERROR_PREFIX)


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (hidden ones included) and its bytes, by relative path."""
    if not root.exists():
        return {}
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


_OTHERS_CACHES = ("pip", "uv", "pycache", "runtime-provided")


def cache_files(cache: Path) -> set[str]:
    """The cache's own files: what chalicepack wrote, without pip's and uv's HTTP caches (theirs
    to keep consistent) and the import check's bytecode and links to what Lambda's runtime
    provides (filled by any import, whatever its outcome)."""
    if not cache.exists():
        return set()
    return {
        path.relative_to(cache).as_posix()
        for path in cache.rglob("*")
        if path.is_file() and path.relative_to(cache).parts[0] not in _OTHERS_CACHES
    }
