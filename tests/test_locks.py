"""Lock files written by the real tools (uv, Poetry, Pipenv) against a local index: what ships
is exactly what they locked, narrowed for the target, production groups only, hash-checked."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, chalicepack_modules_loaded, make_project, require_pypi
from pkgindex import PackageIndex

POETRY = "poetry==2.5.1"
PIPENV = "pipenv==2026.10.3"
FORMATS = ("uv.lock", "pylock.toml", "poetry.lock", "Pipfile.lock")


def _tool(requirement: str) -> Path:
    """A venv with ``requirement`` installed, kept under build/ by version: reruns are fast.
    A failure to install it fails the test (it is a tool the test cannot do without)."""
    venv = ROOT / "build" / "test-tools" / requirement.replace("==", "-")
    name = requirement.split("==")[0]
    executable = venv / "bin" / name
    if executable.is_file():
        return executable
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", requirement],
        capture_output=True,
        text=True,
        timeout=600,
        # From PyPI, not from a test's local index (the tool is not under test).
        env={k: v for k, v in os.environ.items() if not k.startswith("PIP_INDEX")},
    )
    if install.returncode != 0 or not executable.is_file():
        shutil.rmtree(venv, ignore_errors=True)
        require_pypi()
        pytest.fail(f"could not install {requirement} for the test:\n{install.stderr[-2000:]}")
    return executable


@pytest.fixture(scope="session")
def poetry() -> Path:
    return _tool(POETRY)


@pytest.fixture(scope="session")
def pipenv() -> Path:
    return _tool(PIPENV)


def _run(command: list[str | Path], cwd: Path, env: Mapping[str, str]) -> None:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("UV_")}, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"


def _uv() -> str:
    from uv import find_uv_bin

    return str(find_uv_bin())


def _uv_env(index: PackageIndex, tmp_path: Path) -> dict[str, str]:
    """uv reads only the test index: no machine config, no downloads of Pythons."""
    return {
        "UV_NO_CONFIG": "1",
        "UV_DEFAULT_INDEX": index.url,
        "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
        "UV_PYTHON_DOWNLOADS": "never",
    }


def _pyproject(index: PackageIndex) -> str:
    return f"""\
[project]
name = "app"
version = "0.1.0"
requires-python = ">=3.10"
dependencies = ["alpha", "beta"]

[dependency-groups]
dev = ["devtool"]

[tool.uv]
package = false

[tool.poetry]
package-mode = false

[[tool.poetry.source]]
name = "local"
url = "{index.url}"
priority = "primary"

[tool.poetry.group.dev.dependencies]
devtool = "*"
"""


def _pipfile(index: PackageIndex, python_version: str | None = None) -> str:
    # Pipenv locks for this host: dependencies behind markers that are false here are dropped
    # unless the Pipfile names them with their markers, as a Lambda project must.
    # [requires] python_version: Pipenv evaluates python_version markers for that version.
    requires = f'\n[requires]\npython_version = "{python_version}"\n' if python_version else ""
    return f"""\
[[source]]
url = "{index.url}"
verify_ssl = false
name = "local"

[packages]
alpha = "*"
beta = "*"
gamma = {{version = "*", markers = "python_version < '3.11'"}}
armonly = {{version = "*", markers = "platform_machine == 'aarch64'"}}

