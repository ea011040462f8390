"""chalicepack as a GitHub Action: ``INPUT_*`` -> CLI options -> build or package (-> publish the
layer) -> outputs, annotations, job summary. A thin shell like ``cli``, and the Action's one place
errors become exit codes.

Every input becomes a CLI flag (of ``build``/``check``/``package``, or of ``publish-layer``) and
goes through the CLI's own parser (``build_parser``), so the Action and the CLI cannot drift apart.
Workflow commands (annotations, groups, masks, outputs, the summary) are written with
``github-action-utils``; logs go to stderr as in the CLI.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import botocore.session
import github_action_utils as gha
from botocore.exceptions import BotoCoreError, InvalidRegionError
from botocore.handlers import VALID_BUCKET, VALID_S3_ARN
from botocore.utils import validate_region_name

from .build import BuildOptions, build
from .cli import build_parser, options_from_args
from .config import load_stage_config
from .errors import AppImportError, BadInput, ChalicepackError, MissingDependencies
from .layer import LAYER_NAME, PublishedLayer, publish_layer
from .options import PublishOptions, publish_options_from_args
from .report import REPORT_NAME, human_size, summary_lines
from .target import host_runtime
from .templates import PackageOptions, package
from .templates import options_from_args as package_options_from_args

log = logging.getLogger("chalicepack")

EXIT_OK, EXIT_FAILED = 0, 1  # and ChalicepackError.exit_code

# How an input's value becomes CLI arguments:
#   command   true runs that command instead of build (check_only -> check); package_format, a
#             choice of the package command, runs package instead of build when not empty
#   followup  true runs that command after a successful build (publish_layer -> publish-layer)
#   positional, path   the value (a path relative to the workspace, made absolute)
#   text      the value, which must not be empty; choice, option: the value, or nothing if empty
#   lines     one flag per non-empty line of the value (exclude: each glob -> --exclude GLOB)
#   flag      true adds the flag; negated: false adds the flag (import_app: false -> --no-import)
#   tristate  true/false adds --flag/--no-flag, empty adds nothing
InputKind = Literal[
    "command", "followup", "positional", "text", "path", "choice", "option", "flag", "negated",
    "tristate", "lines",
]  # fmt: skip
BOOLEAN_KINDS = ("command", "followup", "flag", "negated")
PUBLISH_LAYER = "publish-layer"
PACKAGE = "package"
# chalice package names the region's service principals in the template; for the services it
# names (lambda, apigateway, s3, sns) they are the same in every region. A pull-request check
# without AWS settings still gets a template with this one.
DEFAULT_TEMPLATE_REGION = "us-east-1"


@dataclass(frozen=True)
class ActionInput:
    """One ``with:`` input of action.yml and the CLI flag it becomes."""

    name: str  # snake_case, as in action.yml; the runner passes it as INPUT_<NAME>
    flag: str  # the CLI flag (or the command / positional argument) it maps to
    default: str  # action.yml's default: the runner passes it when the input is not given
    kind: InputKind
    command: str = "build"  # the CLI command whose flag it is (build's are check's too)
    package_flag: str = ""  # a build input's flag in `chalicepack package`, when not ``flag``

    @property
    def variable(self) -> str:
        return f"INPUT_{self.name.upper()}"

    def flag_in(self, command: str) -> str:
        """The flag (or positional argument) this input is in ``command``."""
        return (self.package_flag or self.flag) if command == PACKAGE else self.flag


# The order is action.yml's; a test holds action.yml, this table and the README to each other.
INPUTS: tuple[ActionInput, ...] = (
    ActionInput("project_dir", "PROJECT_DIR", ".", "positional", package_flag="--project-dir"),
    ActionInput("stage", "--stage", "dev", "text"),
    ActionInput("automatic_layer", "--automatic-layer", "", "tristate"),
    ActionInput("runtime", "--runtime", "", "choice"),
    ActionInput("architecture", "--arch", "", "choice"),
    ActionInput("output_dir", "--out", "", "path", package_flag="OUTDIR"),
    ActionInput("cache_dir", "--cache-dir", ".chalicepack-cache", "path"),
    ActionInput("refresh", "--refresh", "false", "flag"),
    ActionInput("fail_on_missing", "--strict", "false", "flag"),
    ActionInput("check_only", "check", "false", "command"),
    ActionInput("package_format", "--pkg-format", "", "choice", PACKAGE),
    ActionInput("import_app", "--no-import", "true", "negated"),
    ActionInput("import_timeout", "--import-timeout", "", "option"),
    ActionInput("exclude", "--exclude", "", "lines"),
    ActionInput("without_runtime_provided", "--without-runtime-provided", "false", "flag"),
    ActionInput("publish_layer", PUBLISH_LAYER, "false", "followup", PUBLISH_LAYER),
    ActionInput("layer_name", "--layer-name", "", "option", PUBLISH_LAYER),
    ActionInput("layer_s3_bucket", "--s3-bucket", "", "option", PUBLISH_LAYER),
    ActionInput("aws_region", "--region", "", "option", PUBLISH_LAYER),
)

# Lambda's limits (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024  # a zip uploaded with the API call itself
UNZIPPED_LIMIT = 250 * 1024 * 1024  # the function and all its layers, unzipped
# The runner refuses a step summary over 1 MiB; stay clear of it.
SUMMARY_LIMIT = 1000 * 1000
SUMMARY_DEPENDENCY_ROWS = 300
BIGGEST = 5

_TRUE, _FALSE = ("true", "True", "TRUE"), ("false", "False", "FALSE")  # YAML 1.2 booleans
_PYTHON_VERSION = re.compile(r"^(?:python|cpython-?|cp)?(\d+)\.(\d+)")
_USERINFO = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://([^/@\s:]+)(?::([^/@\s]*))?@")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TOKEN_LENGTH = 16
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
_INCLUDE = re.compile(r"^\s*(?:-r|--requirement|-c|--constraint)[\s=]\s*(\S+)")


@dataclass(frozen=True)
class Runtime:
    """The runtime to build for, and where it came from (the summary tells the user)."""

    name: str
    source: str  # Markdown


@dataclass(frozen=True)
class Packaged:
    report: dict[str, Any]  # build-report.json's content
    report_path: Path


@dataclass(frozen=True)
class Invocation:
    """What the inputs asked for, parsed by the CLI's parser."""

    args: argparse.Namespace
    options: BuildOptions  # with package_format: the package's, out_dir its OUTDIR
    runtime: Runtime
    publish: PublishOptions | None = None  # publish_layer: true; report_path is the build's
    package: PackageOptions | None = None  # package_format is not empty


