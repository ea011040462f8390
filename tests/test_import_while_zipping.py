"""The zips are written while the app is imported; they replace the previous ones only when the
import succeeded. A failed or interrupted import leaves the output directory as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from aftermath import assert_untouched, seed_previous_build, snapshot
from conftest import make_project
from pkgindex import PackageIndex

APP = "from chalice import Chalice\nimport dep\napp = Chalice(app_name='testapp')\n"


def project_with_a_dependency(root: Path, index: PackageIndex) -> Path:
    # Big enough that its layer zip is still being written while the app is imported.
    index.add_wheel(
        "dep", "1.0", files={"dep/__init__.py": "", "dep/blob.bin": os.urandom(1 << 22)}
    )
    return make_project(root, {"requirements.txt": "dep==1.0\n", "app.py": APP})


def test_an_import_that_fails_leaves_the_last_builds_zips_and_no_temporary_file(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    project = project_with_a_dependency(tmp_path / "app", index)
    assert chalicepack("build", project, "--automatic-layer").returncode == 0
    before = snapshot(project / "dist")

    (project / "app.py").write_text(APP + "raise RuntimeError('broken at import')\n")
    run = chalicepack("build", project, "--automatic-layer")

    assert run.returncode == 2
    assert "RuntimeError: broken at import" in run.stderr
    assert_untouched(project / "dist", before)


def test_an_import_that_fails_writes_no_zip_where_there_was_none(
    tmp_path: Path, index: PackageIndex, chalicepack
) -> None:
    project = project_with_a_dependency(tmp_path / "app", index)
    (project / "app.py").write_text(APP + "raise RuntimeError('broken at import')\n")

    run = chalicepack("build", project, "--automatic-layer")

    assert run.returncode == 2
    assert not (project / "dist").exists() or snapshot(project / "dist") == {}


def test_sigterm_during_the_import_stops_the_app_and_keeps_the_previous_artifacts(
    tmp_path: Path, index: PackageIndex
) -> None:
    pid_file = tmp_path / "importing"
    project = project_with_a_dependency(tmp_path / "app", index)
    (project / "app.py").write_text(
        APP + f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(60)\n"
    )
    out = tmp_path / "out"
    before = seed_previous_build(out)

    command = [sys.executable, "-m", "chalicepack", "build", str(project), "--automatic-layer"]
    build = subprocess.Popen(
        [*command, "--out", str(out), "--cache-dir", str(tmp_path / "cache")],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert build.poll() is None, build.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    importing = int(pid_file.read_text())
    build.send_signal(signal.SIGTERM)
    _, stderr = build.communicate(timeout=60)

    assert build.returncode == 128 + signal.SIGTERM, stderr
    assert "terminated; temporary files removed" in stderr
    assert not running(importing)  # the app's process did not outlive the build
    assert_untouched(out, before)


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
