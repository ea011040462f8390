"""``chalicepack build`` imports the app from exactly what ships, as Chalice does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import make_project

APP_HEADER = "import os\nfrom chalice import Chalice\n\napp = Chalice(app_name='testapp')\n"

DOCS_CONFIG = {
    "environment_variables": {"TOP": "from-top"},
    "stages": {
        "dev": {
            "environment_variables": {"STAGE_VAR": "bar"},
            "lambda_functions": {"foo": {"environment_variables": {"PER_FUNCTION": "x"}}},
        }
    },
}


def test_the_stage_environment_is_set_and_per_function_variables_are_not(
    tmp_path: Path, chalicepack
) -> None:
    app = APP_HEADER + (
        "assert os.environ['STAGE_VAR'] == 'bar'\n"
        "assert os.environ['TOP'] == 'from-top'\n"
        "assert 'PER_FUNCTION' not in os.environ, 'per-function env leaked'\n"
        "assert os.environ['AWS_CHALICE_CLI_MODE'] == 'true'\n"
    )
    project = make_project(tmp_path / "app", {"app.py": app}, config=DOCS_CONFIG)

    run = chalicepack("build", project, "--json")

    assert run.returncode == 0, run.stderr


def test_the_cli_mode_guard_keeps_import_time_connections_from_running(
    tmp_path: Path, chalicepack
) -> None:
    marker = tmp_path / "connected"
    app = APP_HEADER + (
        "if 'AWS_CHALICE_CLI_MODE' not in os.environ:\n"
        f"    open({str(marker)!r}, 'w').write('connected to the database')\n"
    )
    project = make_project(tmp_path / "app", {"app.py": app})

    run = chalicepack("build", project)

    assert run.returncode == 0, run.stderr
    assert not marker.exists()


def test_boto3_comes_from_the_lambda_runtime_as_on_lambda(tmp_path: Path, chalicepack) -> None:
    project = make_project(tmp_path / "app", {"app.py": APP_HEADER + "import boto3\n"})

    run = chalicepack("build", project)

    assert run.returncode == 0, run.stderr


# Each case: the project's files beyond config.json (app.py after APP_HEADER), its config, the
# build's extra arguments, and what stderr must say.
IMPORT_FAILURES = {
    "a per-function variable needed at import": (
        {"app.py": "per_function = os.environ['PER_FUNCTION']\n"},
        DOCS_CONFIG,
        (),
        ["KeyError: 'PER_FUNCTION'", "app.py:5"],
    ),
    "an exception names the file and line": (
        {
            "app.py": "from chalicelib.db import connect\nconnect()\n",
            "chalicelib/db.py": "def connect():\n    raise RuntimeError('database unreachable')\n",
        },
        None,
        (),
        ["RuntimeError: database unreachable", "chalicelib/db.py:2"],
    ),
    "a module in neither requirements nor vendor": (
        {"app.py": "import yaml_nowhere\n"},
        None,
        (),
        ["No module named 'yaml_nowhere'", "requirements.txt", "vendor/"],
    ),
    # packaging is installed beside chalicepack, but this app does not list it.
    "a package installed on the build host does not leak into the check": (
        {"app.py": "import packaging\n"},
        None,
        (),
        ["No module named 'packaging'"],
    ),
    "a top-level package beside app.py is not packaged": (
        {"app.py": "import ingest\n", "ingest/__init__.py": "X = 1\n"},
        None,
        (),
        ["only app.py and chalicelib/"],
    ),
    "a syntax error names the file and line": (
        {"app.py": "def broken(:\n"},
        None,
        (),
        ["app.py:5", "syntax error"],
    ),
    "an import that hangs is stopped at the timeout": (
        {"app.py": "import time\ntime.sleep(60)\n"},
        None,
        ("--import-timeout", "2"),
        ["2", "--import-timeout"],
    ),
}


@pytest.mark.parametrize(
    ("files", "config", "args", "messages"),
    IMPORT_FAILURES.values(),
    ids=IMPORT_FAILURES.keys(),
)
def test_an_app_that_fails_at_import_fails_the_build_saying_why_and_writes_no_zip(
    tmp_path: Path,
    chalicepack,
    files: dict[str, str],
    config: dict[str, Any] | None,
    args: tuple[str, ...],
    messages: list[str],
) -> None:
    files = {**files, "app.py": APP_HEADER + files["app.py"]}
    project = make_project(tmp_path / "app", files, config=config)

    run = chalicepack("build", project, *args)

    assert run.returncode == 2
    for message in messages:
        assert message in run.stderr
    assert not (project / "dist" / "deployment.zip").exists()


def test_no_import_skips_the_check(tmp_path: Path, chalicepack) -> None:
    project = make_project(tmp_path / "app", {"app.py": APP_HEADER + "import nowhere\n"})

    run = chalicepack("build", project, "--no-import", "--json")

    assert run.returncode == 0, run.stderr
    assert "functions" not in run.json()


def test_what_the_app_prints_goes_to_the_log_not_into_the_json(tmp_path: Path, chalicepack) -> None:
    project = make_project(
        tmp_path / "app", {"app.py": APP_HEADER + "print('hello from import time')\n"}
    )

    run = chalicepack("build", project, "--json")

    assert run.returncode == 0, run.stderr
    json.loads(run.stdout)
    assert "hello from import time" in run.stderr


def test_the_report_lists_the_lambda_functions_chalice_would_deploy(
    tmp_path: Path, chalicepack
) -> None:
    app = APP_HEADER + (
        "\n@app.route('/')\ndef index():\n    return {}\n"
        "\n@app.lambda_function(name='worker')\ndef work(event, context):\n    return {}\n"
        "\n@app.schedule('rate(1 hour)')\ndef hourly(event):\n    pass\n"
        "\n@app.on_s3_event(bucket='uploads')\ndef uploaded(event):\n    pass\n"
    )
    project = make_project(tmp_path / "app", {"app.py": app})

    run = chalicepack("build", project, "--json")

    assert run.returncode == 0, run.stderr
    assert run.json()["functions"] == [
        {"name": "worker", "handler": "app.work", "kind": "lambda_function"},
        {"name": "hourly", "handler": "app.hourly", "kind": "schedule"},
        {"name": "uploaded", "handler": "app.uploaded", "kind": "s3"},
        {"name": "api_handler", "handler": "app.app", "kind": "api"},
    ]


def test_a_vendor_file_opened_by_relative_path_fails_when_it_ships_in_the_layer(
    tmp_path: Path, chalicepack
) -> None:
    # The documentation's caveat: with automatic_layer, vendor/ goes to /opt, not /var/task.
    app = APP_HEADER + "image = open('myimage.png', 'rb').read()\n"
    project = make_project(tmp_path / "app", {"app.py": app, "vendor/myimage.png": b"\x89PNG"})

    without_layer = chalicepack("build", project, "--no-automatic-layer")
    with_layer = chalicepack("build", project, "--automatic-layer", "--out", tmp_path / "layer")

    assert without_layer.returncode == 0, without_layer.stderr
    assert with_layer.returncode == 2
    assert "myimage.png" in with_layer.stderr


def test_a_vendor_module_named_like_one_lambdas_runtime_imported_first_does_not_replace_it(
    tmp_path: Path, chalicepack
) -> None:
    # Lambda's Python runtime imports decimal, http.client, logging and warnings before the
    # handler's module: /var/task/decimal.py is never what `import decimal` finds there.
    app = (
        APP_HEADER + "import decimal\nassert decimal.Decimal('1.5') + 1 == decimal.Decimal('2.5')\n"
    )
    project = make_project(
        tmp_path / "app",
        {"app.py": app, "vendor/decimal.py": "raise ImportError('the vendored decimal.py')\n"},
    )

    run = chalicepack("build", project)

    assert run.returncode == 0, run.stderr


def test_a_build_that_fails_before_the_import_leaves_no_python_of_the_check_running(
    tmp_path: Path, chalicepack, index
) -> None:
    # The check's interpreter starts while dependencies resolve; a build that never gets to
    # the import must not leave it waiting.
    marker = f"left-behind-{tmp_path.name}"
    project = make_project(
        tmp_path / "app",
        {"requirements.txt": "no-such-project==1.0\n"},
        config={"environment_variables": {"CHALICEPACK_TEST_MARKER": marker}},
    )

    run = chalicepack("build", project)

    assert run.returncode != 0
    assert "no-such-project" in run.stderr
    assert _processes_with(f"CHALICEPACK_TEST_MARKER={marker}") == []


def _processes_with(variable: str) -> list[int]:
    """The running processes whose environment holds ``variable`` (NAME=value)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue  # not a process, gone, or not ours to read
        if variable.encode() in environ:
            found.append(int(entry.name))
    return found