LayerState = Literal["published", "reused", "no layer", "not built", "failed"]


@dataclass(frozen=True)
class LayerStep:
    """What came of ``publish_layer: true``, for the outputs and the summary."""

    state: LayerState
    layer: PublishedLayer | None = None
    reason: str = ""  # why nothing was published


def main() -> int:
    logging.basicConfig(stream=sys.stderr, format="chalicepack: %(message)s", force=True)
    log.setLevel(logging.INFO)
    workspace = Path(os.environ.get("GITHUB_WORKSPACE") or Path.cwd()).resolve()
    written: list[Path] = []
    try:
        return _run(os.environ, workspace, written)
    except ChalicepackError as error:
        _report_error(error, workspace)
        return error.exit_code
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    finally:
        _give_to_workspace_owner(written, workspace)


def _run(env: Mapping[str, str], workspace: Path, written: list[Path]) -> int:
    values = read_inputs(env)
    _mask_index_credentials(env, workspace / values["project_dir"])
    if problems := input_problems(values, workspace):  # before anything is built or written
        raise BadInput("\n".join(problems))
    invocation = parse_inputs(values, workspace, debug=env.get("RUNNER_DEBUG") == "1")
    for message in ignored_inputs(values):
        gha.warning(message, title="Input ignored")
    options = invocation.options
    if invocation.publish is not None:
        _require_automatic_layer(options, workspace)  # before a build that could not publish
    written.append(_out_dir(options))
    if options.cache_dir is not None:
        written.append(options.cache_dir)
    if invocation.args.verbose:
        log.setLevel(logging.DEBUG)
    else:
        # botocore logs failed credential refreshes with a traceback; the error we raise for
        # them is the one line the user needs (as the CLI's publish-layer does).
        logging.getLogger("botocore").setLevel(logging.CRITICAL)

    region = None
    if invocation.package is not None:
        region = template_region(values["aws_region"], env)
    packaged = _package(invocation, region)
    outputs = action_outputs(packaged.report, packaged.report_path, workspace)
    _annotate_missing(packaged.report, workspace, strict=options.strict)
    stopped = bool(packaged.report["missing_dependencies"]) and options.strict
    layer_step, failure = None, None
    if invocation.publish is not None:
        try:
            layer_step = _publish(invocation.publish, packaged, stopped=stopped)
        except ChalicepackError as error:
            layer_step, failure = LayerStep("failed", reason=_first_line(str(error))), error
    outputs.update(layer_outputs(layer_step))
    _write_outputs(env, outputs)
    _write_summary(env, packaged.report, invocation.runtime, workspace, options, layer_step)
    if failure is not None:
        _report_error(failure, workspace, title="Layer not published")
        return failure.exit_code
    if stopped:
        log.error(
            "error: fail_on_missing is true and %d dependencies have no build for the target",
            len(packaged.report["missing_dependencies"]),
        )
        return EXIT_FAILED
    return EXIT_OK


# --- inputs -----------------------------------------------------------------------------------


def read_inputs(env: Mapping[str, str]) -> dict[str, str]:
    """Every input's value, its default when the runner did not pass it (e.g. run by hand)."""
    return {item.name: env.get(item.variable, item.default).strip() for item in INPUTS}


def parse_inputs(values: Mapping[str, str], workspace: Path, *, debug: bool = False) -> Invocation:
    """Validate the inputs' values, turn them into CLI arguments and parse those with the CLI's
    parser. (Where the path inputs point is checked by ``input_problems`` given the workspace.)"""
    if problems := input_problems(values):
        raise BadInput("\n".join(problems))
    project_dir = workspace / values["project_dir"]
    runtime = _runtime(values["runtime"], project_dir, workspace)
    argv = cli_arguments({**values, "runtime": runtime.name}, workspace)
    if debug:
        argv.append("--verbose")  # the runner's "debug logging" shows pip's output too
    args = build_parser().parse_args(argv)
    packaging = None
    if args.command == PACKAGE:
        packaging = package_options_from_args(args)
        # The package's build options, with the OUTDIR its zips and report go to.
        options = dataclasses.replace(packaging.build, out_dir=packaging.out_dir)
    else:
        options = options_from_args(args)
    publish = None
    if _is_true(values["publish_layer"]):
        report = _out_dir(options) / REPORT_NAME
        publish_args = build_parser().parse_args(publish_arguments(values, report))
        publish = publish_options_from_args(publish_args)
    return Invocation(args, options, runtime, publish, packaging)


