"""The app is imported the way Lambda will load it: from exactly what ships, in a child process,
with Chalice's CLI-mode environment; failures name the file and line, and the Lambda functions
are listed as Chalice deploys them."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from chalicepack.errors import AppImportError, BadInput
from chalicepack.importcheck.check import ImportCheck, LambdaFunction, check_app_import
from chalicepack.inputs.config import load_stage_config
from chalicepack.package.chaliceruntime import installed_runtime
from conftest import make_project, write_tree

HOST_PYTHON = sys.version_info[:2]
HOST_MACHINE = {"arm64": "aarch64", "amd64": "x86_64"}.get(
    platform.machine().lower(), platform.machine()
)
# A Lambda target this interpreter cannot load compiled modules for.
OTHER_PYTHON = (3, HOST_PYTHON[1] + 1)
OTHER_MACHINE = "aarch64" if HOST_MACHINE == "x86_64" else "x86_64"
OTHER_TAG = f"cpython-3{OTHER_PYTHON[1]}-{OTHER_MACHINE}-linux-gnu"


def app_source(body: str, header: str = "") -> str:
    """An app.py: ``header`` (imports run first), the Chalice object, then ``body``."""
    return (
        textwrap.dedent(header)
        + "from chalice import Chalice\n\napp = Chalice(app_name='testapp')\n"
        + textwrap.dedent(body)
    )


@pytest.fixture
def project_root(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root


def function_tree(tmp_path: Path, files: Mapping[str, str | bytes]) -> Path:
    """The function zip's contents: ``files`` plus the two Chalice runtime files."""
    tree = write_tree(tmp_path / "tree", files)
    for arcname, source in installed_runtime(tmp_path)[1].items():
        (tree / arcname).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, tree / arcname)
    return tree


def check(
    tree: Path,
    project_root: Path,
    *,
    environment: Mapping[str, str] | None = None,
    layer: Path | None = None,
    target: tuple[tuple[int, int], str] = (HOST_PYTHON, HOST_MACHINE),
    timeout: float = 20.0,
) -> ImportCheck:
    return check_app_import(
        tree,
        layer,
        environment or {},
        target_python=target[0],
        target_machine=target[1],
        project_root=project_root,
        timeout=timeout,
    )


def failure(tree: Path, project_root: Path, **options: object) -> AppImportError:
    with pytest.raises(AppImportError) as caught:
        check(tree, project_root, **options)  # type: ignore[arg-type]
    return caught.value


# --- environment ------------------------------------------------------------------------------

# The documentation's example: a stage variable, and a per-function one for "foo".
DOCS_CONFIG = {
    "environment_variables": {"TOP_VAR": "top"},
    "stages": {
        "dev": {
            "environment_variables": {"STAGE_VAR": "stage-value"},
            "lambda_functions": {"foo": {"environment_variables": {"PER_FUNCTION": "only-in-foo"}}},
        }
    },
}


def test_the_stage_environment_is_set_and_per_function_variables_are_not(
    tmp_path: Path, project_root: Path
) -> None:
    make_project(project_root, config=DOCS_CONFIG)
    environment = load_stage_config(project_root, "dev").environment_variables
    tree = function_tree(
        tmp_path,
        {
            "app.py": app_source(
                """
                import os
                print("STAGE_VAR", os.environ["STAGE_VAR"], "TOP_VAR", os.environ["TOP_VAR"])
                print("PER_FUNCTION", os.environ.get("PER_FUNCTION"))
                print("CLI_MODE", os.environ["AWS_CHALICE_CLI_MODE"])

                @app.lambda_function(name="foo")
                def handler(event, context):
                    return {}
                """
            )
        },
    )

    result = check(tree, project_root, environment=environment)

    assert result.output.splitlines() == [
        "STAGE_VAR stage-value TOP_VAR top",
        "PER_FUNCTION None",
        "CLI_MODE true",
    ]
    assert result.functions == (LambdaFunction("foo", "app.handler", "lambda_function"),)


def test_an_app_requiring_a_per_function_variable_fails_at_its_line(
    tmp_path: Path, project_root: Path
) -> None:
    make_project(project_root, config=DOCS_CONFIG)
    environment = load_stage_config(project_root, "dev").environment_variables
    tree = function_tree(
        tmp_path, {"app.py": app_source("import os\nSETTING = os.environ['PER_FUNCTION']\n")}
    )

    error = failure(tree, project_root, environment=environment)

    assert isinstance(error, BadInput)
    assert error.file == project_root / "app.py"
    assert error.line == 5
    assert "KeyError: 'PER_FUNCTION'" in str(error)
    assert "app.py:5 in <module>\n    SETTING = os.environ['PER_FUNCTION']" in str(error)