[dev-packages]
devtool = "*"
{requires}"""


def _lock(
    fmt: str,
    project: Path,
    index: PackageIndex,
    tmp_path: Path,
    tool: Callable[[], Path],
    pipenv_python: Path | None = None,
    requires_python: str | None = None,
    pipenv_args: tuple[str, ...] = (),
) -> Path:
    """Write ``fmt`` for ``project`` with the real tool; return the lock's path. Pipenv: its
    project venv is made with ``pipenv_python`` (``--python``), else the one it finds; the
    Pipfile's ``[requires] python_version`` is ``requires_python`` when given."""
    uv_env = _uv_env(index, tmp_path)
    if fmt == "uv.lock":
        _run([_uv(), "lock"], project, uv_env)
    elif fmt == "pylock.toml":
        _run([_uv(), "lock"], project, uv_env)
        command = [_uv(), "export", "--frozen", "--no-dev", "--format", "pylock.toml"]
        _run([*command, "--no-emit-project", "-o", "pylock.toml"], project, uv_env)
        (project / "uv.lock").unlink()
    elif fmt == "poetry.lock":
        env = {
            "POETRY_CACHE_DIR": str(tmp_path / "poetry-cache"),
            "POETRY_CONFIG_DIR": str(tmp_path / "poetry-config"),
            "POETRY_VIRTUALENVS_CREATE": "false",
        }
        _run([tool(), "lock", "--no-interaction"], project, env)
    else:
        (project / "pyproject.toml").unlink()
        (project / "Pipfile").write_text(_pipfile(index, requires_python))
        python = ["--python", pipenv_python] if pipenv_python else []
        _run([tool(), "lock", *python, *pipenv_args], project, _pipenv_env(tmp_path))
    return project / fmt


def _pipenv_env(tmp_path: Path) -> dict[str, str]:
    return {
        "PIPENV_VENV_IN_PROJECT": "1",
        "PIPENV_YES": "1",
        "PIPENV_NOSPIN": "1",
        "PIPENV_CACHE_DIR": str(tmp_path / "pipenv-cache"),
        "WORKON_HOME": str(tmp_path / "venvs"),
    }


@pytest.fixture
def locked(
    request: pytest.FixtureRequest, tmp_path: Path, index: PackageIndex
) -> Callable[..., Path]:
    """A Chalice project with no requirements.txt and a lock in format ``fmt``, written while
    alpha 1.0 was the newest release; alpha 1.1 is published after."""
    index.add_wheel("alpha", "1.0")
    index.add_wheel("gamma", "1.0")
    index.add_wheel("armonly", "1.0")
    index.add_wheel("devtool", "1.0")
    requires = ["gamma; python_version < '3.11'", "armonly; platform_machine == 'aarch64'"]
    index.add_wheel("beta", "2.0", requires=requires)

    def make(fmt: str, **options: Any) -> Path:
        project = make_project(tmp_path / "app", {"pyproject.toml": _pyproject(index)})
        tools = {"poetry.lock": "poetry", "Pipfile.lock": "pipenv"}
        tool = (lambda: request.getfixturevalue(tools[fmt])) if fmt in tools else (lambda: Path())
        _lock(fmt, project, index, tmp_path, tool, **options)
        index.add_wheel("alpha", "1.1")
        return project

    return make


def _shipped(zip_path: Path) -> set[str]:
    with zipfile.ZipFile(zip_path) as archive:
        return {name.split("/", 1)[0] for name in archive.namelist() if "/" in name}


NETWORK_FORMATS = [
    pytest.param(fmt, marks=pytest.mark.network) if fmt in ("poetry.lock", "Pipfile.lock") else fmt
    for fmt in FORMATS
]


# Pipfile.lock: only as Pipenv's experimental pure-python backend writes it (it locks what the
# Pipfile names, markers and all, whatever the host); Pipenv's default: see further below.
PURE_PYTHON = ("--backend", "pure-python")


