"""chalicepack as a GitHub Action: the flow from inputs to outputs, and its exit codes.

``INPUT_*`` -> CLI options (``action.inputs``) -> build or package (-> publish the layer) ->
outputs, annotations, job summary (``action.outputs``). A thin shell like ``cli``, and the Action's
one place errors become exit codes. Workflow commands on stdout (annotations, groups, masks) are
written by ``action.commands``, outputs and the summary by ``github-action-utils``; logs go to
stderr as in the CLI.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from chalicepack.action import commands
from chalicepack.action.cacheowner import pip_cache_usable
from chalicepack.action.inputs import (
    Invocation,
    ignored_inputs,
    input_problems,
    out_dir,
    parse_inputs,
    read_inputs,
    relative,
)
from chalicepack.action.outputs import (
    LayerState,
    LayerStep,
    action_outputs,
    annotate_missing,
    layer_outputs,
    mask_index_credentials,
    report_error,
    write_outputs,
    write_summary,
)
from chalicepack.errors import BadInput, ChalicepackError, MissingDependencies
from chalicepack.inputs.config import load_stage_config
from chalicepack.options import BuildOptions, PublishOptions
from chalicepack.report import BuildReport, summary_lines

log = logging.getLogger("chalicepack")

EXIT_OK, EXIT_FAILED = 0, 1  # and ChalicepackError.exit_code

# chalice package names the region's service principals in the template; for the services it
# names (lambda, apigateway, s3, sns) they are the same in every region. A pull-request check
# without AWS settings still gets a template with this one.
DEFAULT_TEMPLATE_REGION = "us-east-1"


@dataclass(frozen=True)
class Packaged:
    report: BuildReport
    report_path: Path


def main() -> int:
    logging.basicConfig(stream=sys.stderr, format="chalicepack: %(message)s", force=True)
    log.setLevel(logging.INFO)
    workspace = Path(os.environ.get("GITHUB_WORKSPACE") or Path.cwd()).resolve()
    written: list[Path] = []
    try:
        return _run(os.environ, workspace, written)
    except ChalicepackError as error:
        report_error(error, workspace)
        return error.exit_code
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    finally:
        _give_to_workspace_owner(written, workspace)


def _run(env: Mapping[str, str], workspace: Path, written: list[Path]) -> int:
    values = read_inputs(env)
    mask_index_credentials(env, workspace / values["project_dir"])
    if problems := input_problems(values, workspace):  # before anything is built or written
        raise BadInput("\n".join(problems))
    invocation = parse_inputs(values, workspace, debug=env.get("RUNNER_DEBUG") == "1")
    for message in ignored_inputs(values):
        commands.warning(message, title="Input ignored")
    options = invocation.options
    if invocation.publish is not None:
        _require_automatic_layer(options, workspace)  # before a build that could not publish
    written.append(out_dir(options))
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
    with pip_cache_usable(options.cache_dir):  # root in the container, the cache the runner's
        packaged = _package(invocation, region)
    outputs = action_outputs(packaged.report, packaged.report_path, workspace)
    annotate_missing(packaged.report, workspace, strict=options.strict)
    stopped = bool(packaged.report.missing_dependencies) and options.strict
    layer_step, failure = None, None
    if invocation.publish is not None:
        try:
            layer_step = _publish(invocation.publish, packaged, stopped=stopped)
        except ChalicepackError as error:
            layer_step, failure = LayerStep("failed", reason=_first_line(str(error))), error
    outputs.update(layer_outputs(layer_step))
    write_outputs(env, outputs)
    write_summary(env, packaged.report, invocation.runtime, workspace, options, layer_step)
    if failure is not None:
        report_error(failure, workspace, title="Layer not published")
        return failure.exit_code
    if stopped:
        log.error(
            "error: fail_on_missing is true and %d dependencies have no build for the target",
            len(packaged.report.missing_dependencies),
        )
        return EXIT_FAILED
    return EXIT_OK


# --- the build --------------------------------------------------------------------------------


def _package(invocation: Invocation, region: TemplateRegion | None = None) -> Packaged:
    """Run the engine (build, check or package) inside a log group and return its report."""
    options, packaging = invocation.options, invocation.package
    verb = "check" if options.check_only else "build"
    if packaging is not None:
        verb = f"package ({packaging.pkg_format})"
    title = f"chalicepack {verb}: stage {options.stage}, {invocation.runtime.name}"
    with _log_group(title):
        # The engine is imported once the inputs are checked: a bad input fails without it.
        try:
            if packaging is None:
                from chalicepack.package.pipeline import build

                built = build(options)
                report, report_path = built.report, built.report_path
            else:
                from chalicepack.deploy.templates import package

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
            return Packaged(BuildReport.from_json(json.loads(path.read_bytes())), path)
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
    import botocore.session  # only here: botocore is a fifth of the step's start-up
    from botocore.exceptions import BotoCoreError

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
        where = relative(config.path, workspace)
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
    if "layer" not in packaged.report.artifacts:
        if not packaged.report.automatic_layer:
            raise BadInput(
                "input publish_layer is true but the build ran without automatic_layer, so"
                " there is no layer zip to publish; set the automatic_layer input to true"
            )
        reason = (
            "publish_layer is true but the build has no layer zip: there are no dependencies"
            " or vendor files to put in it. Nothing was published; layer_arn, layer_version and"
            " layer_published are empty"
        )
        commands.warning(reason, title="No layer to publish")
        return LayerStep("no layer", reason="there are no dependencies or vendor files")
    from chalicepack.deploy.publish import publish_layer  # boto3: only a step that publishes

    options = dataclasses.replace(publish, report_path=packaged.report_path)
    with _log_group("chalicepack publish-layer"):
        published = publish_layer(options)
    state: LayerState = "published" if published.published else "reused"
    print(f"layer {published.layer_arn} ({state})", flush=True)
    return LayerStep(state, published)


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else text


@contextmanager
def _log_group(title: str) -> Iterator[None]:
    """``::group::`` around the engine's log (stderr), flushed so the group holds all of it."""
    sys.stderr.flush()
    commands.start_group(title)
    try:
        yield
    finally:
        sys.stderr.flush()
        commands.end_group()


# --- files in the workspace -------------------------------------------------------------------


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
