"""What the Action tells the workflow: step outputs, annotations, masks and the job summary."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, astuple, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import github_action_utils as gha

from chalicepack.action import commands
from chalicepack.action.inputs import Runtime, in_action_terms, relative
from chalicepack.errors import AppImportError, BadInput, ChalicepackError
from chalicepack.inputs.locks import is_lock
from chalicepack.lambda_env import DIRECT_UPLOAD_LIMIT, UNZIPPED_LIMIT
from chalicepack.options import BuildOptions
from chalicepack.package.sbom import SBOM_NAME
from chalicepack.report import BuildReport, Dependency, MissingDependency, human_size

if TYPE_CHECKING:  # publishing imports boto3, which a step that publishes nothing never loads
    from chalicepack.deploy.publish import PublishedLayer

log = logging.getLogger("chalicepack")

# The runner refuses a step summary over 1 MiB; stay clear of it.
SUMMARY_LIMIT = 1000 * 1000
SUMMARY_DEPENDENCY_ROWS = 300
BIGGEST = 5

_USERINFO = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://([^/@\s:]+)(?::([^/@\s]*))?@")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TOKEN_LENGTH = 16
_INCLUDE = re.compile(r"^\s*(?:-r|--requirement|-c|--constraint)[\s=]\s*(\S+)")


LayerState = Literal["published", "reused", "no layer", "not built", "failed"]


@dataclass(frozen=True)
class LayerStep:
    """What came of ``publish_layer: true``, for the outputs and the summary."""

    state: LayerState
    layer: PublishedLayer | None = None
    reason: str = ""  # why nothing was published


# --- outputs ----------------------------------------------------------------------------------


def action_outputs(report: BuildReport, report_path: Path, workspace: Path) -> dict[str, str]:
    """The step's outputs; paths are relative to the workspace, so host steps can use them."""
    deployment, layer = report.artifacts.get("deployment"), report.artifacts.get("layer")
    missing = [_missing_output(item, report, workspace) for item in report.missing_dependencies]
    # None when the app was not imported (import_app: false, check_only).
    functions = report.functions or ()
    return {
        "deployment_zip": relative(Path(deployment.path), workspace) if deployment else "",
        "layer_zip": relative(Path(layer.path), workspace) if layer else "",
        "deployment_sha256": deployment.sha256 if deployment else "",
        "layer_sha256": layer.sha256 if layer else "",
        "missing_dependencies": json.dumps(missing),
        "functions": json.dumps([asdict(function) for function in functions]),
        "report": relative(report_path, workspace),
        # With package_format: the template chalice's packager wrote beside the zips.
        "template": relative(Path(report.template.path), workspace) if report.template else "",
        "sbom": _sbom_output(report, report_path, workspace),
        "runtime": report.runtime,
        "architecture": report.architecture,
    }


def _sbom_output(report: BuildReport, report_path: Path, workspace: Path) -> str:
    """The SBOM the build wrote beside the zips; an unchanged build keeps the last one. Empty
    when no zip was written, or a build from before SBOMs left none."""
    path = report_path.parent / SBOM_NAME
    return relative(path, workspace) if report.artifacts and path.is_file() else ""


def layer_outputs(step: LayerStep | None) -> dict[str, str]:
    """layer_arn, layer_version and layer_published; empty when no layer was published or
    reused (publish_layer false, no layer zip, or publishing failed)."""
    layer = step.layer if step is not None else None
    if layer is None:
        return {"layer_arn": "", "layer_version": "", "layer_published": ""}
    return {
        "layer_arn": layer.layer_arn,
        "layer_version": str(layer.layer_version),
        "layer_published": "true" if layer.published else "false",
    }


def _missing_output(
    item: MissingDependency, report: BuildReport, workspace: Path
) -> dict[str, Any]:
    places = list(_requirement_places(item, report, workspace))
    file, line = places[0] if places else (None, None)
    return {
        "name": item.name,
        "version": item.version,
        "reason": item.reason,
        "file": file,
        "line": line,
        "required_by": list(item.required_by),
    }


