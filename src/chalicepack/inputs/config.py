"""Load ``.chalice/config.json`` and resolve one stage the way Chalice does.

Three steps, pypa/build style: :func:`read_config` (the only I/O), :func:`parse_config`
(text -> mapping) and :func:`resolve_stage` (pure; collects every problem, then raises once).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from chalicepack.errors import ConfigError
from chalicepack.inputs.target import ARCHES

__all__ = [
    "ARCHITECTURES",
    "CONFIG_RELPATH",
    "DEFAULT_STAGE",
    "FunctionConfig",
    "StageConfig",
    "load_stage_config",
    "parse_config",
    "read_config",
    "resolve_stage",
]

CONFIG_RELPATH = Path(".chalice") / "config.json"
DEFAULT_STAGE = "dev"  # Chalice's default stage; usable even when "stages" is empty
SUPPORTED_VERSION = "2.0"
ARCHITECTURES = ARCHES  # the target's architectures, as config.json spells them

# The keys this module reads, per level. Chalice reads the architecture from
# "lambda_architecture" (stage, then top level); a bare "architecture" is ignored by Chalice.
_TOP_LEVEL_KEYS = (
    "version",
    "app_name",
    "environment_variables",
    "automatic_layer",
    "lambda_architecture",
    "lambda_functions",
    "stages",
)
_STAGE_KEYS = (
    "environment_variables",
    "automatic_layer",
    "lambda_architecture",
    "lambda_functions",
)
_FUNCTION_KEYS = ("environment_variables",)

# Real Chalice keys: never reported as near-misses even if they look like one of ours.
_CHALICE_KEYS = frozenset(
    {
        "api_gateway_custom_domain",
        "api_gateway_endpoint_type",
        "api_gateway_endpoint_vpce",
        "api_gateway_policy_file",
        "api_gateway_stage",
        "autogen_policy",
        "environment_variables",
        "iam_policy_file",
        "iam_role_arn",
        "lambda_architecture",
        "lambda_ephemeral_storage",
        "lambda_memory_size",
        "lambda_timeout",
        "layers",
        "log_retention_in_days",
        "manage_iam_role",
        "minimum_compression_size",
        "reserved_concurrency",
        "security_group_ids",
        "subnet_ids",
        "tags",
        "websocket_api",
        "websocket_api_custom_domain",
        "xray",
    }
)

# Misnamings too far from the real key for difflib to catch, but common enough to name.
_MISNAMED = {"architecture": "lambda_architecture", "architectures": "lambda_architecture"}
_ARCH_ALIASES = {"amd64": "x86_64", "x86-64": "x86_64", "x64": "x86_64", "aarch64": "arm64"}
_NEAR_MISS_CUTOFF = 0.85
# Strings meant as a boolean: shown with the JSON value to write instead.
_BOOLEAN_WORDS = {
    **dict.fromkeys(("true", "yes", "on", "1", "y"), True),
    **dict.fromkeys(("false", "no", "off", "0", "n"), False),
}


@dataclass(frozen=True)
class FunctionConfig:
    """Per-function settings; ``environment_variables`` holds only the per-function entries.

    The environment a function really gets is ``stage.environment_variables`` updated with these.
    """

    name: str
    environment_variables: Mapping[str, str]


@dataclass(frozen=True)
class StageConfig:
    """One stage of a Chalice project, with stage values layered over top-level values."""

    path: Path
    app_name: str
    stage: str
    environment_variables: Mapping[str, str]
    automatic_layer: bool
    architecture: str | None
    lambda_functions: Mapping[str, FunctionConfig]
    raw: Mapping[str, Any]


def load_stage_config(project_dir: Path, stage: str) -> StageConfig:
    """Read, parse and resolve ``<project_dir>/.chalice/config.json`` for ``stage``."""
    path = project_dir / CONFIG_RELPATH
    return resolve_stage(parse_config(read_config(project_dir), path), stage, path)


def read_config(project_dir: Path) -> str:
    """Return the text of the project's config.json; the only function here that does I/O."""
    path = project_dir / CONFIG_RELPATH
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{project_dir}: not a Chalice project: {path} does not exist"
            " (run `chalice new-project`, or point at the project directory)"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None