@pytest.mark.parametrize(
    "fmt",
    [*NETWORK_FORMATS[:3], pytest.param("Pipfile.lock", marks=pytest.mark.network)],
    ids=[*FORMATS[:3], "Pipfile.lock-pure-python"],
)
def test_a_lock_ships_exactly_what_it_locked_for_the_target(
    fmt: str, locked: Callable[..., Path], chalicepack: Callable[..., object], tmp_path: Path
) -> None:
    project = locked(fmt, **({"pipenv_args": PURE_PYTHON} if fmt == "Pipfile.lock" else {}))

    py310 = chalicepack("build", project, "--runtime", "python3.10", "--no-import", "--json")
    arm311 = chalicepack(
        "build", project, "--runtime", "python3.11", "--arch", "arm64", "--no-import",
        "--out", tmp_path / "arm", "--json",
    )  # fmt: skip

    assert py310.returncode == 0, py310.stderr
    assert arm311.returncode == 0, arm311.stderr
    versions = {d["name"]: d["version"] for d in py310.json()["dependencies"]}
    assert versions == {"alpha": "1.0", "beta": "2.0", "gamma": "1.0"}  # 1.1 exists, 1.0 locked
    assert _shipped(project / "dist" / "deployment.zip") >= {"alpha", "beta", "gamma"}
    assert not _shipped(project / "dist" / "deployment.zip") & {"devtool", "armonly"}
    arm = _shipped(tmp_path / "arm" / "deployment.zip")
    assert "armonly" in arm and "gamma" not in arm and "devtool" not in arm
    alpha = next(d for d in py310.json()["dependencies"] if d["name"] == "alpha")
    lock_lines = (project / fmt).read_text().splitlines()
    assert alpha["requirement"]["file"] == fmt
    assert '"alpha"' in lock_lines[alpha["requirement"]["line"] - 1]  # its entry's own line


@pytest.mark.parametrize("fmt", NETWORK_FORMATS)
def test_a_tampered_hash_in_the_lock_is_refused(
    fmt: str, locked: Callable[[str], Path], index: PackageIndex, chalicepack: Callable[..., object]
) -> None:
    project = locked(fmt)
    lock = project / fmt
    wheel = index.files / "alpha-1.0-py3-none-any.whl"
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert digest in lock.read_text()
    lock.write_text(lock.read_text().replace(digest, "0" * 64))

    run = chalicepack("build", project, "--runtime", "python3.11", "--no-import")

    assert run.returncode == 2, run.stderr
    assert f"{lock}:" in run.stderr and "alpha==1.0" in run.stderr
    assert "does not list" in run.stderr
    assert not (project / "dist" / "deployment.zip").exists()


def test_more_than_one_lock_is_bad_input_naming_them_and_the_flag(
    locked: Callable[[str], Path], chalicepack: Callable[..., object]
) -> None:
    project = locked("pylock.toml")
    (project / "uv.lock").write_text((project / "pylock.toml").read_text())

    run = chalicepack("build", project, "--no-import")

    assert run.returncode == 2
    assert "pylock.toml, uv.lock" in run.stderr and "--requirements FILE" in run.stderr

    chosen = chalicepack(
        "build", project, "--no-import", "--requirements", project / "pylock.toml", "--json"
    )
    assert chosen.returncode == 0, chosen.stderr
    assert {d["name"] for d in chosen.json()["dependencies"]} >= {"alpha", "beta"}


def test_a_group_for_a_requirements_file_is_bad_input(
    tmp_path: Path, index: PackageIndex, chalicepack: Callable[..., object]
) -> None:
    index.add_wheel("alpha", "1.0")
    project = make_project(tmp_path / "app", {"requirements.txt": "alpha==1.0\n"})

    run = chalicepack("build", project, "--no-import", "--group", "dev")

    assert run.returncode == 2
    assert "requirements.txt is a requirements file" in run.stderr


def test_a_group_asked_for_ships(
    locked: Callable[[str], Path], chalicepack: Callable[..., object]
) -> None:
    project = locked("uv.lock")

    run = chalicepack("build", project, "--no-import", "--group", "dev", "--json")

    assert run.returncode == 0, run.stderr
    assert "devtool" in {d["name"] for d in run.json()["dependencies"]}