def test_an_app_failing_at_import_is_blamed_even_when_a_dependency_has_a_command_line_script(
    tmp_path: Path, chalicepack, index
) -> None:
    # requests brings charset-normalizer and idna, whose wheels install `normalizer` and `idna`
    # scripts: those never ship, so their absence is not damage to the installed tree.
    index.add_wheel("toolkit", "1.0", data_files={"scripts/toolkit": "#!python\nprint('hi')\n"})
    app = APP_HEADER + "import toolkit\nraise RuntimeError('the database URL is not set')\n"
    project = make_project(tmp_path / "app", {"app.py": app, "requirements.txt": "toolkit\n"})

    run = chalicepack("build", project)

    assert run.returncode == 2, run.stderr
    assert "the database URL is not set" in run.stderr
    assert "damaged" not in run.stderr


def test_an_app_importing_a_dependency_that_could_not_be_installed_is_told_why(
    tmp_path: Path, chalicepack, index
) -> None:
    # Only a macOS build: the dependency is reported missing, and the app then fails to import
    # it. The hint names the requirement it already has, not "add it to requirements.txt".
    index.add_wheel("macosonly", "1.0", tag="cp311-cp311-macosx_11_0_arm64")
    app = APP_HEADER + "import macosonly\n"
    project = make_project(tmp_path / "app", {"app.py": app, "requirements.txt": "macosonly\n"})

    run = chalicepack("build", project, "--runtime", "python3.11")

    assert run.returncode == 2, run.stderr
    assert "Could not install dependencies:\nmacosonly==1.0" in run.stderr
    assert "macosonly==1.0 was not installed: it has no build for Lambda's cp311 x86_64" in (
        run.stderr
    )
    assert "add the distribution that provides it" not in run.stderr
