"""``chalicepack publish-layer`` against a real moto_server on 127.0.0.1: what lands in Lambda
and S3, what is skipped, and the one-line errors and exit codes a user meets."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import time
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicepack import __version__
from chalicepack.deploy.publish import LayerPlan, check_limits
from chalicepack.errors import BadInput
from chalicepack.lambda_env import DIRECT_UPLOAD_LIMIT, UNZIPPED_LIMIT
from conftest import make_project
from motoserver import ACCOUNT, REGION, MotoServer, aws_environment, free_port

BOUNDED_SECONDS = 30


@pytest.fixture(autouse=True)
def aws(moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """An empty moto, and an environment whose only AWS is that moto, with fake credentials."""
    moto_server.reset()
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in aws_environment(tmp_path / "aws", moto_server.url).items():
        monkeypatch.setenv(name, value)
    return moto_server


def client(aws: MotoServer, service: str, **credentials: str) -> Any:
    session = boto3.session.Session(
        aws_access_key_id=credentials.get("key", "testing"),
        aws_secret_access_key=credentials.get("secret", "testing"),
        region_name=REGION,
    )
    return session.client(service, endpoint_url=aws.url)  # type: ignore[call-overload]


def layer_versions(aws: MotoServer, name: str) -> list[dict[str, Any]]:
    versions = client(aws, "lambda").list_layer_versions(LayerName=name)["LayerVersions"]
    return sorted(versions, key=lambda version: version["Version"])


def write_zip(path: Path, files: Mapping[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(files.items()):
            archive.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data)
    return path


def artifact(path: Path, unzipped_size: int | None = None) -> dict[str, Any]:
    digest = hashlib.sha256(path.read_bytes()).digest()
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    return {
        "path": str(path),
        "size": path.stat().st_size,
        "unzipped_size": sum(i.file_size for i in infos)
        if unzipped_size is None
        else unzipped_size,
        "files": len(infos),
        "sha256": digest.hex(),
        "sha256_base64": base64.b64encode(digest).decode(),
    }


def write_build(
    out: Path,
    *,
    layer: Mapping[str, bytes] | Path | None = None,
    runtime: str = "python3.12",
    architecture: str = "x86_64",
    layer_unzipped_size: int | None = None,
    dependencies: Sequence[tuple[str, int]] = (),
) -> Path:
    """What ``chalicepack build --automatic-layer --out OUT`` leaves, written directly."""
    layer_zip = out / "layer-deployment.zip"
    if isinstance(layer, Path):
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(layer, layer_zip)
    else:
        default = {"python/lib/python3.12/site-packages/dep/__init__.py": b"VERSION = 1\n"}
        write_zip(layer_zip, layer or default)
    deployment = write_zip(out / "deployment.zip", {"app.py": b"from chalice import Chalice\n"})
    report = {
        "chalicepack_version": __version__,
        "app_name": "testapp",
        "stage": "dev",
        "runtime": runtime,
        "architecture": architecture,
        "automatic_layer": True,
        "artifacts": {
            "deployment": artifact(deployment),
            "layer": artifact(layer_zip, layer_unzipped_size),
        },
        "dependencies": [
            {"name": name, "version": "1.0", "unpacked_size": size} for name, size in dependencies
        ],
    }
    path = out / "build-report.json"
    path.write_text(json.dumps(report, indent=2))
    return path


@pytest.fixture(scope="module")
def big_layer_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A layer zip over Lambda's 50 MB direct-upload limit, of data that does not compress."""
    path = tmp_path_factory.mktemp("big") / "layer-deployment.zip"
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive,
        archive.open("python/blob.bin", "w") as stream,
    ):
        for _ in range(51):
            stream.write(os.urandom(1 << 20))
    assert path.stat().st_size > DIRECT_UPLOAD_LIMIT
    return path


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


# --- The story: build, publish, publish again unchanged, change requirements, publish ---------


