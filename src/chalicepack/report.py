"""What the user is told: the Chalice missing-dependency warning, the build report, the summary."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicepack.deps.buildrecord import SourceBuild

if TYPE_CHECKING:
    from chalicepack.deps.pip_resolver import MissingDistribution

REPORT_NAME = "build-report.json"
# check's report has a name of its own: written over build-report.json it would hide the last
# build's report, which publish-layer reads and the next build compares its inputs with.
CHECK_REPORT_NAME = "check-report.json"
# build-report.json's format; report.schema.json beside this file describes it. A new field
# keeps the version; a field removed or changed in meaning takes the next one.
SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("report.schema.json")


@dataclass(frozen=True)
class RequirementSource:
    """The requirements line that names a dependency (file relative to the project)."""

    file: str
    line: int
    text: str  # credentials redacted


@dataclass(frozen=True)
class Dependency:
    name: str
    version: str
    wheel: str
    tag: str
    unpacked_size: int | None  # None until installed (check's report)
    built_from_source: bool
    url: str  # credentials redacted
    requirement: RequirementSource | None  # None when only other dependencies require it
    required_by: tuple[str, ...]


@dataclass(frozen=True)
class MissingDependency:
    name: str
    version: str
    reason: str
    fix: str
    build_log: str | None
    only_needed_by_it: tuple[str, ...]
    requirement: RequirementSource | None
    required_by: tuple[str, ...]


@dataclass(frozen=True)
class Artifact:
    path: str
    size: int
    unzipped_size: int
    files: int
    sha256: str
    # What Lambda reports as CodeSha256 and Terraform's source_code_hash expects.
    sha256_base64: str
    inputs_sha256: str | None = None  # the layer's: what its bytes are made of (layer reuse)


@dataclass(frozen=True)
class LeftOutDistribution:
    name: str
    version: str
    unpacked_size: int


@dataclass(frozen=True)
class LeftOut:
    """What --without-runtime-provided and --exclude kept out, and the bytes saved."""

    runtime_provided: tuple[LeftOutDistribution, ...]
    excluded_files: tuple[str, ...]
    bytes_saved: int


@dataclass(frozen=True)
class Function:
    name: str
    handler: str
    kind: str


@dataclass(frozen=True)
class ImportCheck:
    """What importing the app found (absent from a report when it was not imported)."""

    imported_app_name: str | None
    functions: tuple[Function, ...]


@dataclass(frozen=True)
class Template:
    path: str
    format: str


@dataclass(frozen=True)
class BuildReport:
    """build-report.json: built once by the pipeline (``package`` adds the template)."""

    chalicepack_version: str
    project: str
    app_name: str
    stage: str
    runtime: str
    architecture: str
    automatic_layer: bool
    chalice_runtime: str | None  # which chalice's runtime files ship; None in check's report
    artifacts: Mapping[str, Artifact]  # "deployment", and "layer" when there is one
    dependencies: tuple[Dependency, ...]
    vendor_files: tuple[str, ...]
    vendor_overrides: tuple[str, ...]
    missing_dependencies: tuple[MissingDependency, ...]
    source_builds: tuple[SourceBuild, ...] = ()  # every wheel built here, kept or not
    # Set by a build that installed (not check); the next build compares its inputs with it.
    fingerprint: str | None = None
    left_out: LeftOut | None = None
    import_check: ImportCheck | None = None
    template: Template | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def functions(self) -> tuple[Function, ...] | None:
        return None if self.import_check is None else self.import_check.functions

    def to_json(self) -> dict[str, Any]:
        """The JSON document, in report.schema.json's form: fields a build did not reach
        (fingerprint, left_out, the import check's, template) are absent, not null."""
        document = _json_types(asdict(self))
        document = {"schema_version": document.pop("schema_version"), **document}
        for optional in ("fingerprint", "left_out", "template"):
            if document[optional] is None:
                del document[optional]
        for artifact in document["artifacts"].values():
            if artifact["inputs_sha256"] is None:  # (the layer's only)
                del artifact["inputs_sha256"]
        checked = document.pop("import_check")
        if checked is not None:
            document.update(checked)
        return document

    @classmethod
    def from_json(cls, document: Any) -> BuildReport:
        """The report a build wrote; ValueError when it is not one of this schema version."""
        try:
            if document["schema_version"] != SCHEMA_VERSION:
                raise ValueError(f"schema version {document['schema_version']!r}")
            return _parse_report(document)
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"not a chalicepack build report: {error!r}") from None


