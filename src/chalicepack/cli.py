"""``chalicepack`` on the command line: every argparse definition, and the one place errors
become exit codes (the Action maps its inputs through this parser too)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from chalicepack import __version__
from chalicepack.errors import BadInput, ChalicepackError
from chalicepack.inputs.config import DEFAULT_STAGE
from chalicepack.inputs.target import ARCHES, RUNTIME_GLIBC
from chalicepack.options import (
    PKG_FORMATS,
    TEMPLATE_FORMATS,
    BuildOptions,
    PackageOptions,
    PublishOptions,
)
from chalicepack.package.uptodate import BuildInputs, unchanged_build
from chalicepack.report import REPORT_NAME, summary_lines

# An unchanged build should cost little more than Python's start-up: it imports only inputs,
# the cache, the up-to-date check and the report. The pipeline (pip, installer, the zip writer,
# the import check), the templates and boto3 load when a command needs them.

log = logging.getLogger("chalicepack")

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is our BadInput (exit 2) with argparse's message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise BadInput(f"{self.prog}: {message} (see --help)")


# The user's words for the tool (``--help``), not this module's docstring.
_DESCRIPTION = (
    "Package an AWS Chalice app for AWS Lambda: its dependencies installed for the Lambda "
    "runtime and architecture (not this machine's), the app imported as Lambda would, "
    "deployment.zip (and layer-deployment.zip) written."
)


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser: every command and option."""
    parser = _Parser(prog="chalicepack", description=_DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"chalicepack {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_project_options(commands.add_parser("build", help="package a Chalice project"))
    _add_project_options(
        commands.add_parser(
            "check", help="resolve for the target and report missing dependencies; no zips"
        )
    )
    _add_package_command(commands)
    _add_publish_layer_command(commands)
    return parser


def _add_project_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "project_dir",
        nargs="?",
        default=".",
        type=Path,
        help="the Chalice project (holding app.py and .chalice/); default: .",
    )
    command.add_argument("--out", type=Path, help="output directory (default: PROJECT_DIR/dist)")
    _add_build_options(command)


def _add_build_options(command: argparse.ArgumentParser) -> None:
    """Every option that shapes a build, less the project and output directories."""
    _add_target_options(command)
    _add_dependency_options(command)
    _add_behaviour_options(command)


def _add_target_options(command: argparse.ArgumentParser) -> None:
    """Which stage, for which Lambda runtime and architecture, with or without a layer."""
    command.add_argument(
        "--stage", default=DEFAULT_STAGE, help=f"config.json stage (default: {DEFAULT_STAGE})"
    )
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


def _add_dependency_options(command: argparse.ArgumentParser) -> None:
    """Which dependency file, which of its groups, how to resolve, and what to leave out."""
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
    command.add_argument(
        "--requirements",
        type=Path,
        metavar="FILE",
        help="the dependency file: requirements.txt, pylock.toml, uv.lock, poetry.lock or "
        "Pipfile.lock (default: requirements.txt, else the project's one lock file)",
    )
    command.add_argument(
        "--group",
        dest="groups",
        action="append",
        default=[],
        metavar="NAME",
        help="also ship this dependency group of the lock (repeatable; default: production only)",
    )
    command.add_argument(
        "--extra",
        dest="extras",
        action="append",
        default=[],
        metavar="NAME",
        help="also ship this extra of the project, from the lock (repeatable)",
    )


def _add_behaviour_options(command: argparse.ArgumentParser) -> None:
    """How strict, whether to import the app, where to cache, what to print."""
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
    command.add_argument("-v", "--verbose", action="store_true", help="log pip's output")