def test_publish_skip_when_unchanged_and_publish_again_after_a_change(
    tmp_path: Path, index, chalicepack, aws: MotoServer
) -> None:
    index.add_wheel("puredep", "1.0")
    index.add_wheel("puredep", "2.0")
    project = make_project(tmp_path / "app", {"requirements.txt": "puredep==1.0\n"})
    build = ["build", project, "--automatic-layer", "--runtime", "python3.12", "--arch", "arm64"]
    report_path = project / "dist" / "build-report.json"

    assert chalicepack(*build).returncode == 0
    first = chalicepack("publish-layer", "--report", report_path)
    again = chalicepack("publish-layer", "--report", report_path, "--json")

    assert first.returncode == 0, first.stderr
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:testapp-dev-managed-layer:1"
    assert first.stdout == arn + "\n"
    report = json.loads(report_path.read_text())
    (version,) = layer_versions(aws, "testapp-dev-managed-layer")
    assert version["CompatibleRuntimes"] == ["python3.12"]
    assert version["CompatibleArchitectures"] == ["arm64"]
    assert f"chalicepack {__version__}" in version["Description"]
    assert report["artifacts"]["layer"]["sha256"] in version["Description"]
    content = client(aws, "lambda").get_layer_version(
        LayerName="testapp-dev-managed-layer", VersionNumber=1
    )["Content"]
    assert content["CodeSha256"] == report["artifacts"]["layer"]["sha256_base64"]

    assert again.returncode == 0, again.stderr
    assert again.json() == {
        "layer_arn": arn,
        "layer_version": 1,
        "layer_published": False,
        "layer_name": "testapp-dev-managed-layer",
    }
    assert "reusing" in again.stderr
    assert len(layer_versions(aws, "testapp-dev-managed-layer")) == 1

    (project / "requirements.txt").write_text("puredep==2.0\n")
    assert chalicepack(*build).returncode == 0
    changed = chalicepack("publish-layer", "--report", report_path, "--json")

    assert changed.returncode == 0, changed.stderr
    assert changed.json()["layer_arn"] == arn[:-1] + "2"
    assert changed.json()["layer_published"] is True
    assert [v["Version"] for v in layer_versions(aws, "testapp-dev-managed-layer")] == [1, 2]


def test_the_same_zip_for_another_architecture_is_a_new_version(
    tmp_path: Path, chalicepack, aws: MotoServer
) -> None:
    x86 = write_build(tmp_path / "x86", architecture="x86_64")
    arm = write_build(tmp_path / "arm", architecture="arm64")

    first = chalicepack("publish-layer", "--report", x86, "--json")
    second = chalicepack("publish-layer", "--report", arm, "--json")

    assert first.json()["layer_version"] == 1, first.stderr
    assert second.json()["layer_version"] == 2, second.stderr
    assert second.json()["layer_published"] is True
    assert layer_versions(aws, "testapp-dev-managed-layer")[1]["CompatibleArchitectures"] == [
        "arm64"
    ]


