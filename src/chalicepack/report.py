"""What the user is told: the Chalice missing-dependency warning, the build report, the summary."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicepack.deps.pip_resolver import MissingDistribution

REPORT_NAME = "build-report.json"
# check's report has a name of its own: written over build-report.json it would hide the last
# build's report, which publish-layer reads and the next build compares its inputs with.
CHECK_REPORT_NAME = "check-report.json"


@dataclass(frozen=True)
class BuildResult:
    report: dict[str, Any]
    report_path: Path
    warnings: list[str] = field(default_factory=list)


# Chalice's own wording (chalice.constants.MISSING_DEPENDENCIES_TEMPLATE), so users and their
# log searches recognise it.
_MISSING_TEMPLATE = """\
Could not install dependencies:
{pins}
You will have to build these yourself and vendor them in
the chalice vendor folder.

Your deployment will continue but may not work correctly
if missing dependencies are not present. For more information:
http://aws.github.io/chalice/topics/packaging.html"""


def missing_dependencies_warning(missing: Sequence[MissingDistribution]) -> str:
    return _missing_warning(f"{item.name}=={item.version}" for item in missing)


def reported_missing_warning(report: Mapping[str, Any]) -> str | None:
    """The warning the build of ``report`` gave for its missing dependencies, if any."""
    missing = report["missing_dependencies"]
    if not missing:
        return None
    return _missing_warning(f"{item['name']}=={item['version']}" for item in missing)


def _missing_warning(pins: Iterable[str]) -> str:
    return _MISSING_TEMPLATE.format(pins="\n".join(pins))


def missing_dependency_details(missing: Sequence[MissingDistribution]) -> list[str]:
    """After Chalice's lines: for each missing dependency, why, and what to do."""
    lines = []
    for item in missing:
        lines.append(f"{item.name}=={item.version}: {item.reason}; fix: {item.fix}")
        if item.only_needed_by_it:
            lines.append(f"  only needed by {item.name}: {', '.join(item.only_needed_by_it)}")
        if item.build_log:
            lines.append("  build log (last lines):")
            lines += [f"    {line}" for line in item.build_log.splitlines()]
    return lines


def write_json_atomically(path: Path, document: Mapping[str, Any]) -> None:
    import tempfile  # here: it brings shutil and the compressors, 4 ms an unchanged build saves

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(document, stream, indent=2, sort_keys=False)
            stream.write("\n")
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """The CLI's stdout without ``--json``: one line per artifact, then a size summary."""
    lines = [artifact["path"] for artifact in report["artifacts"].values()]
    parts = [
        f"{name}: {human_size(artifact['size'])} zipped, "
        f"{human_size(artifact['unzipped_size'])} unzipped"
        for name, artifact in report["artifacts"].items()
    ]
    deps = len(report["dependencies"])
    missing = len(report["missing_dependencies"])
    lines.append(
        f"{report['runtime']} {report['architecture']}: "
        + "; ".join(parts)
        + f"; {deps} dependencies"
        + (f", {missing} missing" if missing else "")
    )
    return lines
