"""``chalicepack package``: ``chalice package``'s SAM or Terraform output around chalicepack's zips.

The zips are built by :func:`chalicepack.build.build`; the template is made by Chalice's own
packager (``chalicepack.deploy._child``, in a child process) with those zips in place of the ones
its packaging step would have built. OUTDIR then holds what ``chalice package OUTDIR`` writes
(``sam.json``/``sam.yaml`` or ``chalice.tf.json``, ``deployment.zip``, ``layer-deployment.zip``
when there is a layer), plus ``build-report.json`` describing the zips in OUTDIR and the
template. Files are generated in a staging directory inside OUTDIR and moved into place only
when everything succeeded.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from chalicepack import __version__
from chalicepack.errors import (
    AppImportError,
    BadInput,
    BuildFailure,
    ChalicepackError,
    MissingDependencies,
)
from chalicepack.inputs.target import Target
from chalicepack.options import PackageOptions
from chalicepack.package.chaliceruntime import RUNTIME_FILES
from chalicepack.package.digest import file_sha256
from chalicepack.package.pipeline import DEPLOYMENT_ZIP, LAYER_ZIP, BuildResult, build
from chalicepack.package.sbom import SBOM_NAME
from chalicepack.report import REPORT_NAME, BuildReport, Template, write_report

log = logging.getLogger(__name__)


# The chalice releases whose packager internals deploy/_child.py is written against.
CHALICE_RANGE = ">=1.34,<1.35"

# Generating a template imports the app; an app that waits on the network at import time
# would otherwise hang the build.
GENERATE_TIMEOUT = 300.0

_GUARD = "if 'AWS_CHALICE_CLI_MODE' not in os.environ:"


@dataclass(frozen=True)
class PackageResult:
    template: Path
    report: BuildReport
    report_path: Path
    warnings: list[str] = field(default_factory=list)


def package(options: PackageOptions) -> PackageResult:
    """Build the zips and write the template beside them; raise a ``ChalicepackError``."""
    # parse() checks these; a caller that built the options by hand gets the same messages.
    options = PackageOptions.parse(
        options.build,
        options.out_dir,
        options.pkg_format,
        options.template_format,
        options.merge_template,
        options.profile,
    )
    out_dir = options.out_dir.resolve()
    project_dir = options.build.project_dir.resolve()
    with tempfile.TemporaryDirectory(prefix="chalicepack-package-") as scratch_name:
        scratch = Path(scratch_name)
        built = _build(options, scratch / "build", out_dir)
        report = built.report
        import_path = _unpack(report, scratch)
        created = _first_missing(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".chalicepack-package-"))
        try:
            log.info("generating the %s template with chalice's packager", options.pkg_format)
            name = _generate(options, project_dir, built, import_path, staging, scratch)
            _check_copies(report, staging)
            # The SBOM describes these zips: it goes beside them with the template.
            shutil.copyfile(built.report_path.parent / SBOM_NAME, staging / SBOM_NAME)
            template = _move_into(out_dir, staging, name, report)
        except BaseException:
            if created is not None:  # made for this output: nothing of it is left
                shutil.rmtree(created, ignore_errors=True)
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    report = replace(
        report,
        artifacts={
            name: replace(artifact, path=str(out_dir / Path(artifact.path).name))
            for name, artifact in report.artifacts.items()
        },
        template=Template(str(template), options.pkg_format),
    )
    report_path = out_dir / REPORT_NAME
    write_report(report_path, report)
    return PackageResult(template, report, report_path, built.warnings)


def _build(options: PackageOptions, build_dir: Path, out_dir: Path) -> BuildResult:
    """``chalicepack build`` into ``build_dir``; when it fails after writing its report (under
    ``--strict``), the report is kept in OUTDIR, as ``build`` leaves it in its output, and a
    ``MissingDependencies`` names that copy (``build_dir`` goes with the scratch directory)."""
    try:
        return build(replace(options.build, out_dir=build_dir, check_only=False))
    except ChalicepackError as error:
        if not (build_dir / REPORT_NAME).is_file():
            raise
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(build_dir / REPORT_NAME, out_dir / REPORT_NAME)
        if isinstance(error, MissingDependencies):
            raise MissingDependencies(str(error), report_path=out_dir / REPORT_NAME) from None
        raise


def _first_missing(path: Path) -> Path | None:
    """The outermost of ``path`` and its parents that does not exist yet (None: it exists)."""
    missing = None
    for candidate in (path, *path.parents):
        if candidate.exists():
            return missing
        missing = candidate
    return missing


def _unpack(report: BuildReport, scratch: Path) -> list[str]:
    """The packaged code, unzipped for the app's import: the function tree without the Chalice
    runtime (the child's full chalice must win), then the layer's site-packages."""
    artifacts = report.artifacts
    function_tree = scratch / "function"
    with zipfile.ZipFile(artifacts["deployment"].path) as archive:
        names = [name for name in archive.namelist() if name not in RUNTIME_FILES]
        archive.extractall(function_tree, names)
    paths = [str(function_tree)]
    if "layer" in artifacts:
        with zipfile.ZipFile(artifacts["layer"].path) as archive:
            archive.extractall(scratch / "layer")
        target = Target.parse(report.runtime, report.architecture)
        paths.append(str(scratch / "layer" / target.site_packages))
    return paths


def _generate(
    options: PackageOptions,
    project_dir: Path,
    built: BuildResult,
    import_path: list[str],
    staging: Path,
    scratch: Path,
) -> str:
    """Run chalice's packager in a child process; return the template's file name."""
    report = built.report
    artifacts = report.artifacts
    result_path = scratch / "templategen-result.json"
    spec = {
        "project_dir": str(project_dir),
        "stage": report.stage,
        "pkg_format": options.pkg_format,
        "template_format": options.template_format,
        "merge_template": None if options.merge_template is None else str(options.merge_template),
        "profile": options.profile,
        "automatic_layer": report.automatic_layer,
        "architecture": report.architecture,
        "runtime": report.runtime,
        "function_zip": artifacts["deployment"].path,
        "layer_zip": artifacts["layer"].path if "layer" in artifacts else None,
        "import_path": import_path,
        # What the build's import check could not load here (built for another target): the
        # template needs only the app's Chalice object, so the same stand-ins serve it.
        "stand_ins": list(built.stand_ins),
        "outdir": str(staging),
        "result": str(result_path),
    }
    spec_path = scratch / "templategen-spec.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    command = [sys.executable, "-m", "chalicepack.deploy._child", str(spec_path)]
    try:
        completed = subprocess.run(
            command,
            cwd=project_dir,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=GENERATE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        raise AppImportError(
            f"generating the template did not finish within {GENERATE_TIMEOUT:g} s; it imports "
            "app.py, so if the app waits on a connection at import time, guard that code with "
            f"`{_GUARD}`",
            file=project_dir / "app.py",
            output=_text(expired.stdout) + _text(expired.stderr),
        ) from None
    output = completed.stdout + completed.stderr
    for line in output.splitlines():
        log.debug("chalice package: %s", line)
    if completed.returncode != 0 or not result_path.is_file():
        tail = "\n".join(f"  {line}" for line in output.strip().splitlines()[-20:])
        raise BuildFailure(
            f"generating the template failed (exit code {completed.returncode}):\n{tail}"
        )
    result = json.loads(result_path.read_text(encoding="utf-8"))
    if "error" in result:
        raise _error(result["error"], project_dir, output, report.import_check is not None)
    return str(result["template"])


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""


def _error(
    error: dict[str, Any], project_dir: Path, output: str, import_checked: bool
) -> AppImportError | BadInput | BuildFailure:
    """The child's report of a failure, as the error the user gets (``import_checked``: the
    build imported the app, and left out what this interpreter cannot load)."""
    kind, message = error["kind"], error["message"]
    file = Path(error["file"]) if error.get("file") else None
    line = error.get("line")
    if file is not None and file.is_relative_to(project_dir):
        shown = f"{file.relative_to(project_dir)}:{line}: " if line else ""
    else:
        shown = ""
    if kind == "app_import":
        fix = f"fix the error, or guard code that must not run while packaging with `{_GUARD}`"
        if not import_checked and message.startswith(("ModuleNotFoundError", "ImportError")):
            # Only the build's import check finds the modules this interpreter cannot load.
            fix = (
                "if a module it names is compiled for another --runtime or --arch, drop "
                "--no-import: the build's import check then finds such modules and they are "
                "left out (stubbed) for the template too; else " + fix
            )
        return AppImportError(
            f"importing app.py as chalice package does failed: {shown}{message}\n"
            "It is imported with AWS_CHALICE_CLI_MODE=true and the stage's environment "
            f"variables, from its packaged files and dependencies; {fix}",
            file=file or project_dir / "app.py",
            line=line,
            output=output,
        )
    if kind == "no_region":
        return BadInput(
            "no AWS region: the template names the region's service principals, so chalice "
            "package needs one; set AWS_DEFAULT_REGION, or --profile a profile with a region"
        )
    if kind == "profile":
        return BadInput(f"--profile: {message}; name a profile of your AWS config")
    if kind == "chalice":
        return BadInput(f"chalice cannot package this app: {shown}{message}", file=file, line=line)
    if kind == "incompatible":
        return BuildFailure(
            f"{message}: chalicepack {__version__} generates templates with chalice"
            f"{CHALICE_RANGE}; install a chalice release in that range"
        )
    return BuildFailure(f"generating the template failed:\n{message}")


def _check_copies(report: BuildReport, staging: Path) -> None:
    """Put our zips beside the template: the copies chalice's post-processor made (it copies a
    zip only when a function or the layer refers to it) must be ours, byte for byte; a zip
    it did not copy is added, so OUTDIR always holds what the report describes."""
    for name, filename in (("deployment", DEPLOYMENT_ZIP), ("layer", LAYER_ZIP)):
        artifact = report.artifacts.get(name)
        staged = staging / filename
        if artifact is None:
            if staged.exists():
                raise _not_ours(filename)
        elif not staged.exists():
            shutil.copyfile(artifact.path, staged)
        elif file_sha256(staged) != artifact.sha256:
            raise _not_ours(filename)


def _not_ours(filename: str) -> BuildFailure:
    return BuildFailure(
        f"the template's {filename} is not the one chalicepack built: chalice's packaging step "
        f"was not replaced; chalicepack generates templates with chalice{CHALICE_RANGE}"
    )


def _move_into(out_dir: Path, staging: Path, template_name: str, report: BuildReport) -> Path:
    names = [template_name, DEPLOYMENT_ZIP, SBOM_NAME]
    if "layer" in report.artifacts:
        names.append(LAYER_ZIP)
    for name in names:
        os.replace(staging / name, out_dir / name)
    if "layer" not in report.artifacts:
        # A layer zip left by an earlier run would be taken for this one's.
        (out_dir / LAYER_ZIP).unlink(missing_ok=True)
    return out_dir / template_name


# --- the command line -------------------------------------------------------------------------
