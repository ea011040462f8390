"""chalicepack package: chalice package's own SAM and Terraform output, around chalicepack's zips.

Each comparison runs the real ``chalice package`` of this environment on a copy of the same
project (resolving against the local index) and checks that the parsed templates are equal and
that the zips beside chalicepack's template are the ones ``chalicepack build`` makes.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from chalicepack.cli import build_parser, main
from chalicepack.cli import package_options_from_args as options_from_args
from chalicepack.deploy.templates import PackageResult, package
from chalicepack.errors import AppImportError, BadInput, MissingDependencies
from chalicepack.options import BuildOptions, PackageOptions
from chalicepack.package.pipeline import build
from conftest import make_project
from pkgindex import PackageIndex
from test_build_docs_example import publish_sortedcontainers

CHALICE = Path(sys.executable).with_name("chalice")
TEMPLATE_FILES = {"cloudformation": "sam.json", "terraform": "chalice.tf.json"}
RANDOM_SID = re.compile("[0-9a-f]{32}")
OTHER_RUNTIME = "python3.12" if sys.version_info[:2] != (3, 12) else "python3.11"

EVENTS_APP = """\
import os

from chalice import Chalice, Rate

app = Chalice(app_name="events-app")
TABLE = os.environ["TABLE_NAME"]  # the stage's environment reaches the import


@app.route("/items/{item}", methods=["GET", "PUT"])
def item(item):
    import boto3  # Lambda's own; not shipped

    dynamodb = boto3.client("dynamodb")
    return dynamodb.get_item(TableName=TABLE, Key={"id": {"S": item}})


@app.lambda_function()
def worker(event, context):
    return {"ok": True}


@app.schedule(Rate(5, unit=Rate.MINUTES))
def every_five_minutes(event):
    return None


@app.on_sqs_message(queue="jobs", batch_size=5)
def on_job(event):
    for record in event:
        print(record.body)
"""
EVENTS_CONFIG = {
    "app_name": "events-app",
    "stages": {
        "dev": {"environment_variables": {"TABLE_NAME": "items-dev"}},
        "prod": {
            "environment_variables": {"TABLE_NAME": "items-prod"},
            "lambda_functions": {"worker": {"lambda_memory_size": 512}},
        },
    },
}


@pytest.fixture(autouse=True)
def _offline(offline_aws: None) -> None:
    """Every test here runs with ``offline_aws``."""


def publish_tinydep(index: PackageIndex) -> None:
    index.add_wheel("tinydep", "1.0", tag="py3-none-any", files={"tinydep/__init__.py": "X = 1\n"})


def events_app(root: Path) -> Path:
    return make_project(
        root,
        {"app.py": EVENTS_APP, "requirements.txt": "tinydep==1.0\n"},
        EVENTS_CONFIG,
    )


def set_config(project: Path, **values: Any) -> None:
    """Set top-level keys of the project's .chalice/config.json."""
    path = project / ".chalice" / "config.json"
    document = json.loads(path.read_text())
    document.update(values)
    path.write_text(json.dumps(document, indent=2))


