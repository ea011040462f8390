"""A user points chalicepack at a Chalice project and picks a stage from .chalice/config.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicepack.errors import ConfigError
from chalicepack.inputs.config import (
    FunctionConfig,
    StageConfig,
    load_stage_config,
    parse_config,
    resolve_stage,
)


def write_config(project: Path, doc_or_text: dict[str, Any] | str) -> Path:
    """Write ``.chalice/config.json`` (a dict is dumped as JSON, a str is written verbatim)."""
    path = project / ".chalice" / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = doc_or_text if isinstance(doc_or_text, str) else json.dumps(doc_or_text, indent=2)
    path.write_text(text, encoding="utf-8")
    return path


def config_error(project: Path, stage: str = "dev") -> str:
    with pytest.raises(ConfigError) as info:
        load_stage_config(project, stage)
    return str(info.value)


def base(**extra: Any) -> dict[str, Any]:
    return {"version": "2.0", "app_name": "myapp", **extra}


# --- projects that load ---------------------------------------------------------------------


def test_new_project_config_resolves_dev(tmp_path: Path) -> None:
    # What `chalice new-project` writes.
    path = write_config(tmp_path, base(stages={"dev": {"api_gateway_stage": "api"}}))

    config = load_stage_config(tmp_path, "dev")

    assert config == StageConfig(
        path=path,
        app_name="myapp",
        stage="dev",
        environment_variables={},
        automatic_layer=False,
        architecture=None,
        lambda_functions={},
        raw=json.loads(path.read_text()),
    )


def test_top_level_settings_apply_to_every_stage(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        base(
            environment_variables={"TABLE": "foo"},
            automatic_layer=True,
            lambda_architecture="arm64",
            lambda_memory_size=256,
            stages={"dev": {}, "prod": {}},
        ),
    )

    config = load_stage_config(tmp_path, "prod")

    assert config.environment_variables == {"TABLE": "foo"}
    assert config.automatic_layer is True
    assert config.architecture == "arm64"
    assert config.raw["lambda_memory_size"] == 256


def test_dev_needs_no_entry_when_no_stages_are_defined(tmp_path: Path) -> None:
    write_config(tmp_path, {"version": "2.0", "app_name": "myapp", "automatic_layer": True})

    config = load_stage_config(tmp_path, "dev")

    assert config.stage == "dev"
    assert config.automatic_layer is True


def test_missing_version_is_accepted(tmp_path: Path) -> None:
    write_config(tmp_path, {"app_name": "myapp", "stages": {"dev": {}}})

    assert load_stage_config(tmp_path, "dev").app_name == "myapp"


@pytest.mark.parametrize(
    ("top", "stage", "expected"),
    [
        pytest.param(None, None, False, id="default-false"),
        pytest.param(True, None, True, id="top-level"),
        pytest.param(None, True, True, id="stage-only"),
        pytest.param(True, False, False, id="stage-turns-off"),
        pytest.param(False, True, True, id="stage-turns-on"),
        pytest.param(True, "null", True, id="stage-null-falls-back"),
    ],
)
def test_automatic_layer_stage_wins_over_top_level(
    tmp_path: Path, top: bool | None, stage: bool | str | None, expected: bool
) -> None:
    doc = base(stages={"dev": {}})
    if top is not None:
        doc["automatic_layer"] = top
    if stage is not None:
        # JSON null is "not set" for Chalice: it falls back to the top-level value.
        doc["stages"]["dev"]["automatic_layer"] = None if stage == "null" else stage
    write_config(tmp_path, doc)

    assert load_stage_config(tmp_path, "dev").automatic_layer is expected


def test_stage_environment_is_merged_over_top_level(tmp_path: Path) -> None:
    # The example from Chalice's Config docstring.
    write_config(
        tmp_path,
        base(
            environment_variables={"TABLE": "foo"},
            stages={
                "dev": {"environment_variables": {"S3BUCKET": "devbucket"}},
                "prod": {"environment_variables": {"S3BUCKET": "prodbucket", "TABLE": "prodtable"}},
            },
        ),
    )

    dev = load_stage_config(tmp_path, "dev")
    prod = load_stage_config(tmp_path, "prod")

    assert dev.environment_variables == {"TABLE": "foo", "S3BUCKET": "devbucket"}
    assert prod.environment_variables == {"TABLE": "prodtable", "S3BUCKET": "prodbucket"}


def test_stage_architecture_wins_over_top_level(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        base(lambda_architecture="x86_64", stages={"dev": {"lambda_architecture": "arm64"}}),
    )

    assert load_stage_config(tmp_path, "dev").architecture == "arm64"


def test_per_function_environment_stays_out_of_the_stage_environment(tmp_path: Path) -> None:
    # The Chalice docs' example: PER_FUNCTION is set on the "foo" function only.
    write_config(
        tmp_path,
        base(
            environment_variables={"TOP": "1"},
            stages={
                "dev": {
                    "environment_variables": {"STAGE_VAR": "bar"},
                    "lambda_functions": {"foo": {"environment_variables": {"PER_FUNCTION": "x"}}},
                }
            },
        ),
    )

    config = load_stage_config(tmp_path, "dev")

    assert config.environment_variables == {"TOP": "1", "STAGE_VAR": "bar"}
    assert config.lambda_functions == {
        "foo": FunctionConfig(name="foo", environment_variables={"PER_FUNCTION": "x"})
    }


def test_function_environment_merges_top_level_entry_then_stage_entry(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        base(
            lambda_functions={
                "foo": {"environment_variables": {"A": "top", "B": "top"}},
                "bar": {"lambda_timeout": 30},
            },
            stages={
                "dev": {
                    "lambda_functions": {
                        "foo": {"environment_variables": {"B": "stage"}},
                        "baz": {"environment_variables": {"C": "stage"}},
                    }
                }
            },
        ),
    )

    functions = load_stage_config(tmp_path, "dev").lambda_functions

    assert sorted(functions) == ["bar", "baz", "foo"]
    assert functions["foo"].environment_variables == {"A": "top", "B": "stage"}
    assert functions["bar"].environment_variables == {}
    assert functions["baz"].environment_variables == {"C": "stage"}


def test_resolve_stage_is_pure_over_a_parsed_document() -> None:
    path = Path("/nowhere/.chalice/config.json")
    document = parse_config('{"app_name": "myapp", "stages": {"dev": {}}}', path)

    config = resolve_stage(document, "dev", path)

    assert (config.path, config.app_name, config.stage) == (path, "myapp", "dev")


# --- projects that don't load: the message tells the user where and what to do ---------------


def test_missing_config_says_this_is_not_a_chalice_project(tmp_path: Path) -> None:
    message = config_error(tmp_path)

    assert str(tmp_path / ".chalice" / "config.json") in message
    assert "not a Chalice project" in message
    assert "chalice new-project" in message


def test_invalid_json_points_at_line_and_column(tmp_path: Path) -> None:
    path = write_config(tmp_path, '{\n  "app_name": "myapp"\n  "stages": {}\n}\n')

    message = config_error(tmp_path)

    assert message.startswith(f"{path}:3:3: invalid JSON: Expecting ',' delimiter")


def test_comment_is_invalid_json(tmp_path: Path) -> None:
    path = write_config(tmp_path, '{\n  // my app\n  "app_name": "myapp"\n}\n')

    message = config_error(tmp_path)

    assert message.startswith(f"{path}:2:3: invalid JSON:")
    assert "no comments" in message


def test_trailing_comma_is_invalid_json(tmp_path: Path) -> None:
    path = write_config(tmp_path, '{\n  "app_name": "myapp",\n}\n')

    message = config_error(tmp_path)

    assert message.startswith(f"{path}:3:1: invalid JSON:")
    assert "no trailing commas" in message


def test_document_must_be_an_object(tmp_path: Path) -> None:
    path = write_config(tmp_path, '["app_name", "myapp"]')

    message = config_error(tmp_path)

    assert message.startswith(f"{path}: expected a JSON object at the top level, got an array")


@pytest.mark.parametrize(
    ("version", "shown"),
    [("3.0", '"3.0"'), ("1.0", '"1.0"'), (2.0, "2.0 (JSON number)")],
)
def test_only_version_2_0_is_supported(tmp_path: Path, version: object, shown: str) -> None:
    path = write_config(tmp_path, base(version=version, stages={"dev": {}}))

    message = config_error(tmp_path)

    assert message.startswith(f'{path}: version: expected "2.0", got {shown}')
    assert 'chalicepack supports config version "2.0"' in message


@pytest.mark.parametrize("app_name", [None, "", 42])
def test_app_name_is_required(tmp_path: Path, app_name: object) -> None:
    doc: dict[str, Any] = {"version": "2.0", "stages": {"dev": {}}}
    if app_name is not None:
        doc["app_name"] = app_name
    path = write_config(tmp_path, doc)

    assert f"{path}: app_name: expected a non-empty string" in config_error(tmp_path)


def test_unknown_stage_lists_the_defined_stages(tmp_path: Path) -> None:
    path = write_config(tmp_path, base(stages={"staging": {}, "dev": {}}))

    message = config_error(tmp_path, "prod")

    assert message.startswith(f"{path}: stage 'prod' is not defined")
    assert "stages defined: dev, staging" in message
    assert '"stages"' in message


def test_dev_must_be_defined_once_other_stages_are(tmp_path: Path) -> None:
    write_config(tmp_path, base(stages={"prod": {}}))

    assert "stage 'dev' is not defined; stages defined: prod" in config_error(tmp_path)


def test_non_default_stage_needs_an_entry_even_without_stages(tmp_path: Path) -> None:
    write_config(tmp_path, base())

    assert "stage 'prod' is not defined; stages defined: none" in config_error(tmp_path, "prod")


def test_environment_value_must_be_a_string(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, base(stages={"dev": {"environment_variables": {"DEBUG": True, "OK": "1"}}})
    )

    message = config_error(tmp_path)

    assert message == (
        f"{path}: stages.dev.environment_variables.DEBUG: expected a string,"
        ' got true (JSON boolean) (quote it: "DEBUG": "true")'
    )


def test_environment_must_be_an_object_of_strings(tmp_path: Path) -> None:
    path = write_config(tmp_path, base(environment_variables=["A=1"], stages={"dev": {}}))

    message = config_error(tmp_path)

    assert message.startswith(
        f"{path}: environment_variables: expected an object of strings, got an array"
    )


def test_automatic_layer_must_be_a_boolean(tmp_path: Path) -> None:
    path = write_config(tmp_path, base(automatic_layer="yes", stages={"dev": {}}))

    assert config_error(tmp_path) == (
        f'{path}: automatic_layer: expected true or false, got "yes"'
        ' (write "automatic_layer": true, without quotes)'
    )


def test_stages_must_be_an_object(tmp_path: Path) -> None:
    path = write_config(tmp_path, base(stages=["dev"]))

    assert config_error(tmp_path) == f"{path}: stages: expected an object, got an array"


def test_lambda_function_entry_must_be_an_object(tmp_path: Path) -> None:
    path = write_config(tmp_path, base(lambda_functions={"foo": "big"}, stages={"dev": {}}))

    assert f'{path}: lambda_functions.foo: expected an object, got "big"' in config_error(tmp_path)


@pytest.mark.parametrize(
    ("key", "where", "suggestion"),
    [
        ("automatic_layers", "top", "automatic_layer"),
        ("enviroment_variables", "stage", "environment_variables"),
        ("environment_variable", "top", "environment_variables"),
        ("stage", "top", "stages"),
        ("architecture", "stage", "lambda_architecture"),
    ],
)
def test_near_miss_key_gets_did_you_mean(
    tmp_path: Path, key: str, where: str, suggestion: str
) -> None:
    doc = base(stages={"dev": {}})
    section = doc if where == "top" else doc["stages"]["dev"]
    section[key] = {"A": "1"}
    path = write_config(tmp_path, doc)

    message = config_error(tmp_path)

    prefix = "" if where == "top" else "stages.dev."
    assert f"{path}: {prefix}{key}: unknown key, did you mean {suggestion!r}?" in message


def test_near_miss_key_in_a_function_entry(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        base(stages={"dev": {"lambda_functions": {"foo": {"environment_variable": {}}}}}),
    )

    assert (
        f"{path}: stages.dev.lambda_functions.foo.environment_variable: unknown key,"
        " did you mean 'environment_variables'?"
    ) in config_error(tmp_path)


def test_other_chalice_keys_and_unrelated_keys_are_fine(tmp_path: Path) -> None:
    chalice_keys = {
        "lambda_memory_size": 512,
        "lambda_timeout": 60,
        "layers": ["arn:aws:lambda:us-east-1:1:layer:x:1"],
        "api_gateway_stage": "api",
        "iam_policy_file": "policy.json",
        "manage_iam_role": False,
        "iam_role_arn": "arn:aws:iam::1:role/r",
        "autogen_policy": False,
        "subnet_ids": [],
        "security_group_ids": [],
        "reserved_concurrency": 1,
        "tags": {"team": "x"},
        "xray": True,
        "api_gateway_endpoint_type": "REGIONAL",
        "api_gateway_endpoint_vpce": "vpce-1",
        "api_gateway_policy_file": "p.json",
        "minimum_compression_size": 0,
        "websocket_api": {},
        "api_gateway_custom_domain": {},
        "websocket_api_custom_domain": {},
        "log_retention_in_days": 14,
        "lambda_ephemeral_storage": 512,
        "my_own_note": "hello",
    }
    write_config(tmp_path, base(**chalice_keys, stages={"dev": dict(chalice_keys)}))

    assert load_stage_config(tmp_path, "dev").raw["tags"] == {"team": "x"}


def test_architecture_must_be_x86_64_or_arm64(tmp_path: Path) -> None:
    path = write_config(tmp_path, base(stages={"dev": {"lambda_architecture": "aarch64"}}))

    assert config_error(tmp_path) == (
        f'{path}: stages.dev.lambda_architecture: expected "x86_64" or "arm64",'
        ' got "aarch64" (did you mean "arm64"?)'
    )


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        {
            "version": "3.0",
            "automatic_layer": "yes",
            "stages": {"dev": {"environment_variables": {"PORT": 8000}}},
        },
    )

    lines = config_error(tmp_path).splitlines()

    assert len(lines) == 4
    assert all(line.startswith(f"{path}: ") for line in lines)
    assert [line.removeprefix(f"{path}: ").split(":")[0] for line in lines] == [
        "version",
        "app_name",
        "automatic_layer",
        "stages.dev.environment_variables.PORT",
    ]
