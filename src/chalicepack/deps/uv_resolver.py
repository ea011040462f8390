"""A fast resolution by uv, kept only when it is the one pip would give for the target.

uv resolves requirements.txt for the target's Python and a manylinux platform, wheels only. uv
knows manylinux_2_17, 2_28 and 2_31 and up; python3.10/3.11's glibc (2.26) is not among them,
so uv is asked for the nearest glibc above it (2_28). Its answer (pylock.toml) lists, for each
release, every file its platform allows; each is judged by the target's own tags and the file
pip would take is kept (``Target.wheel_rank``: best tag first, in pip's order). uv's candidate
files are a superset of the target's and both tools take the newest release that has a file
they accept; so when every release uv picked has a file the target accepts, it is the newest
the target accepts too: the answer pip gives. Otherwise (a release with only a manylinux_2_28
wheel for python3.11) the answer is dropped and pip resolves exactly, as it does whenever uv
cannot answer at all (an sdist-only requirement, a conflict, an index uv cannot read).

uv is used only where it reads the inputs as pip does: requirements.txt holding requirements by
name, ``-r``/``-c`` files, ``--index-url``/``--extra-index-url``/``--pre``; pip's configuration
(files and ``PIP_*`` variables) setting nothing beyond the index URLs in the environment and
harmless options (timeouts, certificates). Anything else (hashes, paths, URLs, find-links, a
pip.conf naming an index or constraints) is pip's to read.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from packaging.metadata import parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from chalicepack.deps import children
from chalicepack.deps.deadline import Deadline
from chalicepack.deps.pip import network_limits, redact
from chalicepack.deps.pip_resolver import Distribution, required_names
from chalicepack.errors import BuildFailure
from chalicepack.inputs.requirements import RequirementLine, logical_lines
from chalicepack.inputs.target import Target

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

log = logging.getLogger(__name__)

# The manylinux glibc versions uv's --python-platform knows (uv 0.13).
_UV_GLIBC_MINORS = (17, 28, *range(31, 41))
_UV_MACHINES = {"x86_64": "x86_64", "aarch64": "aarch64"}

# Option lines of requirements files that uv reads as pip does.
_UV_READS = {"-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "--extra-index-url"}
_UV_READS_ALONE = {"--pre"}

# pip settings that do not change what a resolution picks.
_NEUTRAL_SETTINGS = {
    "cert",
    "config-file",
    "default-timeout",
    "timeout",
    "retries",
    "disable-pip-version-check",
    "no-input",
    "quiet",
    "verbose",
    "progress-bar",
    "no-color",
    "root-user-action",
    "cache-dir",
    "no-cache-dir",
    "log",
    "no-python-version-warning",
}
# Read from the environment and handed to uv as the same options.
_ENV_INDEX_SETTINGS = {"index-url", "extra-index-url", "pre"}
_COMMAND_SECTIONS = {"global", "install", "download", ":env:"}


def uv_platform(target: Target) -> str | None:
    """uv's ``--python-platform`` whose glibc is the nearest at or above the target's."""
    major, minor = target.glibc
    machine = _UV_MACHINES.get(target.machine)
    fitting = [m for m in _UV_GLIBC_MINORS if m >= minor]
    if major != 2 or machine is None or not fitting:
        return None
    return f"{machine}-manylinux_{major}_{fitting[0]}"


def uv_binary() -> str | None:
    """The uv executable installed with chalicepack (the ``uv`` wheel), if any."""
    try:
        from uv import find_uv_bin
    except ImportError:
        return None
    try:
        return find_uv_bin()
    except FileNotFoundError:
        return None


def unsupported_line(requirements: Path) -> str | None:
    """Why uv might read ``requirements`` (or a file it includes) differently from pip."""
    for path, lineno, text in logical_lines(requirements):
        where = f"{path.name}:{lineno}"
        if text.startswith("-"):
            option = re.split(r"[\s=]", text, maxsplit=1)[0]
            if option in _UV_READS_ALONE:
                continue
            if option not in _UV_READS and not option.startswith(("-r", "-c", "-i")):
                return f"{where} uses {option}"
            continue
        if re.search(r"\s--", text):
            return f"{where} has per-requirement options"
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            return f"{where} names a path or URL"
        if requirement.url:
            return f"{where} names a URL"
    return None


def unsupported_setting(settings: Iterable[tuple[str, str]]) -> str | None:
    """Why pip's configuration (``section.option`` keys, as ``pip config list`` shows them)
    would make pip resolve differently from uv, or None."""
    for key, _ in settings:
        section, _, option = key.partition(".")
        if section not in _COMMAND_SECTIONS or option in _NEUTRAL_SETTINGS:
            continue
        if section == ":env:" and option in _ENV_INDEX_SETTINGS:
            continue
        return f"pip's configuration sets {option} ({key})"
    return None


def pip_settings() -> list[tuple[str, str]] | None:
    """pip's configuration as pip itself loads it (files and ``PIP_*``), or None if unreadable."""
    without_files = settings_without_files(os.environ)
    if without_files is not None:
        return without_files
    try:
        from pip._internal.configuration import Configuration

        configuration = Configuration(isolated=False)
        configuration.load()
        settings = []
        # pip 24-26 give {file: {key: value}}; older releases gave {key: value}.
        for key, value in configuration.items():
            if isinstance(value, Mapping):
                settings += [(str(k), str(v)) for k, v in value.items()]
            else:
                settings.append((key, str(value)))
        return settings
    except Exception as error:  # pip's internals: any surprise means "ask pip instead"
        log.debug("could not read pip's configuration: %s", error)
        return None


