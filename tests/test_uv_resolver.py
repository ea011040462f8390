"""The uv path (chalicepack.deps.uv_resolver): the platform uv is asked for, the requirement
lines and pip settings it reads as pip does, the index URLs it is given, and what each release
it picked requires. Which resolver answers is in test_resolver_policy.py."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pip._internal.configuration import Configuration, get_configuration_files
from pip._internal.utils import appdirs

from chalicepack.deps.uv_resolver import (
    pip_configuration_files,
    settings_without_files,
    unsupported_line,
    unsupported_setting,
    uv_platform,
)
from chalicepack.inputs.target import Target
from conftest import make_project
from pkgindex import PackageIndex
from test_resolver_policy import UV_ANSWERED, build, fill_index


def test_what_needs_each_dependency_is_read_from_the_wheels_uv_picked(
    tmp_path: Path, index: PackageIndex, chalicepack: Any
) -> None:
    fill_index(index)
    project = make_project(tmp_path / "app", {"requirements.txt": "service-sdk[speed]\n"})

    report = build(chalicepack, project, "--runtime", "python3.11").json()

    required_by = {d["name"]: d["required_by"] for d in report["dependencies"]}
    assert required_by == {"service-sdk": [], "wire": ["service-sdk"], "fast": ["service-sdk"]}


@pytest.mark.parametrize(
    ("runtime", "arch", "platform"),
    [
        ("python3.10", "x86_64", "x86_64-manylinux_2_28"),  # glibc 2.26: the nearest above
        ("python3.11", "arm64", "aarch64-manylinux_2_28"),
        ("python3.12", "x86_64", "x86_64-manylinux_2_34"),  # glibc 2.34: exact
        ("python3.14", "arm64", "aarch64-manylinux_2_34"),
    ],
)
def test_uv_is_asked_for_the_nearest_glibc_at_or_above_the_runtimes(
    runtime: str, arch: str, platform: str
) -> None:
    assert uv_platform(Target.parse(runtime, arch)) == platform


def test_requirement_lines_uv_reads_as_pip_does(tmp_path: Path) -> None:
    (tmp_path / "constraints.txt").write_text("wire<2\n")
    (tmp_path / "base.txt").write_text("wire>=1 ; python_version >= '3.8'\n")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        "# pinned for Lambda\n--index-url https://example.invalid/simple\n"
        "--extra-index-url=https://mirror.invalid/simple\n--pre\n-r base.txt\n"
        "-c constraints.txt\nservice-sdk[speed]>=2 \\\n  ; sys_platform == 'linux'\n"
    )

    assert unsupported_line(requirements) is None


def test_pip_settings_that_cannot_change_a_resolution_keep_uv() -> None:
    neutral = [
        ("global.cert", "/etc/ssl/certs/ca-certificates.crt"),
        (":env:.default-timeout", "180"),
        (":env:.index-url", "http://127.0.0.1:1/simple/"),
        ("freeze.exclude", "pip"),  # another command's section
    ]
    assert unsupported_setting(neutral) is None
    assert unsupported_setting([("global.index-url", "https://corp.invalid/simple")]) == (
        "pip's configuration sets index-url (global.index-url)"
    )


def test_the_configuration_files_looked_for_are_those_pip_reads() -> None:
    pips = [path for paths in get_configuration_files().values() for path in paths]
    assert sorted(pip_configuration_files(appdirs)) == sorted(pips)


def _pips_own(environ: dict[str, str]) -> list[tuple[str, str]]:
    configuration = Configuration(isolated=False)
    configuration.load()
    return sorted(
        (str(k), str(v)) for _, values in configuration.items() for k, v in values.items()
    )


def test_without_configuration_files_pip_settings_are_read_as_pip_reads_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [name for name in os.environ if name.startswith("PIP_")]:
        monkeypatch.delenv(name)
    environ = {
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": "http://127.0.0.1:1/simple/",
        "PIP_NO_BINARY": ":all:",
        "PIP_VERSION": "ignored by pip",
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)

    assert sorted(settings_without_files(environ) or []) == _pips_own(environ)


def test_a_configuration_file_hands_the_settings_to_pips_own_loader(tmp_path: Path) -> None:
    config = tmp_path / "pip.conf"
    config.write_text("[global]\nindex-url = https://corp.invalid/simple\n")

    assert settings_without_files({"PIP_CONFIG_FILE": str(config)}) is None


def test_index_urls_reach_uv_through_its_environment_not_its_command_line(
    tmp_path: Path, index: PackageIndex, chalicepack: Any
) -> None:
    # A command line is visible to every user of the machine (ps); an index URL may hold a
    # password, so it travels as pip's does: in the environment.
    index.add_wheel("tiny", "1.0")
    project = make_project(tmp_path / "app", {"requirements.txt": "tiny\n"})

    run = build(chalicepack, project, env={"PIP_EXTRA_INDEX_URL": index.url})

    [uv_command] = [line for line in run.stderr.splitlines() if "uv pip compile" in line]
    assert UV_ANSWERED in run.stderr
    assert "127.0.0.1" not in uv_command