def input_problems(values: Mapping[str, str], workspace: Path | None = None) -> list[str]:
    """Everything wrong with the inputs, each naming its input and the fix, to report at once:
    bad values and, given the workspace, path inputs that point where they must not (see
    ``_place``); then, when each input is fine alone, inputs that contradict each other."""
    problems = [
        problem
        for item in INPUTS
        if (problem := _check(item, values[item.name]))
        or (workspace is not None and (problem := _place(item, values[item.name], workspace)))
    ]
    return problems or _conflicts(values)


def cli_command(values: Mapping[str, str]) -> str:
    """The CLI command the inputs run: check (check_only), package (package_format) or build."""
    if _is_true(values.get("check_only", "false")):
        return "check"
    return PACKAGE if values.get("package_format") else "build"


def cli_arguments(values: Mapping[str, str], workspace: Path) -> list[str]:
    """The ``chalicepack`` build, check or package command line the inputs stand for (paths
    made absolute)."""
    command = cli_command(values)
    options: list[str] = []
    positional: list[str] = []
    for item in INPUTS:
        if item.kind == "command" or item.command not in ("build", command):
            continue
        value = values.get(item.name, item.default)
        flag = item.flag_in(command)
        if flag == "OUTDIR":
            # package's OUTDIR is required; build's default output directory stands in for it.
            positional.append(str(workspace / (value or _default_out(values["project_dir"]))))
        elif flag == "PROJECT_DIR":
            positional.append(str(workspace / value))
        else:
            options += _arguments(item, value, workspace, flag)
    return [command, *options, *positional]


def _default_out(project_dir: str) -> str:
    return (Path(project_dir) / "dist").as_posix()


def publish_arguments(values: Mapping[str, str], report: Path) -> list[str]:
    """The ``chalicepack publish-layer`` command line the inputs stand for, for ``report``."""
    arguments = [PUBLISH_LAYER, "--report", str(report)]
    for item in INPUTS:
        if item.command == PUBLISH_LAYER:
            value = values.get(item.name, item.default)
            arguments += _arguments(item, value, Path(), item.flag)
    return arguments


def _arguments(item: ActionInput, value: str, workspace: Path, flag: str) -> list[str]:
    """The CLI arguments one option input stands for, as ``flag``."""
    if item.kind == "flag":
        return [flag] if _is_true(value) else []
    if item.kind == "negated":
        return [] if _is_true(value) else [flag]
    if item.kind == "tristate" and value:
        return [flag if _is_true(value) else f"--no-{flag[2:]}"]
    if item.kind in ("path", "positional") and value:  # positional: package's --project-dir
        return [flag, str(workspace / value)]
    if item.kind in ("text", "choice", "option") and value:
        return [flag, value]
    if item.kind == "lines":
        # --flag=VALUE: a glob starting with '-' is still the option's value.
        return [f"{flag}={line}" for line in _lines(value)]
    return []


def _lines(value: str) -> list[str]:
    """The non-empty lines of a multi-line input, stripped."""
    return [line.strip() for line in value.splitlines() if line.strip()]


def _conflicts(values: Mapping[str, str]) -> list[str]:
    """Inputs that are fine alone but cannot go together."""
    problems = []
    if _is_true(values["check_only"]) and values["package_format"]:
        problems.append(
            "inputs check_only and package_format: check_only is true, so no zips and no"
            f" template are written, but package_format is {values['package_format']!r}; set"
            " check_only to false to write the template, or leave package_format empty for a"
            " check"
        )
    if not _is_true(values["publish_layer"]):
        return problems
    if _is_true(values["check_only"]):
        problems.append(
            "inputs check_only and publish_layer are both true: check_only writes no zips, so"
            " there is no layer to publish; publish from a build (check_only: false)"
        )
    if values["automatic_layer"] in _FALSE:
        problems.append(
            "inputs publish_layer and automatic_layer: publish_layer is true but"
            " automatic_layer is false, so the build writes no layer zip to publish; set"
            " automatic_layer to true, or publish_layer to false"
        )
    return problems


def ignored_inputs(values: Mapping[str, str]) -> list[str]:
    """Warnings for inputs given a value that has no effect with the others."""
    messages = []
    publish_options = [
        item.name
        for item in INPUTS
        if item.command == PUBLISH_LAYER
        and values.get(item.name, item.default) != item.default
        # aws_region is also the template's region
        and not (item.name == "aws_region" and values.get("package_format"))
    ]
    if publish_options and not _is_true(values["publish_layer"]):
        names = ", ".join(publish_options)
        messages.append(
            f"input {names} has no effect: publish_layer is false, so no layer is published"
            if len(publish_options) == 1
            else f"inputs {names} have no effect: publish_layer is false, so no layer is published"
        )
    if values["import_timeout"] and not _is_true(values["import_app"]):
        messages.append("input import_timeout has no effect: import_app is false")
    elif values["import_timeout"] and _is_true(values["check_only"]):
        messages.append("input import_timeout has no effect: check_only does not import the app")
    if _is_true(values["check_only"]):
        trims = [
            name
            for name, given in (
                ("exclude", bool(values["exclude"])),
                ("without_runtime_provided", _is_true(values["without_runtime_provided"])),
            )
            if given
        ]
        if trims:
            verb = "has" if len(trims) == 1 else "have"
            messages.append(
                f"input{'s' if len(trims) > 1 else ''} {', '.join(trims)} {verb} no effect:"
                " check_only writes no zip to leave anything out of"
            )
    return messages


