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
cannot answer at all (a conflict, an index uv cannot read, an sdist-only requirement).

An sdist-only requirement named by a plain line is answered by uv after all
(``_resolve_with_sdists``): uv resolves again with sdists allowed, and its answer is pip's
when each release with no file the target loads has only an sdist, no release its line
allows has a target wheel, and this machine's interpreter takes that same release from its
sdist: pip's resolution (``pip_resolver``) resolves for this machine first, builds exactly
that sdist, and resolves the rest for the target as uv does. The caller builds them (and
checks that nothing else requires one not pinned exactly: that could hold pip's choice to
another release).

uv is used only where it reads the inputs as pip does: requirements.txt holding requirements by
name, ``-r``/``-c`` files, ``--index-url``/``--extra-index-url``/``--pre``; pip's configuration
(files and ``PIP_*`` variables) setting nothing beyond the index URLs in the environment and
harmless options (timeouts, certificates). Anything else (hashes, paths, URLs, find-links, a
pip.conf naming an index or constraints) is pip's to read.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
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
from chalicepack.inputs.requirements import (
    RequirementLine,
    index_options,
    is_exact_pin,
    logical_lines,
)
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
# uv's hint when a requirement has no wheel it may use, only sources.
_NEEDS_SOURCE = re.compile(r"Wheels are required for `([^`]+)` because building from source")
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
    env = uv_environment(os.environ, indexes_from_environment=not _names_its_index(requirements))
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
        if _only_lines_need_source(stderr, lines):
            return _resolve_with_sdists(uv, requirements, lines, target, workdir, cache_dir, env)
        last = redact(stderr.strip().splitlines()[-1]) if stderr.strip() else "no output"
        log.info("resolving with pip: uv could not resolve with wheels only (%s)", last)
        log.debug("uv said:\n%s", redact(stderr.strip()))
        return None
    return _picked(output, lines, target)


def _compile_command(
    uv: str,
    requirements: Path,
    output: Path,
    target: Target | None,
    platform: str | None,
    cache_dir: Path | None,
) -> list[str]:
    """``uv pip compile`` for ``target`` on ``platform``, wheels only; with no target, for
    this machine's interpreter, sdists allowed, the index pages read moments ago reused."""
    command = [uv, "pip", "compile", str(requirements), "--output-file", str(output)]
    command += ["--format", "pylock.toml", "--no-header", "--quiet", "--python", sys.executable]
    command += ["--index-strategy", "unsafe-best-match"]
    if target is not None and platform is not None:
        command += ["--python-version", target.version_text, "--python-platform", platform]
        command += ["--only-binary", ":all:"]
        # As pip does, read the index pages afresh: a cached page would hide a new release.
        command += ["--refresh"]
    if cache_dir is not None:
        command += ["--cache-dir", str(cache_dir)]
    return command


def _source_lines(lines: Sequence[RequirementLine]) -> dict[str, str]:
    """By name, the requirements.txt lines a source build may answer for: a name and a
    version specifier only (no marker, extras or URL, whose reading differs for this machine)."""
    found = {}
    for line in lines:
        if line.name is None:
            continue
        try:
            requirement = Requirement(line.text.split(" --", 1)[0])
        except InvalidRequirement:
            continue
        if requirement.marker is None and not requirement.extras and not requirement.url:
            found[line.name] = f"{line.name}{requirement.specifier}"
    return found


def _only_lines_need_source(stderr: str, lines: Sequence[RequirementLine]) -> bool:
    """Whether uv's wheels-only attempt failed for lack of wheels of requirements.txt's own
    plain lines (``_resolve_with_sdists`` may then answer as pip would)."""
    names = {canonicalize_name(name) for name in _NEEDS_SOURCE.findall(stderr)}
    return bool(names) and names <= set(_source_lines(lines))