def write_outputs(env: Mapping[str, str], outputs: Mapping[str, str]) -> None:
    """Set the step's outputs; outside a runner (no GITHUB_OUTPUT) only log them."""
    if not env.get("GITHUB_OUTPUT"):
        log.info("GITHUB_OUTPUT is not set (not run by a runner): outputs are only logged")
        for name, value in outputs.items():
            log.info("output %s=%s", name, value)
        return
    for name, value in outputs.items():
        gha.set_output(name, value)


# --- annotations ------------------------------------------------------------------------------


def annotate_missing(report: BuildReport, workspace: Path, *, strict: bool) -> None:
    """One annotation per missing dependency at each requirements line that brings it in."""
    annotate = commands.error if strict else commands.warning
    for item in report.missing_dependencies:
        pin = f"{item.name}=={item.version}"
        via = "" if item.requirement else f" (required by {', '.join(item.required_by)})"
        fix = "vendor a build of it in vendor/, or pin a release that has a wheel for the target"
        if item.requirement and is_lock(item.requirement.file):
            fix = item.fix  # names the command that updates the lock
        message = f"{pin}{via}: {item.reason}. It is not in the package; {fix}."
        places = list(_requirement_places(item, report, workspace))
        for file, line in places:
            annotate(message, title="Missing dependency", file=file, line=line)
        if not places:
            annotate(message, title="Missing dependency")


def _requirement_places(
    item: MissingDependency, report: BuildReport, workspace: Path
) -> Iterator[tuple[str, int]]:
    """The requirements.txt lines (file relative to the workspace) that bring ``item`` in.

    A dependency named in requirements.txt (or a ``-r`` include) is at its own line; one that
    only others require is at the lines of the requirements that pull it in.
    """
    project = Path(report.project)
    entries = {entry.name: entry for entry in report.dependencies}
    seen: set[str] = set()
    pending: list[MissingDependency | Dependency] = [item]
    places: dict[tuple[str, int], None] = {}
    while pending:
        entry = pending.pop(0)
        if entry.name in seen:
            continue
        seen.add(entry.name)
        requirement = entry.requirement
        if requirement is not None:
            path = project / requirement.file
            places[(relative(path, workspace), requirement.line)] = None
            continue
        pending += [entries[name] for name in entry.required_by if name in entries]
    yield from places


# --- errors and secrets -----------------------------------------------------------------------


def report_error(error: ChalicepackError, workspace: Path, title: str | None = None) -> None:
    """An ``::error`` annotation (on the file and line when known) and the log's error line."""
    message = in_action_terms(str(error))
    file = relative(error.file, workspace) if error.file is not None else None
    commands.error(message, title=title or _error_title(error), file=file, line=error.line)
    log.error("error: %s", message)


def _error_title(error: ChalicepackError) -> str:
    if isinstance(error, AppImportError):
        return "App import failed"
    return "Bad input" if isinstance(error, BadInput) else "chalicepack failed"