def seconds(text: str) -> float:
    """``--import-timeout``'s value: a number of seconds from 1 to 900 (more than 0)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 900:
        raise argparse.ArgumentTypeError(f"{text!r}: use a number of seconds from 1 to 900")
    return value


def _add_package_command(
    commands: argparse._SubParsersAction[Any],
) -> argparse.ArgumentParser:
    """``package``: chalice package's template around chalicepack's zips."""
    command: argparse.ArgumentParser = commands.add_parser(
        "package",
        help="write chalice package's SAM or Terraform template around chalicepack's zips",
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
    _add_build_options(command)
    return command


def _add_publish_layer_command(subparsers: Any) -> argparse.ArgumentParser:
    """``publish-layer``: the layer zip of a build as a Lambda layer version."""
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


def options_from_args(args: argparse.Namespace) -> BuildOptions:
    """``build``'s or ``check``'s parsed arguments as BuildOptions."""
    return _build_options(args, out_dir=args.out, check_only=args.command == "check")


def _build_options(
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
        requirements=args.requirements,
        groups=tuple(args.groups),
        extras=tuple(args.extras),
    )


def package_options_from_args(args: argparse.Namespace) -> PackageOptions:
    """``package``'s parsed arguments as the options of ``deploy.templates.package``."""
    return PackageOptions.parse(
        build=_build_options(args, out_dir=None),
        out_dir=args.out_dir,
        pkg_format=args.pkg_format,
        template_format=args.template_format,
        merge_template=args.merge_template,
        profile=args.profile,
    )


def publish_options_from_args(args: argparse.Namespace) -> PublishOptions:
    """``publish-layer``'s parsed arguments as the options of :func:`publish_layer`."""
    return PublishOptions(
        report_path=args.report,
        layer_name=args.layer_name,
        s3_bucket=args.s3_bucket,
        region=args.region,
    )


class Terminated(BaseException):
    """SIGTERM, raised where the build is so that its cleanup (``finally``, ``except
    BaseException``) runs: temporary files go, the previous artifacts stay."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise Terminated


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread can handle signals
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(stream=sys.stderr, format="chalicepack: %(message)s", force=True)
    try:
        with _sigterm_raises():
            args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
            log.setLevel(logging.DEBUG if args.verbose else logging.INFO)
            if args.command == "publish-layer":
                return _publish_layer(args)
            if args.command == "package":
                return _package(args)
            return _build(args)
    except ChalicepackError as error:
        log.error("error: %s", error)
        return error.exit_code
    except OSError as error:  # an outside failure no step turned into a message of its own
        log.error("error: %s", error)
        return EXIT_FAILED
    except KeyboardInterrupt:
        log.error("interrupted; temporary files removed, previous artifacts left as they were")
        return 130
    except Terminated:
        log.error("terminated; temporary files removed, previous artifacts left as they were")
        return 128 + signal.SIGTERM


def _build(args: argparse.Namespace) -> int:
    inputs = BuildInputs.read(options_from_args(args))
    result = None if inputs.options.check_only else unchanged_build(inputs)
    if result is None:
        from chalicepack.package.pipeline import build_from

        result = build_from(inputs)
    if args.json:
        print(json.dumps(result.report.to_json(), indent=2))
    else:
        if args.command == "check":
            print(result.report_path)
        print("\n".join(summary_lines(result.report)))
    if result.report.missing_dependencies and args.strict:
        return EXIT_FAILED
    return EXIT_OK


def _package(args: argparse.Namespace) -> int:
    """``chalicepack package``: print the template's path, the zips' and a summary (or the
    report with ``--json``). Errors propagate as ``ChalicepackError`` for the CLI to map."""
    from chalicepack.deploy.templates import package  # the whole pipeline

    result = package(package_options_from_args(args))
    if args.json:
        print(json.dumps(result.report.to_json(), indent=2))
    else:
        print(result.template)
        print("\n".join(summary_lines(result.report)))
    return 0


def _publish_layer(args: argparse.Namespace) -> int:
    """Publish as ``args`` say; print the layer version ARN (or JSON) on stdout."""
    if not args.verbose:
        # botocore logs failed credential refreshes with a traceback; the error we raise for
        # them is the one line the user needs.
        logging.getLogger("botocore").setLevel(logging.CRITICAL)
    from chalicepack.deploy.publish import publish_layer  # boto3 loads only for this command

    result = publish_layer(publish_options_from_args(args))
    print(json.dumps(result.as_json(), indent=2) if args.json else result.layer_arn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