class ChalicePackage:
    """The real ``chalice package`` of this environment, running in the background on a
    private copy of a project (so several can run at once, beside chalicepack's own runs)."""

    def __init__(self, project: Path, out: Path, stage: str, *args: str | Path) -> None:
        copy = out.with_name(f"{out.name}.project-copy")
        shutil.copytree(project, copy)
        self.out = out
        self.process = subprocess.Popen(
            [CHALICE, "--project-dir", copy, "package", "--stage", stage, *args, out],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def result(self) -> Path:
        output, _ = self.process.communicate(timeout=300)
        assert self.process.returncode == 0, output
        return self.out


@pytest.fixture
def chalice_package() -> Iterator[Callable[..., ChalicePackage]]:
    started: list[ChalicePackage] = []

    def start(project: Path, out: Path, stage: str, *args: str | Path) -> ChalicePackage:
        started.append(ChalicePackage(project, out, stage, *args))
        return started[-1]

    yield start
    for run in started:
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()


def chalicepack_package(
    project: Path, out: Path, cache: Path, stage: str = "dev", **options: Any
) -> PackageResult:
    build_options = {
        key: options.pop(key) for key in ("automatic_layer", "runtime", "arch") if key in options
    }
    return package(
        PackageOptions.parse(
            BuildOptions(project, stage=stage, cache_dir=cache, **build_options),
            out,
            **options,
        )
    )


def load(path: Path) -> Any:
    text = path.read_text()
    return yaml.safe_load(text) if path.suffix == ".yaml" else json.loads(text)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def normalised(value: Any) -> Any:
    """``value`` with the random parts of Chalice's output fixed: its generated IAM policy's
    statement ``Sid`` is a fresh uuid4 on every run (chalice.policy), also inside the JSON
    strings Terraform's policies are."""
    if isinstance(value, dict):
        return {
            key: "<uuid4>" if key == "Sid" and RANDOM_SID.fullmatch(str(item)) else normalised(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [normalised(item) for item in value]
    if isinstance(value, str) and value.startswith("{") and '"Sid"' in value:
        return json.dumps(normalised(json.loads(value)))
    return value


def zip_references(template: dict[str, Any]) -> list[str]:
    """Where the template's functions and layers take their code from."""
    found = []
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        found += [properties[key] for key in ("CodeUri", "ContentUri") if key in properties]
    for kind in ("aws_lambda_function", "aws_lambda_layer_version"):
        for resource in template.get("resource", {}).get(kind, {}).values():
            found += [resource["filename"], resource["source_code_hash"]]
    return sorted(set(found))


@pytest.mark.parametrize(
    ("app", "layer"),
    [
        ("docs-app", "off"),
        ("docs-app", "config"),  # automatic_layer in config.json, for both tools
        ("events-app", "off"),
        ("events-app", "flag"),  # chalicepack --automatic-layer; chalice reads config.json
    ],
)
def test_templates_equal_chalice_package_and_zips_are_chalicepacks(
    app: str,
    layer: str,
    example_app: Path,
    index: PackageIndex,
    chalice_package: Callable[..., ChalicePackage],
    tmp_path: Path,
) -> None:
    publish_sortedcontainers(index)
    publish_tinydep(index)
    if app == "docs-app":
        project, stage = example_app, "dev"
    else:
        project, stage = events_app(tmp_path / "events-app"), "prod"
    if layer == "config":
        set_config(project, automatic_layer=True)
    automatic_layer = True if layer == "flag" else None
    chalice_project = tmp_path / "chalice-project"
    shutil.copytree(project, chalice_project)
    if layer == "flag":
        set_config(chalice_project, automatic_layer=True)
    chalice_runs = {
        pkg_format: chalice_package(
            chalice_project, tmp_path / f"chalice-{pkg_format}", stage, "--pkg-format", pkg_format
        )
        for pkg_format in TEMPLATE_FILES
    }
    built = build(
        BuildOptions(
            project,
            stage=stage,
            out_dir=tmp_path / "built",
            automatic_layer=automatic_layer,
            cache_dir=tmp_path / "cache",
        )
    ).report.artifacts
    assert set(built) == ({"deployment", "layer"} if layer != "off" else {"deployment"})

    for pkg_format, template_name in TEMPLATE_FILES.items():
        out = tmp_path / f"chalicepack-{pkg_format}"
        result = chalicepack_package(
            project,
            out,
            tmp_path / "cache",
            stage,
            automatic_layer=automatic_layer,
            pkg_format=pkg_format,
        )
        theirs = chalice_runs[pkg_format].result()

        assert result.template == out / template_name
        ours_template, their_template = load(out / template_name), load(theirs / template_name)
        assert zip_references(ours_template) == zip_references(their_template)
        assert normalised(ours_template) == normalised(their_template)
        zips = sorted(path.name for path in theirs.iterdir() if path.suffix == ".zip")
        assert ("layer-deployment.zip" in zips) == (layer != "off")
        assert sorted(path.name for path in out.iterdir()) == sorted(
            [template_name, "build-report.json", "sbom.cdx.json", *zips]
        )
        for name, artifact in built.items():
            path = out / Path(artifact.path).name
            assert sha256(path) == artifact.sha256  # chalicepack build's zip, not chalice's
            assert sha256(path) != sha256(theirs / path.name)
            assert result.report.artifacts[name].path == str(path)
        report = json.loads((out / "build-report.json").read_text())
        assert report == result.report.to_json()
        assert report["template"] == {"path": str(out / template_name), "format": pkg_format}


def test_events_app_template_has_every_function_the_app_defines(
    index: PackageIndex, tmp_path: Path
) -> None:
    publish_tinydep(index)
    project = events_app(tmp_path / "events-app")

    result = chalicepack_package(project, tmp_path / "out", tmp_path / "cache", "prod")

    resources = load(result.template)["Resources"]
    functions = {
        name: resource["Properties"]
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert {name: props["Handler"] for name, props in functions.items()} == {
        "APIHandler": "app.app",
        "Worker": "app.worker",
        "EveryFiveMinutes": "app.every_five_minutes",
        "OnJob": "app.on_job",
    }
    assert functions["Worker"]["MemorySize"] == 512
    assert functions["OnJob"]["Environment"]["Variables"] == {"TABLE_NAME": "items-prod"}
    assert functions["EveryFiveMinutes"]["Events"]["EveryFiveMinutesEvent"]["Type"] == "Schedule"
    assert functions["OnJob"]["Events"]["OnJobSqsEventSource"]["Properties"]["BatchSize"] == 5
    # Chalice's offline IAM policy generation read app.py's dynamodb calls.
    policy = resources["DefaultRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    actions = [action for statement in policy["Statement"] for action in statement["Action"]]
    assert "dynamodb:GetItem" in actions


def test_runtime_and_arch_options_reach_the_template(
    index: PackageIndex, chalice_package: Callable[..., ChalicePackage], tmp_path: Path
) -> None:
    """--runtime (which chalice package cannot set: it uses its own interpreter's) and --arch
    change only the runtime and architecture of the functions and the layer."""
    publish_tinydep(index)
    project = events_app(tmp_path / "events-app")
    chalice_project = tmp_path / "chalice-project"
    shutil.copytree(project, chalice_project)
    set_config(chalice_project, automatic_layer=True, lambda_architecture="arm64")
    chalice_run = chalice_package(chalice_project, tmp_path / "chalice", "dev")

    result = chalicepack_package(
        project,
        tmp_path / "out",
        tmp_path / "cache",
        automatic_layer=True,
        runtime=OTHER_RUNTIME,
        arch="arm64",
    )

    ours, theirs = load(result.template), load(chalice_run.result() / "sam.json")
    assert result.report.runtime == OTHER_RUNTIME
    assert result.report.architecture == "arm64"
    for resource in theirs["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["Runtime"] = OTHER_RUNTIME
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["CompatibleRuntimes"] = [OTHER_RUNTIME]
    assert normalised(ours) == normalised(theirs)
    layer = ours["Resources"]["ManagedLayer"]["Properties"]
    assert layer["CompatibleArchitectures"] == ["arm64"]


def test_merge_template_and_yaml_output_as_chalice_package(
    example_app: Path,
    index: PackageIndex,
    chalice_package: Callable[..., ChalicePackage],
    tmp_path: Path,
) -> None:
    publish_sortedcontainers(index)
    extras = tmp_path / "extras.yaml"
    extras.write_text(
        "Resources:\n"
        "  APIHandler:\n"
        "    Properties:\n"
        "      MemorySize: 1024\n"
        "  Bucket:\n"
        "    Type: AWS::S3::Bucket\n"
        "Outputs:\n"
        "  BucketName:\n"
        "    Value: !Ref Bucket\n"
    )
    chalice_run = chalice_package(
        example_app, tmp_path / "chalice", "dev", "--merge-template", extras
    )

    result = chalicepack_package(
        example_app, tmp_path / "out", tmp_path / "cache", merge_template=extras
    )

    assert result.template.name == "sam.yaml"  # a YAML merge template switches the output
    ours = load(result.template)
    assert normalised(ours) == normalised(load(chalice_run.result() / "sam.yaml"))
    assert ours["Resources"]["APIHandler"]["Properties"]["MemorySize"] == 1024
    assert ours["Outputs"]["BucketName"] == {"Value": {"Ref": "Bucket"}}


def test_app_importing_its_dependencies_needs_nothing_installed_here(
    index: PackageIndex, tmp_path: Path
) -> None:
    """chalice package imports the app with its dependencies installed beside chalice;
    chalicepack imports it with the dependencies it packaged, in the function or the layer."""
    publish_tinydep(index)
    app = (
        "import tinydep\nfrom chalice import Chalice\n\napp = Chalice(app_name='testapp')\n\n\n"
        "@app.lambda_function()\ndef handler(event, context):\n    return tinydep.X\n"
    )
    project = make_project(
        tmp_path / "project", {"app.py": app, "requirements.txt": "tinydep==1.0\n"}
    )
    with pytest.raises(ImportError):
        __import__("tinydep")

    for automatic_layer in (False, True):
        result = chalicepack_package(
            project,
            tmp_path / f"out-{automatic_layer}",
            tmp_path / "cache",
            automatic_layer=automatic_layer,
            pkg_format="terraform",
        )

        functions = load(result.template)["resource"]["aws_lambda_function"]
        assert functions["handler"]["handler"] == "app.handler"


HOST_MACHINE = {"arm64": "aarch64", "amd64": "x86_64"}.get(
    platform.machine().lower(), platform.machine()
)


def test_a_dependency_compiled_for_the_target_only_gets_the_build_checks_stand_ins(
    index: PackageIndex, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An app importing a compiled dependency this interpreter cannot load (built for another
    CPython): the build's import check warns and goes on without it; the template, which needs
    only the app's Chalice object, is generated with the same stand-ins."""
    minor = OTHER_RUNTIME.removeprefix("python3.")
    index.add_wheel(
        "fastlib",
        "1.0",
        tag=f"cp3{minor}-cp3{minor}-manylinux_2_17_{HOST_MACHINE}",
        files={
            "fastlib/__init__.py": "from ._speedups import Model\n",
            f"fastlib/_speedups.cpython-3{minor}-{HOST_MACHINE}-linux-gnu.so": b"\x7fELF not",
        },
    )
    app = "import fastlib\n" + ROUTE_APP + "\n\nclass Item(fastlib.Model):\n    pass\n"
    project = make_project(
        tmp_path / "project", {"app.py": app, "requirements.txt": "fastlib==1.0\n"}
    )

    result = chalicepack_package(
        project, tmp_path / "out", tmp_path / "cache", runtime=OTHER_RUNTIME
    )

    assert [r.message.split(" (")[0] for r in caplog.records if "could not" in r.message] == [
        "could not check compiled module fastlib._speedups"
    ]
    resources = load(result.template)["Resources"]
    assert resources["APIHandler"]["Properties"]["Runtime"] == OTHER_RUNTIME

    # Without the build's import check nothing says what to leave out: the error says so.
    options = PackageOptions.parse(
        BuildOptions(
            project, runtime=OTHER_RUNTIME, cache_dir=tmp_path / "cache", import_app=False
        ),
        tmp_path / "unchecked",
    )
    with pytest.raises(AppImportError) as raised:
        package(options)
    assert "No module named 'fastlib._speedups'" in str(raised.value)
    assert "compiled for another --runtime or --arch, drop --no-import" in str(raised.value)
    assert not (tmp_path / "unchecked").exists()


def test_the_apps_modules_are_the_packaged_ones_not_the_packagers(
    index: PackageIndex, tmp_path: Path
) -> None:
    """chalice's packager has imported its own urllib3 (through botocore), six and yaml before
    the app is imported: the app still gets the urllib3 it ships and its vendor/ overrides, as
    on Lambda, and the packager, writing YAML after that, still its own yaml."""
    index.add_wheel(
        "urllib3",
        "1.26.20",
        files={
            "urllib3/__init__.py": "__version__ = '1.26.20'\n",
            "urllib3/contrib/__init__.py": "",
            "urllib3/contrib/appengine.py": "PACKAGED = True\n",
        },
    )
    app = (
        "import six\nimport urllib3\nimport yaml\nfrom urllib3.contrib import appengine\n"
        "assert appengine.PACKAGED and urllib3.__version__ == '1.26.20', urllib3.__file__\n"
        "assert six.VENDORED and yaml.VENDORED\n" + ROUTE_APP
    )
    project = make_project(
        tmp_path / "project",
        {
            "app.py": app,
            "requirements.txt": "urllib3==1.26.20\n",
            "vendor/six.py": "VENDORED = True\n",
            "vendor/yaml/__init__.py": "VENDORED = True\n",
        },
    )

    result = chalicepack_package(
        project, tmp_path / "out", tmp_path / "cache", template_format="yaml"
    )

    assert result.template.name == "sam.yaml"
    template = yaml.safe_load(result.template.read_text())
    assert template["Resources"]["APIHandler"]["Properties"]["Handler"] == "app.app"


def test_stale_layer_zip_is_removed_when_the_package_has_no_layer(
    example_app: Path, index: PackageIndex, tmp_path: Path
) -> None:
    publish_sortedcontainers(index)
    out = tmp_path / "out"
    chalicepack_package(example_app, out, tmp_path / "cache", automatic_layer=True)
    assert (out / "layer-deployment.zip").exists()

    result = chalicepack_package(example_app, out, tmp_path / "cache", automatic_layer=False)

    assert not (out / "layer-deployment.zip").exists()
    assert set(result.report.artifacts) == {"deployment"}
    assert not [path for path in out.iterdir() if path.name.startswith(".")]  # no staging left


ROUTE_APP = (
    "from chalice import Chalice\n\napp = Chalice(app_name='testapp')\n\n\n"
    "@app.route('/')\ndef index():\n    return {}\n"
)


def test_app_import_failure_names_the_file_and_line(index: PackageIndex, tmp_path: Path) -> None:
    app = "from chalice import Chalice\n\nraise RuntimeError('no config here')\n"
    project = make_project(tmp_path / "project", {"app.py": app})
    out = tmp_path / "out"

    with pytest.raises(AppImportError) as raised:
        chalicepack_package(project, out, tmp_path / "cache")

    assert raised.value.exit_code == 2
    assert raised.value.file == project.resolve() / "app.py"
    assert raised.value.line == 3
    assert "RuntimeError: no config here" in str(raised.value)
    assert not (out / "sam.json").exists()


def test_without_the_build_import_check_generation_still_names_the_file_and_line(
    index: PackageIndex, tmp_path: Path
) -> None:
    """The template needs the app imported, so chalice's import reports the failure itself;
    the output directories made for the package are removed again."""
    app = ROUTE_APP + "\nraise RuntimeError('no config here')\n"
    project = make_project(tmp_path / "project", {"app.py": app})
    options = PackageOptions.parse(
        BuildOptions(project, cache_dir=tmp_path / "cache", import_app=False),
        tmp_path / "new" / "out",
    )

    with pytest.raises(AppImportError) as raised:
        package(options)

    assert raised.value.exit_code == 2
    assert raised.value.file == project.resolve() / "app.py"
    assert raised.value.line == 10
    assert "app.py:10: RuntimeError: no config here" in str(raised.value)
    assert "AWS_CHALICE_CLI_MODE" in str(raised.value)
    assert not (tmp_path / "new").exists()

    existing = tmp_path / "existing"
    (existing / "keep.txt").parent.mkdir()
    (existing / "keep.txt").write_text("mine")
    with pytest.raises(AppImportError):
        package(replace(options, out_dir=existing))
    assert [path.name for path in existing.iterdir()] == ["keep.txt"]


def test_what_chalice_refuses_to_package_is_bad_input(index: PackageIndex, tmp_path: Path) -> None:
    """A websocket handler without Chalice's experimental opt-in imports fine, but chalice
    package refuses it; so does chalicepack package, with Chalice's message."""
    app = ROUTE_APP + "\n\n@app.on_ws_message()\ndef message(event):\n    return None\n"
    project = make_project(tmp_path / "project", {"app.py": app})

    with pytest.raises(
        BadInput, match=r"chalice cannot package this app: (.|\n)*WEBSOCKETS"
    ) as raised:
        chalicepack_package(project, tmp_path / "out", tmp_path / "cache")

    assert raised.value.exit_code == 2


def test_no_region_is_bad_input_naming_the_fix(
    index: PackageIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    project = make_project(tmp_path / "project", {"app.py": ROUTE_APP})

    with pytest.raises(BadInput, match="AWS_DEFAULT_REGION") as raised:
        chalicepack_package(project, tmp_path / "out", tmp_path / "cache")

    assert raised.value.exit_code == 2


def test_strict_with_a_missing_dependency_writes_no_template_but_the_report(
    index: PackageIndex, tmp_path: Path
) -> None:
    index.add_wheel("macosonly", "1.0", tag="cp311-cp311-macosx_11_0_arm64")
    project = make_project(
        tmp_path / "project", {"app.py": ROUTE_APP, "requirements.txt": "macosonly==1.0\n"}
    )
    out = tmp_path / "out"
    options = PackageOptions.parse(
        BuildOptions(project, runtime="python3.11", strict=True, cache_dir=tmp_path / "cache"),
        out,
    )

    with pytest.raises(MissingDependencies) as raised:
        package(options)

    assert raised.value.exit_code == 1
    assert raised.value.report_path == out / "build-report.json"  # not the build's scratch copy
    assert sorted(path.name for path in out.iterdir()) == ["build-report.json"]
    report = json.loads((out / "build-report.json").read_text())
    assert [item["name"] for item in report["missing_dependencies"]] == ["macosonly"]


def test_unknown_stage_is_bad_input_listing_the_stages(index: PackageIndex, tmp_path: Path) -> None:
    project = events_app(tmp_path / "events-app")

    with pytest.raises(BadInput, match="stages defined: dev, prod") as raised:
        chalicepack_package(project, tmp_path / "out", tmp_path / "cache", "staging")

    assert raised.value.exit_code == 2


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"pkg_format": "cdk"},
            "--pkg-format 'cdk' is not supported; use one of: cloudformation, terraform",
        ),
        ({"template_format": "toml"}, "use one of: json, yaml"),
        ({"pkg_format": "terraform", "template_format": "yaml"}, "--pkg-format terraform"),
        ({"merge_template": Path("missing.json")}, "--merge-template missing.json: no such file"),
    ],
)
def test_bad_package_options_are_bad_input(
    options: dict[str, Any], expected: str, tmp_path: Path
) -> None:
    with pytest.raises(BadInput) as raised:
        PackageOptions.parse(BuildOptions(tmp_path), tmp_path / "out", **options)

    assert expected in str(raised.value)
    assert raised.value.exit_code == 2


def parse(*argv: str | Path) -> argparse.Namespace:
    return build_parser().parse_args(["package", *map(str, argv)])


def test_the_import_options_reach_the_build(tmp_path: Path) -> None:
    default = options_from_args(parse(tmp_path / "out")).build
    assert (default.import_app, default.import_timeout) == (True, 60.0)

    options = options_from_args(parse(tmp_path / "out", "--no-import", "--import-timeout", "5.5"))

    assert (options.build.import_app, options.build.import_timeout) == (False, 5.5)


def test_refresh_reaches_the_build(tmp_path: Path) -> None:
    assert options_from_args(parse(tmp_path / "out")).build.refresh is False
    assert options_from_args(parse(tmp_path / "out", "--refresh")).build.refresh is True


def test_the_trimming_options_reach_the_build(tmp_path: Path) -> None:
    default = options_from_args(parse(tmp_path / "out")).build
    assert (default.exclude, default.without_runtime_provided) == ((), False)

    args = parse(
        tmp_path / "out", "--exclude", "*/tests", "--exclude=*.md", "--without-runtime-provided"
    )
    options = options_from_args(args).build

    assert options.exclude == ("*/tests", "*.md")
    assert options.without_runtime_provided is True


def import_timeout_type(command: str) -> Callable[[str], Any]:
    """The type function of ``command``'s --import-timeout, from the CLI's own parser."""
    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    (option,) = [a for a in commands.choices[command]._actions if a.dest == "import_timeout"]
    assert callable(option.type)
    return option.type


@pytest.mark.parametrize("seconds", ["1", "0.5", "900", "0", "901", "-3", "soon"])
def test_import_timeout_takes_what_builds_takes(seconds: str) -> None:
    def outcome(command: str) -> object:
        try:
            return import_timeout_type(command)(seconds)
        except argparse.ArgumentTypeError as error:
            return str(error)

    assert outcome("package") == outcome("build")
    assert import_timeout_type("package") is import_timeout_type("build")  # one validator


def test_the_package_command_prints_the_template_then_the_zips(
    example_app: Path, index: PackageIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish_sortedcontainers(index)
    out = tmp_path / "out"
    args = (
        "package",
        out,
        "--project-dir",
        example_app,
        "--pkg-format",
        "terraform",
        "--automatic-layer",
        "--cache-dir",
        tmp_path / "cache",
    )

    assert main(list(map(str, args))) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        str(out / "chalice.tf.json"),
        str(out / "deployment.zip"),
        str(out / "layer-deployment.zip"),
    ]
    assert lines[3].endswith("1 dependencies")
    report = json.loads((out / "build-report.json").read_text())
    layer = report["artifacts"]["layer"]
    digest = hashlib.sha256((out / "layer-deployment.zip").read_bytes()).digest()
    assert base64.b64decode(layer["sha256_base64"]) == digest


def test_example_app_sam_templates_pass_cfn_lint(
    example_app: Path, index: PackageIndex, tmp_path: Path
) -> None:
    """Run by ``make lint`` too (``-k cfn_lint``): cfn-lint on what chalicepack writes for the
    documentation's example: without the layer as JSON, with it as YAML."""
    publish_sortedcontainers(index)
    templates = [
        chalicepack_package(
            example_app,
            tmp_path / f"out-{layer}-{form}",
            tmp_path / "cache",
            automatic_layer=layer,
            template_format=form,
        ).template
        for layer, form in ((False, "json"), (True, "yaml"))
    ]

    completed = subprocess.run(
        [Path(sys.executable).with_name("cfn-lint"), *templates],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr


# --- through the chalicepack command ---------------------------------------------------------


def test_cli_package_writes_the_template_and_exits_0(
    example_app: Path, index: PackageIndex, chalicepack, tmp_path: Path
) -> None:
    publish_sortedcontainers(index)
    out = tmp_path / "out"

    run = chalicepack(
        "package", out, "--project-dir", example_app, "--cache-dir", tmp_path / "cache"
    )

    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[:2] == [str(out / "sam.json"), str(out / "deployment.zip")]


def test_cli_package_keeps_a_recent_resolution_until_refresh(
    index: PackageIndex, chalicepack, tmp_path: Path
) -> None:
    index.add_wheel("alpha", "1.0")
    project = make_project(
        tmp_path / "project", {"app.py": ROUTE_APP, "requirements.txt": "alpha\n"}
    )
    cache = tmp_path / "cache"
    first = chalicepack(
        "package", tmp_path / "first", "--project-dir", project, "--cache-dir", cache
    )
    assert first.returncode == 0, first.stderr

    index.add_wheel("alpha", "1.1")
    kept = chalicepack(
        "package", tmp_path / "kept", "--project-dir", project, "--cache-dir", cache, "--json"
    )
    refreshed = chalicepack(
        "package", tmp_path / "new", "--project-dir", project, "--cache-dir", cache, "--json",
        "--refresh",
    )  # fmt: skip

    assert kept.returncode == 0, kept.stderr
    assert kept.json()["dependencies"][0]["version"] == "1.0"
    assert "--refresh to resolve again" in kept.stderr
    assert refreshed.returncode == 0, refreshed.stderr
    assert refreshed.json()["dependencies"][0]["version"] == "1.1"


def test_cli_bad_pkg_format_exits_2_with_the_allowed_values(
    example_app: Path, chalicepack, tmp_path: Path
) -> None:
    run = chalicepack(
        "package", tmp_path / "out", "--project-dir", example_app, "--pkg-format", "cdk"
    )

    assert run.returncode == 2
    assert "--pkg-format" in run.stderr
    assert "'cloudformation', 'terraform'" in run.stderr
    assert run.stdout == ""


def test_cli_unknown_stage_exits_2_with_the_defined_stages(
    example_app: Path, chalicepack, tmp_path: Path
) -> None:
    run = chalicepack("package", tmp_path / "out", "--project-dir", example_app, "--stage", "prod")

    assert run.returncode == 2
    assert "stage 'prod' is not defined; stages defined: dev" in run.stderr
    assert run.stdout == ""
