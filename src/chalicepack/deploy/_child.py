"""Run ``chalice package``'s own template generation around chalicepack's zips (a child process).

``python -m chalicepack.deploy._child SPEC.json`` does what ``chalice package`` does, with
Chalice's own objects: ``AWS_CHALICE_CLI_MODE=true``, the project directory as the working
directory, ``CLIFactory.create_config_obj`` (which imports ``app.py`` with the stage's
environment variables), ``create_package_options`` (the region's service principals) and
``create_app_packager`` (the resource model, IAM policy generation, swagger, the SAM or
Terraform generator, the merge-template and code-location post-processors). One thing is
different: the build stage's packaging step is given packagers that answer with the zips
chalicepack built instead of running pip, so Chalice's post-processors copy *those* into the
output directory and the templates follow Chalice's resource model exactly.

It runs in its own process because importing the app changes ``sys.modules``, ``sys.path``,
``os.environ`` and the working directory. The app's dependencies come from the packages
chalicepack built (the function tree and the layer's site-packages, appended to ``sys.path``
after this interpreter's own site-packages, so chalice and its dependencies stay this
installation's).

The result (the template's file name, or what went wrong) is written as JSON to the path the
spec names, never to stdout, which belongs to the app's own output.

Chalice internals used (hence the narrow chalice range in pyproject.toml): the packager's
``_resource_builder._build_stage._steps`` list, in which the one packaging step
(``DeploymentPackager`` or ``ManagedLayerDeploymentPackager``) is replaced.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions
from chalice import __version__ as chalice_version
from chalice.cli.factory import CLIFactory
from chalice.config import Config
from chalice.deploy import models
from chalice.deploy.deployer import (
    BaseDeployStep,
    BuildStage,
    DeploymentPackager,
    ManagedLayerDeploymentPackager,
)
from chalice.deploy.packager import EmptyPackageError, LambdaDeploymentPackager
from chalice.deploy.validate import ExperimentalFeatureError, validate_lambda_architecture
from chalice.package import AppPackager, ResourceBuilder

# Chalice refuses an app or config it cannot package with these builtins (its validators, the
# config loader, the template merger) or with exceptions of its own modules; anything else is
# taken for a failure of chalicepack or chalice itself.
_CHALICE_REFUSALS = (ValueError, RuntimeError)


@dataclass(frozen=True)
class Spec:
    """What the parent asks for; paths are absolute."""

    project_dir: str
    stage: str
    pkg_format: str
    template_format: str
    merge_template: str | None
    profile: str | None
    automatic_layer: bool
    architecture: str
    runtime: str
    function_zip: str
    layer_zip: str | None
    import_path: tuple[str, ...]  # the packaged dependencies, appended to sys.path
    outdir: str
    result: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Spec:
        return cls(**{**data, "import_path": tuple(data["import_path"])})


class Incompatible(Exception):
    """The installed chalice is not built the way this module expects."""


class _ChalicepackZip(LambdaDeploymentPackager):
    """Chalice's packager interface, answering with a zip chalicepack built (or "empty")."""

    def __init__(self, path: str | None) -> None:
        # No super().__init__(): its pip-based dependency builder is exactly what is replaced,
        # and create_deployment_package is the only method the packaging steps call.
        self._path = path

    def create_deployment_package(self, project_dir: str, python_version: str) -> str:
        if self._path is None:
            # What Chalice's LayerDeploymentPackager raises for an empty layer; its
            # ManagedLayerDeploymentPackager then drops the layer from the model.
            raise EmptyPackageError(project_dir)
        return self._path


class _TargetRuntime(BaseDeployStep):
    """Gives functions and the managed layer the runtime the zips were built for.

    Chalice takes the runtime from the interpreter it runs under; chalicepack's ``--runtime``
    may name another (the default is the same rule, so this changes nothing then).
    """

    def __init__(self, runtime: str) -> None:
        self._runtime = runtime

    def handle_lambdafunction(self, config: Config, resource: models.LambdaFunction) -> None:
        resource.runtime = self._runtime

    def handle_lambdalayer(self, config: Config, resource: models.LambdaLayer) -> None:
        resource.runtime = self._runtime