def test_an_unchanged_rebuild_from_a_lock_needs_no_index_and_no_pipeline(
    locked: Callable[[str], Path], index: PackageIndex, tmp_path: Path, chalicepack
) -> None:
    project = locked("uv.lock")
    cache = tmp_path / "cache"
    assert chalicepack("build", project, "--cache-dir", cache, "--no-import").returncode == 0
    index.stop()  # a pinned lock's resolution is reused for good: no index needed
    # An unchanged build reads the lock and the report, never the pipeline (how long that
    # takes is measured by hand: BENCHMARKS.md).
    run, loaded = chalicepack_modules_loaded("build", project, "--cache-dir", cache, "--no-import")

    assert run.returncode == 0, run.stderr
    assert "nothing changed since the last build" in run.stderr
    for module in ("package.pipeline", "deps.install", "deps.pip_resolver", "deps.pip"):
        assert f"'chalicepack.{module}'" not in loaded

    (project / "app.py").write_text((project / "app.py").read_text() + "\n# changed\n")
    rebuilt = chalicepack("build", project, "--cache-dir", cache, "--no-import")
    assert rebuilt.returncode == 0, rebuilt.stderr  # the index is down: the lock's pins suffice
    assert "uv.lock unchanged: reusing its cached resolution" in rebuilt.stderr


def test_a_changed_lock_is_read_again(
    locked: Callable[[str], Path], index: PackageIndex, tmp_path: Path, chalicepack
) -> None:
    project = locked("uv.lock")
    assert chalicepack("build", project, "--no-import").returncode == 0
    time.sleep(0.01)
    _run([_uv(), "lock", "--upgrade-package", "alpha"], project, _uv_env(index, tmp_path))

    run = chalicepack("build", project, "--no-import", "--json")

    assert run.returncode == 0, run.stderr
    assert {d["name"]: d["version"] for d in run.json()["dependencies"]}["alpha"] == "1.1"


def test_the_lock_names_the_index_when_the_environment_does_not(
    locked: Callable[[str], Path], chalicepack: Callable[..., object]
) -> None:
    project = locked("uv.lock")
    nothing_there = "http://127.0.0.1:9/simple/"  # the discard port: connection refused

    run = chalicepack("build", project, "--no-import", env={"PIP_INDEX_URL": nothing_there})

    assert run.returncode == 0, run.stderr


def test_credentials_for_the_locks_index_come_from_the_environment(
    tmp_path: Path, chalicepack: Callable[..., object]
) -> None:
    private = PackageIndex(tmp_path / "private", auth=("builder", "s3cret"))
    private.start()
    try:
        private.add_wheel("alpha", "1.0")
        pyproject = '[project]\nname = "app"\nversion = "0"\ndependencies = ["alpha"]\n'
        project = make_project(tmp_path / "app", {"pyproject.toml": pyproject})
        uv_env = {**_uv_env(private, tmp_path), "UV_DEFAULT_INDEX": private.url_with_credentials}
        _run([_uv(), "lock"], project, uv_env)
        assert "s3cret" not in (project / "uv.lock").read_text()  # uv keeps them out of it

        run = chalicepack(
            "build", project, "--no-import", "--json",
            env={"PIP_INDEX_URL": private.url_with_credentials},
        )  # fmt: skip

        assert run.returncode == 0, run.stderr
        assert [d["version"] for d in run.json()["dependencies"]] == ["1.0"]
        assert "s3cret" not in run.stdout + run.stderr
        assert not any("s3cret" in p.read_text() for p in (tmp_path / "cache" / "locks").iterdir())
    finally:
        private.stop()


def test_check_reads_the_same_lock(
    locked: Callable[[str], Path], chalicepack: Callable[..., object]
) -> None:
    project = locked("uv.lock")

    run = chalicepack("check", project, "--runtime", "python3.10", "--json")

    assert run.returncode == 0, run.stderr
    assert {d["name"]: d["version"] for d in run.json()["dependencies"]} == {
        "alpha": "1.0", "beta": "2.0", "gamma": "1.0",
    }  # fmt: skip