def parse_config(text: str, path: Path) -> dict[str, Any]:
    """Parse config.json text into its top-level object; ``path`` is only used in messages."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        # Chalice uses json.loads too, so comments and trailing commas are errors for both.
        raise ConfigError(
            f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"
            " (config.json must be plain JSON: no comments, no trailing commas)",
            file=path,
            line=exc.lineno,
        ) from None
    except RecursionError:
        raise ConfigError(
            f"{path}: invalid JSON: nested too deeply to read; a Chalice config is a few levels"
            " deep (check for a runaway run of [ or {)",
            file=path,
        ) from None
    except ValueError as exc:  # e.g. a number with more digits than Python converts
        raise ConfigError(
            f"{path}: invalid JSON: {exc} (config.json holds strings, booleans and small numbers)",
            file=path,
        ) from None
    if not isinstance(document, dict):
        raise ConfigError(
            f"{path}: expected a JSON object at the top level, got {_describe(document)}"
            ' (start from `{"version": "2.0", "app_name": "...", "stages": {"dev": {}}}`)',
            file=path,
            line=1,
        )
    return document


def resolve_stage(document: Mapping[str, Any], stage: str, path: Path) -> StageConfig:
    """Resolve ``stage`` from a parsed config document; pure, raises one ConfigError for all."""
    problems: list[str] = []
    _check_keys(document, _TOP_LEVEL_KEYS, (), problems)
    _check_version(document.get("version"), problems)
    app_name = _app_name(document, problems)
    stage_section = _stage_section(document, stage, problems)

    env = _string_map(document.get("environment_variables"), ("environment_variables",), problems)
    automatic_layer = _boolean(document.get("automatic_layer"), ("automatic_layer",), problems)
    architecture = _architecture(
        document.get("lambda_architecture"), ("lambda_architecture",), problems
    )
    functions = _function_envs(document.get("lambda_functions"), ("lambda_functions",), problems)
    if stage_section is not None:
        stage_layer, stage_arch = _merge_stage(stage_section, stage, env, functions, problems)
        # Chalice looks settings other than environment variables up whole: the first level
        # that sets them (not null) wins.
        automatic_layer = automatic_layer if stage_layer is None else stage_layer
        architecture = architecture if stage_arch is None else stage_arch

    if problems:
        raise ConfigError("\n".join(f"{path}: {problem}" for problem in problems), file=path)

    return StageConfig(
        path=path,
        app_name=app_name,
        stage=stage,
        environment_variables=MappingProxyType(env),
        automatic_layer=bool(automatic_layer),
        architecture=architecture,
        lambda_functions=MappingProxyType(
            {
                name: FunctionConfig(name=name, environment_variables=MappingProxyType(values))
                for name, values in sorted(functions.items())
            }
        ),
        raw=MappingProxyType(dict(document)),
    )


def _check_version(version: object, problems: list[str]) -> None:
    if version is not None and version != SUPPORTED_VERSION:
        problems.append(
            f'version: expected "{SUPPORTED_VERSION}", got {_describe(version)};'
            f' chalicepack supports config version "{SUPPORTED_VERSION}"'
            f' (set "version": "{SUPPORTED_VERSION}")'
        )


def _app_name(document: Mapping[str, Any], problems: list[str]) -> str:
    app_name = document.get("app_name")
    if not isinstance(app_name, str) or not app_name:
        got = "nothing" if "app_name" not in document else _describe(app_name)
        problems.append(
            f"app_name: expected a non-empty string, got {got}"
            " (Chalice requires it; it names the Lambda functions)"
        )
        return ""
    return app_name


def _merge_stage(
    section: Mapping[str, Any],
    stage: str,
    env: dict[str, str],
    functions: dict[str, dict[str, str]],
    problems: list[str],
) -> tuple[bool | None, str | None]:
    """Merge the stage's environment variables into ``env`` and ``functions`` key by key, as
    Chalice does; return the stage's own automatic_layer and lambda_architecture, if set."""
    where = ("stages", stage)
    _check_keys(section, _STAGE_KEYS, where, problems)
    env.update(
        _string_map(
            section.get("environment_variables"), (*where, "environment_variables"), problems
        )
    )
    automatic_layer = _boolean(
        section.get("automatic_layer"), (*where, "automatic_layer"), problems
    )
    architecture = _architecture(
        section.get("lambda_architecture"), (*where, "lambda_architecture"), problems
    )
    for name, function_env in _function_envs(
        section.get("lambda_functions"), (*where, "lambda_functions"), problems
    ).items():
        functions.setdefault(name, {}).update(function_env)
    return automatic_layer, architecture


