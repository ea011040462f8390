"""A broken .chalice/config.json: exit 2 with one line naming the file, the place and the fix,
the previous artifacts untouched and the cache not even created; and no input at all makes the
loader fail with anything but its own error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aftermath import assert_untouched, error_line, seed_previous_build
from chalicepack.errors import ConfigError
from chalicepack.inputs.config import load_stage_config, resolve_stage
from conftest import make_project

VALID = {"version": "2.0", "app_name": "testapp", "stages": {"dev": {}}}


def _text(config: dict[str, Any]) -> str:
    return json.dumps(config, indent=2)


# (config.json text, --stage, what the one-line message must name, the fix it must give)
CASES = {
    "not-json": ("app_name = testapp\n", "dev", "config.json:1:1: invalid JSON", "plain JSON"),
    "comment": (
        '{\n  // the dev stage\n  "version": "2.0",\n  "app_name": "testapp"\n}\n',
        "dev",
        "config.json:2:3: invalid JSON",
        "no comments",
    ),
    "trailing-comma": (
        '{\n  "version": "2.0",\n  "app_name": "testapp",\n}\n',
        "dev",
        "config.json:4:1: invalid JSON",
        "no trailing commas",
    ),
    "not-an-object": ('["dev"]\n', "dev", "config.json: expected a JSON object", '{"version"'),
    "version-3": (
        _text({**VALID, "version": "3.0"}),
        "dev",
        'config.json: version: expected "2.0", got "3.0"',
        'set "version": "2.0"',
    ),
    "stage-missing": (
        _text({**VALID, "stages": {"dev": {}, "prod": {}}}),
        "staging",
        "config.json: stage 'staging' is not defined; stages defined: dev, prod",
        'add a "staging" entry under "stages"',
    ),
    "env-not-a-string": (
        _text({**VALID, "environment_variables": {"DEBUG": 1}}),
        "dev",
        "config.json: environment_variables.DEBUG: expected a string, got 1",
        'quote it: "DEBUG": "1"',
    ),
    "stage-env-not-a-string": (
        _text({**VALID, "stages": {"dev": {"environment_variables": {"ON": True}}}}),
        "dev",
        "config.json: stages.dev.environment_variables.ON: expected a string, got true",
        'quote it: "ON": "true"',
    ),
    "automatic-layer-yes": (
        _text({**VALID, "automatic_layer": "yes"}),
        "dev",
        'config.json: automatic_layer: expected true or false, got "yes"',
        '"automatic_layer": true, without quotes',
    ),
    "not-utf8": (
        '{"app_name": "caf\udce9"}',  # written with surrogateescape: a Latin-1 byte
        "dev",
        "config.json: not UTF-8 text",
        "save it as UTF-8",
    ),
}


@pytest.mark.parametrize(("text", "stage", "names", "fix"), CASES.values(), ids=CASES.keys())
def test_a_broken_config_is_one_clear_line_exit_2_and_nothing_is_written(
    tmp_path: Path, chalicepack: Any, text: str, stage: str, names: str, fix: str
) -> None:
    project = make_project(tmp_path / "app")
    config = project / ".chalice" / "config.json"
    config.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    out = tmp_path / "out"
    before = seed_previous_build(out)
    cache = tmp_path / "cache"

    run = chalicepack("build", project, "--stage", stage, "--out", out, "--cache-dir", cache)

    assert run.returncode == 2
    message = error_line(run.stderr)
    assert str(config) in message
    assert names in message
    assert fix in message
    assert run.stdout == ""
    assert_untouched(out, before)
    assert not cache.exists()


# --- the loader under any input ---------------------------------------------------------------

_KEYS = (
    "version",
    "app_name",
    "environment_variables",
    "automatic_layer",
    "lambda_architecture",
    "lambda_functions",
    "stages",
    "dev",
    "prod",
    "architecture",
    "automatic_layers",
    "api_gateway_stage",
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["2.0", "3.0", "x86_64", "arm64", "aarch64", "yes", "dev", ""])
)
_NAMES = st.sampled_from(_KEYS) | st.text(max_size=12)
# JSON documents whose keys are mostly the ones the loader reads, at every depth, so the
# generated configs reach its type checks and stage merging rather than stopping at the top.
_JSON = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_NAMES, children, max_size=6),
    max_leaves=30,
)
_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,  # no .hypothesis/ folder in the work tree
    suppress_health_check=[HealthCheck.too_slow],
)


def _json_bytes(value: object) -> bytes:
    return json.dumps(value).encode("utf-8", errors="surrogatepass")


def _mutations(document: bytes, cut: int, junk: bytes) -> bytes:
    """A JSON text broken as by hand: cut short, or with bytes spliced in."""
    cut %= len(document) + 1
    return document[:cut] + junk + document[cut + len(junk) :]


@settings(_SETTINGS)
@given(
    data=st.binary(max_size=300)
    | _JSON.map(_json_bytes)
    | st.builds(_mutations, _JSON.map(_json_bytes), st.integers(0, 400), st.binary(max_size=4)),
    stage=st.sampled_from(["dev", "prod"]) | st.text(max_size=8),
)
@example(data=b"1" * 5000, stage="dev")  # more digits than Python converts to int
@example(data=b"[" * 100_000, stage="dev")  # deeper than the JSON parser can recurse
@example(data=b'{"a":' * 100_000, stage="dev")
@example(data=b"\xef\xbb\xbf{}", stage="dev")  # a UTF-8 byte order mark
@example(data=b'{"app_name": "\\ud800"}', stage="dev")  # a lone surrogate
def test_any_bytes_as_config_json_load_or_raise_only_config_error(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, stage: str
) -> None:
    project = tmp_path_factory.mktemp("fuzz")
    config = project / ".chalice" / "config.json"
    config.parent.mkdir()
    config.write_bytes(data)

    try:
        loaded = load_stage_config(project, stage)
    except ConfigError as error:
        assert str(config) in str(error)
    else:
        assert loaded.stage == stage


@settings(_SETTINGS)
@given(
    document=st.dictionaries(_NAMES, _JSON, max_size=8),
    stage=st.sampled_from(["dev", "prod"]) | st.text(max_size=8),
)
def test_any_json_object_resolves_or_raises_only_config_error(
    document: dict[str, Any], stage: str
) -> None:
    path = Path("/project/.chalice/config.json")
    try:
        config = resolve_stage(document, stage, path)
    except ConfigError as error:
        assert all(line.startswith(f"{path}: ") for line in str(error).splitlines())
    else:
        assert all(isinstance(v, str) for v in config.environment_variables.values())
        assert isinstance(config.automatic_layer, bool)
        assert config.architecture in (None, "x86_64", "arm64")
