"""Publish the layer zip a build wrote as a Lambda layer version, or reuse the unchanged one."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import boto3
import botocore.exceptions
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    InvalidRegionError,
    NoCredentialsError,
)
from botocore.utils import validate_region_name

from chalicepack import __version__
from chalicepack.errors import BadInput, PublishError
from chalicepack.lambda_env import DIRECT_UPLOAD_LIMIT, UNZIPPED_LIMIT
from chalicepack.options import PublishOptions
from chalicepack.package.digest import file_sha256
from chalicepack.report import human_size

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_lambda.literals import ArchitectureType, RuntimeType
    from mypy_boto3_lambda.type_defs import LayerVersionContentInputTypeDef
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

# Lambda's LayerName pattern, for a name (not an ARN); the console caps names at 64 characters.
LAYER_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
S3_KEY_PREFIX = "chalicepack/layers/"
BIGGEST_SHOWN = 10

# botocore's standard retry mode retries throttling, 5xx and connection errors with jittered
# backoff; three attempts and short connect timeouts keep an unreachable endpoint under ~20 s.
MAX_ATTEMPTS = 3
AWS_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
    connect_timeout=5,
    read_timeout=60,
    user_agent_extra=f"chalicepack/{__version__}",
)

_ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden"}
_CREDENTIALS_REJECTED = {
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "AuthFailure",
}
_REJECTED_INPUT = {
    "ValidationException",
    "InvalidParameterValueException",
    "InvalidRequestContentException",
    "NoSuchBucket",
    "InvalidBucketName",
}


@dataclass(frozen=True)
class Artifact:
    """A zip as ``build-report.json`` describes it."""

    path: Path
    size: int
    unzipped_size: int
    sha256: str
    sha256_base64: str  # what Lambda calls CodeSha256


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    unpacked_size: int


@dataclass(frozen=True)
class LayerPlan:
    """What to publish and what to compare with, read from a build report; no AWS involved."""

    report_path: Path
    layer_name: str
    runtime: str
    architecture: str
    chalicepack_version: str
    layer: Artifact
    function: Artifact | None
    packages: tuple[Package, ...]

    @classmethod
    def from_report(
        cls, report: Mapping[str, Any], report_path: Path, layer_name: str | None = None
    ) -> LayerPlan:
        def field(key: str) -> Any:
            if key not in report:
                raise BadInput(
                    f"{report_path} has no {key!r}: it is not a chalicepack build report",
                    file=report_path,
                )
            return report[key]

        artifacts = field("artifacts")
        if not isinstance(artifacts, Mapping) or "layer" not in artifacts:
            raise BadInput(
                f"{report_path} names no layer zip: build with --automatic-layer (the layer "
                "holds the dependencies and vendor files; with neither there is no layer)",
                file=report_path,
            )
        name = layer_name or f"{field('app_name')}-{field('stage')}-managed-layer"
        if not LAYER_NAME.fullmatch(name):
            how = "--layer-name" if layer_name else "a --layer-name (the app name does not fit)"
            raise BadInput(
                f"layer name {name!r} is not one Lambda accepts: use 1 to 64 letters, digits, "
                f"'-' or '_'; pass {how}"
            )
        function = artifacts.get("deployment")
        return cls(
            report_path=report_path,
            layer_name=name,
            runtime=str(field("runtime")),
            architecture=str(field("architecture")),
            chalicepack_version=str(report.get("chalicepack_version", __version__)),
            layer=_artifact(artifacts["layer"], "layer", report_path),
            function=None if function is None else _artifact(function, "deployment", report_path),
            packages=tuple(
                Package(str(d.get("name")), str(d.get("version")), int(d.get("unpacked_size") or 0))
                for d in report.get("dependencies") or ()
                if isinstance(d, Mapping)
            ),
        )

    @property
    def description(self) -> str:
        return (
            f"built by chalicepack {self.chalicepack_version}; "
            f"{self.layer.path.name} sha256 {self.layer.sha256}"
        )


@dataclass(frozen=True)
class PublishedLayer:
    layer_arn: str  # the layer *version* ARN, what a function's Layers list takes
    layer_version: int
    published: bool  # False: the newest version already held this zip and was reused
    layer_name: str

    def as_json(self) -> dict[str, Any]:
        return {
            "layer_arn": self.layer_arn,
            "layer_version": self.layer_version,
            "layer_published": self.published,
            "layer_name": self.layer_name,
        }


def _artifact(document: Any, name: str, report_path: Path) -> Artifact:
    try:
        path = Path(document["path"])
        return Artifact(
            path=path if path.is_absolute() else report_path.parent / path,
            size=int(document["size"]),
            unzipped_size=int(document["unzipped_size"]),
            sha256=str(document["sha256"]),
            sha256_base64=str(document["sha256_base64"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise BadInput(
            f"{report_path}: artifacts.{name} is incomplete ({error}): run chalicepack build again",
            file=report_path,
        ) from error


def read_plan(report_path: Path, layer_name: str | None = None) -> LayerPlan:
    try:
        text = report_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(
            f"{report_path} does not exist: run `chalicepack build --automatic-layer` first, "
            "or pass --report"
        ) from None
    except OSError as error:
        raise BadInput(f"cannot read {report_path}: {error.strerror}") from error
    try:
        report = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadInput(
            f"{report_path}:{error.lineno}:{error.colno}: not valid JSON ({error.msg})",
            file=report_path,
            line=error.lineno,
        ) from error
    if not isinstance(report, Mapping):
        raise BadInput(f"{report_path} is not a chalicepack build report", file=report_path)
    return LayerPlan.from_report(report, report_path, layer_name)


def locate_layer_zip(plan: LayerPlan) -> LayerPlan:
    """The plan with the zip the report names, checked to be the very zip the report describes.

    A report moved with its zips (an artifact download, another checkout) names a path that
    no longer exists; the zip of the same name beside the report is then taken.
    """
    candidates = [plan.layer.path, plan.report_path.parent / plan.layer.path.name]
    found = next((path for path in candidates if path.is_file()), None)
    if found is None:
        raise BadInput(
            f"{plan.layer.path} (the layer zip {plan.report_path} names) does not exist: "
            "run chalicepack build again"
        )
    if file_sha256(found) != plan.layer.sha256:
        raise BadInput(
            f"{found} changed after {plan.report_path} was written (its sha256 differs): "
            "run chalicepack build again"
        )
    return dataclasses.replace(plan, layer=dataclasses.replace(plan.layer, path=found))


def check_limits(plan: LayerPlan, s3_bucket: str | None) -> list[str]:
    """Refuse what Lambda would refuse, before any upload; return warnings for the rest."""
    function_unzipped = plan.function.unzipped_size if plan.function else 0
    total = function_unzipped + plan.layer.unzipped_size
    if total > UNZIPPED_LIMIT:
        biggest = sorted(plan.packages, key=lambda p: (-p.unpacked_size, p.name))[:BIGGEST_SHOWN]
        listing = ", ".join(
            f"{p.name} {p.version} ({human_size(p.unpacked_size)})" for p in biggest
        )
        raise BadInput(
            f"the function and its layer are {human_size(total)} unzipped ({total} bytes), "
            f"over Lambda's limit of {UNZIPPED_LIMIT} bytes (250 MB) for a function and all "
            f"its layers; the biggest packages: {listing or 'none in the report'}. "
            "Drop the dependencies the function does not need"
        )
    if plan.layer.size > DIRECT_UPLOAD_LIMIT and not s3_bucket:
        raise BadInput(
            f"{plan.layer.path} is {human_size(plan.layer.size)} ({plan.layer.size} bytes), over "
            f"the {DIRECT_UPLOAD_LIMIT} bytes (50 MB) Lambda takes in a direct upload: pass "
            "--s3-bucket BUCKET (in the same region) to publish it through S3"
        )
    warnings = []
    if plan.function and plan.function.size > DIRECT_UPLOAD_LIMIT:
        warnings.append(
            f"{plan.function.path.name} is {human_size(plan.function.size)} zipped, over the "
            f"{DIRECT_UPLOAD_LIMIT} bytes (50 MB) Lambda takes in a direct upload: deploy the "
            "function from S3"
        )
    return warnings


def publish_layer(options: PublishOptions) -> PublishedLayer:
    """Check the layer zip locally, then publish it unless the newest version already holds it."""
    plan = locate_layer_zip(read_plan(options.report_path, options.layer_name))
    for warning in check_limits(plan, options.s3_bucket):
        log.warning("warning: %s", warning)
    session, region = _session(options.region)
    with _creating_client("lambda"):
        lambda_client: LambdaClient = session.client(
            "lambda", region_name=region, config=AWS_CONFIG
        )
    newest = _newest_version(lambda_client, plan.layer_name)
    if newest is not None and _holds(newest, plan):
        arn, version = newest["LayerVersionArn"], int(newest["Version"])
        log.info("%s version %d already holds this zip: reusing it", plan.layer_name, version)
        return PublishedLayer(arn, version, published=False, layer_name=plan.layer_name)
    content: LayerVersionContentInputTypeDef
    if options.s3_bucket:
        with _creating_client("s3"):
            s3_client: S3Client = session.client("s3", region_name=region, config=AWS_CONFIG)
        key = _upload(s3_client, options.s3_bucket, plan.layer)
        content = {"S3Bucket": options.s3_bucket, "S3Key": key}
    else:
        content = {"ZipFile": plan.layer.path.read_bytes()}
    with _aws("lambda:PublishLayerVersion", f"layer {plan.layer_name}"):
        response = lambda_client.publish_layer_version(
            LayerName=plan.layer_name,
            Description=plan.description,
            Content=content,
            CompatibleRuntimes=[cast("RuntimeType", plan.runtime)],
            CompatibleArchitectures=[cast("ArchitectureType", plan.architecture)],
        )
    arn, version = response["LayerVersionArn"], int(response["Version"])
    log.info("published %s version %d (%s)", plan.layer_name, version, region)
    return PublishedLayer(arn, version, published=True, layer_name=plan.layer_name)


def _session(region: str | None) -> tuple[boto3.session.Session, str]:
    """A boto3 session from the standard AWS environment, its region and credentials checked."""
    try:
        session = boto3.session.Session()
        region, source = _region(region, session)
        if region:
            _check_region(region, source)
        credentials = session.get_credentials()
    except BotoCoreError as error:
        raise PublishError(f"cannot set up AWS access: {error}") from error
    if credentials is None:
        raise PublishError(
            "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
            "AWS_PROFILE, or use aws-actions/configure-aws-credentials"
        )
    if not region:
        raise PublishError(
            "no AWS region: pass --region, or set AWS_REGION (or a profile's region)"
        )
    return session, region


def _region(region: str | None, session: boto3.session.Session) -> tuple[str | None, str]:
    """The region to publish in, and where it came from (for a message)."""
    if region:
        return region, "--region"
    if os.environ.get("AWS_REGION"):
        return os.environ["AWS_REGION"], "AWS_REGION"
    return session.region_name, "the AWS configuration (AWS_DEFAULT_REGION or the profile's)"


def _check_region(region: str, source: str) -> None:
    """Refuse a region botocore would refuse with a traceback when the client is created."""
    try:
        validate_region_name(region)
    except InvalidRegionError:
        raise BadInput(
            f"{source}: {region!r} is not an AWS region name; use one like us-east-1"
        ) from None


def _newest_version(client: LambdaClient, layer_name: str) -> dict[str, Any] | None:
    """The newest version of the layer with its Content (CodeSha256), or None when it has none."""
    with _aws("lambda:ListLayerVersions", f"layer {layer_name}"):
        try:
            pages = client.get_paginator("list_layer_versions").paginate(LayerName=layer_name)
            versions = [v["Version"] for page in pages for v in page["LayerVersions"]]
        except client.exceptions.ResourceNotFoundException:
            return None
    if not versions:
        return None
    with _aws("lambda:GetLayerVersion", f"layer {layer_name}"):
        response = client.get_layer_version(LayerName=layer_name, VersionNumber=max(versions))
    return dict(response)


def _holds(version: Mapping[str, Any], plan: LayerPlan) -> bool:
    return (
        version.get("Content", {}).get("CodeSha256") == plan.layer.sha256_base64
        and sorted(version.get("CompatibleRuntimes", [])) == [plan.runtime]
        and sorted(version.get("CompatibleArchitectures", [])) == [plan.architecture]
    )


def _upload(client: S3Client, bucket: str, layer: Artifact) -> str:
    """Upload the zip under a content-addressed key (a retry or a re-run writes the same key)."""
    key = f"{S3_KEY_PREFIX}{layer.sha256}.zip"
    log.info("uploading %s (%s) to s3://%s/%s", layer.path, human_size(layer.size), bucket, key)
    with _aws("s3:PutObject", f"s3://{bucket}/{key}"):
        client.upload_file(
            str(layer.path), bucket, key, ExtraArgs={"ContentType": "application/zip"}
        )
    return key


@contextmanager
def _creating_client(service: str) -> Iterator[None]:
    """botocore's refusals while it sets a client up, as ours (it checks the endpoint then)."""
    try:
        yield
    except ValueError as error:  # an AWS_ENDPOINT_URL* that is not a URL, and the like
        raise BadInput(
            f"cannot set up the AWS {service} client: {error}; check AWS_ENDPOINT_URL and "
            f"AWS_ENDPOINT_URL_{service.upper()}"
        ) from None
    except BotoCoreError as error:
        raise PublishError(f"cannot set up the AWS {service} client: {error}") from error