def test_the_cli_mode_guard_keeps_the_import_from_connecting(
    tmp_path: Path, project_root: Path
) -> None:
    marker = tmp_path / "connected"
    skipped = tmp_path / "skipped"
    tree = function_tree(
        tmp_path,
        {
            "app.py": app_source(
                """
                import os
                from pathlib import Path

                if 'AWS_CHALICE_CLI_MODE' not in os.environ:
                    Path(os.environ["MARKER"]).write_text("connected to the database")
                else:
                    Path(os.environ["SKIPPED"]).write_text("packaging")
                """
            )
        },
    )

    check(tree, project_root, environment={"MARKER": str(marker), "SKIPPED": str(skipped)})

    assert not marker.exists()
    assert skipped.read_text() == "packaging"


# --- failures ---------------------------------------------------------------------------------


def test_an_exception_shows_the_project_frames_and_the_failing_line(
    tmp_path: Path, project_root: Path
) -> None:
    tree = function_tree(
        tmp_path,
        {
            "app.py": app_source("", header="from chalicelib import db\n"),
            "chalicelib/__init__.py": "",
            "chalicelib/db.py": "import json\n\n\nTABLES = json.loads('{not json')\n",
        },
    )

    error = failure(tree, project_root)

    assert (error.file, error.line) == (project_root / "chalicelib" / "db.py", 4)
    message = str(error)
    assert message.startswith("importing app.py failed: json.decoder.JSONDecodeError: ")
    assert "  app.py:1 in <module>\n    from chalicelib import db\n" in message
    assert "  chalicelib/db.py:4 in <module>\n    TABLES = json.loads('{not json')" in message
    # Shortened to the project: no importlib, standard library or chalicepack frames.
    assert "frozen" not in message
    assert "json/decoder.py" not in message
    assert str(tree) not in message


def test_a_missing_module_points_to_requirements_and_vendor(
    tmp_path: Path, project_root: Path
) -> None:
    tree = function_tree(tmp_path, {"app.py": app_source("", header="\nimport yaml\n")})

    error = failure(tree, project_root)

    assert (error.file, error.line) == (project_root / "app.py", 2)
    assert "No module named 'yaml'" in str(error)
    assert "requirements.txt" in str(error)
    assert "vendor/" in str(error)


def test_the_build_hosts_packages_are_not_importable(tmp_path: Path, project_root: Path) -> None:
    assert importlib.util.find_spec("packaging") is not None  # installed with chalicepack
    tree = function_tree(tmp_path, {"app.py": app_source("", header="import packaging\n")})

    error = failure(tree, project_root)

    assert "No module named 'packaging'" in str(error)
    assert error.line == 1


def test_a_top_level_package_beside_app_py_is_not_packaged(
    tmp_path: Path, project_root: Path
) -> None:
    write_tree(project_root, {"ingest/__init__.py": "", "ingest/loader.py": "LOADED = True\n"})
    tree = function_tree(
        tmp_path, {"app.py": app_source("", header="from ingest.loader import LOADED\n")}
    )

    error = failure(tree, project_root)

    assert "No module named 'ingest'" in str(error)
    assert "only app.py and chalicelib/" in str(error)
    assert "chalicelib.ingest" in str(error)
    assert (error.file, error.line) == (project_root / "app.py", 1)


def test_a_syntax_error_names_its_file_and_line(tmp_path: Path, project_root: Path) -> None:
    tree = function_tree(
        tmp_path,
        {
            "app.py": app_source("", header="import chalicelib.models\n"),
            "chalicelib/__init__.py": "",
            "chalicelib/models.py": "class Item:\n    def broken(self)\n        pass\n",
        },
    )

    error = failure(tree, project_root)

    assert (error.file, error.line) == (project_root / "chalicelib" / "models.py", 2)
    assert "syntax error at chalicelib/models.py:2" in str(error)
    assert "def broken(self)" in str(error)


