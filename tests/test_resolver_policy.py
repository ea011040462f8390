"""The resolver policy: uv answers where it reads the inputs as pip does and its answer is
exact for the target; pip resolves everything else, and ``-v`` says why. For the same pins both
give the same zips, byte for byte."""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path
from typing import Any

import pytest

from conftest import make_project
from pkgindex import PackageIndex

UV_ANSWERED = "resolved with uv for"
PIP_DECIDES = "resolving with pip:"


def build(chalicepack: Any, project: Path, *args: str | Path, env: Any = None) -> Any:
    run = chalicepack("build", project, "--json", "-v", *args, env=env)
    assert run.returncode == 0, run.stderr
    return run


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fill_index(index: PackageIndex) -> None:
    """Pure and compiled wheels for both machines, a marker and an extra; ``fast`` has
    several files a target accepts, and one (manylinux_2_28) that python3.11 does not but uv,
    resolving for glibc 2.28, ranks first."""
    index.add_wheel("service-sdk", "2.1", requires=["wire>=1.0", "fast ; extra == 'speed'"])
    index.add_wheel("service-sdk", "2.0", requires=["wire>=1.0"])
    index.add_wheel("wire", "1.4", requires=["armhelper ; platform_machine == 'aarch64'"])
    index.add_wheel("armhelper", "0.3")
    for machine in ("x86_64", "aarch64"):
        for python in ("cp311", "cp312"):
            index.add_wheel("fast", "5.0", tag=f"{python}-{python}-manylinux2014_{machine}")
            index.add_wheel("fast", "5.0", tag=f"{python}-{python}-manylinux_2_28_{machine}")
        index.add_wheel("fast", "5.0", tag=f"cp37-abi3-manylinux_2_24_{machine}")
    index.add_wheel("fast", "5.0", tag="py3-none-any")


# What the ranges above resolve to, pinned: the same package must come of it.
PINNED = (
    "service-sdk[speed]==2.1\nwire==1.4\nfast==5.0\n"
    "armhelper==0.3 ; platform_machine == 'aarch64'\n"
)


RANGES = "service-sdk[speed]\n"
X86_64 = ("python3.11", "x86_64", {"service-sdk", "wire", "fast"})
ARM64 = ("python3.12", "arm64", {"service-sdk", "wire", "fast", "armhelper"})


@pytest.mark.parametrize(
    ("runtime", "arch", "expected", "requirements", "layout"),
    [
        (*X86_64, RANGES, "--no-automatic-layer"),
        (*ARM64, RANGES, "--no-automatic-layer"),
        (*X86_64, PINNED, "--automatic-layer"),
        (*ARM64, PINNED, "--automatic-layer"),
    ],
    ids=["ranges-x86_64", "ranges-arm64", "pins-layer-x86_64", "pins-layer-arm64"],
)
def test_uv_and_pip_make_byte_identical_packages(
    tmp_path: Path,
    index: PackageIndex,
    chalicepack: Any,
    runtime: str,
    arch: str,
    expected: set[str],
    requirements: str,
    layout: str,
) -> None:
    fill_index(index)
    project = make_project(tmp_path / "app", {"requirements.txt": requirements})
    target = ("--runtime", runtime, "--arch", arch, layout)

    fast = build(chalicepack, project, *target, "--out", tmp_path / "uv")
    exact = build(
        chalicepack, project, *target, "--resolver", "pip",
        "--out", tmp_path / "pip", "--cache-dir", tmp_path / "pip-cache",
    )  # fmt: skip

    assert UV_ANSWERED in fast.stderr
    assert UV_ANSWERED not in exact.stderr and PIP_DECIDES not in exact.stderr
    assert {d["name"] for d in fast.json()["dependencies"]} == expected
    assert fast.json()["dependencies"] == exact.json()["dependencies"]  # files included
    [fast_wheel] = [d["wheel"] for d in fast.json()["dependencies"] if d["name"] == "fast"]
    assert (
        fast_wheel
        == {
            "python3.11": "fast-5.0-cp311-cp311-manylinux2014_x86_64.whl",
            "python3.12": "fast-5.0-cp312-cp312-manylinux_2_28_aarch64.whl",
        }[runtime]
    )
    zips = sorted(path.name for path in (tmp_path / "uv").glob("*.zip"))
    assert zips == sorted(path.name for path in (tmp_path / "pip").glob("*.zip"))
    assert ("layer-deployment.zip" in zips) == (layout == "--automatic-layer")
    for name in zips:
        assert sha256(tmp_path / "uv" / name) == sha256(tmp_path / "pip" / name), name