def test_pyproject_dependencies_without_a_lock_resolve_with_a_warning(
    tmp_path: Path, index: PackageIndex, chalicepack: Callable[..., object]
) -> None:
    index.add_wheel("alpha", "1.0")
    index.add_wheel("alpha", "1.1")
    pyproject = '[project]\nname = "app"\nversion = "0"\ndependencies = [\n  "alpha",\n]\n'
    project = make_project(tmp_path / "app", {"pyproject.toml": pyproject})

    run = chalicepack("build", project, "--no-import", "--json")

    assert run.returncode == 0, run.stderr
    assert "no lock file" in run.stderr
    (alpha,) = run.json()["dependencies"]
    assert alpha["version"] == "1.1"
    assert alpha["requirement"] == {"file": "pyproject.toml", "line": 5, "text": "alpha"}


def test_a_locked_c_package_with_no_wheel_is_missing_at_its_lock_line_with_the_update_command(
    tmp_path: Path, index: PackageIndex, chalicepack: Callable[..., object]
) -> None:
    # Its C extension builds nowhere (chalicepack would build a buildable one for the target).
    index.add_sdist("cext", "1.0", c_extension=True, ext_source="#error needs libfoo\n")
    index.add_wheel("devtool", "1.0")
    index.add_wheel("cext", "2.0")
    pyproject = _pyproject(index).replace('["alpha", "beta"]', '["cext==1.0"]')
    project = make_project(tmp_path / "app", {"pyproject.toml": pyproject})
    _run([_uv(), "lock"], project, _uv_env(index, tmp_path))

    run = chalicepack("check", project, "--runtime", "python3.10", "--arch", "arm64", "--json")

    assert run.returncode == 0, run.stderr
    (missing,) = run.json()["missing_dependencies"]
    lines = (project / "uv.lock").read_text().splitlines()
    assert missing["requirement"]["file"] == "uv.lock"
    assert lines[missing["requirement"]["line"] - 1] == 'name = "cext"'
    assert missing["fix"].startswith("2.0 is the newest release of cext with a wheel for")
    assert "uv lock --upgrade-package cext" in missing["fix"]


@pytest.mark.network
def test_a_pipfile_lock_ships_what_pipenv_locked_and_refuses_what_it_left_unlocked(
    locked: Callable[[str], Path], chalicepack: Callable[..., object]
) -> None:
    """Pipenv locks for its own host (here python3.11 x86_64): what the target shares with
    it ships exactly; a package whose markers were false on that host is written unlocked
    (no version, no hashes), and a target that needs it is refused at its line."""
    project = locked("Pipfile.lock")

    same = chalicepack("build", project, "--runtime", "python3.11", "--no-import", "--json")
    py310 = chalicepack("build", project, "--runtime", "python3.10", "--no-import")

    assert same.returncode == 0, same.stderr
    assert {d["name"]: d["version"] for d in same.json()["dependencies"]} == {
        "alpha": "1.0", "beta": "2.0",
    }  # fmt: skip
    assert not _shipped(project / "dist" / "deployment.zip") & {"devtool", "gamma", "armonly"}
    assert py310.returncode == 2
    lines = (project / "Pipfile.lock").read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if text.strip().startswith('"gamma"'))
    assert f"Pipfile.lock:{line}: gamma is not locked" in py310.stderr
    assert 'put python_version = "3.10" under [requires]' in py310.stderr
    assert "--platform" not in py310.stderr  # the machine does not matter to this marker
    assert "`pipenv lock --backend pure-python`" in py310.stderr  # as the test above locks


def _python310() -> Path:
    from chalicepack.deps.interpreters import find_interpreter, how_to_provide

    found = find_interpreter("3.10")
    if found is None:
        pytest.fail(f"this test runs Pipenv with Python 3.10: {how_to_provide('3.10')}")
    return found.path