def _resolve_with_sdists(
    uv: str,
    requirements: Path,
    lines: Sequence[RequirementLine],
    target: Target,
    workdir: Path,
    cache_dir: Path | None,
    env: Mapping[str, str],
) -> list[Distribution] | None:
    """uv's answer when some requirement has only an sdist, when it provably is pip's: each
    release uv picked with no file the target loads is named by a plain requirements.txt line
    and has an sdist and no wheel, and (``_pip_builds_them``) no release the line allows has
    a wheel for the target (pip would take it) and this machine's interpreter takes no newer
    release nor a wheel of it (pip resolves for this machine first, and does not build a
    release that ships wheels). pip then builds that sdist, and resolves the rest for the
    target as uv does; those are returned with their sdist files, to build."""
    platform = uv_platform(target)
    assert platform is not None  # (resolve_with_uv checked)
    output = workdir / "uv-sdists" / "pylock.toml"
    sdist_command = _compile_command(uv, requirements, output, target, platform, cache_dir)
    # The same resolution with sdists allowed; the pages were read afresh moments ago.
    sdist_command = [a for a in sdist_command if a not in ("--only-binary", ":all:", "--refresh")]
    lock = _lock(sdist_command, output, env, "resolve with sdists allowed")
    if lock is None:
        return None
    requested = {line.name for line in lines if line.name is not None}
    plain = _source_lines(lines)
    distributions, unloadable = _target_files(lock, requested, target)
    sdists = []
    for package in lock.get("packages", []):
        name, version = canonicalize_name(package["name"]), str(package["version"])
        if f"{name} {version}" not in unloadable:
            continue
        sdist = package.get("sdist") or {}
        sha256 = sdist.get("hashes", {}).get("sha256")
        url = sdist.get("url")
        if name not in plain or package.get("wheels") or not url or not sha256:
            log.info(
                "resolving with pip: uv picked %s %s, with no wheel for %s %s and not an sdist "
                "named in %s", name, version, target.runtime, target.arch, requirements.name,
            )  # fmt: skip
            return None
        filename = url.rsplit("/", 1)[-1].split("#", 1)[0]
        sdists.append(Distribution(name, version, url, filename, sha256, name in requested, (),
                                   by_url=True))  # fmt: skip
    if not sdists:
        return None
    asked = _Asked(uv, requirements, workdir, cache_dir, env)
    if not _pip_builds_them(asked, sdists, [line for line in lines if line.name], target):
        return None
    log.info(
        "resolved with uv for %s %s; from source: %s", target.runtime, target.arch,
        ", ".join(d.pin for d in sdists),
    )  # fmt: skip
    return [*distributions, *sdists]


@dataclass(frozen=True)
class _Asked:
    """How uv is asked about a few lines of requirements.txt, with its index options."""

    uv: str
    requirements: Path
    workdir: Path
    cache_dir: Path | None
    env: Mapping[str, str]

    def start(self, label: str, lines: Iterable[str], target: Target | None) -> _Asking:
        """uv started on ``lines`` alone (no dependencies): for ``target``, wheels only; for
        this machine's interpreter, sdists allowed. ``_Asking.answer`` reads its pylock.toml."""
        folder = self.workdir / f"uv-{label}"
        folder.mkdir(parents=True, exist_ok=True)
        pins = folder / "requirements.txt"
        options = _option_lines(index_options(self.requirements))
        pins.write_text("".join(f"{line}\n" for line in [*options, *lines]))
        output = folder / "pylock.toml"
        platform = None if target is None else uv_platform(target)
        command = _compile_command(self.uv, pins, output, target, platform, self.cache_dir)
        command = [a for a in command if a != "--refresh"]  # (read moments ago)
        return _Asking(_start_lock([*command, "--no-deps"], output, self.env), output, label)


@dataclass(frozen=True)
class _Asking:
    """A question put to uv (``_Asked.start``), its answer still to be read."""

    process: subprocess.Popen[str]
    output: Path
    label: str

    def answer(self, *, quiet: bool = False) -> Any:
        """uv's pylock.toml, or None when it failed (uv's words in ``stderr.txt``)."""
        return _read_lock(self.process, self.output, f"answer for {self.label}", quiet)