def settings_without_files(environ: Mapping[str, str]) -> list[tuple[str, str]] | None:
    """pip's configuration when no configuration file of pip's exists (the usual case, and
    the Action's), read from ``PIP_*`` as pip reads them; None when one exists.

    Importing pip's configuration module costs 0.2-0.5 s of CPU (it imports pip's console
    and exception machinery), on every cold build, where only this answer is needed. The
    files are those ``pip._internal.configuration.get_configuration_files`` lists, found with
    the same ``appdirs`` (tests hold the two lists equal); any of them existing hands the
    answer to pip's own loader.
    """
    config_file = environ.get("PIP_CONFIG_FILE")
    if config_file != os.devnull:  # pip reads no file at all when it is os.devnull
        from pip._internal.utils import appdirs

        candidates = [config_file] if config_file else []
        candidates += pip_configuration_files(appdirs)
        if any(os.path.exists(path) for path in candidates):
            return None
    return [
        (f":env:.{name[4:].lower().replace('_', '-').removeprefix('--')}", value)
        for name, value in environ.items()
        if name.startswith("PIP_") and name[4:].lower() not in ("version", "help")
    ]


def pip_configuration_files(appdirs: Any) -> list[str]:
    """The configuration files pip reads besides ``PIP_CONFIG_FILE``: global, user, site."""
    files = [os.path.join(path, "pip.conf") for path in appdirs.site_config_dirs("pip")]
    legacy = os.path.join(os.path.expanduser("~"), "pip" if os.name == "nt" else ".pip")
    files += [os.path.join(legacy, "pip.conf")]
    files += [os.path.join(appdirs.user_config_dir("pip"), "pip.conf")]
    return [*files, os.path.join(sys.prefix, "pip.conf")]