def _check(item: ActionInput, value: str) -> str | None:
    """What is wrong with ``value`` for ``item``, naming the input and what it accepts."""
    if item.kind in BOOLEAN_KINDS and value not in (*_TRUE, *_FALSE):
        return f"input {item.name}: {value!r} is not a boolean; use true or false"
    if item.kind == "tristate" and value not in ("", *_TRUE, *_FALSE):
        return (
            f"input {item.name}: {value!r} is not true, false or empty"
            " (empty takes it from .chalice/config.json)"
        )
    if (
        item.kind == "choice"
        and value
        and value not in (choices := cli_choices(item.flag, item.command))
    ):
        return f"input {item.name}: {value!r} is not one of {', '.join(choices)}"
    if item.kind in ("positional", "text") and not value:
        return f"input {item.name}: must not be empty (the default is {item.default!r})"
    if item.kind == "option" and value:
        return _option_problem(item, value)
    return None


# Where each path input must be, and an example of a good value.
_PATH_EXAMPLES = {"output_dir": "build/lambda", "cache_dir": ".chalicepack-cache (the default)"}
_PROJECT_FIX = (
    "set project_dir to the folder that holds app.py and .chalice/, relative to the workspace root"
)
_RUNNER_PATH = "(${{ github.workspace }} is the runner's path, not the container's)"


def _place(item: ActionInput, value: str, workspace: Path) -> str | None:
    """What is wrong with where a path input points: a project_dir that is not a folder or
    is outside the workspace, an output_dir or cache_dir outside the workspace (also through
    ``..`` or a symlink).

    Only the workspace is mounted into the Action's container: what is written elsewhere is
    gone when the step ends, and a path outside it (like ``${{ github.workspace }}``, the
    runner's path) does not exist in the container.
    """
    if not value or item.kind not in ("positional", "path"):
        return None
    workspace = workspace.resolve()
    given = Path(os.path.normpath(workspace / value))  # `..` undone, symlinks not followed
    shown = _relative(given, workspace)
    hint = f" {_RUNNER_PATH}" if Path(value).is_absolute() else ""
    if item.kind == "positional":  # project_dir
        if not given.exists():
            where = (
                "in the workspace"
                if given.is_relative_to(workspace)
                else f"in the Action's container, whose workspace is {workspace}{hint}"
            )
            return (
                f"input {item.name}: {shown} does not exist {where}; {_PROJECT_FIX} (and check"
                " it out with actions/checkout before this step)"
            )
        outside = _outside(item, value, given, workspace, _PROJECT_INSIDE)
        if outside is not None:
            return outside
        if not given.is_dir():
            return f"input {item.name}: {shown} is not a directory; {_PROJECT_FIX}"
        return None
    inside = (
        "it must be inside the workspace: the runner mounts only the workspace into the"
        " Action's container, so anything written elsewhere is lost when the step ends; use a"
        f" path relative to the workspace root, like {_PATH_EXAMPLES[item.name]}"
    )
    return _outside(item, value, given, workspace, inside)


_PROJECT_INSIDE = (
    "the project must be inside the workspace: the runner mounts only the workspace into the"
    " Action's container, so a folder elsewhere is not your checkout, and what is written there"
    f" (PROJECT_DIR/dist by default) is lost when the step ends; {_PROJECT_FIX}"
)


def _outside(item: ActionInput, value: str, given: Path, workspace: Path, why: str) -> str | None:
    """What is wrong with a path input that leads out of the workspace (``given``: the path
    with ``..`` undone), ``why`` saying why it must not; None when it stays inside."""
    shown = _relative(given, workspace)
    try:
        resolved = given.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return f"input {item.name}: {shown} goes through a symlink loop; {why}"
    if resolved.is_relative_to(workspace):
        return None
    if given.is_relative_to(workspace):
        return (
            f"input {item.name}: {shown} leads through a symlink to {resolved}, outside the"
            f" workspace; {why}"
        )
    if Path(value).is_absolute():
        return f"input {item.name}: {shown} is outside the workspace {_RUNNER_PATH}; {why}"
    return f"input {item.name}: {value} resolves to {given}, outside the workspace; {why}"


def _option_problem(item: ActionInput, value: str) -> str | None:
    """The CLI option's own type check (``--import-timeout``'s seconds), then what AWS would
    refuse only after the build: a layer name, bucket or region it does not accept."""
    convert = cli_option(item.flag, item.command).type
    if callable(convert) and convert is not Path:
        try:
            convert(value)
        except (argparse.ArgumentTypeError, TypeError, ValueError) as error:
            return f"input {item.name}: {error}"
    if item.flag == "--layer-name" and not LAYER_NAME.fullmatch(value):
        return (
            f"input {item.name}: {value!r} is not a layer name Lambda accepts;"
            " use 1 to 64 letters, digits, '-' or '_'"
        )
    if item.flag == "--s3-bucket" and not (VALID_BUCKET.match(value) or VALID_S3_ARN.match(value)):
        return f"input {item.name}: {value!r} is not an S3 bucket name"
    if item.flag == "--region":
        try:
            validate_region_name(value)
        except InvalidRegionError:
            return f"input {item.name}: {value!r} is not an AWS region name (like us-east-1)"
    return None


