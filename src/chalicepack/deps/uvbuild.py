"""An sdist from an index built into a wheel by uv's build frontend, its build environment
made from uv's cache.

``pip wheel`` makes a new isolated build environment for every build: the build requirements
(setuptools, ...) are resolved, taken from pip's HTTP cache at best, unpacked and installed
each time (2-4 s on a shared 2-CPU machine), for every sdist and every target. ``uv build
--wheel`` on the same sdist file installs them from uv's cache (``uv/`` in chalicepack's
cache dir, shared with the resolver, so an actions/cache restore carries it) by links: about
0.3 s once cached, whatever the interpreter or the target. It builds what pip would:

- the same file: the sdist pip's resolution picked, fetched by its URL with the credentials,
  certificates, proxies and retries pip would use (``fetch``) and checked against the sha256
  the index announced; kept in ``build/sdists`` so a build for another target fetches nothing;
- the same backend hooks (PEP 517; a ``setup.py`` with no ``pyproject.toml`` through
  ``setuptools.build_meta:__legacy__``, as pip does), run by the same interpreter with the
  same environment (the compiler's variables);
- build requirements from the same indexes, as ``uv_resolver`` hands pip's to uv (in the
  environment, never on a command line), every index's releases merged as pip merges them.

uv is used only where it reads the indexes as pip: requirements.txt's index options limited to
``--index-url``, ``--extra-index-url`` and ``--pre``, and pip's configuration setting nothing
else (``uv_resolver.unsupported_setting``; ``PIP_TRUSTED_HOST`` is handed on as uv's
``UV_INSECURE_HOST``). Otherwise (find-links, constraints, no build
isolation, ...) pip builds, as it did before.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from chalicepack.deps import children
from chalicepack.deps.pip import redact
from chalicepack.inputs.requirements import option_values

log = logging.getLogger(__name__)

_INDEXES = {"--index-url", "--extra-index-url"}


@dataclass(frozen=True)
class SdistFile:
    """The sdist pip's resolution picked for a release, as the index listed it."""

    url: str
    filename: str
    sha256: str


@dataclass(frozen=True)
class UvBuilt:
    """What ``uv build`` left: the wheel, or its output when it failed."""

    wheel: Path | None
    output: str


def uv_declines(index_options: Sequence[str]) -> str | None:
    """Why uv might build with other build requirements than pip would, or None."""
    # uv_resolver imports the resolver, which imports this module: imported when first used.
    from chalicepack.deps.uv_resolver import pip_settings, unsupported_setting, uv_binary

    if uv_binary() is None:
        return "uv is not installed"
    for option in index_options:
        if option.startswith("--") and option not in _INDEXES and option != "--pre":
            return f"requirements.txt uses {option}"
    settings = pip_settings()
    if settings is None:
        return "pip's configuration could not be read"
    # PIP_TRUSTED_HOST: plain http, or no certificate check, for those hosts; uv's own name
    # for it is UV_INSECURE_HOST (``build_environment``).
    return unsupported_setting([(k, v) for k, v in settings if k != ":env:.trusted-host"])


def build_environment(index_options: Sequence[str], env: dict[str, str]) -> dict[str, str]:
    """The environment of ``uv build``: the build's own ``env`` (the compiler's variables)
    over pip's index settings as uv's, requirements.txt's index options first when it names
    an index (pip then ignores ``PIP_INDEX_URL`` and ``PIP_EXTRA_INDEX_URL``)."""
    from chalicepack.deps.uv_resolver import uv_environment

    named = option_values(index_options, "--index-url")
    extra = option_values(index_options, "--extra-index-url")
    uv_env = uv_environment(os.environ, indexes_from_environment=not named)
    if named:
        uv_env["UV_DEFAULT_INDEX"] = named[-1]
    if extra:
        uv_env["UV_INDEX"] = " ".join([*uv_env.get("UV_INDEX", "").split(), *extra])
    if "--pre" in index_options:
        uv_env["UV_PRERELEASE"] = "allow"
    if os.environ.get("PIP_TRUSTED_HOST", "").strip():
        uv_env["UV_INSECURE_HOST"] = " ".join(os.environ["PIP_TRUSTED_HOST"].split())
    # pip takes a build requirement's newest release from all of its indexes together.
    uv_env["UV_INDEX_STRATEGY"] = "unsafe-best-match"
    return {**uv_env, **env}


def build_backend(sdist: Path) -> str | None:
    """The PEP 517 backend ``sdist``'s top ``pyproject.toml`` names (``"mesonpy"``,
    ``"maturin"``...), None when it names none or cannot be read (setuptools' legacy path)."""
    try:
        text = _top_pyproject(sdist)
        backend = tomllib.loads(text)["build-system"]["build-backend"] if text else None
    except (OSError, tarfile.TarError, zipfile.BadZipFile, ValueError, KeyError, TypeError):
        return None
    return backend if isinstance(backend, str) else None


def _top_pyproject(sdist: Path) -> str | None:
    if sdist.name.endswith(".zip"):
        with zipfile.ZipFile(sdist) as archive:
            names = [n for n in archive.namelist() if n.count("/") == 1]
            name = next((n for n in names if n.endswith("/pyproject.toml")), None)
            return None if name is None else archive.read(name).decode()
    with tarfile.open(sdist) as archive:
        for member in archive:
            if member.name.count("/") == 1 and member.name.endswith("/pyproject.toml"):
                stream = archive.extractfile(member)
                return None if stream is None else stream.read().decode()
    return None


def build_with_uv(
    sdist: Path,
    python: Path,
    wheel_dir: Path,
    env: dict[str, str],
    *,
    index_options: Sequence[str],
    cache_dir: Path,
    config_settings: Sequence[str] = (),
) -> UvBuilt:
    """``sdist`` built by ``uv build --wheel`` with ``python``, into ``wheel_dir``;
    ``config_settings`` (``KEY=VALUE``) for its backend."""
    from chalicepack.deps.uv_resolver import uv_binary

    uv = uv_binary()
    assert uv is not None  # (uv_declines said so)
    command = [uv, "build", "--wheel", "--out-dir", str(wheel_dir), "--python", str(python)]
    command += [f"--config-setting={setting}" for setting in config_settings]
    command += ["--cache-dir", str(cache_dir), str(sdist)]
    log.debug("running %s", redact(" ".join(command)))
    process = children.start(
        command, build_environment(index_options, env), wheel_dir.parent / "tmp",
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    _, stderr = children.finish(process, f"uv to build {sdist.name}")
    wheels = sorted(wheel_dir.glob("*.whl"))
    if process.returncode == 0 and len(wheels) == 1:
        return UvBuilt(wheels[0], stderr)
    return UvBuilt(None, redact(stderr))