def resolve_with_uv(
    requirements: Path,
    lines: Sequence[RequirementLine],
    target: Target,
    *,
    workdir: Path,
    cache_dir: Path | None,
    deadline: Deadline | None = None,
) -> list[Distribution] | None:
    """The distributions uv picks for ``target``, each with a file the target accepts; None
    when pip must resolve instead (the reason is logged)."""
    uv = uv_binary()
    platform = uv_platform(target)
    reason = unsupported_line(requirements)
    if uv is None:
        reason = "uv is not installed"
    elif platform is None:
        reason = f"uv has no platform for {target.runtime} {target.arch}"
    if reason is not None:
        log.info("resolving with pip: %s", reason)
        return None
    assert uv is not None and platform is not None
    output = workdir / "uv" / "pylock.toml"
    output.parent.mkdir(parents=True, exist_ok=True)
    command = _compile_command(uv, requirements, output, target, platform, cache_dir)
    log.debug("running %s", redact(" ".join(command)))
    # uv runs while pip's configuration is read (importing pip's internals takes a while).
    env = _uv_environment(os.environ, indexes_from_environment=not _names_its_index(requirements))
    process = children.start(command, env, output.parent / "tmp", stdout=subprocess.DEVNULL)
    with children.ended(process):
        settings = pip_settings()
        setting = "pip's configuration could not be read" if settings is None else None
        setting = setting or unsupported_setting(settings or [])
        if setting is not None:
            log.info("resolving with pip: %s", setting)
            return None
        waiting = f"uv to resolve {requirements.name} ({_limits_text(env)})"
        _, stderr = children.finish(process, waiting, deadline)
    if process.returncode != 0:
        _refuse_silent_index(stderr, env, requirements)
        last = redact(stderr.strip().splitlines()[-1]) if stderr.strip() else "no output"
        log.info("resolving with pip: uv could not resolve with wheels only (%s)", last)
        log.debug("uv said:\n%s", redact(stderr.strip()))
        return None
    return _picked(output, lines, target)


def _compile_command(
    uv: str,
    requirements: Path,
    output: Path,
    target: Target,
    platform: str,
    cache_dir: Path | None,
) -> list[str]:
    command = [uv, "pip", "compile", str(requirements), "--output-file", str(output)]
    command += ["--format", "pylock.toml", "--no-header", "--quiet", "--python", sys.executable]
    command += ["--python-version", target.version_text, "--python-platform", platform]
    command += ["--only-binary", ":all:", "--index-strategy", "unsafe-best-match"]
    # As pip does, read the index pages afresh: a cached page would hide a new release.
    command += ["--refresh"]
    if cache_dir is not None:
        command += ["--cache-dir", str(cache_dir)]
    return command


def _picked(
    output: Path, lines: Sequence[RequirementLine], target: Target
) -> list[Distribution] | None:
    """What uv's pylock.toml picked, when each release has a file the target loads."""
    requested = {line.name for line in lines if line.name is not None}
    try:
        lock = tomllib.loads(output.read_text(encoding="utf-8"))
        distributions, unloadable = _target_files(lock, requested, target)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        # A pylock.toml this code does not understand (another uv release): pip answers.
        log.info("resolving with pip: uv's answer could not be read (%s)", error)
        return None
    if unloadable:
        log.info(
            "resolving with pip: uv picked %s, with no file %s %s can load",
            ", ".join(unloadable), target.runtime, target.arch,
        )  # fmt: skip
        return None
    log.info(
        "resolved with uv for %s %s (each file checked against its tags)",
        target.runtime, target.arch,
    )  # fmt: skip
    return distributions


def _limits_text(env: Mapping[str, str]) -> str:
    return (
        f"index requests time out after {env['UV_HTTP_TIMEOUT']} s, "
        f"retried {env['UV_HTTP_RETRIES']} times"
    )


def _refuse_silent_index(stderr: str, env: Mapping[str, str], requirements: Path) -> None:
    """uv gave up on an index that did not answer in time: pip, asked next, would wait as
    long again for the same index. The resolution ends here instead (one bound for it)."""
    if "operation timed out" not in stderr:
        return  # refused connections, TLS, no solution...: pip may fare otherwise
    fetched = re.search(r"Failed to fetch: `?(\S+?)`?$", stderr, re.MULTILINE)
    where = redact(fetched[1]) if fetched else "the package index"
    try:  # worded as pip words it, so a message does not depend on which resolver ran
        seconds = f"{float(env['UV_HTTP_TIMEOUT'])} seconds"
    except ValueError:
        seconds = f"{env['UV_HTTP_TIMEOUT']} seconds"
    raise BuildFailure(
        f"{requirements}: could not reach the package index ({where}: the index didn't "
        f"respond within {seconds}, retried {env['UV_HTTP_RETRIES']} times); check the "
        "network and the index URL, then retry (PIP_TIMEOUT and PIP_RETRIES set how long to "
        "wait)"
    )