def cli_choices(flag: str, command: str = "build") -> list[str]:
    """The values the CLI accepts for ``flag``, read from its parser so the two cannot drift."""
    action = cli_option(flag, command)
    if action.choices is None:
        raise LookupError(f"the CLI's {command} command option {flag} has no choices")
    return [str(choice) for choice in action.choices]


def cli_option(flag: str, command: str = "build") -> argparse.Action:
    """The CLI parser's definition of ``command``'s option ``flag``."""
    for action in cli_command_actions(command):
        if flag in action.option_strings:
            return action
    raise LookupError(f"the CLI's {command} command has no option {flag}")


def cli_command_actions(command: str = "build") -> list[argparse.Action]:
    """The options and arguments of one of the CLI's commands, from its own parser."""
    # argparse has no public way to reach a subcommand's parser; _actions has been stable since
    # argparse was added to the standard library.
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            parser: argparse.ArgumentParser = action.choices[command]
            return parser._actions
    raise LookupError("the CLI has no subcommands")


def _is_true(value: str) -> bool:
    return value in _TRUE


def _runtime(value: str, project_dir: Path, workspace: Path) -> Runtime:
    """The runtime input, else the project's .python-version, else the image's Python."""
    if value:
        return Runtime(value, "the `runtime` input")
    found = _python_version_file(project_dir, workspace)
    if found is not None:
        return _runtime_from_file(found, workspace)
    return Runtime(
        host_runtime(),
        "the action image's Python, as no `.python-version` was found: pin it with the "
        "`runtime` input or a `.python-version` file, or a new image may change it",
    )


def _python_version_file(project_dir: Path, workspace: Path) -> Path | None:
    """``.python-version`` in the project or a folder above it, up to the workspace (as pyenv)."""
    for folder in (project_dir.resolve(), *project_dir.resolve().parents):
        if (folder / ".python-version").is_file():
            return folder / ".python-version"
        if folder == workspace:
            break
    return None


def _runtime_from_file(path: Path, workspace: Path) -> Runtime:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    first = next(((n, line) for n, line in enumerate(lines, 1) if line), None)
    match = _PYTHON_VERSION.match(first[1]) if first else None
    runtime = f"python{match[1]}.{match[2]}" if match else None
    choices = cli_choices("--runtime")
    if runtime not in choices:
        raise BadInput(
            f"{_relative(path, workspace)}: {first[1] if first else 'an empty file'!r} is not a"
            f" Lambda Python runtime; write one of {', '.join(c[6:] for c in choices)} in it,"
            " or set the runtime input",
            file=path,
            line=first[0] if first else 1,
        )
    return Runtime(runtime, f"`{_relative(path, workspace)}`")


# --- the build --------------------------------------------------------------------------------


def _package(invocation: Invocation, region: TemplateRegion | None = None) -> Packaged:
    """Run the engine (build, check or package) inside a log group and return its report."""
    options, packaging = invocation.options, invocation.package
    verb = "check" if options.check_only else "build"
    if packaging is not None:
        verb = f"package ({packaging.pkg_format})"
    title = f"chalicepack {verb}: stage {options.stage}, {invocation.runtime.name}"
    with _log_group(title):
        try:
            if packaging is None:
                built = build(options)
                report, report_path = built.report, built.report_path
            else:
                if region is not None:
                    log.info("%s", region.message)
                with _aws_default_region(region.name if region else None):
                    packaged = package(packaging)
                print(packaged.template, flush=True)
                report, report_path = packaged.report, packaged.report_path
        except MissingDependencies as missing:
            # Under fail_on_missing the engine writes the report, then refuses to write zips;
            # the report still gives the outputs, annotations and summary.
            path = missing.report_path
            return Packaged(json.loads(path.read_text(encoding="utf-8")), path)
    for line in summary_lines(report):
        print(line, flush=True)
    return Packaged(report, report_path)


@dataclass(frozen=True)
class TemplateRegion:
    """The region chalice's packager is given (as AWS_DEFAULT_REGION), and why that one."""

    name: str
    message: str  # for the log


def template_region(aws_region: str, env: Mapping[str, str]) -> TemplateRegion | None:
    """The region to generate the template with, None when botocore finds one by itself.

    chalice package refuses to run without a region; it names the region's service principals
    in the template (the same in every region for the services it names). In the order the
    layer is published with: the aws_region input, AWS_REGION, then what botocore finds
    (AWS_DEFAULT_REGION, the profile's); else DEFAULT_TEMPLATE_REGION, so a pull-request check
    without AWS settings still gets its template.
    """
    if aws_region:
        return TemplateRegion(aws_region, f"the template's region: {aws_region} (aws_region)")
    if env.get("AWS_REGION"):
        region = env["AWS_REGION"]
        return TemplateRegion(region, f"the template's region: {region} (AWS_REGION)")
    if _region_configured():
        return None
    return TemplateRegion(
        DEFAULT_TEMPLATE_REGION,
        f"no AWS region is set (aws_region, AWS_REGION, AWS_DEFAULT_REGION): the template is"
        f" generated for {DEFAULT_TEMPLATE_REGION}; chalice package names the region's service"
        " principals, which are the same in every region for the services it uses",
    )


def _region_configured() -> bool:
    """Whether botocore finds a region in this process's environment and AWS config."""
    try:
        return bool(botocore.session.Session().get_config_variable("region"))
    except BotoCoreError:  # a profile that does not exist: chalice package says so
        return True


