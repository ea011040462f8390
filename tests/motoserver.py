"""A real ``moto_server`` on 127.0.0.1 that boto3 talks to over HTTP, and the AWS environment
that points the SDK at it and at nothing else (no real AWS, no ~/.aws, no instance metadata)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


def free_port() -> int:
    """A port nothing listens on (until something binds it): connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MotoServer:
    """``moto_server -H 127.0.0.1 -p PORT`` as a subprocess; ``url`` is its endpoint."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto_server exited: {self.log_path.read_text()[-2000:]}")
            try:
                self._post("/moto-api/reset")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto_server did not answer within {timeout} s")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def reset(self) -> None:
        """Forget every resource (layers, buckets, IAM users) and stop enforcing IAM."""
        self._post("/moto-api/reset-auth", b"inf")
        self._post("/moto-api/reset")

    @contextmanager
    def iam_enforced(self, after_requests: int = 0) -> Iterator[None]:
        """Check signatures and IAM policies on every request after the first ``after_requests``."""
        self._post("/moto-api/reset-auth", str(after_requests).encode())
        try:
            yield
        finally:
            self._post("/moto-api/reset-auth", b"inf")

    def _post(self, path: str, body: bytes = b"") -> bytes:
        request = urllib.request.Request(
            self.url + path, data=body, method="POST", headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return bytes(response.read())


def aws_environment(config_dir: Path, endpoint: str) -> dict[str, str]:
    """The variables a test sets after removing every inherited ``AWS_*`` one."""
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "config").write_text("")
    (config_dir / "credentials").write_text("")
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": str(config_dir / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(config_dir / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def inherited_aws_variables() -> list[str]:
    return [name for name in os.environ if name.startswith("AWS_")]