def mask_index_credentials(env: Mapping[str, str], project_dir: Path) -> None:
    """``::add-mask::`` every password in a package index URL the build may print."""
    texts = [env.get(name, "") for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL")]
    texts += _requirements_texts(project_dir / "requirements.txt")
    for text in texts:
        for match in _USERINFO.finditer(text):
            for secret in _secrets(match[1], match[2], env):
                commands.add_mask(secret)


def _secrets(user: str, password: str | None, env: Mapping[str, str]) -> Iterator[str]:
    if password:
        yield password
        # pip expands ${NAME} in requirements files: the secret is the variable's value.
        if (variable := _VARIABLE.fullmatch(password)) and env.get(variable[1]):
            yield env[variable[1]]
    elif len(user) >= _TOKEN_LENGTH:
        # A token alone in the user part (https://TOKEN@host); a short name (git@) is not one,
        # and masking it would blank that word all over the log.
        yield user


def _requirements_texts(path: Path, depth: int = 0) -> Iterator[str]:
    """requirements.txt and the files it includes, as text; unreadable files are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return
    yield text
    if depth < 10:
        for line in text.splitlines():
            if match := _INCLUDE.match(line):
                yield from _requirements_texts(path.parent / match[1], depth + 1)


# --- job summary ------------------------------------------------------------------------------


def write_summary(
    env: Mapping[str, str],
    report: BuildReport,
    runtime: Runtime,
    workspace: Path,
    options: BuildOptions,
    layer: LayerStep | None,
) -> None:
    if env.get("GITHUB_STEP_SUMMARY"):
        gha.append_job_summary(job_summary(report, runtime, workspace, options, layer))


def job_summary(
    report: BuildReport,
    runtime: Runtime,
    workspace: Path,
    options: BuildOptions,
    layer: LayerStep | None = None,
) -> str:
    """The Markdown job summary, kept under the runner's 1 MiB limit."""
    sections = [
        _summary_heading(report, runtime),
        _summary_artifacts(report, workspace, options),
        _summary_layer(layer),
        _summary_functions(report, options),
        _summary_dependencies(report),
        _summary_biggest(report),
        _summary_source_builds(report),
        _summary_missing(report, workspace),
    ]
    text = "\n\n".join(section for section in sections if section)
    encoded = text.encode("utf-8")
    if len(encoded) <= SUMMARY_LIMIT:
        return text
    cut = encoded[:SUMMARY_LIMIT].decode("utf-8", errors="ignore").rsplit("\n", 1)[0]
    return cut + "\n\n_(summary cut to stay under the runner's 1 MiB limit; see the report)_"


def _summary_heading(report: BuildReport, runtime: Runtime) -> str:
    return (
        f"## chalicepack: {report.app_name} (stage `{report.stage}`)\n\n"
        f"Built for **{report.runtime}** on **{report.architecture}**; the runtime comes"
        f" from {runtime.source}."
    )


def _summary_artifacts(report: BuildReport, workspace: Path, options: BuildOptions) -> str:
    artifacts = report.artifacts
    if not artifacts:
        why = "`check_only`" if options.check_only else "missing dependencies, `fail_on_missing`"
        return f"### Artifacts\n\nNo zip was written ({why})."
    rows = ["| artifact | zipped | unzipped | files | sha256 |", "| --- | --: | --: | --: | --- |"]
    for artifact in artifacts.values():
        upload = "" if artifact.size <= DIRECT_UPLOAD_LIMIT else " (over 50 MiB: upload via S3)"
        rows.append(
            f"| `{relative(Path(artifact.path), workspace)}` | {human_size(artifact.size)}"
            f"{upload} | {human_size(artifact.unzipped_size)} | {artifact.files}"
            f" | `{artifact.sha256}` |"
        )
    unzipped = sum(artifact.unzipped_size for artifact in artifacts.values())
    verdict = "within" if unzipped <= UNZIPPED_LIMIT else "**over**"
    rows.append(
        f"\nLambda's limits: 50 MiB zipped for a direct upload; 250 MiB unzipped for the function"
        f" and its layers together. Unzipped total: {human_size(unzipped)}"
        f" ({100 * unzipped / UNZIPPED_LIMIT:.1f}% of 250 MiB), {verdict} the limit."
    )
    if left_out := _summary_left_out(report):
        rows.append(f"\n{left_out}")
    if template := report.template:
        rows.append(
            f"\nTemplate: `{relative(Path(template.path), workspace)}` ({template.format}),"
            " written by Chalice's own packager around these zips."
        )
    return "### Artifacts\n\n" + "\n".join(rows)


def _summary_left_out(report: BuildReport) -> str:
    """What ``without_runtime_provided`` and ``exclude`` kept out of the zips, and the bytes
    saved (the report's ``left_out``); empty when nothing was left out."""
    left_out = report.left_out
    if left_out is None:
        return ""
    provided = [entry.name for entry in left_out.runtime_provided]
    excluded = left_out.excluded_files
    if not provided and not excluded:
        return ""
    saved = left_out.bytes_saved
    parts = []
    if provided:
        parts.append(
            f"{', '.join(_cell(name) for name in provided)} (Lambda's runtime provides them,"
            " `without_runtime_provided`)"
        )
    if excluded:
        files = "file" if len(excluded) == 1 else "files"
        parts.append(f"{len(excluded)} {files} matching `exclude`")
    return f"Left out: {' and '.join(parts)}; {human_size(saved)} ({saved:,} bytes) unzipped saved."


def _summary_layer(step: LayerStep | None) -> str:
    if step is None:
        return ""
    layer = step.layer
    if layer is None:
        return f"### Lambda layer\n\nNot published: {_cell(step.reason)}."
    if step.state == "published":
        said = f"Published `{layer.layer_name}` version {layer.layer_version}"
    else:
        said = (
            f"`{layer.layer_name}` version {layer.layer_version} already holds this zip (same"
            " `CodeSha256`, runtime and architecture): reused, nothing published"
        )
    return f"### Lambda layer\n\n{said}.\n\n`{layer.layer_arn}`"


def _summary_functions(report: BuildReport, options: BuildOptions) -> str:
    heading = "### Lambda functions found"
    functions = report.functions
    if functions is None:
        if options.check_only:
            why = "`check_only` resolves dependencies only; a build imports the app"
        elif not options.import_app:
            why = "`import_app` is false"
        else:
            why = "the build stopped before the import check"
        return f"{heading}\n\nThe app was not imported ({why}), so none are listed."
    if not functions:
        return f"{heading}\n\nNone: the app defines no routes, Lambda functions or handlers."
    rows = ["| name | handler | kind |", "| --- | --- | --- |"]
    for function in functions:
        name, handler, kind = (_cell(text) for text in astuple(function))
        rows.append(f"| {name} | `{handler}` | {kind} |")
    return f"{heading} ({len(functions)})\n\n" + "\n".join(rows)


def _summary_dependencies(report: BuildReport) -> str:
    dependencies = report.dependencies
    if not dependencies:
        return "### Dependencies\n\nNone."
    rows = ["| name | version | wheel tag | size |", "| --- | --- | --- | --: |"]
    for entry in dependencies[:SUMMARY_DEPENDENCY_ROWS]:
        rows.append(
            f"| {_cell(entry.name)} | {_cell(entry.version)} | `{entry.tag}`"
            f" | {_size(entry.unpacked_size)} |"
        )
    more = len(dependencies) - SUMMARY_DEPENDENCY_ROWS
    if more > 0:
        rows.append(f"\n…and {more} more in the build report.")
    return f"### Dependencies ({len(dependencies)})\n\n" + "\n".join(rows)


def _summary_biggest(report: BuildReport) -> str:
    sized = [(d.unpacked_size, d.name) for d in report.dependencies if d.unpacked_size]
    if len(sized) < 2:
        return ""
    biggest = sorted(sized, key=lambda d: d[0], reverse=True)[:BIGGEST]
    rows = ["| package | unpacked | of 250 MiB |", "| --- | --: | --: |"]
    rows += [
        f"| {_cell(name)} | {human_size(size)} | {100 * size / UNZIPPED_LIMIT:.1f}% |"
        for size, name in biggest
    ]
    return "### Biggest packages\n\n" + "\n".join(rows)


def _summary_missing(report: BuildReport, workspace: Path) -> str:
    missing = report.missing_dependencies
    if not missing:
        return ""
    rows = ["| dependency | brought in by | why | fix |", "| --- | --- | --- | --- |"]
    for item in missing:
        places = [f"`{f}:{n}`" for f, n in _requirement_places(item, report, workspace)]
        rows.append(
            f"| {_cell(item.name)}=={_cell(item.version)} | {', '.join(places) or '—'}"
            f" | {_cell(item.reason)} | {_cell(item.fix)} |"
        )
    return f"### Missing dependencies ({len(missing)})\n\n" + "\n".join(rows)


def _summary_source_builds(report: BuildReport) -> str:
    """The wheels built here from source: for which target, with what, and the verdict."""
    builds = report.source_builds
    if not builds:
        return ""
    rows = ["| package | target | compiler | verdict |", "| --- | --- | --- | --- |"]
    for build in builds:
        verdict = build.verdict
        if build.grafted:
            verdict += f": grafted {', '.join(build.grafted)}"
        rows.append(
            f"| {_cell(build.name)}=={_cell(build.version)} | {_cell(build.target)}"
            f" | `{_cell(build.compiler)}` | {_cell(verdict)} ({_cell(build.policy)}) |"
        )
    return f"### Built from source ({len(builds)})\n\n" + "\n".join(rows)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _size(size: int | None) -> str:
    return "—" if size is None else human_size(size)
