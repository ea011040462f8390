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
``os.environ`` and the working directory. Two sets of modules share it (see
``apps_own_modules``): the packager's (chalice and its dependencies, from this installation)
and the app's, which resolve as on Lambda: the function tree, then the layer's site-packages,
ahead of everything but the project's folder (chalice puts it first to load app.py, so app.py
and chalicelib/ are the project's own files, the same as those packaged), even where the
packager has already imported a module of the same name (urllib3, six, a vendor/ override).
Modules this interpreter cannot load (built for another target) get the stand-ins the
build's import check gave them.

The result (the template's file name, or what went wrong) is written as JSON to the path the
spec names, never to stdout, which belongs to the app's own output.

Chalice internals used (hence the narrow chalice range in pyproject.toml): the packager's
``_resource_builder._build_stage._steps`` list, in which the one packaging step
(``DeploymentPackager`` or ``ManagedLayerDeploymentPackager``) is replaced.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import json
import os
import sys
import traceback
from collections.abc import Iterator, Mapping, Sequence
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

from chalicepack.importcheck import _child as import_check_child

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
    import_path: tuple[str, ...]  # the function tree, then the layer's site-packages
    stand_ins: tuple[str, ...]  # modules the build's import check left out (stubbed)
    outdir: str
    result: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Spec:
        sequences = {key: tuple(data[key]) for key in ("import_path", "stand_ins")}
        return cls(**{**data, **sequences})


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
        with apps_own_modules(spec.import_path, spec.stand_ins):
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


@contextlib.contextmanager
def apps_own_modules(import_path: Sequence[str], stand_ins: Sequence[str]) -> Iterator[None]:
    """While the app is imported, its modules resolve as on Lambda: ``import_path`` (the
    function tree, the layer) comes first on ``sys.path``, and the packager's modules of any
    name that ships there are out of ``sys.modules`` (so ``import urllib3`` loads the packaged
    urllib3 even though botocore imported this installation's); ``stand_ins`` are stubbed as
    in the build's import check. Afterwards the packager gets its own modules back, and the
    app's objects keep theirs.

    What still differs from Lambda (and from the build's import check):
    - ``chalice`` is always the packager's (the app's Chalice must be the class chalice's
      resource model checks against; the shipped runtime files are its subset);
    - standard library modules the packager imported stay (Lambda's bootstrap has imported
      many too), so a shipped module named like one is not used;
    - a module that neither ships nor is in the standard library resolves from this
      installation: right for what Lambda's runtime provides (boto3 & co; the build's import
      check uses this installation's copies too), lenient for anything else, which the
      build's import check reports missing (unless --no-import skipped it).
    """
    shipped = _shipped_names(import_path)
    packagers = _taken_out(shipped)
    saved = (list(sys.path), list(sys.meta_path), list(sys.path_hooks))
    sys.path[:0] = import_path
    if stand_ins:
        # The build's stand-ins, by the same finder: it reads its module's STUBS.
        import_check_child.STUBS = tuple(stand_ins)
        sys.meta_path.insert(0, import_check_child.StubFinder)
    try:
        yield
    finally:
        # six and kin register finders of their own; the app's must not serve the packager.
        sys.path[:], sys.meta_path[:], sys.path_hooks[:] = saved
        _taken_out(shipped)  # the app's: what it imported keeps references to them
        sys.modules.update(packagers)


def _shipped_names(import_path: Sequence[str]) -> frozenset[str]:
    """The top-level module names ``import_path`` provides, but chalice and the standard
    library's (see ``apps_own_modules``)."""
    suffixes = tuple(importlib.machinery.all_suffixes())
    names = set()
    for root in import_path:
        for entry in os.scandir(root):
            if entry.is_dir() and entry.name.isidentifier():
                names.add(entry.name)
            elif entry.name.endswith(suffixes):  # also foreign builds: x.cpython-312-...so
                names.add(entry.name.partition(".")[0])
    return frozenset(names - {"chalice", "__pycache__"} - sys.stdlib_module_names)


def _taken_out(names: frozenset[str]) -> dict[str, Any]:
    """Remove the modules of the top-level ``names`` from ``sys.modules``; return them."""
    found = [name for name in sys.modules if name.partition(".")[0] in names]
    return {name: sys.modules.pop(name) for name in found}


class _AppImportFailed(Exception):
    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _where(error: BaseException, spec: Spec) -> tuple[str | None, int | None]:
    """The innermost place in the app's own files (app.py, chalicelib/, vendor/) that the
    error, or the error that caused it, went through; the root cause first."""
    chain: list[BaseException] = []
    item: BaseException | None = error
    while item is not None and item not in chain:
        chain.append(item)
        item = item.__cause__ or item.__context__
    for raised in reversed(chain):
        if isinstance(raised, SyntaxError) and raised.filename:
            own = _project_file(raised.filename, spec)
            if own is not None:
                return own, raised.lineno
            continue
        places = [
            (own, lineno)
            for frame, lineno in traceback.walk_tb(raised.__traceback__)
            if (own := _project_file(frame.f_code.co_filename, spec)) is not None
        ]
        if places:
            return places[-1]
    return None, None


def _project_file(filename: str, spec: Spec) -> str | None:
    """The project's app.py, chalicelib/ or vendor/ file that ``filename`` is, or was packaged
    from (the app is imported from the unpacked function tree and layer)."""
    path = Path(filename).resolve()
    root = Path(spec.project_dir).resolve()
    for index, packaged in enumerate(Path(entry).resolve() for entry in spec.import_path):
        if path.is_relative_to(packaged):
            relative = path.relative_to(packaged)
            if index == 0 and (relative == Path("app.py") or relative.parts[0] == "chalicelib"):
                return str(root / relative)
            vendored = root / "vendor" / relative
            return str(vendored) if vendored.is_file() else None
    if not path.is_relative_to(root):
        return None
    relative = path.relative_to(root)
    own = relative == Path("app.py") or relative.parts[0] in ("chalicelib", "vendor")
    return str(path) if own else None


def _describe(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def run(spec: Spec) -> dict[str, Any]:
    """Generate, and say what happened as a JSON-able mapping."""
    os.chdir(spec.project_dir)
    os.environ["AWS_CHALICE_CLI_MODE"] = "true"
    try:
        return {"template": generate(spec)}
    except _AppImportFailed as failed:
        file, line = _where(failed.error, spec)
        return _error("app_import", _describe(failed.error), file, line)
    except botocore.exceptions.NoRegionError:
        return _error("no_region", "no AWS region is configured")
    except botocore.exceptions.ProfileNotFound as error:
        return _error("profile", str(error))
    except Incompatible as error:
        return _error("incompatible", f"chalice {chalice_version}: {error}")
    except _CHALICE_REFUSALS as error:
        file, line = _where(error, spec)
        return _error("chalice", _describe(error), file, line)
    except Exception as error:
        if type(error).__module__.startswith("chalice"):  # ExperimentalFeatureError and kin
            file, line = _where(error, spec)
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
