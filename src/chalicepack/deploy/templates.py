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

import argparse
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
from typing import Any, Literal

from chalicepack import __version__
from chalicepack.errors import (
    AppImportError,
    BadInput,
    BuildFailure,
    ChalicepackError,
    MissingDependencies,
)
from chalicepack.inputs.target import Target
from chalicepack.options import add_build_options, build_options
from chalicepack.package.chaliceruntime import RUNTIME_FILES
from chalicepack.package.digest import file_sha256
from chalicepack.package.pipeline import DEPLOYMENT_ZIP, LAYER_ZIP, BuildOptions, BuildResult, build
from chalicepack.package.sbom import SBOM_NAME
from chalicepack.report import REPORT_NAME, summary_lines, write_json_atomically

log = logging.getLogger(__name__)

PkgFormat = Literal["cloudformation", "terraform"]
TemplateFormat = Literal["json", "yaml"]
PKG_FORMATS: tuple[PkgFormat, ...] = ("cloudformation", "terraform")
TEMPLATE_FORMATS: tuple[TemplateFormat, ...] = ("json", "yaml")

# The chalice releases whose packager internals deploy/_child.py is written against.
CHALICE_RANGE = ">=1.34,<1.35"

# Generating a template imports the app; an app that waits on the network at import time
# would otherwise hang the build.
GENERATE_TIMEOUT = 300.0

_GUARD = "if 'AWS_CHALICE_CLI_MODE' not in os.environ:"


@dataclass(frozen=True)
class PackageOptions:
    """``chalicepack package``'s input: the build's options plus ``chalice package``'s."""

    build: BuildOptions  # its out_dir is ignored: the zips go to out_dir below
    out_dir: Path
    pkg_format: PkgFormat = "cloudformation"
    template_format: TemplateFormat = "json"
    merge_template: Path | None = None
    profile: str | None = None

    @classmethod
    def parse(
        cls,
        build: BuildOptions,
        out_dir: Path,
        pkg_format: str = "cloudformation",
        template_format: str = "json",
        merge_template: Path | None = None,
        profile: str | None = None,
    ) -> PackageOptions:
        """Check the ``chalice package`` options; raise one ``BadInput`` naming the option."""
        if pkg_format not in PKG_FORMATS:
            raise BadInput(
                f"--pkg-format {pkg_format!r} is not supported; use one of: "
                + ", ".join(PKG_FORMATS)
            )
        template_format = template_format.lower()  # Chalice accepts any case
        if template_format not in TEMPLATE_FORMATS:
            raise BadInput(
                f"--template-format {template_format!r} is not supported; use one of: "
                + ", ".join(TEMPLATE_FORMATS)
            )
        if pkg_format == "terraform" and (merge_template is not None or template_format != "json"):
            raise BadInput(
                "--pkg-format terraform writes chalice.tf.json only: it takes no "
                "--merge-template and no --template-format yaml (as with chalice package); "
                "drop them, or use --pkg-format cloudformation"
            )
        if merge_template is not None and not merge_template.is_file():
            raise BadInput(
                f"--merge-template {merge_template}: no such file; give the JSON or YAML "
                "template to merge into the generated one"
            )
        return cls(
            build=build,
            out_dir=out_dir,
            pkg_format=pkg_format,
            template_format=template_format,
            merge_template=None if merge_template is None else merge_template.resolve(),
            profile=profile,
        )


@dataclass(frozen=True)
class PackageResult:
    template: Path
    report: dict[str, Any]
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
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".chalicepack-package-"))
        try:
            log.info("generating the %s template with chalice's packager", options.pkg_format)
            name = _generate(options, project_dir, report, import_path, staging, scratch)
            _check_copies(report, staging)
            # The SBOM describes these zips: it goes beside them with the template.
            shutil.copyfile(built.report_path.parent / SBOM_NAME, staging / SBOM_NAME)
            template = _move_into(out_dir, staging, name, report)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    for artifact in report["artifacts"].values():
        artifact["path"] = str(out_dir / Path(artifact["path"]).name)
    report["template"] = {"path": str(template), "format": options.pkg_format}
    report_path = out_dir / REPORT_NAME
    write_json_atomically(report_path, report)
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


def _unpack(report: dict[str, Any], scratch: Path) -> list[str]:
    """The packaged code, unzipped for the app's import: the function tree without the Chalice
    runtime (the child's full chalice must win), then the layer's site-packages."""
    artifacts = report["artifacts"]
    function_tree = scratch / "function"
    with zipfile.ZipFile(artifacts["deployment"]["path"]) as archive:
        names = [name for name in archive.namelist() if name not in RUNTIME_FILES]
        archive.extractall(function_tree, names)
    paths = [str(function_tree)]
    if "layer" in artifacts:
        with zipfile.ZipFile(artifacts["layer"]["path"]) as archive:
            archive.extractall(scratch / "layer")
        target = Target.parse(report["runtime"], report["architecture"])
        paths.append(str(scratch / "layer" / target.site_packages))
    return paths