def _stage_section(
    document: Mapping[str, Any], stage: str, problems: list[str]
) -> Mapping[str, Any] | None:
    """Return the ``stages.<stage>`` object, or None after recording why there is none."""
    stages = document.get("stages")
    if stages is None:
        stages = {}
    if not isinstance(stages, dict):
        problems.append(f"stages: expected an object, got {_describe(stages)}")
        return None
    if stage not in stages:
        # Chalice's default stage needs no entry in a project that defines no stages at all.
        if stage == DEFAULT_STAGE and not stages:
            return {}
        defined = ", ".join(_name(name) for name in sorted(stages)) or "none"
        entry = json.dumps(stage, ensure_ascii=not stage.isprintable())
        problems.append(
            f"stage {stage!r} is not defined; stages defined: {defined}"
            f' (add a {entry} entry under "stages", or use one of the defined stages)'
        )
        return None
    section = stages[stage]
    if not isinstance(section, dict):
        problems.append(
            f"{_dotted(('stages', stage))}: expected an object, got {_describe(section)}"
        )
        return None
    return section


def _function_envs(
    value: object, where: tuple[str, ...], problems: list[str]
) -> dict[str, dict[str, str]]:
    """Map function name -> its own environment variables, from one ``lambda_functions``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{_dotted(where)}: expected an object, got {_describe(value)}")
        return {}
    functions: dict[str, dict[str, str]] = {}
    for name, entry in value.items():
        entry_where = (*where, name)
        if not isinstance(entry, dict):
            problems.append(f"{_dotted(entry_where)}: expected an object, got {_describe(entry)}")
            continue
        _check_keys(entry, _FUNCTION_KEYS, entry_where, problems)
        functions[name] = _string_map(
            entry.get("environment_variables"), (*entry_where, "environment_variables"), problems
        )
    return functions


def _string_map(value: object, where: tuple[str, ...], problems: list[str]) -> dict[str, str]:
    """Validate an object of strings (environment variables); null means "not set"."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{_dotted(where)}: expected an object of strings, got {_describe(value)}")
        return {}
    result: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, str):
            result[key] = item
        else:
            # Lambda only accepts string values, so numbers and booleans must be quoted.
            hint = ""
            if isinstance(item, bool | int | float):
                hint = f" (quote it: {json.dumps(key)}: {json.dumps(json.dumps(item))})"
            elif item is None:
                hint = " (remove the variable, or give it a string value)"
            problems.append(
                f"{_dotted((*where, key))}: expected a string, got {_describe(item)}{hint}"
            )
    return result


def _boolean(value: object, where: tuple[str, ...], problems: list[str]) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    hint = ""
    if isinstance(value, str) and value.strip().lower() in _BOOLEAN_WORDS:
        word = json.dumps(_BOOLEAN_WORDS[value.strip().lower()])
        hint = f" (write {json.dumps(where[-1])}: {word}, without quotes)"
    problems.append(f"{_dotted(where)}: expected true or false, got {_describe(value)}{hint}")
    return None


def _architecture(value: object, where: tuple[str, ...], problems: list[str]) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value in ARCHITECTURES:
        return value
    hint = ""
    if isinstance(value, str) and value.lower() in _ARCH_ALIASES:
        hint = f' (did you mean "{_ARCH_ALIASES[value.lower()]}"?)'
    expected = " or ".join(f'"{arch}"' for arch in ARCHITECTURES)
    problems.append(f"{_dotted(where)}: expected {expected}, got {_describe(value)}{hint}")
    return None


def _check_keys(
    section: Mapping[str, Any], read: tuple[str, ...], where: tuple[str, ...], problems: list[str]
) -> None:
    """Flag unknown keys that look like a misspelling of a key we read (Chalice ignores them)."""
    for key in section:
        if key in read or key in _CHALICE_KEYS:
            continue
        suggestion = _MISNAMED.get(key)
        if suggestion is None:
            matches = difflib.get_close_matches(key, read, n=1, cutoff=_NEAR_MISS_CUTOFF)
            suggestion = matches[0] if matches else None
        if suggestion is not None:
            problems.append(
                f"{_dotted((*where, key))}: unknown key, did you mean {suggestion!r}?"
                " (Chalice would silently ignore it)"
            )


def _dotted(where: tuple[str, ...]) -> str:
    return ".".join(_name(part) for part in where)


def _name(name: str) -> str:
    """A key as written, or JSON-quoted when it holds what would break the message's line."""
    return name if name.isprintable() else json.dumps(name)


def _describe(value: object) -> str:
    """Render a JSON value for a message, with its JSON type when quotes don't show it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{json.dumps(value)} (JSON boolean)"
    if isinstance(value, int | float):
        return f"{json.dumps(value)} (JSON number)"
    if isinstance(value, str):
        text = json.dumps(value)
        return text if len(text) <= 60 else text[:56] + '..."'
    if isinstance(value, list):
        return "an array"
    return "an object"