@pytest.mark.parametrize(("runtime", "version"), [("python3.11", "1.0"), ("python3.12", "2.0")])
def test_a_wheel_uv_picks_for_a_newer_glibc_than_the_runtimes_is_refused_and_pip_decides(
    tmp_path: Path, index: PackageIndex, chalicepack: Any, runtime: str, version: str
) -> None:
    # uv knows no manylinux_2_26: for python3.11 it is asked for 2_28, which allows this wheel.
    python = "cp311" if runtime == "python3.11" else "cp312"
    index.add_wheel("numeric", "1.0", tag=f"{python}-{python}-manylinux2014_x86_64")
    index.add_wheel("numeric", "2.0", tag=f"{python}-{python}-manylinux_2_28_x86_64")
    project = make_project(tmp_path / "app", {"requirements.txt": "numeric\n"})

    run = build(chalicepack, project, "--runtime", runtime)

    assert run.json()["dependencies"][0]["version"] == version
    if runtime == "python3.11":
        assert (
            f"{PIP_DECIDES} uv picked numeric 2.0, with no file python3.11 x86_64 can load"
        ) in run.stderr
    else:
        assert UV_ANSWERED in run.stderr


def test_a_requirement_with_only_an_sdist_is_resolved_by_uv_and_built_from_it(
    tmp_path: Path, index: PackageIndex, chalicepack: Any
) -> None:
    index.add_sdist("docs-only", "0.3")
    index.add_sdist("docs-only", "0.4")
    project = make_project(tmp_path / "app", {"requirements.txt": "docs-only\n"})

    run = build(chalicepack, project, "--runtime", "python3.11")

    assert f"{UV_ANSWERED} python3.11 x86_64; from source: docs-only==0.4" in run.stderr
    [dependency] = run.json()["dependencies"]
    assert (dependency["name"], dependency["version"]) == ("docs-only", "0.4")
    assert dependency["built_from_source"] is True


def test_an_sdist_built_for_a_loose_line_that_others_require_is_left_to_pip(
    tmp_path: Path, index: PackageIndex, chalicepack: Any
) -> None:
    # What requires it could hold pip's resolution for this machine to another release.
    index.add_sdist("docs-only", "0.4")
    index.add_wheel("uses-docs", "1.0", requires=["docs-only"])
    requirements = "docs-only\nuses-docs==1.0\n"
    project = make_project(tmp_path / "app", {"requirements.txt": requirements})

    run = build(chalicepack, project, "--runtime", "python3.11")

    assert f"{PIP_DECIDES} docs-only, built here, is required by others too" in run.stderr
    built = {d["name"]: d["built_from_source"] for d in run.json()["dependencies"]}
    assert built == {"docs-only": True, "uses-docs": False}


def test_an_sdist_is_left_to_pip_when_an_older_release_allowed_has_a_wheel(
    tmp_path: Path, index: PackageIndex, chalicepack: Any
) -> None:
    # pip takes the release with a wheel rather than build; here another requirement rules it
    # out, so pip reports docs-only missing: not what building 0.4 would give.
    index.add_wheel("docs-only", "0.3")
    index.add_sdist("docs-only", "0.4")
    index.add_wheel("needs-new", "1.0", requires=["docs-only>=0.4"])
    requirements = "docs-only\nneeds-new==1.0\n"
    project = make_project(tmp_path / "app", {"requirements.txt": requirements})

    run = build(chalicepack, project, "--runtime", "python3.11")

    assert f"{PIP_DECIDES} docs-only: a release it allows may have a wheel" in run.stderr
    assert [m["name"] for m in run.json()["missing_dependencies"]] == ["docs-only"]


def test_a_pinned_requirement_with_only_an_sdist_is_resolved_by_uv_and_built_for_the_target(
    tmp_path: Path, index: PackageIndex, chalicepack: Any
) -> None:
    index.add_wheel("wire", "1.4")
    index.add_sdist("docs-only", "0.4", requires=["wire"])
    project = make_project(tmp_path / "app", {"requirements.txt": "docs-only==0.4\n"})

    run = build(chalicepack, project, "--runtime", "python3.11", "--arch", "arm64")

    assert f"{UV_ANSWERED} python3.11 arm64; from source: docs-only==0.4" in run.stderr
    assert PIP_DECIDES not in run.stderr
    report = run.json()
    built = {d["name"]: d["built_from_source"] for d in report["dependencies"]}
    assert built == {"docs-only": True, "wire": False}
    (record,) = report["source_builds"]
    assert (record["target"], record["verdict"]) == ("python3.11 arm64", "pure")