def _last_error(asked: _Asked, name: str) -> str:
    path = asked.workdir / f"uv-target-{name}" / "stderr.txt"
    return path.read_text() if path.is_file() else ""


def _pip_builds_them(
    asked: _Asked, sdists: Sequence[Distribution], lines: Sequence[RequirementLine], target: Target
) -> bool:
    """Whether pip's resolution builds each of ``sdists`` (releases with only an sdist, named
    by plain lines): no release its line allows has a wheel for the target, and this machine
    takes the same release, from its sdist."""
    plain = _source_lines(lines)
    pinned = {line.name for line in lines if is_exact_pin(line)}
    # Every question is put to uv at once (each answer takes a process start and a moment).
    with contextlib.ExitStack() as stack:
        host = asked.start("host", [plain[d.name] for d in sdists], None)
        stack.enter_context(children.ended(host.process))
        targets = {}
        for sdist in sdists:
            if sdist.name not in pinned:  # (the one release allowed has no wheel uv knows)
                targets[sdist.name] = asked.start(
                    f"target-{sdist.name}", [plain[sdist.name]], target
                )
                stack.enter_context(children.ended(targets[sdist.name].process))
        for name, asking in targets.items():
            # uv fails here for want of wheels: no release the line allows has one for the target.
            if asking.answer(quiet=True) is not None or not _NEEDS_SOURCE.search(
                _last_error(asked, name)
            ):
                log.info(
                    "resolving with pip: %s: a release it allows may have a wheel for the target",
                    plain[name],
                )
                return False
        return _host_takes_them(host.answer(), sdists)


def _host_takes_them(host: Any, sdists: Sequence[Distribution]) -> bool:
    """Whether uv's answer for this machine (``host``) takes each sdist's release, from its
    sdist (pip resolves for this machine first, and builds no release that ships a wheel)."""
    picked: dict[str, tuple[str, bool]] = {
        canonicalize_name(p["name"]): (str(p["version"]), bool(p.get("wheels")))
        for p in (host or {}).get("packages", [])
    }
    for sdist in sdists:
        version, has_wheel = picked.get(sdist.name, ("?", False))
        if (version, has_wheel) != (sdist.version, False):
            taken = f"{version} from a wheel" if has_wheel else version
            log.info(
                "resolving with pip: for this machine pip would take %s %s, not the sdist of %s",
                sdist.name, taken, sdist.version,
            )  # fmt: skip
            return False
    return True


def _option_lines(options: Sequence[str]) -> list[str]:
    """``["--index-url", "URL", "--pre"]`` as requirements-file lines."""
    lines: list[str] = []
    for option in options:
        if option.startswith("-"):
            lines.append(option)
        else:
            lines[-1] += f" {option}"
    return lines


def _lock(
    command: Sequence[str], output: Path, env: Mapping[str, str], what: str, quiet: bool = False
) -> dict[str, Any] | None:
    """uv's pylock.toml from ``command``, or None when it failed (logged unless ``quiet``;
    uv's words are kept in ``stderr.txt`` beside ``output``)."""
    return _read_lock(_start_lock(command, output, env), output, what, quiet)


def _start_lock(
    command: Sequence[str], output: Path, env: Mapping[str, str]
) -> subprocess.Popen[str]:
    output.parent.mkdir(parents=True, exist_ok=True)
    log.debug("running %s", redact(" ".join(command)))
    return children.start(command, env, output.parent / "tmp", stdout=subprocess.DEVNULL)


def _read_lock(
    process: subprocess.Popen[str], output: Path, what: str, quiet: bool
) -> dict[str, Any] | None:
    _, stderr = children.finish(process, f"uv to {what}")
    (output.parent / "stderr.txt").write_text(stderr)
    try:
        if process.returncode == 0:
            return tomllib.loads(output.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        stderr = str(error)
    last = redact(stderr.strip().splitlines()[-1]) if stderr.strip() else "no output"
    if not quiet:
        log.info("resolving with pip: uv could not %s (%s)", what, last)
    return None


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


def uv_environment(
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
