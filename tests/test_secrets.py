"""Index credentials never leave the process: not in the log (even with -v), not on stdout, not
in any file of the output directory (zip contents included) nor in chalicepack's cache, on
success and on failure (SECURITY.md)."""

from __future__ import annotations

import secrets
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import make_project
from pkgindex import PackageIndex


@pytest.fixture
def private_index(tmp_path: Path) -> Iterator[PackageIndex]:
    index = PackageIndex(tmp_path / "private", auth=("deploy", f"SECRET-{secrets.token_hex(8)}"))
    index.start()
    yield index
    index.stop()


def produced_texts(directory: Path) -> Iterator[tuple[str, bytes]]:
    """Every file under ``directory`` and, for zips, every member, decompressed."""
    for path in sorted(directory.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        yield str(path), data
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    yield f"{path}!{name}", archive.read(name)


def assert_no_secret(secret: str, run: Any, *directories: Path) -> None:
    assert secret not in run.stdout
    assert secret not in run.stderr
    for directory in directories:
        for where, data in produced_texts(directory):
            assert secret.encode() not in data, f"the secret is in {where}"


@pytest.mark.parametrize("given_in", ["environment", "requirements.txt"])
def test_index_credentials_stay_out_of_logs_outputs_reports_and_the_cache(
    tmp_path: Path, private_index: PackageIndex, chalicepack: Any, given_in: str
) -> None:
    secret = private_index.auth[1] if private_index.auth else ""
    private_index.add_wheel("internal-lib", "3.0", requires=["helper"])
    private_index.add_wheel("helper", "1.0")
    url = private_index.url_with_credentials
    env, requirements = {"PIP_INDEX_URL": url}, "internal-lib==3.0\n"
    if given_in == "requirements.txt":
        env, requirements = {}, f"--index-url {url}\n{requirements}"
    project = make_project(tmp_path / "app", {"requirements.txt": requirements})
    out, cache = tmp_path / "out", tmp_path / "cache"

    built = chalicepack(
        "build", project, "--out", out, "--cache-dir", cache, "--automatic-layer", "-v", "--json",
        env=env,
    )  # fmt: skip
    checked = chalicepack("check", project, "--out", tmp_path / "check", "--json", env=env)

    assert built.returncode == 0, built.stderr
    assert {d["name"] for d in built.json()["dependencies"]} == {"internal-lib", "helper"}
    # uv resolved and the files it picked were fetched with the index's credentials (the
    # index answers 401 without them); no process was handed the URL (the masking of pip's
    # command line is shown by the failing builds below, which pip resolves).
    assert "resolved with uv" in built.stderr
    assert_no_secret(secret, built, out, cache)
    assert checked.returncode == 0, checked.stderr
    assert_no_secret(secret, checked, tmp_path / "check")


@pytest.mark.parametrize(
    ("requirements", "password", "exit_code"),
    [
        ("no-such-project==1.0\n", None, 2),  # not found, the URL in the message
        ("internal-lib==3.0\n", "wrong-SECRET-password", 1),  # credentials refused
    ],
    ids=["unknown-project", "rejected-credentials"],
)
def test_index_credentials_stay_out_of_error_messages(
    tmp_path: Path,
    private_index: PackageIndex,
    chalicepack: Any,
    requirements: str,
    password: str | None,
    exit_code: int,
) -> None:
    _, secret = private_index.auth or ("", "")
    private_index.add_wheel("internal-lib", "3.0")
    url = private_index.url_with_credentials
    if password is not None:
        url, secret = url.replace(secret, password), password
    # The index named in requirements.txt itself, as private indexes often are.
    project = make_project(
        tmp_path / "app", {"requirements.txt": f"--index-url {url}\n{requirements}"}
    )

    run = chalicepack("build", project, "-v", env={"PIP_RETRIES": "0"})

    assert run.returncode == exit_code, run.stderr
    assert f"http://***@127.0.0.1:{private_index.port}/simple/" in run.stderr
    assert_no_secret(secret, run, tmp_path / "cache")
    assert not (project / "dist").exists()
