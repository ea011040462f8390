"""The Lambda runtime a user deploys to decides which wheels can ship in the package."""

from __future__ import annotations

import itertools

import pytest

from chalicepack.errors import BadInput
from chalicepack.inputs.target import Target

# The rules, written down independently of inputs.target: the glibc of each runtime's Lambda
# base image (Amazon Linux 2 for 3.10/3.11, Amazon Linux 2023 from 3.12) ...
GLIBC_MINOR = {
    "python3.10": 26,
    "python3.11": 26,
    "python3.12": 34,
    "python3.13": 34,
    "python3.14": 34,
}
# ... Lambda's architecture names and the machine name wheel tags use for each ...
MACHINE = {"x86_64": "x86_64", "arm64": "aarch64"}
# ... and the glibc each manylinux platform needs. The legacy aliases (PEP 600) manylinux1 and
# manylinux2010 were only ever defined for x86; manylinux1_aarch64 wheels do not exist.
MANYLINUX = {
    "manylinux1": 5,
    "manylinux2010": 12,
    "manylinux2014": 17,
    "manylinux_2_17": 17,
    "manylinux_2_24": 24,
    "manylinux_2_26": 26,
    "manylinux_2_28": 28,
    "manylinux_2_34": 34,
    "manylinux_2_35": 35,
}
X86_ONLY = {"manylinux1", "manylinux2010"}


def _cases_for(runtime: str, arch: str) -> list[tuple[str, bool]]:
    """(wheel filename, accepted) pairs for one target, from the rules above."""
    minor = int(runtime.removeprefix("python3."))
    cp = f"cp3{minor}"
    machine = MACHINE[arch]
    cases: list[tuple[str, bool]] = []

    # manylinux for either machine: accepted when the machine and glibc match.
    for wheel_machine in MACHINE.values():
        for platform, needs in MANYLINUX.items():
            exists = wheel_machine == "x86_64" or platform not in X86_ONLY
            accepted = exists and wheel_machine == machine and needs <= GLIBC_MINOR[runtime]
            cases.append((f"pkg-1.0-{cp}-{cp}-{platform}_{wheel_machine}.whl", accepted))

    cases += [
        # Platforms Lambda never runs.
        (f"pkg-1.0-{cp}-{cp}-musllinux_1_2_{machine}.whl", False),
        (f"pkg-1.0-{cp}-{cp}-macosx_11_0_arm64.whl", False),
        (f"pkg-1.0-{cp}-{cp}-win_amd64.whl", False),
        # A bare linux_ tag promises nothing about glibc: PyPI refuses such wheels and so do we.
        (f"pkg-1.0-{cp}-{cp}-linux_{machine}.whl", False),
        # What PyPI usually serves: several platform tags in one name.
        (f"pkg-1.0-{cp}-{cp}-manylinux_2_17_{machine}.manylinux2014_{machine}.whl", True),
        # The stable ABI: a cp38-abi3 wheel loads on every later CPython ...
        (f"pkg-1.0-cp38-abi3-manylinux2014_{machine}.whl", True),
        # ... but one built against 3.13's stable ABI needs at least 3.13.
        (f"pkg-1.0-cp313-abi3-manylinux2014_{machine}.whl", minor >= 13),
        # Pure Python wheels.
        ("pkg-1.0-py3-none-any.whl", True),
        ("pkg-1.0-py2.py3-none-any.whl", True),
        (f"pkg-1.0-py3-none-manylinux2014_{machine}.whl", True),
        # packaging's compatible_tags() yields `<interpreter>-none-any` only for the exact
        # interpreter it is given (pip agrees), so a cp311-none-any wheel is for CPython 3.11
        # alone, unlike py3-none-any.
        ("pkg-1.0-cp311-none-any.whl", minor == 11),
        # A version-specific ABI binds the wheel to that one CPython.
        (f"pkg-1.0-cp311-cp311-manylinux2014_{machine}.whl", minor == 11),
        (f"pkg-1.0-cp312-cp312-manylinux2014_{machine}.whl", minor == 12),
        # Not a wheel name at all.
        ("pkg-1.0.tar.gz", False),
    ]
    return cases


CASES = [
    pytest.param(
        runtime,
        arch,
        filename,
        accepted,
        id=f"{runtime}-{arch}-{filename}-{'accepted' if accepted else 'rejected'}",
    )
    for runtime in GLIBC_MINOR
    for arch in MACHINE
    for filename, accepted in _cases_for(runtime, arch)
]


@pytest.mark.parametrize(("runtime", "arch", "filename", "accepted"), CASES)
def test_lambda_accepts_only_wheels_its_runtime_can_load(
    runtime: str, arch: str, filename: str, accepted: bool
) -> None:
    target = Target.parse(runtime, arch)

    assert target.accepts_wheel(filename) is accepted


@pytest.mark.parametrize(
    ("runtime", "arch", "wrong"),
    [
        ("python3.9", "x86_64", "'python3.9'"),
        ("python2.7", "x86_64", "'python2.7'"),
        ("nodejs20.x", "x86_64", "'nodejs20.x'"),
        ("python3.12", "aarch64", "'aarch64'"),
    ],
)
def test_unsupported_runtime_or_architecture_is_refused_listing_valid_ones(
    runtime: str, arch: str, wrong: str
) -> None:
    with pytest.raises(BadInput) as info:
        Target.parse(runtime, arch)

    message = str(info.value)
    assert wrong in message
    if arch == "aarch64":
        assert "x86_64" in message
        assert "arm64" in message
    else:
        for valid in GLIBC_MINOR:
            assert valid in message


def test_pip_is_told_the_runtime_version_and_lambda_platforms() -> None:
    options = Target.parse("python3.12", "x86_64").pip_options()

    pairs = list(itertools.pairwise(options))
    assert ("--python-version", "3.12") in pairs
    assert ("--platform", "manylinux_2_34_x86_64") in pairs
    assert ("--platform", "manylinux2014_x86_64") in pairs
    assert ("--platform", "manylinux_2_35_x86_64") not in pairs
    assert ("--platform", "manylinux_2_34_aarch64") not in pairs


def test_arm64_pip_platforms_are_aarch64_only() -> None:
    options = Target.parse("python3.11", "arm64").pip_options()

    platforms = [value for option, value in itertools.pairwise(options) if option == "--platform"]
    assert platforms[0] == "manylinux_2_26_aarch64"
    assert "manylinux2014_aarch64" in platforms
    assert all(platform.endswith("_aarch64") for platform in platforms)


def test_layer_packages_go_where_the_runtime_looks_for_them() -> None:
    assert Target.parse("python3.12").site_packages == "python/lib/python3.12/site-packages"
    assert Target.parse("python3.10", "arm64").site_packages == (
        "python/lib/python3.10/site-packages"
    )