def _json_types(value: Any) -> Any:
    """``value`` with tuples as lists, as JSON has them (and a report read back has them)."""
    if isinstance(value, dict):
        return {key: _json_types(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_types(item) for item in value]
    return value


def _parse_report(document: Mapping[str, Any]) -> BuildReport:
    def source(item: Mapping[str, Any]) -> RequirementSource | None:
        found = item["requirement"]
        return None if found is None else RequirementSource(**found)

    left_out = document.get("left_out")
    template = document.get("template")
    return BuildReport(
        chalicepack_version=document["chalicepack_version"],
        project=document["project"],
        app_name=document["app_name"],
        stage=document["stage"],
        runtime=document["runtime"],
        architecture=document["architecture"],
        automatic_layer=document["automatic_layer"],
        chalice_runtime=document["chalice_runtime"],
        artifacts={name: Artifact(**item) for name, item in document["artifacts"].items()},
        dependencies=tuple(
            Dependency(**{**d, "requirement": source(d), "required_by": tuple(d["required_by"])})
            for d in document["dependencies"]
        ),
        vendor_files=tuple(document["vendor_files"]),
        vendor_overrides=tuple(document["vendor_overrides"]),
        missing_dependencies=tuple(
            MissingDependency(
                **{
                    **m,
                    "requirement": source(m),
                    "required_by": tuple(m["required_by"]),
                    "only_needed_by_it": tuple(m["only_needed_by_it"]),
                }
            )
            for m in document["missing_dependencies"]
        ),
        source_builds=tuple(SourceBuild.from_json(b) for b in document.get("source_builds", ())),
        fingerprint=document.get("fingerprint"),
        left_out=None
        if left_out is None
        else LeftOut(
            runtime_provided=tuple(LeftOutDistribution(**d) for d in left_out["runtime_provided"]),
            excluded_files=tuple(left_out["excluded_files"]),
            bytes_saved=left_out["bytes_saved"],
        ),
        import_check=None
        if "functions" not in document
        else ImportCheck(
            document["imported_app_name"],
            tuple(Function(**f) for f in document["functions"]),
        ),
        template=None if template is None else Template(**template),
    )


@dataclass(frozen=True)
class BuildResult:
    report: BuildReport
    report_path: Path
    warnings: list[str] = field(default_factory=list)
    # The modules the import check left out (stubbed): this interpreter cannot load them
    # (compiled for another target). ``package`` imports the app with the same stand-ins.
    stand_ins: tuple[str, ...] = ()


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


def missing_dependencies_warning(
    missing: Sequence[MissingDistribution], *, strict: bool = False
) -> str:
    """Chalice's warning; under ``--strict`` the build stops, and its last words say so."""
    warning = _missing_warning(f"{item.name}=={item.version}" for item in missing)
    if strict:
        warning = warning.replace(_CONTINUES, _STOPS)
    return warning


_CONTINUES = "Your deployment will continue but may not work correctly\n"
_STOPS = "With --strict the build stops here, as it would not work correctly\n"


def reported_missing_warning(report: BuildReport) -> str | None:
    """The warning the build of ``report`` gave for its missing dependencies, if any."""
    missing = report.missing_dependencies
    if not missing:
        return None
    return _missing_warning(f"{item.name}=={item.version}" for item in missing)


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


def write_report(path: Path, report: BuildReport) -> None:
    write_json_atomically(path, report.to_json())


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


def summary_lines(report: BuildReport) -> list[str]:
    """The CLI's stdout without ``--json``: one line per artifact, then a size summary."""
    lines = [artifact.path for artifact in report.artifacts.values()]
    parts = [
        f"{name}: {human_size(artifact.size)} zipped, {human_size(artifact.unzipped_size)} unzipped"
        for name, artifact in report.artifacts.items()
    ]
    deps = len(report.dependencies)
    missing = len(report.missing_dependencies)
    parts.append(f"{deps} dependencies" + (f", {missing} missing" if missing else ""))
    lines.append(f"{report.runtime} {report.architecture}: " + "; ".join(parts))
    return lines
