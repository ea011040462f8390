"""pip's requirements syntax keeps working: includes, constraints, indexes, hashes, direct
references; credentials never reach any output."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import make_project
from distfactory import build_sdist, build_wheel
from pkgindex import PackageIndex


def build(chalicepack: Any, project: Path, *args: str) -> Any:
    return chalicepack("build", project, "--json", *args)


def installed(run: Any) -> dict[str, str]:
    assert run.returncode == 0, run.stderr
    return {d["name"]: d["version"] for d in run.json()["dependencies"]}


def test_requirements_and_constraints_includes_are_followed(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("alpha", "1.0")
    index.add_wheel("beta", "1.0")
    index.add_wheel("beta", "2.0")
    project = make_project(
        tmp_path / "app",
        {
            "requirements.txt": "-r requirements/base.txt\n-c requirements/constraints.txt\n",
            "requirements/base.txt": "alpha\nbeta\n",
            "requirements/constraints.txt": "beta<2\n",
        },
    )

    run = build(chalicepack, project)

    assert installed(run) == {"alpha": "1.0", "beta": "1.0"}
    beta = next(d for d in run.json()["dependencies"] if d["name"] == "beta")
    assert beta["requirement"] == {"file": "requirements/base.txt", "line": 2, "text": "beta"}


def test_matching_hashes_install_and_a_mismatch_is_a_clear_error(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    wheel = index.add_wheel("alpha", "1.0")
    good = hashlib.sha256(wheel.read_bytes()).hexdigest()
    project = make_project(
        tmp_path / "app", {"requirements.txt": f"alpha==1.0 --hash=sha256:{good}\n"}
    )
    assert installed(build(chalicepack, project)) == {"alpha": "1.0"}

    (project / "requirements.txt").write_text(f"alpha==1.0 --hash=sha256:{'0' * 64}\n")
    run = build(chalicepack, project, "--out", tmp_path / "second")

    assert run.returncode == 2
    assert "does not match its --hash" in run.stderr
    assert not (tmp_path / "second" / "deployment.zip").exists()


def test_credentials_of_an_extra_index_never_appear_in_any_output(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    private = PackageIndex(tmp_path / "private-index", auth=("deploy", "s3cr3t-token"))
    private.start()
    try:
        private.add_wheel("internal-lib", "3.0")
        project = make_project(
            tmp_path / "app",
            {
                "requirements.txt": (
                    f"--extra-index-url {private.url_with_credentials}\ninternal-lib\n"
                )
            },
        )

        run = build(chalicepack, project, "-v")
    finally:
        private.stop()

    assert installed(run) == {"internal-lib": "3.0"}
    produced = [run.stdout, run.stderr]
    produced += [p.read_text() for p in (project / "dist").glob("*.json")]
    for text in produced:
        assert "s3cr3t-token" not in text
    (dependency,) = run.json()["dependencies"]
    assert dependency["url"].startswith("http://127.0.0.1:")


def test_a_local_path_requirement_is_built_from_that_path_not_taken_from_the_index(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    index.add_wheel("mylib", "1.0", files={"mylib/__init__.py": "SOURCE = 'index'\n"})
    sdist = build_sdist(
        tmp_path / "src", "mylib", "1.0", files={"mylib/__init__.py": "SOURCE = 'local'\n"}
    )
    shutil.unpack_archive(sdist, tmp_path / "src")
    project = make_project(
        tmp_path / "app", {"requirements.txt": f"{tmp_path / 'src' / 'mylib-1.0'}\n"}
    )

    run = build(chalicepack, project)

    assert installed(run) == {"mylib": "1.0"}
    import zipfile

    with zipfile.ZipFile(project / "dist" / "deployment.zip") as archive:
        assert archive.read("mylib/__init__.py") == b"SOURCE = 'local'\n"


def test_a_git_requirement_is_built_from_the_repository(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    sdist = build_sdist(
        tmp_path / "src", "gitlib", "0.1", files={"gitlib/__init__.py": "GIT = 1\n"}
    )
    shutil.unpack_archive(sdist, tmp_path / "src")
    repository = tmp_path / "src" / "gitlib-0.1"
    git = ["git", "-C", str(repository), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "release"], check=True)
    project = make_project(
        tmp_path / "app", {"requirements.txt": f"gitlib @ git+file://{repository}\n"}
    )

    run = build(chalicepack, project)

    assert installed(run) == {"gitlib": "0.1"}


def test_a_direct_wheel_url_is_used_as_given(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    wheel = build_wheel(tmp_path / "wheels", "urllib-thing", "5.0")
    project = make_project(
        tmp_path / "app", {"requirements.txt": f"urllib-thing @ {wheel.as_uri()}\n"}
    )

    run = build(chalicepack, project)

    assert installed(run) == {"urllib-thing": "5.0"}


def test_pip_index_url_from_the_environment_is_honoured(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    # The index fixture itself is handed to chalicepack through PIP_INDEX_URL only.
    index.add_wheel("alpha", "1.0")
    project = make_project(tmp_path / "app", {"requirements.txt": "alpha\n"})

    assert installed(build(chalicepack, project)) == {"alpha": "1.0"}


ENCODINGS = {
    "UTF-8 with a byte order mark": ("utf-8-sig", ""),
    "UTF-16 (Windows 'Unicode')": ("utf-16", ""),
    "latin-1 declared by a coding comment": ("latin-1", "# -*- coding: latin-1 -*-\n# café\n"),
}


@pytest.mark.parametrize(("encoding", "header"), ENCODINGS.values(), ids=ENCODINGS.keys())
def test_a_requirements_file_is_decoded_as_pip_decodes_it(
    tmp_path: Path, index: PackageIndex, chalicepack, encoding: str, header: str
) -> None:
    """Editors on Windows save requirements.txt with a byte order mark; pip reads it."""
    index.add_wheel("alpha", "1.0", requires=["beta"])
    index.add_wheel("beta", "1.0")
    project = make_project(tmp_path / "app")
    text = f"{header}alpha==1.0\n-c constraints.txt\n"
    (project / "requirements.txt").write_bytes(text.encode(encoding))
    (project / "constraints.txt").write_bytes("beta==1.0\n".encode(encoding))

    assert installed(build(chalicepack, project)) == {"alpha": "1.0", "beta": "1.0"}


def test_a_coding_comment_naming_an_unknown_encoding_is_bad_input_on_a_rebuild_too(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    # The rebuild asks first whether anything changed, which reads requirements.txt too.
    index.add_wheel("alpha", "1.0")
    project = make_project(tmp_path / "app", {"requirements.txt": "alpha==1.0\n"})
    assert build(chalicepack, project).returncode == 0
    (project / "requirements.txt").write_text("# -*- coding: no-such-codec -*-\nalpha==1.0\n")

    run = build(chalicepack, project)

    assert run.returncode == 2, run.stderr
    assert "cannot read requirements" in run.stderr
    assert "Traceback" not in run.stderr
