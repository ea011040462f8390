"""``chalicepack`` on the command line; the one place errors become exit codes."""

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

from chalicepack import __version__
from chalicepack.errors import BadInput, ChalicepackError
from chalicepack.options import (
    BuildOptions,
    add_build_options,
    add_publish_layer_command,
    build_options,
)
from chalicepack.package.uptodate import BuildInputs, unchanged_build
from chalicepack.report import summary_lines

# An unchanged build should cost little more than Python's start-up: it imports only config,
# project, cache, fingerprint and report. The pipeline (pip, installer, the zip writer, the
# import check) and the package command (which imports all of it) load when they are needed.
_LIGHT_COMMANDS = ("build", "check")

log = logging.getLogger("chalicepack")

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is our BadInput (exit 2) with argparse's message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise BadInput(f"{self.prog}: {message} (see --help)")


def build_parser(*, package: bool = True) -> argparse.ArgumentParser:
    """The command line's parser; ``package=False`` leaves out the package command, whose
    module imports the whole pipeline, for a command line that does not name it."""
    parser = _Parser(prog="chalicepack", description=__doc__)
    parser.add_argument("--version", action="version", version=f"chalicepack {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_build_options(commands.add_parser("build", help="package a Chalice project"))
    _add_build_options(
        commands.add_parser(
            "check", help="resolve for the target and report missing dependencies; no zips"
        )
    )
    add_publish_layer_command(commands)
    if package:
        from chalicepack.deploy.templates import add_package_command

        add_package_command(commands)
    return parser


def _add_build_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "project_dir",
        nargs="?",
        default=".",
        type=Path,
        help="the Chalice project (holding app.py and .chalice/); default: .",
    )
    command.add_argument("--out", type=Path, help="output directory (default: PROJECT_DIR/dist)")
    add_build_options(command)


def options_from_args(args: argparse.Namespace) -> BuildOptions:
    return build_options(args, out_dir=args.out, check_only=args.command == "check")


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
            argv = sys.argv[1:] if argv is None else list(argv)
            # Only --help and --version may come before the command, so the first word names it.
            light = bool(argv) and argv[0] in _LIGHT_COMMANDS
            args = build_parser(package=not light).parse_args(argv)
            log.setLevel(logging.DEBUG if args.verbose else logging.INFO)
            if args.command == "publish-layer":
                from chalicepack.deploy.publish import (
                    run_publish_layer,  # boto3 loads only for this command
                )

                return run_publish_layer(args)
            if args.command == "package":
                from chalicepack.deploy.templates import run_package

                return run_package(args)
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


if __name__ == "__main__":
    sys.exit(main())