@contextmanager
def _aws_default_region(region: str | None) -> Iterator[None]:
    """AWS_DEFAULT_REGION set to ``region`` while the engine runs chalice's packager (a child
    process inheriting this environment); put back afterwards, so publishing the layer still
    finds only the user's region."""
    if region is None:
        yield
        return
    saved = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region
    try:
        yield
    finally:
        if saved is None:
            del os.environ["AWS_DEFAULT_REGION"]
        else:
            os.environ["AWS_DEFAULT_REGION"] = saved


def _require_automatic_layer(options: BuildOptions, workspace: Path) -> None:
    """publish_layer with automatic_layer off (left to config.json) is a config mistake: say so
    before building. (An automatic_layer input of false is refused with the other inputs.)"""
    if options.automatic_layer is not None or options.check_only:
        return
    config = load_stage_config(options.project_dir.resolve(), options.stage)
    if not config.automatic_layer:
        where = _relative(config.path, workspace)
        raise BadInput(
            f"input publish_layer is true but automatic_layer is off for stage"
            f" {options.stage!r} ({where} does not set it to true), so the build writes no"
            " layer zip to publish; set the automatic_layer input (or automatic_layer in"
            f" {where}) to true, or publish_layer to false",
            file=config.path,
        )


def _publish(publish: PublishOptions, packaged: Packaged, *, stopped: bool) -> LayerStep:
    """Publish the layer zip the build wrote through ``layer.publish_layer``, or say why not."""
    if stopped:
        return LayerStep("not built", reason="fail_on_missing stopped the build before any zip")
    if "layer" not in packaged.report.get("artifacts", {}):
        if not packaged.report.get("automatic_layer"):
            raise BadInput(
                "input publish_layer is true but the build ran without automatic_layer, so"
                " there is no layer zip to publish; set the automatic_layer input to true"
            )
        reason = (
            "publish_layer is true but the build has no layer zip: there are no dependencies"
            " or vendor files to put in it. Nothing was published; layer_arn, layer_version and"
            " layer_published are empty"
        )
        gha.warning(reason, title="No layer to publish")
        return LayerStep("no layer", reason="there are no dependencies or vendor files")
    options = dataclasses.replace(publish, report_path=packaged.report_path)
    with _log_group("chalicepack publish-layer"):
        published = publish_layer(options)
    state: LayerState = "published" if published.published else "reused"
    print(f"layer {published.layer_arn} ({state})", flush=True)
    return LayerStep(state, published)


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else text


def _out_dir(options: BuildOptions) -> Path:
    # build()'s default output directory, to hand ownership of it to the workspace's owner.
    return options.out_dir or options.project_dir / "dist"


@contextmanager
def _log_group(title: str) -> Iterator[None]:
    """``::group::`` around the engine's log (stderr), flushed so the group holds all of it."""
    sys.stderr.flush()
    gha.start_group(title)
    try:
        yield
    finally:
        sys.stderr.flush()
        gha.end_group()


# --- outputs ----------------------------------------------------------------------------------


def action_outputs(report: Mapping[str, Any], report_path: Path, workspace: Path) -> dict[str, str]:
    """The step's outputs; paths are relative to the workspace, so host steps can use them."""
    artifacts = report.get("artifacts", {})
    deployment, layer = artifacts.get("deployment", {}), artifacts.get("layer", {})
    project = Path(report["project"])
    missing = [_missing_output(item, report, project, workspace) for item in _missing(report)]
    return {
        "deployment_zip": _relative(Path(deployment["path"]), workspace) if deployment else "",
        "layer_zip": _relative(Path(layer["path"]), workspace) if layer else "",
        "deployment_sha256": deployment.get("sha256", ""),
        "layer_sha256": layer.get("sha256", ""),
        "missing_dependencies": json.dumps(missing),
        # Absent from the report when the app was not imported (import_app: false, check_only).
        "functions": json.dumps(report.get("functions", [])),
        "report": _relative(report_path, workspace),
        # With package_format: the template chalice's packager wrote beside the zips.
        "template": _relative(Path(report["template"]["path"]), workspace)
        if "template" in report
        else "",
        "runtime": report["runtime"],
        "architecture": report["architecture"],
    }


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