def test_an_import_past_the_timeout_is_stopped_and_says_where_it_was(
    tmp_path: Path, project_root: Path
) -> None:
    tree = function_tree(tmp_path, {"app.py": app_source("import time\n\ntime.sleep(60)\n")})

    started = time.monotonic()
    error = failure(tree, project_root, timeout=2)

    assert time.monotonic() - started < 10
    assert "did not finish within 2 s" in str(error)
    assert "--import-timeout" in str(error)
    assert "AWS_CHALICE_CLI_MODE" in str(error)
    assert (error.file, error.line) == (project_root / "app.py", 6)


def test_connecting_at_import_time_shows_the_guard(tmp_path: Path, project_root: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tree = function_tree(
        tmp_path,
        {
            "app.py": app_source(
                f"import socket\n\nDB = socket.create_connection(('127.0.0.1', {port}))\n"
            )
        },
    )

    error = failure(tree, project_root)

    assert "reaches out at import time" in str(error)
    assert "ConnectionRefusedError" in str(error)
    assert "if 'AWS_CHALICE_CLI_MODE' not in os.environ:" in str(error)
    assert "--no-import" in str(error)
    assert (error.file, error.line) == (project_root / "app.py", 6)


def test_an_app_without_a_chalice_app_object_is_refused(tmp_path: Path, project_root: Path) -> None:
    no_app = function_tree(tmp_path / "a", {"app.py": "application = object()\n"})
    not_chalice = function_tree(tmp_path / "b", {"app.py": "app = object()\n"})

    assert "app.py defines no `app`" in str(failure(no_app, project_root))
    assert "app.app is a builtins.object, not a chalice.Chalice" in str(
        failure(not_chalice, project_root)
    )


def test_an_app_that_kills_its_interpreter_is_reported(tmp_path: Path, project_root: Path) -> None:
    tree = function_tree(
        tmp_path, {"app.py": app_source("import os\nprint('bye', flush=True)\nos._exit(3)\n")}
    )

    error = failure(tree, project_root)

    assert "exited with code 3 before it finished" in str(error)
    assert error.output == "bye\n"


# --- what the import sees and leaves ----------------------------------------------------------


def test_what_the_app_prints_is_captured_apart_from_the_result(
    tmp_path: Path, project_root: Path
) -> None:
    tree = function_tree(
        tmp_path,
        {
            "app.py": app_source(
                """
                import json, sys
                print(json.dumps({"loaded": {"app_name": "not-this"}}))
                print("to stderr", file=sys.stderr)
                """
            )
        },
    )

    result = check(tree, project_root)

    assert result.app_name == "testapp"
    assert result.output == '{"loaded": {"app_name": "not-this"}}\nto stderr\n'


def test_the_layer_is_on_the_path_after_the_function_tree(
    tmp_path: Path, project_root: Path
) -> None:
    layer = write_tree(
        tmp_path / "layer" / "python" / "lib" / "python3.12" / "site-packages",
        {"layerdep/__init__.py": "WHERE = 'layer'\n", "shadowed.py": "WHERE = 'layer'\n"},
    )
    tree = function_tree(
        tmp_path,
        {
            "shadowed.py": "WHERE = 'function'\n",
            "app.py": app_source(
                "import layerdep, shadowed\nprint(layerdep.WHERE, shadowed.WHERE)\n"
            ),
        },
    )

    assert check(tree, project_root, layer=layer).output == "layer function\n"
    assert "No module named 'layerdep'" in str(failure(tree, project_root))


def test_the_import_writes_no_bytecode_into_the_tree(tmp_path: Path, project_root: Path) -> None:
    tree = function_tree(
        tmp_path,
        {
            "app.py": app_source("", header="import chalicelib.util\n"),
            "chalicelib/__init__.py": "",
            "chalicelib/util.py": "",
        },
    )

    check(tree, project_root)

    assert not list(tree.rglob("__pycache__")) and not list(tree.rglob("*.pyc"))


# --- Lambda functions -------------------------------------------------------------------------

EVERY_KIND = app_source(
    """
    @app.route("/")
    def index():
        return {}

    @app.authorizer()
    def check_token(auth_request):
        pass

    @app.lambda_function(name="foo")
    def custom(event, context):
        return {}

    @app.schedule("rate(1 hour)")
    def every_hour(event):
        pass

    @app.on_s3_event(bucket="uploads")
    def uploaded(event):
        pass

    @app.on_sqs_message(queue="jobs")
    def job(event):
        pass

    @app.on_ws_message()
    def message(event):
        pass

    @app.on_ws_connect()
    def connect(event):
        pass
    """
)


def test_the_lambda_functions_are_listed_as_chalice_deploys_them(
    tmp_path: Path, project_root: Path
) -> None:
    tree = function_tree(tmp_path, {"app.py": EVERY_KIND})

    result = check(tree, project_root)

    assert result.app_name == "testapp"
    assert result.functions == (
        LambdaFunction("foo", "app.custom", "lambda_function"),
        LambdaFunction("every_hour", "app.every_hour", "schedule"),
        LambdaFunction("uploaded", "app.uploaded", "s3"),
        LambdaFunction("job", "app.job", "sqs"),
        LambdaFunction("api_handler", "app.app", "api"),
        LambdaFunction("check_token", "app.check_token", "authorizer"),
        LambdaFunction("websocket_connect", "app.connect", "websocket"),
        LambdaFunction("websocket_message", "app.message", "websocket"),
    )
    assert result.warnings == ()


def test_the_functions_match_chalices_own_application_graph(
    tmp_path: Path, project_root: Path
) -> None:
    """The installed chalice's deployer is the oracle for names and handler strings."""
    tree = function_tree(tmp_path, {"app.py": EVERY_KIND})
    oracle = textwrap.dedent(
        """
        import json, sys
        sys.path.append(".")  # after site-packages: the full chalice, not the shipped runtime
        import app
        from chalice.config import Config
        from chalice.deploy import models
        from chalice.deploy.appgraph import ApplicationGraphBuilder, DependencyBuilder

        config = Config.create(
            chalice_stage="dev", app_name="testapp", chalice_app=app.app, project_dir="."
        )
        graph = ApplicationGraphBuilder().build(config, "dev")
        print(json.dumps(sorted(
            [r.resource_name, r.handler]
            for r in DependencyBuilder().build_dependencies(graph)
            if isinstance(r, models.LambdaFunction)
        )))
        """
    )
    deployed = subprocess.run(
        [sys.executable, "-I", "-c", oracle], cwd=tree, capture_output=True, text=True
    )
    assert deployed.returncode == 0, deployed.stderr

    listed = sorted([f.name, f.handler] for f in check(tree, project_root).functions)

    assert listed == json.loads(deployed.stdout)


def test_a_handler_lambda_cannot_find_is_a_warning(tmp_path: Path, project_root: Path) -> None:
    tree = function_tree(
        tmp_path,
        {
            "app.py": app_source(
                """
                def register():
                    @app.lambda_function()
                    def hidden(event, context):
                        return {}

                register()
                """
            )
        },
    )

    result = check(tree, project_root)

    assert result.functions == (LambdaFunction("hidden", "app.hidden", "lambda_function"),)
    assert result.warnings == (
        "Lambda will not find the handler app.hidden of function hidden: app has no hidden",
    )


# --- compiled modules this interpreter cannot load --------------------------------------------

# A dependency whose compiled part is built for another CPython and machine, used by another.
FOREIGN_BUILD = {
    "fastlib/__init__.py": "from ._speedups import Model\n",
    f"fastlib/_speedups.{OTHER_TAG}.so": b"\x7fELF not really",
    "wrapper/__init__.py": "import fastlib\n\n\nclass Base(fastlib.Model):\n    pass\n",
}


def test_a_compiled_module_for_another_interpreter_is_a_warning_and_the_rest_is_checked(
    tmp_path: Path, project_root: Path
) -> None:
    tree = function_tree(
        tmp_path,
        {
            **FOREIGN_BUILD,
            "app.py": app_source(
                """
                class Item(wrapper.Base):
                    pass

                @app.lambda_function()
                def worker(event, context):
                    return {}
                """,
                header="import wrapper\n",
            ),
        },
    )

    result = check(tree, project_root, target=(OTHER_PYTHON, OTHER_MACHINE))

    host = f"cp3{HOST_PYTHON[1]} {HOST_MACHINE}"
    assert result.warnings == (
        f"could not check compiled module fastlib._speedups (fastlib/_speedups.{OTHER_TAG}.so): "
        f"it is built for cp3{OTHER_PYTHON[1]} {OTHER_MACHINE}, this interpreter is {host}; "
        "the import check went on without fastlib, wrapper",
    )
    assert result.functions == (LambdaFunction("worker", "app.worker", "lambda_function"),)


@pytest.mark.parametrize(
    ("files", "module"),
    [
        pytest.param(  # Pillow: PIL/Image.py does `from . import _imaging as core`
            {
                "pictures/__init__.py": "",
                "pictures/Image.py": "from . import _imaging as core\n",
                f"pictures/_imaging.{OTHER_TAG}.so": b"\x7fELF not really",
                "app.py": app_source("", header="from pictures import Image\n"),
            },
            "pictures._imaging",
            id="from-package-import-extension",
        ),
        pytest.param(  # pydantic_core: a folder of .pyi stubs beside _pydantic_core.*.so
            {
                "corelib/__init__.py": "from corelib._core import Model\n",
                f"corelib/_core.{OTHER_TAG}.so": b"\x7fELF not really",
                "corelib/_core/__init__.pyi": "class Model: ...\n",
                "app.py": app_source("", header="import corelib\n"),
            },
            "corelib._core",
            id="stub-folder-beside-extension",
        ),
    ],
)
def test_names_imported_from_a_compiled_module_for_another_interpreter_are_a_warning(
    tmp_path: Path, project_root: Path, files: dict[str, str | bytes], module: str
) -> None:
    tree = function_tree(tmp_path, files)

    result = check(tree, project_root, target=(OTHER_PYTHON, OTHER_MACHINE))

    assert [w.split(" (")[0] for w in result.warnings] == [
        f"could not check compiled module {module}"
    ]
    # Built for the host instead, the same files are an error: Lambda would fail alike.
    assert "cannot import name" in str(failure(tree, project_root))


def test_an_app_error_after_an_unloadable_compiled_module_still_fails(
    tmp_path: Path, project_root: Path
) -> None:
    tree = function_tree(
        tmp_path,
        {
            **FOREIGN_BUILD,
            "app.py": app_source(
                "import os\nTABLE = os.environ['TABLE']\n", header="import wrapper\n"
            ),
        },
    )

    error = failure(tree, project_root, target=(OTHER_PYTHON, OTHER_MACHINE))

    assert "KeyError: 'TABLE'" in str(error)
    assert "stand-ins for fastlib, wrapper" in str(error)
    assert (error.file, error.line) == (project_root / "app.py", 6)


def test_the_same_compiled_module_missing_for_the_build_target_is_an_error(
    tmp_path: Path, project_root: Path
) -> None:
    """Built for another interpreter than Lambda's: Lambda would not find it either."""
    tree = function_tree(
        tmp_path, {**FOREIGN_BUILD, "app.py": app_source("", header="import wrapper\n")}
    )

    error = failure(tree, project_root)

    assert "No module named 'fastlib._speedups'" in str(error)
    assert (
        f"fastlib/_speedups.{OTHER_TAG}.so is not built for Lambda's cp3{HOST_PYTHON[1]} "
        f"{HOST_MACHINE}, so Lambda will not find fastlib._speedups either"
    ) in str(error)


def test_a_compiled_module_that_fails_to_load_is_an_error_only_when_it_could_load_here(
    tmp_path: Path, project_root: Path
) -> None:
    tree = function_tree(
        tmp_path,
        {
            "native/__init__.py": "from ._core import VALUE\n",
            "native/_core.abi3.so": b"\x7fELF truncated",
            "app.py": app_source("", header="import native\n"),
        },
    )

    error = failure(tree, project_root)
    assert "native/_core.abi3.so" in str(error)
    assert (error.file, error.line) == (project_root / "app.py", 1)

    other_machine = check(tree, project_root, target=(HOST_PYTHON, OTHER_MACHINE))
    assert [w.split(":")[0] for w in other_machine.warnings] == [
        "could not check compiled module native._core (native/_core.abi3.so)"
    ]


def test_a_dependency_failing_on_the_stand_ins_is_a_warning_but_a_broken_one_is_an_error(
    tmp_path: Path, project_root: Path
) -> None:
    files = {
        **FOREIGN_BUILD,
        # Builds on fastlib: cannot be checked without it.
        "usesfast/__init__.py": "import fastlib\n\nDOC = fastlib.Model.__doc__.strip()\n",
        # Does not touch fastlib: its failure is real.
        "broken/__init__.py": "raise RuntimeError('broken on import')\n",
    }
    header = "import wrapper\nimport usesfast\n"
    uses_fast = function_tree(tmp_path / "a", {**files, "app.py": app_source("", header=header)})
    broken = function_tree(
        tmp_path / "b", {**files, "app.py": app_source("", header=header + "import broken\n")}
    )
    other = (OTHER_PYTHON, OTHER_MACHINE)

    warnings = check(uses_fast, project_root, target=other).warnings
    error = failure(broken, project_root, target=other)

    assert [w.split(":")[0] for w in warnings] == [
        f"could not check compiled module fastlib._speedups (fastlib/_speedups.{OTHER_TAG}.so)",
        "could not check usesfast",
    ]
    assert "its import failed on the stand-ins for fastlib, wrapper" in warnings[1]
    assert "RuntimeError: broken on import" in str(error)
    assert (error.file, error.line) == (project_root / "app.py", 3)


def test_newer_syntax_in_a_dependency_is_a_warning_but_never_in_the_app(
    tmp_path: Path, project_root: Path
) -> None:
    newer = (OTHER_PYTHON, HOST_MACHINE)
    # Stands for syntax only a newer Python knows.
    files = {"modern/__init__.py": "match = lambda: (\n"}
    dependency = function_tree(
        tmp_path / "a", {**files, "app.py": app_source("", header="import modern\n")}
    )
    in_app = function_tree(tmp_path / "b", {"app.py": app_source("def f(:\n    pass\n")})

    warnings = check(dependency, project_root, target=newer).warnings
    error = failure(in_app, project_root, target=newer)

    assert [w.split(":")[0] for w in warnings] == ["could not check modern (modern/__init__.py"]
    assert "syntax error at app.py:4" in str(error)
    assert "older than Lambda's" in str(error)
    assert (error.file, error.line) == (project_root / "app.py", 4)
    with pytest.raises(AppImportError, match=re.escape("syntax error at modern/__init__.py:1")):
        check(dependency, project_root)  # this interpreter is the target's: a real error


BOTO3_DISTRIBUTION = ("boto3", "botocore", "jmespath", "dateutil", "s3transfer", "urllib3", "six")


def _boto3_layer_without_aws_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The host's real boto3 shipped in a layer; the machine's AWS setup (region, credentials,
    configuration files) hidden."""
    layer = tmp_path / "layer"
    layer.mkdir()
    for name in BOTO3_DISTRIBUTION:
        spec = importlib.util.find_spec(name)  # boto3 is a dependency of chalicepack itself
        assert spec is not None and spec.origin is not None, f"{name} is not installed"
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (layer / source.name).symlink_to(source)
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    return layer


def test_clients_made_at_import_need_no_region_from_the_build_machine(
    tmp_path: Path, project_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lambda sets AWS_REGION and AWS_DEFAULT_REGION: Chalice apps make their clients at import.
    layer = _boto3_layer_without_aws_setup(tmp_path, monkeypatch)
    tree = function_tree(
        tmp_path, {"app.py": app_source("import boto3\n\nTABLE = boto3.resource('dynamodb')\n")}
    )

    assert check(tree, project_root, layer=layer).warnings == ()


@pytest.mark.parametrize("given", ["AWS_REGION", "AWS_DEFAULT_REGION"])
def test_one_region_variable_set_on_the_build_machine_stands_for_both(
    tmp_path: Path, project_root: Path, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    # boto3 reads AWS_DEFAULT_REGION, apps often AWS_REGION: Lambda sets both.
    layer = _boto3_layer_without_aws_setup(tmp_path, monkeypatch)
    monkeypatch.setenv(given, "eu-west-1")
    body = (
        "import os, boto3\n\n"
        "TABLE = boto3.resource('dynamodb')\n"
        "assert TABLE.meta.client.meta.region_name == 'eu-west-1'\n"
        "assert os.environ['AWS_REGION'] == os.environ['AWS_DEFAULT_REGION'] == 'eu-west-1'\n"
    )
    tree = function_tree(tmp_path, {"app.py": app_source(body)})

    assert check(tree, project_root, layer=layer).warnings == ()


def test_a_boto3_credentials_error_at_import_shows_the_guard(
    tmp_path: Path, project_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = _boto3_layer_without_aws_setup(tmp_path, monkeypatch)
    tree = function_tree(
        tmp_path,
        {
            "app.py": app_source(
                "import boto3\n\n"
                "ACCOUNT = boto3.client('sts', region_name='us-east-1').get_caller_identity()\n"
            )
        },
    )

    error = failure(tree, project_root, layer=layer)

    assert "reaches out at import time" in str(error)
    assert "NoCredentialsError" in str(error)
    assert "if 'AWS_CHALICE_CLI_MODE' not in os.environ:" in str(error)
    assert (error.file, error.line) == (project_root / "app.py", 6)
