"""The Lambda function names Chalice derives from ``app_name`` and the stage, checked against
what Lambda accepts before anything is built.

Chalice names the API handler's function ``<app_name>-<stage>`` and every other function
``<app_name>-<stage>-<function>`` (``chalice.deploy.appgraph``); Lambda takes 1 to 64 letters,
digits, ``-`` and ``_``. A name Lambda refuses is found only at deploy time, after the package
was built and uploaded: the stage being built is refused here (exit 2), other stages of the
config that would overflow get a warning. Per-function names are known only once the app is
imported; those are warnings (``function_name_warnings``), since a deploy through SAM lets
CloudFormation name them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping

from chalicepack.errors import ConfigError
from chalicepack.inputs.config import StageConfig

log = logging.getLogger(__name__)

MAX_FUNCTION_NAME = 64


def _problem(name: str) -> str | None:
    """Why Lambda refuses ``name`` as a function name, or None."""
    bad = sorted(set(re.sub(r"[A-Za-z0-9_-]", "", name)))
    if bad:
        shown = ", ".join(repr(char) for char in bad)
        return f"holds {shown}; Lambda function names take only letters, digits, '-' and '_'"
    if len(name) > MAX_FUNCTION_NAME:
        return f"is {len(name)} characters; Lambda function names take at most {MAX_FUNCTION_NAME}"
    return None


def check_function_names(config: StageConfig) -> list[str]:
    """Refuse an ``app_name`` whose function name for the built stage Lambda does not accept;
    return warnings for the config's other stages whose names it would not accept."""
    name = f"{config.app_name}-{config.stage}"
    problem = _problem(name)
    if problem is not None:
        room = MAX_FUNCTION_NAME - len(config.stage) - 1
        raise ConfigError(
            f"{config.path}: app_name: the Lambda function Chalice names {name!r} "
            f"(<app_name>-<stage>) {problem}: shorten app_name to at most {room} letters, "
            "digits, '-' or '_' (or rename the stage)",
            file=config.path,
        )
    stages = config.raw.get("stages")
    others = sorted(stages) if isinstance(stages, Mapping) else []
    warnings = []
    for stage in others:
        if stage == config.stage:
            continue
        other = f"{config.app_name}-{stage}"
        problem = _problem(other)
        if problem is not None:
            warnings.append(
                f"{config.path}: stages.{stage}: its Lambda function name {other!r} {problem}; "
                f"stage {stage!r} cannot be deployed until app_name or the stage is shortened"
            )
    for warning in warnings:
        log.warning("%s", warning)
    return warnings


def function_name_warnings(config: StageConfig, functions: Iterable[tuple[str, str]]) -> list[str]:
    """Warnings for the functions (name, kind) the imported app defines whose Lambda names
    (``<app_name>-<stage>-<function>``) Lambda would refuse when Chalice deploys them."""
    warnings = []
    for function, kind in functions:
        if kind == "api":
            continue  # <app_name>-<stage>, checked with the config
        name = f"{config.app_name}-{config.stage}-{function}"
        problem = _problem(name)
        if problem is not None:
            warnings.append(
                f"function {function!r}: the Lambda function name {name!r} {problem}; "
                "`chalice deploy` and a Terraform template would fail: shorten the function's "
                "name or app_name"
            )
    return warnings