@pytest.mark.network
@pytest.mark.parametrize(
    "how",
    ["pipenv lock --python 3.10", '[requires] python_version = "3.10"'],
)
def test_a_pipfile_lock_made_for_python310_ships_its_python_version_dependency_there_only(
    how: str, locked: Callable[..., Path], chalicepack: Callable[..., object], tmp_path: Path
) -> None:
    """Pipenv evaluates python_version markers for the Python of the project's venv, or for
    the Pipfile's [requires] python_version (on this python3.11 host too): gamma is locked
    with its version, hashes and marker; python3.10 ships it, python3.11 does not."""
    if how.startswith("pipenv lock"):
        project = locked("Pipfile.lock", pipenv_python=_python310())
    else:
        project = locked("Pipfile.lock", requires_python="3.10")
    lock = json.loads((project / "Pipfile.lock").read_text())
    assert lock["default"]["gamma"]["version"] == "==1.0" and lock["default"]["gamma"]["hashes"]

    py310 = chalicepack("build", project, "--runtime", "python3.10", "--no-import", "--json")
    py311 = chalicepack(
        "build", project, "--runtime", "python3.11", "--no-import", "--out", tmp_path / "311",
        "--json",
    )  # fmt: skip
    arm = chalicepack("build", project, "--runtime", "python3.10", "--arch", "arm64")

    assert py310.returncode == 0, py310.stderr
    assert py311.returncode == 0, py311.stderr
    assert {d["name"]: d["version"] for d in py310.json()["dependencies"]} == {
        "alpha": "1.0", "beta": "2.0", "gamma": "1.0",
    }  # fmt: skip
    assert "gamma" in _shipped(project / "dist" / "deployment.zip")
    assert not _shipped(tmp_path / "311" / "deployment.zip") & {"gamma", "armonly", "devtool"}
    # platform_machine: Pipenv has no setting for another machine; it locked for x86_64.
    assert arm.returncode == 2
    lines = (project / "Pipfile.lock").read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if text.strip().startswith('"armonly"'))
    assert f"Pipfile.lock:{line}: armonly is not locked" in arm.stderr
    assert "run `pipenv lock` on Linux aarch64" in arm.stderr
    assert "--platform linux/arm64" in arm.stderr


@pytest.mark.network
def test_a_dependency_pipenv_left_out_of_the_lock_is_refused_with_the_fix_that_locks_it(
    index: PackageIndex, pipenv: Path, tmp_path: Path, chalicepack: Callable[..., object]
) -> None:
    """Only beta's metadata asks for gamma (python_version < '3.11'): Pipenv, locking on
    python3.11, leaves it out of Pipfile.lock altogether. python3.10 is refused with the fix;
    the fix, applied, locks gamma, and python3.10 ships it."""
    for name, version in [("alpha", "1.0"), ("gamma", "1.0"), ("armonly", "1.0")]:
        index.add_wheel(name, version)
    index.add_wheel("devtool", "1.0")
    requires = ["gamma; python_version < '3.11'", "armonly; platform_machine == 'aarch64'"]
    index.add_wheel("beta", "2.0", requires=requires)
    project = make_project(tmp_path / "app", {})
    pipfile = "\n".join(
        line for line in _pipfile(index).splitlines() if not line.startswith(("gamma", "armonly"))
    )
    (project / "Pipfile").write_text(pipfile)
    _run([pipenv, "lock"], project, _pipenv_env(tmp_path))
    assert "gamma" not in json.loads((project / "Pipfile.lock").read_text())["default"]

    refused = chalicepack("build", project, "--runtime", "python3.10", "--no-import")

    assert refused.returncode == 2
    assert "gamma==1.0 is needed on the target but not locked" in refused.stderr
    assert 'put python_version = "3.10" under [requires]' in refused.stderr
    assert "pipenv update" not in refused.stderr  # it would lock for this host again
    assert "name gamma in the Pipfile with its marker" in refused.stderr
    assert "`pipenv lock --backend pure-python`" in refused.stderr

    (project / "Pipfile").write_text(pipfile + '\n\n[requires]\npython_version = "3.10"\n')
    _run([pipenv, "lock"], project, _pipenv_env(tmp_path))
    fixed = chalicepack("build", project, "--runtime", "python3.10", "--no-import", "--json")

    assert fixed.returncode == 0, fixed.stderr
    assert {d["name"]: d["version"] for d in fixed.json()["dependencies"]}["gamma"] == "1.0"