def test_a_pinned_sdist_whose_release_has_a_wheel_for_this_machine_is_left_to_pip(
    tmp_path: Path, index: PackageIndex, chalicepack: Any
) -> None:
    # A wheel for this machine's glibc (newer than the 2.28 uv resolves python3.11 for): pip,
    # resolving for this machine first, takes that wheel and does not build the sdist.
    glibc = os.confstr("CS_GNU_LIBC_VERSION").split()[1].replace(".", "_")  # "glibc 2.36"
    index.add_sdist("hostonly", "1.0")
    index.add_wheel("hostonly", "1.0", tag=f"py3-none-manylinux_{glibc}_{platform.machine()}")
    project = make_project(tmp_path / "app", {"requirements.txt": "hostonly==1.0\n"})

    run = build(chalicepack, project, "--runtime", "python3.11")

    assert f"{PIP_DECIDES} for this machine pip would take hostonly 1.0 from a wheel" in run.stderr
    (missing,) = run.json()["missing_dependencies"]
    assert "not built from source here" in missing["reason"]


@pytest.mark.parametrize(
    ("requirements", "env", "reason"),
    [
        ("tiny==1.0 --hash=sha256:{digest}\n", {}, "requirements.txt:1 has per-requirement"),
        ("--find-links {links}\ntiny\n", {}, "requirements.txt:1 uses --find-links"),
        ("tiny\n", {"PIP_FIND_LINKS": "{links}"}, "pip's configuration sets find-links"),
        ("tiny\n", {"PIP_CONFIG_FILE": "{pip_conf}"}, "pip's configuration sets constraint"),
        ("-r more.txt\n", {}, "more.txt:1 names a path or URL"),
        ("{wheel}\n", {}, "requirements.txt:1 names a path or URL"),
        ("tiny @ {url}\n", {}, "requirements.txt:1 names a URL"),
    ],
    ids=[
        "hashes",
        "find-links-line",
        "find-links-env",
        "pip-conf-constraint",
        "included-path",
        "path",
        "url",
    ],
)
def test_inputs_uv_would_read_differently_from_pip_are_left_to_pip(
    tmp_path: Path,
    index: PackageIndex,
    chalicepack: Any,
    requirements: str,
    env: dict[str, str],
    reason: str,
) -> None:
    wheel = index.add_wheel("tiny", "1.0")
    links = tmp_path / "links"
    links.mkdir()
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("tiny==1.0\n")
    pip_conf = tmp_path / "pip.conf"
    pip_conf.write_text(f"[global]\nconstraint = {constraints}\n")
    values = {
        "digest": sha256(wheel),
        "links": str(links),
        "pip_conf": str(pip_conf),
        "wheel": str(wheel),
        "url": f"http://127.0.0.1:{index.port}/files/{wheel.name}",
    }
    project = make_project(
        tmp_path / "app",
        {
            "requirements.txt": requirements.format(**values),
            "more.txt": f"{wheel}\n",
        },
    )

    run = build(chalicepack, project, env={k: v.format(**values) for k, v in env.items()})

    assert f"{PIP_DECIDES} {reason}" in run.stderr
    assert [d["name"] for d in run.json()["dependencies"]] == ["tiny"]


def test_the_pip_resolver_can_be_chosen_and_never_runs_uv(
    tmp_path: Path, index: PackageIndex, chalicepack: Any
) -> None:
    index.add_wheel("tiny", "1.0")
    project = make_project(tmp_path / "app", {"requirements.txt": "tiny\n"})

    run = build(chalicepack, project, "--resolver", "pip")

    assert "uv" not in run.stderr.replace("--resolver", "").split()


def test_an_index_url_in_requirements_drops_the_environments_indexes_for_uv_as_for_pip(
    tmp_path: Path, index: PackageIndex, chalicepack: Any
) -> None:
    """pip takes its indexes from requirements.txt alone once it names one (--index-url):
    PIP_EXTRA_INDEX_URL is dropped. uv must not find what pip cannot."""
    elsewhere = PackageIndex(tmp_path / "elsewhere")
    elsewhere.start()
    try:
        index.add_wheel("public", "1.0")
        elsewhere.add_wheel("internal-lib", "3.0")
        project = make_project(
            tmp_path / "app",
            {"requirements.txt": f"--index-url {index.url}\npublic==1.0\ninternal-lib==3.0\n"},
        )
        env = {"PIP_EXTRA_INDEX_URL": elsewhere.url}
        runs = {
            resolver: chalicepack("check", project, "--resolver", resolver, "-v", env=env)
            for resolver in ("auto", "pip")
        }
    finally:
        elsewhere.stop()

    for run in runs.values():
        assert run.returncode == 2, run.stderr
        assert "requirements.txt:3: 'internal-lib==3.0': no release" in run.stderr
    assert UV_ANSWERED not in runs["auto"].stderr