def use_chalicepack_zips(packager: AppPackager, spec: Spec) -> None:
    """Replace the packaging step of ``packager``'s build stage by one that uses our zips."""
    resource_builder = getattr(packager, "_resource_builder", None)
    stage = getattr(resource_builder, "_build_stage", None)
    steps = getattr(stage, "_steps", None)
    if not (
        isinstance(resource_builder, ResourceBuilder)
        and isinstance(stage, BuildStage)
        and isinstance(steps, list)
    ):
        raise Incompatible("its AppPackager has no ResourceBuilder with a BuildStage")
    packaging = [
        index
        for index, step in enumerate(steps)
        if isinstance(step, (DeploymentPackager, ManagedLayerDeploymentPackager))
    ]
    if len(packaging) != 1:
        raise Incompatible(f"its build stage has {len(packaging)} packaging steps, not 1")
    (index,) = packaging
    replacement: BaseDeployStep
    if isinstance(steps[index], ManagedLayerDeploymentPackager):
        replacement = ManagedLayerDeploymentPackager(
            lambda_packager=_ChalicepackZip(spec.function_zip),
            layer_packager=_ChalicepackZip(spec.layer_zip),
        )
    else:
        replacement = DeploymentPackager(packager=_ChalicepackZip(spec.function_zip))
    steps[index : index + 1] = [replacement, _TargetRuntime(spec.runtime)]


def generate(spec: Spec) -> str:
    """Write the template and copies of the zips into ``spec.outdir``; return the template's
    file name. Raises ``_AppImportFailed`` when importing the app fails."""
    factory = CLIFactory(spec.project_dir, environ=os.environ)
    factory.profile = spec.profile
    config = factory.create_config_obj(
        spec.stage,
        user_provided_params={
            # chalicepack's --automatic-layer/--arch override config.json as for the zips.
            "automatic_layer": spec.automatic_layer,
            "lambda_architecture": spec.architecture,
        },
    )
    validate_lambda_architecture(config)
    try:
        config.chalice_app  # noqa: B018 - Chalice imports app.py lazily, here
    except ExperimentalFeatureError:
        raise  # the app imported; Chalice refuses a feature it did not opt in to
    except Exception as error:
        raise _AppImportFailed(error) from error
    options = factory.create_package_options()
    packager = factory.create_app_packager(
        config, options, spec.pkg_format, spec.template_format, spec.merge_template
    )
    use_chalicepack_zips(packager, spec)
    packager.package_app(config, spec.outdir, spec.stage)
    written = [name for name in os.listdir(spec.outdir) if not name.endswith(".zip")]
    if len(written) != 1:
        raise Incompatible(f"its packager wrote {written or 'no file'} besides the zips")
    return written[0]


class _AppImportFailed(Exception):
    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _where(error: BaseException, project_dir: str) -> tuple[str | None, int | None]:
    """The innermost place in the app's own files (app.py, chalicelib/, vendor/) that the
    error, or the error that caused it, went through; the root cause first."""
    chain: list[BaseException] = []
    item: BaseException | None = error
    while item is not None and item not in chain:
        chain.append(item)
        item = item.__cause__ or item.__context__
    for raised in reversed(chain):
        if isinstance(raised, SyntaxError) and raised.filename:
            if _own(raised.filename, project_dir):
                return raised.filename, raised.lineno
            continue
        places = [
            (frame.f_code.co_filename, lineno)
            for frame, lineno in traceback.walk_tb(raised.__traceback__)
            if _own(frame.f_code.co_filename, project_dir)
        ]
        if places:
            return places[-1]
    return None, None


def _own(filename: str, project_dir: str) -> bool:
    path = Path(filename).resolve()
    root = Path(project_dir).resolve()
    if not path.is_relative_to(root):
        return False
    relative = path.relative_to(root)
    return relative == Path("app.py") or relative.parts[0] in ("chalicelib", "vendor")


def _describe(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def run(spec: Spec) -> dict[str, Any]:
    """Generate, and say what happened as a JSON-able mapping."""
    os.chdir(spec.project_dir)
    os.environ["AWS_CHALICE_CLI_MODE"] = "true"
    sys.path.extend(path for path in spec.import_path if path not in sys.path)
    try:
        return {"template": generate(spec)}
    except _AppImportFailed as failed:
        file, line = _where(failed.error, spec.project_dir)
        return _error("app_import", _describe(failed.error), file, line)
    except botocore.exceptions.NoRegionError:
        return _error("no_region", "no AWS region is configured")
    except botocore.exceptions.ProfileNotFound as error:
        return _error("profile", str(error))
    except Incompatible as error:
        return _error("incompatible", f"chalice {chalice_version}: {error}")
    except _CHALICE_REFUSALS as error:
        file, line = _where(error, spec.project_dir)
        return _error("chalice", _describe(error), file, line)
    except Exception as error:
        if type(error).__module__.startswith("chalice"):  # ExperimentalFeatureError and kin
            file, line = _where(error, spec.project_dir)
            return _error("chalice", _describe(error), file, line)
        return _error("crash", "".join(traceback.format_exception(error)).strip())


def _error(
    kind: str, message: str, file: str | None = None, line: int | None = None
) -> dict[str, Any]:
    return {"error": {"kind": kind, "message": message, "file": file, "line": line}}


def main(argv: Sequence[str]) -> int:
    spec = Spec.from_json(json.loads(Path(argv[0]).read_text(encoding="utf-8")))
    result = run(spec)
    Path(spec.result).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
