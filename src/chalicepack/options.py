"""The build options the CLI's commands share (``build``/``check`` and ``package``): one
definition, so the commands, and the Action that maps its inputs through them, cannot drift."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicepack.inputs.target import ARCHES, RUNTIME_GLIBC
from chalicepack.report import REPORT_NAME


@dataclass(frozen=True)
class BuildOptions:
    project_dir: Path
    stage: str = "dev"
    out_dir: Path | None = None  # default: <project>/dist
    automatic_layer: bool | None = None  # None: as config.json says
    runtime: str | None = None  # default: the running interpreter's python3.X
    arch: str | None = None  # default: config.json's lambda_architecture, else x86_64
    strict: bool = False
    check_only: bool = False  # resolve and report; write no zip
    import_app: bool = True  # import app.py from the staged package, as Chalice does
    import_timeout: float = 60.0
    refresh: bool = False  # resolve requirements again even if a recent resolution is cached
    exclude: tuple[str, ...] = ()  # globs of dependency/vendor paths to leave out
    without_runtime_provided: bool = False  # leave out boto3 & co, which Lambda provides
    cache_dir: Path | None = None  # default: $XDG_CACHE_HOME/chalicepack
    resolver: str = "auto"  # "auto": uv where it answers as pip would (see deps.uv_resolver); "pip"


def add_build_options(command: argparse.ArgumentParser) -> None:
    """Every option that shapes a build, less the project and output directories."""
    command.add_argument("--stage", default="dev", help="config.json stage (default: dev)")
    command.add_argument(
        "--automatic-layer",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="put dependencies in a layer zip (default: the stage's automatic_layer)",
    )
    command.add_argument(
        "--runtime",
        choices=list(RUNTIME_GLIBC),
        help="Lambda runtime (default: the running interpreter's, as Chalice does)",
    )
    command.add_argument(
        "--arch",
        choices=list(ARCHES),
        help="Lambda architecture (default: config.json's lambda_architecture, else x86_64)",
    )
    command.add_argument(
        "--strict", action="store_true", help="exit 1 when a dependency has no build for the target"
    )
    command.add_argument(
        "--cache-dir", type=Path, help="wheel cache (default: $XDG_CACHE_HOME/chalicepack)"
    )
    command.add_argument(
        "--json",
        action="store_true",
        help="print build-report.json (check: check-report.json) to stdout instead",
    )
    command.add_argument(
        "--no-import",
        dest="import_app",
        action="store_false",
        help="do not import app.py to check it and list its Lambda functions",
    )
    command.add_argument(
        "--import-timeout",
        type=seconds,
        default=BuildOptions.import_timeout,
        metavar="SECONDS",
        help="how long importing app.py may take (default: 60)",
    )
    command.add_argument(
        "--refresh",
        action="store_true",
        help="resolve requirements again even when a recent resolution is cached",
    )
    command.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="leave out dependency and vendor files matching this glob (repeatable)",
    )
    command.add_argument(
        "--without-runtime-provided",
        action="store_true",
        help="leave out boto3, botocore, s3transfer, jmespath and what only they need "
        "(Lambda's Python runtime provides them)",
    )
    command.add_argument(
        "--resolver",
        choices=["auto", "pip"],
        default=BuildOptions.resolver,
        help="auto: uv where it reads requirements.txt and pip's settings as pip does, its "
        "answer checked against the target, else pip; pip: always pip (default: auto)",
    )
    command.add_argument("-v", "--verbose", action="store_true", help="log pip's output")


def build_options(
    args: argparse.Namespace, *, out_dir: Path | None, check_only: bool = False
) -> BuildOptions:
    """The BuildOptions of parsed arguments (``args.project_dir`` names the project)."""
    return BuildOptions(
        project_dir=args.project_dir,
        stage=args.stage,
        out_dir=out_dir,
        automatic_layer=args.automatic_layer,
        runtime=args.runtime,
        arch=args.arch,
        strict=args.strict,
        cache_dir=args.cache_dir,
        check_only=check_only,
        import_app=args.import_app,
        import_timeout=args.import_timeout,
        refresh=args.refresh,
        exclude=tuple(args.exclude),
        without_runtime_provided=args.without_runtime_provided,
        resolver=args.resolver,
    )


def seconds(text: str) -> float:
    """``--import-timeout``'s value: a number of seconds from 1 to 900 (more than 0)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 900:
        raise argparse.ArgumentTypeError(f"{text!r}: use a number of seconds from 1 to 900")
    return value


@dataclass(frozen=True)
class PublishOptions:
    """What ``publish-layer`` publishes, and where (boto3 is imported only to publish)."""

    report_path: Path = Path("dist") / REPORT_NAME
    layer_name: str | None = None  # default: <app_name>-<stage>-managed-layer, as Chalice names it
    s3_bucket: str | None = None  # needed for a layer zip over 50 MB
    region: str | None = None  # default: AWS_REGION, then boto3's (AWS_DEFAULT_REGION, profile)


def add_publish_layer_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``publish-layer`` to the CLI's subcommands; ``run_publish_layer`` runs it."""
    command: argparse.ArgumentParser = subparsers.add_parser(
        "publish-layer",
        help="publish the layer zip of a build as a Lambda layer version, unless unchanged",
    )
    command.add_argument(
        "--report",
        type=Path,
        default=PublishOptions.report_path,
        help=f"the build's report (default: dist/{REPORT_NAME})",
    )
    command.add_argument(
        "--layer-name", help="layer name (default: <app_name>-<stage>-managed-layer, as Chalice)"
    )
    command.add_argument(
        "--s3-bucket", help="upload through this bucket (needed for a layer zip over 50 MB)"
    )
    command.add_argument(
        "--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's)"
    )
    command.add_argument(
        "--json",
        action="store_true",
        help="print layer_arn, layer_version, layer_published and layer_name as JSON",
    )
    command.add_argument("-v", "--verbose", action="store_true", help="log more")
    return command


def publish_options_from_args(args: argparse.Namespace) -> PublishOptions:
    """``publish-layer``'s parsed arguments as the options of :func:`publish_layer`."""
    return PublishOptions(
        report_path=args.report,
        layer_name=args.layer_name,
        s3_bucket=args.s3_bucket,
        region=args.region,
    )