def test_layer_name_and_region_options_override_the_defaults(
    tmp_path: Path, chalicepack, aws: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_REGION")
    report = write_build(tmp_path / "dist")

    run = chalicepack(
        "publish-layer", "--report", report, "--layer-name", "shared_deps", "--region", REGION
    )

    assert run.returncode == 0, run.stderr
    assert run.stdout == f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:shared_deps:1\n"


def test_the_region_falls_back_to_aws_default_region(
    tmp_path: Path, chalicepack, aws: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    report = write_build(tmp_path / "dist")

    run = chalicepack("publish-layer", "--report", report)

    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"arn:aws:lambda:eu-west-1:{ACCOUNT}:layer:")


def test_web_identity_credentials_as_configure_aws_credentials_leaves_them(
    tmp_path: Path, chalicepack, aws: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_ROLE_ARN", f"arn:aws:iam::{ACCOUNT}:role/deployer")
    (tmp_path / "token").write_text("an OIDC token\n")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(tmp_path / "token"))
    report = write_build(tmp_path / "dist")

    run = chalicepack("publish-layer", "--report", report)
    (tmp_path / "token").unlink()
    expired = chalicepack("publish-layer", "--report", report)

    assert run.returncode == 0, run.stderr
    assert run.stdout.endswith(":layer:testapp-dev-managed-layer:1\n")
    assert expired.returncode == 1
    assert str(tmp_path / "token") in one_line(expired.stderr)


def test_a_moved_report_finds_the_zip_beside_it(
    tmp_path: Path, chalicepack, aws: MotoServer
) -> None:
    report = write_build(tmp_path / "built")
    moved = Path(shutil.copytree(tmp_path / "built", tmp_path / "downloaded"))
    shutil.rmtree(tmp_path / "built")

    run = chalicepack("publish-layer", "--report", moved / report.name)

    assert run.returncode == 0, run.stderr
    assert run.stdout.endswith(":layer:testapp-dev-managed-layer:1\n")


# --- Size limits, checked before any upload ---------------------------------------------------


def test_a_layer_over_50_mb_without_a_bucket_is_refused_before_any_upload(
    tmp_path: Path, chalicepack, aws: MotoServer, big_layer_zip: Path
) -> None:
    report = write_build(tmp_path / "dist", layer=big_layer_zip)

    run = chalicepack("publish-layer", "--report", report)

    assert run.returncode == 2
    message = one_line(run.stderr)
    assert "--s3-bucket" in message
    assert "50 MB" in message
    assert client(aws, "lambda").list_layers()["Layers"] == []
    assert run.stdout == ""


def test_a_layer_over_50_mb_goes_through_the_bucket(
    tmp_path: Path, chalicepack, aws: MotoServer, big_layer_zip: Path
) -> None:
    client(aws, "s3").create_bucket(Bucket="deploy-artifacts")
    report_path = write_build(tmp_path / "dist", layer=big_layer_zip)
    layer = json.loads(report_path.read_text())["artifacts"]["layer"]

    run = chalicepack("publish-layer", "--report", report_path, "--s3-bucket", "deploy-artifacts")

    assert run.returncode == 0, run.stderr
    stored = client(aws, "s3").head_object(
        Bucket="deploy-artifacts", Key=f"chalicepack/layers/{layer['sha256']}.zip"
    )
    assert stored["ContentLength"] == layer["size"]
    content = client(aws, "lambda").get_layer_version(
        LayerName="testapp-dev-managed-layer", VersionNumber=1
    )["Content"]
    assert content["CodeSha256"] == layer["sha256_base64"]


def test_a_missing_bucket_is_bad_input(
    tmp_path: Path, chalicepack, aws: MotoServer, big_layer_zip: Path
) -> None:
    report = write_build(tmp_path / "dist", layer=big_layer_zip)

    run = chalicepack("publish-layer", "--report", report, "--s3-bucket", "no-such-bucket")

    assert run.returncode == 2
    assert "NoSuchBucket" in run.stderr.splitlines()[-1]


def test_over_250_mb_unzipped_lists_the_ten_biggest_packages(
    tmp_path: Path, chalicepack, aws: MotoServer
) -> None:
    sizes = [(f"pkg{n:02d}", n * 1_000_000) for n in range(1, 13)]
    report = write_build(tmp_path / "dist", layer_unzipped_size=UNZIPPED_LIMIT, dependencies=sizes)

    run = chalicepack("publish-layer", "--report", report)

    assert run.returncode == 2
    message = one_line(run.stderr)
    assert "250 MB" in message
    listed = [name for name, _ in sizes if f"{name} 1.0" in message]
    assert listed == [f"pkg{n:02d}" for n in range(3, 13)]
    assert message.index("pkg12") < message.index("pkg11") < message.index("pkg03")
    assert client(aws, "lambda").list_layers()["Layers"] == []


def test_the_unzipped_limit_counts_the_function_and_the_layer_together(tmp_path: Path) -> None:
    report = json.loads(write_build(tmp_path / "dist").read_text())
    function = report["artifacts"]["deployment"]["unzipped_size"]
    report["artifacts"]["layer"]["unzipped_size"] = UNZIPPED_LIMIT - function
    at_limit = LayerPlan.from_report(report, tmp_path / "dist" / "build-report.json")
    report["artifacts"]["layer"]["unzipped_size"] += 1
    over = LayerPlan.from_report(report, tmp_path / "dist" / "build-report.json")

    assert check_limits(at_limit, None) == []
    with pytest.raises(BadInput, match="biggest packages: none in the report"):
        check_limits(over, None)


def test_a_function_zip_over_50_mb_is_a_warning(tmp_path: Path) -> None:
    report = json.loads(write_build(tmp_path / "dist").read_text())
    report["artifacts"]["deployment"]["size"] = DIRECT_UPLOAD_LIMIT + 1
    plan = LayerPlan.from_report(report, tmp_path / "dist" / "build-report.json")

    (warning,) = check_limits(plan, None)

    assert warning.startswith("deployment.zip is 50.0 MiB zipped")
    assert "S3" in warning


# --- Bad input: exit 2, before AWS is asked anything ------------------------------------------


@pytest.mark.parametrize("name", ["bad name!", "x" * 65, "a/b"])
def test_a_layer_name_lambda_rejects_is_bad_input(
    tmp_path: Path, chalicepack, aws: MotoServer, name: str
) -> None:
    report = write_build(tmp_path / "dist")

    run = chalicepack("publish-layer", "--report", report, "--layer-name", name)

    assert run.returncode == 2
    assert repr(name) in one_line(run.stderr)
    assert client(aws, "lambda").list_layers()["Layers"] == []


def test_a_missing_report_says_to_build_first(tmp_path: Path, chalicepack) -> None:
    run = chalicepack("publish-layer", "--report", tmp_path / "dist" / "build-report.json")

    assert run.returncode == 2
    assert "chalicepack build --automatic-layer" in one_line(run.stderr)


def test_a_build_without_a_layer_says_to_use_automatic_layer(
    tmp_path: Path, chalicepack, aws: MotoServer
) -> None:
    project = make_project(tmp_path / "app")
    assert chalicepack("build", project, "--no-automatic-layer").returncode == 0

    run = chalicepack("publish-layer", "--report", project / "dist" / "build-report.json")

    assert run.returncode == 2
    assert "--automatic-layer" in one_line(run.stderr)


def test_a_zip_changed_after_the_build_is_not_published(
    tmp_path: Path, chalicepack, aws: MotoServer
) -> None:
    report = write_build(tmp_path / "dist")
    write_zip(tmp_path / "dist" / "layer-deployment.zip", {"python/other.py": b"changed"})

    run = chalicepack("publish-layer", "--report", report)

    assert run.returncode == 2
    assert "changed after" in one_line(run.stderr)
    assert client(aws, "lambda").list_layers()["Layers"] == []


@pytest.mark.parametrize(
    ("where", "named"),
    [
        (("--region", "us east 1"), "--region: 'us east 1'"),
        ({"AWS_REGION": "us east 1"}, "AWS_REGION: 'us east 1'"),
    ],
    ids=["option", "environment"],
)
def test_a_region_botocore_refuses_is_bad_input_naming_where_it_came_from(
    where: tuple[str, ...] | dict[str, str],
    named: str,
    tmp_path: Path,
    chalicepack,
    aws: MotoServer,
) -> None:
    report = write_build(tmp_path / "dist")
    options = where if isinstance(where, tuple) else ()
    env = where if isinstance(where, dict) else None

    run = chalicepack("publish-layer", "--report", report, *options, env=env)

    assert run.returncode == 2
    assert one_line(run.stderr) == (
        f"chalicepack: error: {named} is not an AWS region name; use one like us-east-1"
    )
    assert client(aws, "lambda").list_layers()["Layers"] == []


def test_an_endpoint_that_is_not_a_url_is_bad_input(tmp_path: Path, chalicepack) -> None:
    report = write_build(tmp_path / "dist")

    run = chalicepack("publish-layer", "--report", report, env={"AWS_ENDPOINT_URL": "moto"})

    assert run.returncode == 2
    message = one_line(run.stderr)
    assert "cannot set up the AWS lambda client: Invalid endpoint: moto" in message
    assert "AWS_ENDPOINT_URL_LAMBDA" in message


# --- Outside failures: exit 1, one line, bounded time, credentials never shown ----------------


def test_no_credentials_is_one_line_and_exit_1_in_bounded_time(
    tmp_path: Path, chalicepack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    report = write_build(tmp_path / "dist")

    started = time.monotonic()
    run = chalicepack("publish-layer", "--report", report)
    elapsed = time.monotonic() - started

    assert run.returncode == 1
    assert "no AWS credentials" in one_line(run.stderr)
    assert elapsed < BOUNDED_SECONDS
    assert run.stdout == ""


def test_no_region_is_one_line_and_exit_1(
    tmp_path: Path, chalicepack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_REGION")
    report = write_build(tmp_path / "dist")

    run = chalicepack("publish-layer", "--report", report)

    assert run.returncode == 1
    assert "--region" in one_line(run.stderr)


def test_an_endpoint_that_refuses_connections_fails_in_bounded_time(
    tmp_path: Path, chalicepack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    report = write_build(tmp_path / "dist")

    started = time.monotonic()
    run = chalicepack("publish-layer", "--report", report)
    elapsed = time.monotonic() - started

    assert run.returncode == 1
    message = one_line(run.stderr)
    assert "Could not connect to the endpoint URL" in message
    assert "lambda:ListLayerVersions" in message
    assert elapsed < BOUNDED_SECONDS


def _deployer(aws: MotoServer, allowed: Sequence[str]) -> dict[str, str]:
    """An IAM user of moto's allowed only ``allowed``; its keys as environment variables."""
    iam = client(aws, "iam")
    iam.create_user(UserName="deployer")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": list(allowed), "Resource": "*"}],
    }
    iam.put_user_policy(UserName="deployer", PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="deployer")["AccessKey"]
    return {
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
    }


# moto checks IAM on Lambda's POSTs but cannot verify the signature of its GETs, so these
# tests let the first request (ListLayerVersions, which finds no version) through unchecked.


def test_access_denied_names_the_lambda_action(
    tmp_path: Path, chalicepack, aws: MotoServer
) -> None:
    keys = _deployer(aws, ["lambda:ListLayerVersions", "lambda:GetLayerVersion"])
    report = write_build(tmp_path / "dist")

    with aws.iam_enforced(after_requests=1):
        run = chalicepack("publish-layer", "--report", report, env=keys)

    assert run.returncode == 1
    message = one_line(run.stderr)
    assert "access denied" in message
    assert "lambda:PublishLayerVersion" in message
    assert keys["AWS_SECRET_ACCESS_KEY"] not in run.stderr


def test_access_denied_on_the_bucket_names_the_s3_action(
    tmp_path: Path, chalicepack, aws: MotoServer, big_layer_zip: Path
) -> None:
    client(aws, "s3").create_bucket(Bucket="deploy-artifacts")
    keys = _deployer(aws, ["lambda:*"])
    report = write_build(tmp_path / "dist", layer=big_layer_zip)

    with aws.iam_enforced(after_requests=1):
        run = chalicepack(
            "publish-layer", "--report", report, "--s3-bucket", "deploy-artifacts", env=keys
        )

    assert run.returncode == 1
    message = run.stderr.splitlines()[-1]
    assert "access denied" in message
    assert "s3:PutObject" in message
    assert "s3://deploy-artifacts/chalicepack/layers/" in message
    assert keys["AWS_SECRET_ACCESS_KEY"] not in run.stderr
