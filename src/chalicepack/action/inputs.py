"""The Action's inputs: read ``INPUT_*``, check them, and turn them into CLI options.

Every input becomes a CLI flag (of ``build``/``check``/``package``, or of ``publish-layer``) and
goes through the CLI's own parser (``build_parser``), so the Action and the CLI cannot drift apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from chalicepack.cli import (
    build_parser,
    options_from_args,
    package_options_from_args,
    publish_options_from_args,
)
from chalicepack.errors import BadInput
from chalicepack.inputs.config import DEFAULT_STAGE
from chalicepack.inputs.target import host_runtime
from chalicepack.options import BuildOptions, PackageOptions, PublishOptions
from chalicepack.report import REPORT_NAME

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
    ActionInput("stage", "--stage", DEFAULT_STAGE, "text"),
    ActionInput("automatic_layer", "--automatic-layer", "", "tristate"),
    ActionInput("runtime", "--runtime", "", "choice"),
    ActionInput("architecture", "--arch", "", "choice"),
    ActionInput("output_dir", "--out", "", "path", package_flag="OUTDIR"),
    ActionInput("cache_dir", "--cache-dir", ".chalicepack-cache", "path"),
    ActionInput("refresh", "--refresh", "false", "flag"),
    ActionInput("resolver", "--resolver", "", "choice"),
    ActionInput("requirements", "--requirements", "", "path"),
    ActionInput("groups", "--group", "", "lines"),
    ActionInput("extras", "--extra", "", "lines"),
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

_TRUE, _FALSE = ("true", "True", "TRUE"), ("false", "False", "FALSE")  # YAML 1.2 booleans
_PYTHON_VERSION = re.compile(r"^(?:python|cpython-?|cp)?(\d+)\.(\d+)")
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


@dataclass(frozen=True)
class Runtime:
    """The runtime to build for, and where it came from (the summary tells the user)."""

    name: str
    source: str  # Markdown


@dataclass(frozen=True)
class Invocation:
    """What the inputs asked for, parsed by the CLI's parser."""

    args: argparse.Namespace
    options: BuildOptions  # with package_format: the package's, out_dir its OUTDIR
    runtime: Runtime
    publish: PublishOptions | None = None  # publish_layer: true; report_path is the build's
    package: PackageOptions | None = None  # package_format is not empty


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
        report = out_dir(options) / REPORT_NAME
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
_PATH_EXAMPLES = {
    "output_dir": "build/lambda",
    "cache_dir": ".chalicepack-cache (the default)",
    "requirements": "app/uv.lock",
}
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
    shown = relative(given, workspace)
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
    shown = relative(given, workspace)
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
    if item.flag in ("--layer-name", "--s3-bucket", "--region"):
        return _aws_problem(item, value)
    return None


def _aws_problem(item: ActionInput, value: str) -> str | None:
    """What AWS would refuse only after the build: a layer name, bucket or region, checked by
    botocore's own rules. Imported here, not at the top: botocore costs ~0.15 s of start-up,
    which a step that publishes nothing should not pay."""
    from botocore.exceptions import InvalidRegionError
    from botocore.handlers import VALID_BUCKET, VALID_S3_ARN
    from botocore.utils import validate_region_name

    from chalicepack.deploy.publish import LAYER_NAME

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
            f"{relative(path, workspace)}: {first[1] if first else 'an empty file'!r} is not a"
            f" Lambda Python runtime; write one of {', '.join(c[6:] for c in choices)} in it,"
            " or set the runtime input",
            file=path,
            line=first[0] if first else 1,
        )
    return Runtime(runtime, f"`{relative(path, workspace)}`")


def out_dir(options: BuildOptions) -> Path:
    """Where the build writes its zips and report (``build()``'s default when not given)."""
    return options.out_dir or options.project_dir / "dist"


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


def relative(path: Path, workspace: Path) -> str:
    """``path`` relative to the workspace (as host steps and annotations need), else absolute."""
    absolute = path if path.is_absolute() else workspace / path
    if absolute.is_relative_to(workspace):
        return absolute.relative_to(workspace).as_posix()
    return absolute.as_posix()