def _names_its_index(requirements: Path) -> bool:
    """Whether requirements.txt (or a file it includes) sets ``--index-url``: pip then takes
    its indexes from the files alone, and PIP_INDEX_URL and PIP_EXTRA_INDEX_URL are dropped
    (pip's req_file replaces the finder's whole list), where uv would add them."""
    return any(
        re.split(r"[\s=]", text, maxsplit=1)[0] in ("-i", "--index-url") or text.startswith("-i")
        for _, _, text in logical_lines(requirements)
    )


def _uv_environment(
    environ: Mapping[str, str], *, indexes_from_environment: bool = True
) -> dict[str, str]:
    """The environment for uv: none of uv's own settings (they are not the user's pip
    settings); pip's index settings, timeout, retries and certificates as uv's. Index URLs
    travel in the environment, as pip's do, never on a command line other users can see;
    not at all when requirements.txt names its own index (see ``_names_its_index``)."""
    env = {name: value for name, value in environ.items() if not name.startswith("UV_")}
    env.update(UV_NO_CONFIG="1", UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1")
    if indexes_from_environment and environ.get("PIP_INDEX_URL"):
        env["UV_DEFAULT_INDEX"] = environ["PIP_INDEX_URL"]
    if indexes_from_environment and environ.get("PIP_EXTRA_INDEX_URL", "").strip():
        env["UV_INDEX"] = " ".join(environ["PIP_EXTRA_INDEX_URL"].split())
    if environ.get("PIP_PRE", "").lower() in ("1", "true", "yes", "on"):
        env["UV_PRERELEASE"] = "allow"
    env["UV_HTTP_TIMEOUT"], env["UV_HTTP_RETRIES"] = network_limits(environ)
    if environ.get("PIP_CERT"):
        env["SSL_CERT_FILE"] = environ["PIP_CERT"]
    return env


def _target_files(
    lock: Mapping[str, Any], requested: set[str], target: Target
) -> tuple[list[Distribution], list[str]]:
    """Each release uv picked, with the file pip would take for the target: of the release's
    files uv lists (all those its platform allows, a superset of the target's), the one
    whose best tag ranks first for the target, then the highest build number. Second, the
    releases with no file the target can load."""
    distributions, unloadable = [], []
    for package in lock.get("packages", []):
        name, version = canonicalize_name(package["name"]), str(package["version"])
        ranked = []
        for wheel in package.get("wheels", []):
            url = wheel.get("url")
            filename = wheel.get("name") or (url or "").rsplit("/", 1)[-1].split("#", 1)[0]
            rank = target.wheel_rank(filename)
            if url and rank is not None:
                build = parse_wheel_filename(filename)[2]
                build_number = build[0] if build else -1
                ranked.append(((rank, -build_number, filename), wheel))
        if not ranked:
            unloadable.append(f"{name} {version}")
            continue
        (_, _, filename), wheel = min(ranked, key=lambda item: item[0])
        distributions.append(
            Distribution(
                name=name,
                version=version,
                url=wheel["url"],
                filename=filename,
                sha256=wheel.get("hashes", {}).get("sha256"),
                requested=name in requested,
                requires=(),
                by_url=True,
            )
        )
    return distributions, unloadable


def with_dependencies(
    distributions: Sequence[Distribution], wheels: Mapping[str, Path]
) -> tuple[Distribution, ...]:
    """``distributions`` with what each requires, read from its wheel's METADATA (uv's
    answer names the releases and files; their Requires-Dist is in the files)."""
    resolved = {d.name for d in distributions}
    complete = []
    for distribution in distributions:
        requires_dist = tuple(_requires_dist(wheels[distribution.name]))
        required = set(required_names(requires_dist)) & resolved
        complete.append(
            replace(distribution, requires_dist=requires_dist, requires=tuple(sorted(required)))
        )
    return tuple(complete)


def _requires_dist(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        names = [
            name
            for name in archive.namelist()
            if name.count("/") == 1 and name.endswith(".dist-info/METADATA")
        ]
        if len(names) != 1:
            return []
        raw, _ = parse_email(archive.read(names[0]))
    return list(raw.get("requires_dist", []))
