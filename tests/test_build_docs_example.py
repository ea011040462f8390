"""The documentation's example app, packaged both ways: exactly the documented trees."""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from pathlib import Path

from pkgindex import PackageIndex

SORTEDCONTAINERS = {
    "sortedcontainers/__init__.py": "from .sortedlist import SortedList\n",
    "sortedcontainers/sorteddict.py": "class SortedDict(dict):\n    pass\n",
    "sortedcontainers/sortedlist.py": "class SortedList(list):\n    pass\n",
    "sortedcontainers/sortedset.py": "class SortedSet(set):\n    pass\n",
}
SORTEDCONTAINERS_DIST_INFO = [
    "sortedcontainers-2.4.0.dist-info/METADATA",
    "sortedcontainers-2.4.0.dist-info/RECORD",
    "sortedcontainers-2.4.0.dist-info/WHEEL",
]
CHALICE_RUNTIME = ["chalice/__init__.py", "chalice/app.py"]
APP = ["app.py", "chalicelib/__init__.py", "chalicelib/utils.py"]
VENDOR = ["internalpackage/__init__.py", "myimage.png"]


def publish_sortedcontainers(index: PackageIndex) -> None:
    index.add_wheel("sortedcontainers", "2.4.0", tag="py2.py3-none-any", files=SORTEDCONTAINERS)


def listing(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def test_without_automatic_layer_everything_ships_in_one_zip(
    example_app: Path, index: PackageIndex, chalicepack, tmp_path: Path
) -> None:
    publish_sortedcontainers(index)
    out = tmp_path / "out"

    run = chalicepack("build", example_app, "--stage", "dev", "--out", out)

    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == str(out / "deployment.zip")
    assert listing(out / "deployment.zip") == sorted(
        APP + CHALICE_RUNTIME + VENDOR + list(SORTEDCONTAINERS) + SORTEDCONTAINERS_DIST_INFO
    )
    assert not (out / "layer-deployment.zip").exists()


def test_with_automatic_layer_dependencies_and_vendor_go_to_the_layer(
    example_app: Path, index: PackageIndex, chalicepack, tmp_path: Path
) -> None:
    publish_sortedcontainers(index)
    out = tmp_path / "out"

    run = chalicepack("build", example_app, "--automatic-layer", "--out", out)

    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[:2] == [
        str(out / "deployment.zip"),
        str(out / "layer-deployment.zip"),
    ]
    assert listing(out / "deployment.zip") == sorted(APP + CHALICE_RUNTIME)
    site_packages = f"python/lib/python{_runtime_version(run)}/site-packages/"
    assert listing(out / "layer-deployment.zip") == sorted(
        site_packages + name
        for name in VENDOR + list(SORTEDCONTAINERS) + SORTEDCONTAINERS_DIST_INFO
    )


def _runtime_version(run) -> str:
    # The summary line starts with the runtime, e.g. "python3.11 x86_64: ...".
    return run.stdout.splitlines()[-1].split()[0].removeprefix("python")


def test_automatic_layer_from_config_json_is_honoured(
    example_app: Path, index: PackageIndex, chalicepack, tmp_path: Path
) -> None:
    publish_sortedcontainers(index)
    config = example_app / ".chalice" / "config.json"
    config.write_text(
        config.read_text().replace(
            '"api_gateway_stage"', '"automatic_layer": true, "api_gateway_stage"'
        )
    )

    run = chalicepack("build", example_app, "--json", "--out", tmp_path / "out")

    assert run.returncode == 0, run.stderr
    assert run.json()["automatic_layer"] is True
    assert set(run.json()["artifacts"]) == {"deployment", "layer"}


def test_two_builds_give_byte_identical_zips_despite_umask_and_mtimes(
    example_app: Path, index: PackageIndex, chalicepack, tmp_path: Path
) -> None:
    publish_sortedcontainers(index)
    first = chalicepack(
        "build", example_app, "--automatic-layer", "--json", "--out", tmp_path / "a"
    )
    assert first.returncode == 0, first.stderr

    for path in example_app.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    (example_app / "chalicelib" / "utils.py").chmod(0o600)
    old_umask = os.umask(0o077)
    try:
        second = chalicepack(
            "build",
            example_app,
            "--automatic-layer",
            "--json",
            "--out",
            tmp_path / "b",
            "--cache-dir",
            tmp_path / "another-cache",
        )
    finally:
        os.umask(old_umask)
    assert second.returncode == 0, second.stderr

    for name in ("deployment", "layer"):
        a, b = first.json()["artifacts"][name], second.json()["artifacts"][name]
        assert a["sha256"] == b["sha256"]
        assert hashlib.sha256(Path(b["path"]).read_bytes()).hexdigest() == b["sha256"]


def test_build_report_describes_artifacts_and_dependencies(
    example_app: Path, index: PackageIndex, chalicepack, tmp_path: Path
) -> None:
    publish_sortedcontainers(index)
    out = tmp_path / "out"

    run = chalicepack("build", example_app, "--json", "--out", out)

    assert run.returncode == 0, run.stderr
    report = run.json()
    assert (out / "build-report.json").read_text().strip() == run.stdout.strip()
    assert report["stage"] == "dev"
    assert report["app_name"] == "docs-app"
    deployment = report["artifacts"]["deployment"]
    data = (out / "deployment.zip").read_bytes()
    assert deployment["size"] == len(data)
    assert deployment["sha256"] == hashlib.sha256(data).hexdigest()
    assert base64.b64decode(deployment["sha256_base64"]) == hashlib.sha256(data).digest()
    (dependency,) = report["dependencies"]
    assert dependency["name"] == "sortedcontainers"
    assert dependency["version"] == "2.4.0"
    assert dependency["wheel"] == "sortedcontainers-2.4.0-py2.py3-none-any.whl"
    assert dependency["tag"] == "py2.py3-none-any"
    assert dependency["requirement"] == {
        "file": "requirements.txt",
        "line": 1,
        "text": "sortedcontainers==2.4.0",
    }
    assert report["vendor_files"] == VENDOR
    assert report["missing_dependencies"] == []