def _missing(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(report.get("missing_dependencies", []))


def _missing_output(
    item: Mapping[str, Any], report: Mapping[str, Any], project: Path, workspace: Path
) -> dict[str, Any]:
    places = list(_requirement_places(item, report, project, workspace))
    file, line = places[0] if places else (None, None)
    return {
        "name": item["name"],
        "version": item["version"],
        "reason": item["reason"],
        "file": file,
        "line": line,
        "required_by": item.get("required_by", []),
    }


def _write_outputs(env: Mapping[str, str], outputs: Mapping[str, str]) -> None:
    if not env.get("GITHUB_OUTPUT"):
        log.info("GITHUB_OUTPUT is not set (not run by a runner): outputs are only logged")
        for name, value in outputs.items():
            log.info("output %s=%s", name, value)
        return
    for name, value in outputs.items():
        gha.set_output(name, value)


# --- annotations ------------------------------------------------------------------------------


def _annotate_missing(report: Mapping[str, Any], workspace: Path, *, strict: bool) -> None:
    """One annotation per missing dependency at each requirements line that brings it in."""
    annotate = gha.error if strict else gha.warning
    project = Path(report["project"])
    for item in _missing(report):
        pin = f"{item['name']}=={item['version']}"
        via = "" if item["requirement"] else f" (required by {', '.join(item['required_by'])})"
        message = (
            f"{pin}{via}: {item['reason']}. It is not in the package; vendor a build of it in"
            " vendor/, or pin a release that has a wheel for the target."
        )
        places = list(_requirement_places(item, report, project, workspace))
        for file, line in places:
            annotate(message, title="Missing dependency", file=file, line=line)
        if not places:
            annotate(message, title="Missing dependency")


def _requirement_places(
    item: Mapping[str, Any], report: Mapping[str, Any], project: Path, workspace: Path
) -> Iterator[tuple[str, int]]:
    """The requirements.txt lines (file relative to the workspace) that bring ``item`` in.

    A dependency named in requirements.txt (or a ``-r`` include) is at its own line; one that
    only others require is at the lines of the requirements that pull it in.
    """
    entries = {entry["name"]: entry for entry in report.get("dependencies", [])}
    seen: set[str] = set()
    pending = [item]
    places: dict[tuple[str, int], None] = {}
    while pending:
        entry = pending.pop(0)
        if entry["name"] in seen:
            continue
        seen.add(entry["name"])
        requirement = entry.get("requirement")
        if requirement is not None:
            path = project / requirement["file"]
            places[(_relative(path, workspace), int(requirement["line"]))] = None
            continue
        pending += [entries[name] for name in entry.get("required_by", []) if name in entries]
    yield from places


def in_action_terms(message: str) -> str:
    """The engine's message, with a note saying which input each CLI flag it names is."""
    inputs = {
        flag: item
        for item in INPUTS
        for flag in (item.flag, item.package_flag)
        if flag.startswith("--")
    }
    notes: dict[str, None] = {}
    for flag in _FLAG.findall(message):
        if (item := inputs.get(flag)) is not None:
            if item.kind == "negated":
                notes[f"{flag} is `{item.name}: false`"] = None
            elif item.kind in ("flag", "tristate"):
                notes[f"{flag} is `{item.name}: true`"] = None
            else:
                notes[f"{flag} is the `{item.name}` input"] = None
        elif flag.startswith("--no-") and (negated := inputs.get(f"--{flag[5:]}")) is not None:
            notes[f"{flag} is `{negated.name}: false`"] = None
    if not notes:
        return message
    return f"{message}\n(In this Action, {'; '.join(notes)}.)"


def _report_error(error: ChalicepackError, workspace: Path, title: str | None = None) -> None:
    """An ``::error`` annotation (on the file and line when known) and the log's error line."""
    message = in_action_terms(str(error))
    file = _relative(error.file, workspace) if error.file is not None else None
    gha.error(message, title=title or _error_title(error), file=file, line=error.line)
    log.error("error: %s", message)


def _error_title(error: ChalicepackError) -> str:
    if isinstance(error, AppImportError):
        return "App import failed"
    return "Bad input" if isinstance(error, BadInput) else "chalicepack failed"


def _mask_index_credentials(env: Mapping[str, str], project_dir: Path) -> None:
    """``::add-mask::`` every password in a package index URL the build may print."""
    texts = [env.get(name, "") for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL")]
    texts += _requirements_texts(project_dir / "requirements.txt")
    for text in texts:
        for match in _USERINFO.finditer(text):
            for secret in _secrets(match[1], match[2], env):
                gha.add_mask(secret)


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


def _write_summary(
    env: Mapping[str, str],
    report: Mapping[str, Any],
    runtime: Runtime,
    workspace: Path,
    options: BuildOptions,
    layer: LayerStep | None,
) -> None:
    if env.get("GITHUB_STEP_SUMMARY"):
        gha.append_job_summary(job_summary(report, runtime, workspace, options, layer))


def job_summary(
    report: Mapping[str, Any],
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
        _summary_missing(report, workspace),
    ]
    text = "\n\n".join(section for section in sections if section)
    encoded = text.encode("utf-8")
    if len(encoded) <= SUMMARY_LIMIT:
        return text
    cut = encoded[:SUMMARY_LIMIT].decode("utf-8", errors="ignore").rsplit("\n", 1)[0]
    return cut + "\n\n_(summary cut to stay under the runner's 1 MiB limit; see the report)_"


def _summary_heading(report: Mapping[str, Any], runtime: Runtime) -> str:
    return (
        f"## chalicepack: {report['app_name']} (stage `{report['stage']}`)\n\n"
        f"Built for **{report['runtime']}** on **{report['architecture']}**; the runtime comes"
        f" from {runtime.source}."
    )


def _summary_artifacts(report: Mapping[str, Any], workspace: Path, options: BuildOptions) -> str:
    artifacts = report.get("artifacts", {})
    if not artifacts:
        why = "`check_only`" if options.check_only else "missing dependencies, `fail_on_missing`"
        return f"### Artifacts\n\nNo zip was written ({why})."
    rows = ["| artifact | zipped | unzipped | files | sha256 |", "| --- | --: | --: | --: | --- |"]
    for artifact in artifacts.values():
        upload = "" if artifact["size"] <= DIRECT_UPLOAD_LIMIT else " (over 50 MiB: upload via S3)"
        rows.append(
            f"| `{_relative(Path(artifact['path']), workspace)}` | {human_size(artifact['size'])}"
            f"{upload} | {human_size(artifact['unzipped_size'])} | {artifact['files']}"
            f" | `{artifact['sha256']}` |"
        )
    unzipped = sum(artifact["unzipped_size"] for artifact in artifacts.values())
    verdict = "within" if unzipped <= UNZIPPED_LIMIT else "**over**"
    rows.append(
        f"\nLambda's limits: 50 MiB zipped for a direct upload; 250 MiB unzipped for the function"
        f" and its layers together. Unzipped total: {human_size(unzipped)}"
        f" ({100 * unzipped / UNZIPPED_LIMIT:.1f}% of 250 MiB), {verdict} the limit."
    )
    if left_out := _summary_left_out(report):
        rows.append(f"\n{left_out}")
    if template := report.get("template"):
        rows.append(
            f"\nTemplate: `{_relative(Path(template['path']), workspace)}` ({template['format']}),"
            " written by Chalice's own packager around these zips."
        )
    return "### Artifacts\n\n" + "\n".join(rows)


def _summary_left_out(report: Mapping[str, Any]) -> str:
    """What ``without_runtime_provided`` and ``exclude`` kept out of the zips, and the bytes
    saved (the report's ``left_out``); empty when nothing was left out."""
    left_out = report.get("left_out") or {}
    provided = [entry["name"] for entry in left_out.get("runtime_provided", [])]
    excluded = left_out.get("excluded_files", [])
    if not provided and not excluded:
        return ""
    saved = int(left_out.get("bytes_saved", 0))
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


def _summary_functions(report: Mapping[str, Any], options: BuildOptions) -> str:
    heading = "### Lambda functions found"
    functions = report.get("functions")
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
        name, handler, kind = (_cell(function[key]) for key in ("name", "handler", "kind"))
        rows.append(f"| {name} | `{handler}` | {kind} |")
    return f"{heading} ({len(functions)})\n\n" + "\n".join(rows)


def _summary_dependencies(report: Mapping[str, Any]) -> str:
    dependencies = report.get("dependencies", [])
    if not dependencies:
        return "### Dependencies\n\nNone."
    rows = ["| name | version | wheel tag | size |", "| --- | --- | --- | --: |"]
    for entry in dependencies[:SUMMARY_DEPENDENCY_ROWS]:
        rows.append(
            f"| {_cell(entry['name'])} | {_cell(entry['version'])} | `{entry['tag']}`"
            f" | {_size(entry.get('unpacked_size'))} |"
        )
    more = len(dependencies) - SUMMARY_DEPENDENCY_ROWS
    if more > 0:
        rows.append(f"\n…and {more} more in the build report.")
    return f"### Dependencies ({len(dependencies)})\n\n" + "\n".join(rows)


def _summary_biggest(report: Mapping[str, Any]) -> str:
    sized = [d for d in report.get("dependencies", []) if d.get("unpacked_size")]
    if len(sized) < 2:
        return ""
    biggest = sorted(sized, key=lambda d: d["unpacked_size"], reverse=True)[:BIGGEST]
    rows = ["| package | unpacked | of 250 MiB |", "| --- | --: | --: |"]
    rows += [
        f"| {_cell(d['name'])} | {human_size(d['unpacked_size'])}"
        f" | {100 * d['unpacked_size'] / UNZIPPED_LIMIT:.1f}% |"
        for d in biggest
    ]
    return "### Biggest packages\n\n" + "\n".join(rows)


def _summary_missing(report: Mapping[str, Any], workspace: Path) -> str:
    missing = _missing(report)
    if not missing:
        return ""
    project = Path(report["project"])
    rows = ["| dependency | brought in by | why | fix |", "| --- | --- | --- | --- |"]
    for item in missing:
        places = [f"`{f}:{n}`" for f, n in _requirement_places(item, report, project, workspace)]
        rows.append(
            f"| {_cell(item['name'])}=={_cell(item['version'])} | {', '.join(places) or '—'}"
            f" | {_cell(item['reason'])} | vendor a build of it in `vendor/`, or pin a release"
            " with a wheel for the target |"
        )
    return f"### Missing dependencies ({len(missing)})\n\n" + "\n".join(rows)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _size(size: int | None) -> str:
    return "—" if size is None else human_size(size)


# --- files in the workspace -------------------------------------------------------------------


def _relative(path: Path, workspace: Path) -> str:
    """``path`` relative to the workspace (as host steps and annotations need), else absolute."""
    absolute = path if path.is_absolute() else workspace / path
    if absolute.is_relative_to(workspace):
        return absolute.relative_to(workspace).as_posix()
    return absolute.as_posix()


def _give_to_workspace_owner(roots: Sequence[Path], workspace: Path) -> None:
    """Hand what the action wrote in the workspace to its owner, so later host steps own it.

    The container runs as root; the runner's user owns the checkout. Only files this process's
    user owns (those it made) are handed over, never the user's own files.
    """
    try:
        owner = workspace.stat()
    except OSError:
        return
    me = os.geteuid()
    if owner.st_uid == me:
        return
    for root in roots:
        if not root.exists() or not root.resolve().is_relative_to(workspace):
            continue
        for path in _made_by_us(root.resolve(), workspace, me):
            try:
                os.lchown(path, owner.st_uid, owner.st_gid)
            except OSError as error:
                log.warning("could not give %s to the workspace's owner: %s", path, error)


def _made_by_us(root: Path, workspace: Path, me: int) -> Iterator[Path]:
    """``root``, the folders above it up to the workspace and all below it, that ``me`` owns."""
    above = [folder for folder in root.parents if folder.is_relative_to(workspace)]
    paths = [path for path in [*above, root] if path != workspace]
    if root.is_dir() and not root.is_symlink():
        for folder, dirs, files in os.walk(root):
            paths += [Path(folder, name) for name in (*dirs, *files)]
    for path in paths:
        if path.lstat().st_uid == me:
            yield path