@contextmanager
def _aws(action: str, resource: str) -> Iterator[None]:
    """botocore's exceptions as ours: one line naming the IAM action, never the credentials."""
    try:
        yield
    except ClientError as error:
        raise _client_error(error, action, resource) from error
    except S3UploadFailedError as error:
        # boto3's managed upload raises this from inside its handler of the ClientError.
        cause = error.__context__
        if isinstance(cause, ClientError):
            raise _client_error(cause, action, resource) from error
        raise PublishError(f"{action} on {resource} failed: {error}") from error
    except NoCredentialsError as error:
        raise PublishError(f"no AWS credentials found for {action}: {error}") from error
    except (botocore.exceptions.ConnectionError, HTTPClientError) as error:
        raise PublishError(
            f"{action} on {resource} failed: {error} (after {MAX_ATTEMPTS} attempts); check the "
            "network, the region, and AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_LAMBDA if set"
        ) from error
    except BotoCoreError as error:  # credentials that cannot be fetched or refreshed, and more
        raise PublishError(f"{action} on {resource} failed: {error}") from error
    except OSError as error:  # a web-identity token file that went missing, the zip unreadable
        raise PublishError(f"{action} on {resource} failed: {error}") from error


def _client_error(error: ClientError, action: str, resource: str) -> Exception:
    details = error.response.get("Error", {})
    code = str(details.get("Code", "")) or "error"
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    message = _one_line(str(details.get("Message", "")))
    said = f" (AWS said: {message})" if message else ""
    if code in _CREDENTIALS_REJECTED:
        return PublishError(
            f"AWS rejected the credentials on {action} ({code}){said}: refresh or replace them"
        )
    if code in _ACCESS_DENIED or status == 403:
        return PublishError(
            f"access denied: this AWS identity may not perform {action} on {resource}; "
            f"allow {action} in its IAM policy{said}"
        )
    if code in _REJECTED_INPUT:
        return BadInput(f"AWS rejected {action} on {resource}: {code}{said}")
    return PublishError(f"{action} on {resource} failed: {code}{said}")


def _one_line(message: str) -> str:
    """AWS's message on one line; an unparsed error body (XML, HTML) is dropped, not echoed."""
    message = " ".join(message.split())
    return "" if message.startswith("<") else message[:300]