@pytest.mark.parametrize(
    ("files", "chosen"),
    [
        ({"requirements.txt": "alpha\n", "uv.lock": "version = 1\n"}, "requirements.txt"),
        ({"pylock.lambda.toml": 'lock-version = "1.0"\n'}, "pylock.lambda.toml"),
        ({"poetry.lock": "", "pyproject.toml": "[project]\ndependencies = []\n"}, "poetry.lock"),
        ({"pyproject.toml": "[project]\ndependencies = []\n"}, "pyproject.toml"),
        ({"pyproject.toml": "[project]\nname = 'x'\n"}, None),
    ],
)
def test_which_dependency_file_a_project_without_a_choice_uses(
    tmp_path: Path, files: dict[str, str], chosen: str | None
) -> None:
    from chalicepack.inputs.locks import dependency_file

    for name, text in files.items():
        (tmp_path / name).write_text(text)

    found = dependency_file(tmp_path, None)

    assert (found.path.name if found else None) == chosen


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ('lock-version = "1.0"\ncreated-by = "x"\n[[packages]]\nname = "a"\n', "pylock"),
        (
            '[[package]]\nname = "a"\n[metadata]\nlock-version = "2.1"\ncontent-hash = ""\n',
            "poetry",
        ),
        ('version = 1\nrevision = 3\n[[package]]\nname = "a"\n', "uv"),
        ('{"_meta": {"sources": []}, "default": {}}', "pipfile"),
        ("alpha==1.0\n--index-url https://example.org/simple\n", "requirements"),
    ],
)
def test_a_file_named_with_requirements_is_recognised_by_its_content(
    tmp_path: Path, text: str, kind: str
) -> None:
    from chalicepack.inputs.locks import recognise

    path = tmp_path / "deps.lock"
    path.write_text(text)

    assert recognise(path) == kind


def test_a_poetry_1_lock_is_refused_with_the_command_that_upgrades_it(
    tmp_path: Path, chalicepack: Callable[..., object]
) -> None:
    lock = '[[package]]\nname = "alpha"\nversion = "1.0"\n\n[metadata]\nlock-version = "2.0"\n'
    project = make_project(tmp_path / "app", {"poetry.lock": lock})

    run = chalicepack("build", project, "--no-import")

    assert run.returncode == 2
    assert "poetry.lock: lock-version 2.0" in run.stderr and "Poetry 2" in run.stderr


def test_a_locked_release_built_from_its_sdist_is_held_to_the_locks_sdist_hash(
    tmp_path: Path, index: PackageIndex, chalicepack: Callable[..., object]
) -> None:
    # purelib has no wheel: chalicepack builds it from its sdist, the file the lock hashes.
    sdist = index.add_sdist("purelib", "1.0")
    index.add_wheel("devtool", "1.0")
    pyproject = _pyproject(index).replace('["alpha", "beta"]', '["purelib"]')
    project = make_project(tmp_path / "app", {"pyproject.toml": pyproject})
    _run([_uv(), "lock"], project, _uv_env(index, tmp_path))
    lock = project / "uv.lock"
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    assert digest in lock.read_text()

    built = chalicepack("build", project, "--no-import", "--out", tmp_path / "good", "--json")
    lock.write_text(lock.read_text().replace(digest, "0" * 64))
    tampered = chalicepack("build", project, "--no-import", "--json")

    assert built.returncode == 0, built.stderr
    (purelib,) = built.json()["dependencies"]
    assert purelib["built_from_source"] and "purelib" in _shipped(
        tmp_path / "good" / "deployment.zip"
    )
    assert tampered.returncode == 2, tampered.stderr
    line = lock.read_text().splitlines().index('name = "purelib"') + 1
    assert f"{lock}:{line}: purelib==1.0" in tampered.stderr and "does not list" in tampered.stderr
    assert not (project / "dist" / "deployment.zip").exists()