def _generate(
    options: PackageOptions,
    project_dir: Path,
    report: dict[str, Any],
    import_path: list[str],
    staging: Path,
    scratch: Path,
) -> str:
    """Run chalice's packager in a child process; return the template's file name."""
    artifacts = report["artifacts"]
    result_path = scratch / "templategen-result.json"
    spec = {
        "project_dir": str(project_dir),
        "stage": report["stage"],
        "pkg_format": options.pkg_format,
        "template_format": options.template_format,
        "merge_template": None if options.merge_template is None else str(options.merge_template),
        "profile": options.profile,
        "automatic_layer": report["automatic_layer"],
        "architecture": report["architecture"],
        "runtime": report["runtime"],
        "function_zip": artifacts["deployment"]["path"],
        "layer_zip": artifacts["layer"]["path"] if "layer" in artifacts else None,
        "import_path": import_path,
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
        raise _error(result["error"], project_dir, output)
    return str(result["template"])


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""


def _error(
    error: dict[str, Any], project_dir: Path, output: str
) -> AppImportError | BadInput | BuildFailure:
    """The child's report of a failure, as the error the user gets."""
    kind, message = error["kind"], error["message"]
    file = Path(error["file"]) if error.get("file") else None
    line = error.get("line")
    if file is not None and file.is_relative_to(project_dir):
        shown = f"{file.relative_to(project_dir)}:{line}: " if line else ""
    else:
        shown = ""
    if kind == "app_import":
        return AppImportError(
            f"importing app.py as chalice package does failed: {shown}{message}\n"
            "It is imported with AWS_CHALICE_CLI_MODE=true and the stage's environment "
            "variables, its packaged dependencies importable; fix the error, or guard code "
            f"that must not run while packaging with `{_GUARD}`",
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


def _check_copies(report: dict[str, Any], staging: Path) -> None:
    """Put our zips beside the template: the copies chalice's post-processor made (it copies a
    zip only when a function or the layer refers to it) must be ours, byte for byte; a zip
    it did not copy is added, so OUTDIR always holds what the report describes."""
    for name, filename in (("deployment", DEPLOYMENT_ZIP), ("layer", LAYER_ZIP)):
        artifact = report["artifacts"].get(name)
        staged = staging / filename
        if artifact is None:
            if staged.exists():
                raise _not_ours(filename)
        elif not staged.exists():
            shutil.copyfile(artifact["path"], staged)
        elif file_sha256(staged) != artifact["sha256"]:
            raise _not_ours(filename)


def _not_ours(filename: str) -> BuildFailure:
    return BuildFailure(
        f"the template's {filename} is not the one chalicepack built: chalice's packaging step "
        f"was not replaced; chalicepack generates templates with chalice{CHALICE_RANGE}"
    )


def _move_into(out_dir: Path, staging: Path, template_name: str, report: dict[str, Any]) -> Path:
    names = [template_name, DEPLOYMENT_ZIP, SBOM_NAME]
    if "layer" in report["artifacts"]:
        names.append(LAYER_ZIP)
    for name in names:
        os.replace(staging / name, out_dir / name)
    if "layer" not in report["artifacts"]:
        # A layer zip left by an earlier run would be taken for this one's.
        (out_dir / LAYER_ZIP).unlink(missing_ok=True)
    return out_dir / template_name


# --- the command line -------------------------------------------------------------------------


def add_package_command(
    commands: argparse._SubParsersAction[Any],
) -> argparse.ArgumentParser:
    """Add ``package`` to ``chalicepack``'s subcommands; ``run_package`` runs it."""
    command: argparse.ArgumentParser = commands.add_parser(
        "package",
        help="write chalice package's SAM or Terraform template around chalicepack's zips",
        description=__doc__.split("\n", 1)[0] if __doc__ else None,
    )
    command.add_argument(
        "out_dir",
        metavar="OUTDIR",
        type=Path,
        help="where the template, the zips and build-report.json are written",
    )
    command.add_argument(
        "--project-dir",
        type=Path,
        default=Path("."),
        help="the Chalice project (holding app.py and .chalice/); default: .",
    )
    command.add_argument(
        "--pkg-format",
        choices=PKG_FORMATS,
        default="cloudformation",
        help="cloudformation writes sam.json (or sam.yaml), terraform chalice.tf.json",
    )
    command.add_argument(
        "--template-format",
        choices=TEMPLATE_FORMATS,
        type=str.lower,
        default="json",
        help="serialize the SAM template as json or yaml (cloudformation only)",
    )
    command.add_argument(
        "--merge-template",
        type=Path,
        help="a JSON or YAML template merged into the SAM template (cloudformation only; "
        "a .yaml/.yml file makes the output YAML, as with chalice package)",
    )
    command.add_argument(
        "--profile", help="AWS profile whose region's service principals the template names"
    )
    add_build_options(command)
    return command


def options_from_args(args: argparse.Namespace) -> PackageOptions:
    return PackageOptions.parse(
        build=build_options(args, out_dir=None),
        out_dir=args.out_dir,
        pkg_format=args.pkg_format,
        template_format=args.template_format,
        merge_template=args.merge_template,
        profile=args.profile,
    )


def run_package(args: argparse.Namespace) -> int:
    """``chalicepack package``: print the template's path, the zips' and a summary (or the
    report with ``--json``). Errors propagate as ``ChalicepackError`` for the CLI to map."""
    result = package(options_from_args(args))
    if args.json:
        print(json.dumps(result.report, indent=2))
    else:
        print(result.template)
        print("\n".join(summary_lines(result.report)))
    return 0