def _source_tree(index: PackageIndex, root: Path) -> Path:
    """localpkg 0.3 as a source directory (its in-tree backend needs nothing from an index),
    committed to git as well."""
    import tarfile

    sdist = index.add_sdist("localpkg", "0.3")
    with tarfile.open(sdist) as archive:
        archive.extractall(root, filter="data")
    tree = root / "localpkg-0.3"
    for command in (
        ["git", "init", "-q"],
        ["git", "add", "."],
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "0.3"],
    ):
        subprocess.run(command, cwd=tree, check=True)
    index.files.joinpath(sdist.name).unlink()  # not on the index: only the directory has it
    return tree


@pytest.mark.parametrize(
    ("fmt", "source"),
    [
        ("uv.lock", "directory"),
        ("uv.lock", "git"),
        pytest.param("poetry.lock", "directory", marks=pytest.mark.network),
        pytest.param("Pipfile.lock", "path", marks=pytest.mark.network),
    ],
)
def test_a_package_locked_from_a_path_or_vcs_is_refused_at_its_line_with_the_fix(
    fmt: str,
    source: str,
    request: pytest.FixtureRequest,
    index: PackageIndex,
    tmp_path: Path,
    chalicepack: Callable[..., object],
) -> None:
    index.add_wheel("alpha", "1.0")
    index.add_wheel("devtool", "1.0")
    tree = _source_tree(index, tmp_path)
    reference = f"git+{tree.as_uri()}" if source == "git" else tree.as_uri()
    pyproject = _pyproject(index).replace(
        '["alpha", "beta"]', f'["alpha", "localpkg @ {reference}"]'
    )
    project = make_project(tmp_path / "app", {"pyproject.toml": pyproject})
    if fmt == "uv.lock":
        _run([_uv(), "lock"], project, _uv_env(index, tmp_path))
    elif fmt == "poetry.lock":
        _lock(fmt, project, index, tmp_path, lambda: request.getfixturevalue("poetry"))
    else:
        (project / "pyproject.toml").unlink()
        entry = f'localpkg = {{path = "{tree}"}}'
        (project / "Pipfile").write_text(_pipfile(index).replace('beta = "*"', entry))
        _run([request.getfixturevalue("pipenv"), "lock"], project, _pipenv_env(tmp_path))

    run = chalicepack("build", project, "--no-import")

    assert run.returncode == 2, run.stderr
    lines = (project / fmt).read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if text.strip().startswith(
        '"localpkg"' if fmt == "Pipfile.lock" else 'name = "localpkg"'
    ))  # fmt: skip
    assert f"{project / fmt}:{line}: localpkg is locked from a {source} " in run.stderr
    assert "publish it to an index and lock that release" in run.stderr
    assert "vendor/" in run.stderr
    assert not (project / "dist" / "deployment.zip").exists()


def test_a_pipfile_without_its_lock_is_bad_input_naming_pipenv_lock(
    tmp_path: Path, index: PackageIndex, chalicepack: Callable[..., object]
) -> None:
    project = make_project(tmp_path / "app", {"Pipfile": _pipfile(index)})

    run = chalicepack("build", project, "--no-import")

    assert run.returncode == 2
    assert "has a Pipfile but no Pipfile.lock" in run.stderr and "`pipenv lock`" in run.stderr
    assert not (project / "dist" / "deployment.zip").exists()
