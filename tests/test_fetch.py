"""The files uv picked are fetched once each, in one pass, straight into the wheel store: with
the index's credentials (in its URL or in a netrc), each file's sha256 checked, a dropped
connection retried and then reported as the network's failure (exit 1)."""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import ipaddress
import os
import secrets
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from aftermath import cache_scratch
from chalicepack.deps.fetch import Network
from chalicepack.errors import BadInput
from conftest import make_project
from pkgindex import PackageIndex

UV_ANSWERED = "resolved with uv for"
OURS = "chalicepack/"  # our fetcher's User-Agent; uv's and pip's are their own


class _Handler(SimpleHTTPRequestHandler):
    """Serves a ``PackageIndex`` folder, records every request and misbehaves on purpose."""

    requests: list[tuple[str, str, str]]  # (method, path, User-Agent)
    authorization: str | None = None
    # What our fetcher gets for a file: "corrupt" (altered bytes), "cut" (half of it, then the
    # connection closes), "close" (the connection closes before any answer) or "stall" (half
    # of it, then nothing until ``release`` is set).
    misbehave = ""
    release: threading.Event
    times = 0  # how many of our requests for a file misbehave (0: all)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        agent = self.headers.get("User-Agent", "")
        self.requests.append(("HEAD" if head else "GET", self.path, agent))
        if self.authorization and self.headers.get("Authorization") != self.authorization:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        ours = [r for r in self.requests if r[1] == self.path and r[2].startswith(OURS)]
        if head or not ours or not self.path.startswith("/files/") or not self.misbehave:
            super().do_HEAD() if head else super().do_GET()
        elif self.times and len(ours) > self.times:
            super().do_GET()
        elif self.misbehave == "redirect":  # the same file, at another URL of this host
            if "?" in self.path:
                super().do_GET()
                return
            self.send_response(302)
            self.send_header("Location", f"{self.path}?moved")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.misbehave == "close":
            self.close_connection = True
        else:
            self._send(bytearray(self._file().read_bytes()), corrupt=self.misbehave == "corrupt")

    def _file(self) -> Path:
        return Path(self.translate_path(self.path))

    def _send(self, data: bytearray, corrupt: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if corrupt:  # another file of the same length
            data[len(data) // 2] ^= 0xFF
            self.wfile.write(data)
        else:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            if self.misbehave == "stall":
                self.release.wait(60)
            self.close_connection = True


class RecordingIndex:
    """The files of ``index`` served on 127.0.0.1 by ``_Handler``."""

    def __init__(
        self,
        index: PackageIndex,
        auth: tuple[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
        **behaviour: Any,
    ):
        self.release = threading.Event()
        attributes: dict[str, Any] = {"requests": [], "release": self.release, **behaviour}
        if auth is not None:
            attributes["authorization"] = (
                "Basic " + base64.b64encode(":".join(auth).encode()).decode()
            )
        self.handler = type("Handler", (_Handler,), attributes)
        handler = functools.partial(self.handler, directory=str(index.root))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.auth = auth
        self.scheme = "https" if tls else "http"
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        userinfo = f"{self.auth[0]}:{self.auth[1]}@" if self.auth else ""
        return f"{self.scheme}://{userinfo}127.0.0.1:{self.port}/simple/"

    def requests(self, agent: str) -> list[tuple[str, str]]:
        return [(m, p) for m, p, a in self.handler.requests if a.startswith(agent)]

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def files(tmp_path: Path) -> PackageIndex:
    """An index's folder (never served by ``PackageIndex`` itself) with a small dependency tree."""
    index = PackageIndex(tmp_path / "index")
    index.add_wheel("service-sdk", "2.0", requires=["wire>=1.0", "certs"])
    index.add_wheel("wire", "1.4", requires=["certs"])
    index.add_wheel("certs", "2026.1")
    index.add_wheel("lonely", "1.0")
    return index


@pytest.fixture
def serve(files: PackageIndex) -> Iterator[Any]:
    servers: list[RecordingIndex] = []

    def start(**options: Any) -> RecordingIndex:
        servers.append(RecordingIndex(files, **options))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def store_files(cache: Path) -> list[str]:
    """The wheel store's files as ``<sha256 folder>/<file>``, and anything else left there."""
    store = cache / "wheels"
    return (
        sorted(str(p.relative_to(store)) for p in store.rglob("*") if p.is_file())
        if store.exists()
        else []
    )


def test_each_picked_file_is_fetched_once_and_no_index_page_again(
    tmp_path: Path, serve: Any, chalicepack: Any
) -> None:
    index = serve()
    project = make_project(tmp_path / "app", {"requirements.txt": "service-sdk\n"})
    cache = tmp_path / "cache"

    run = chalicepack(
        "build", project, "--json", "-v", "--cache-dir", cache, env={"PIP_INDEX_URL": index.url}
    )

    assert run.returncode == 0, run.stderr
    assert UV_ANSWERED in run.stderr
    wheels = sorted(d["wheel"] for d in run.json()["dependencies"])
    assert len(wheels) == 3
    # Ours: one GET per picked file and nothing else; pip never asked the index anything.
    assert sorted(index.requests(OURS)) == [("GET", f"/files/{w}") for w in wheels]
    assert index.requests("pip/") == []
    # Each in the store at its sha256, checked: the address is the file's own digest.
    stored = store_files(cache)
    assert sorted(s.split("/")[1] for s in stored if s.endswith(".whl")) == wheels
    for entry in stored:
        if entry.endswith(".whl"):
            digest, name = entry.split("/")
            assert hashlib.sha256((cache / "wheels" / entry).read_bytes()).hexdigest() == digest, (
                name
            )


def test_a_file_whose_sha256_differs_from_the_index_is_refused_and_not_kept(
    tmp_path: Path, serve: Any, chalicepack: Any
) -> None:
    index = serve(misbehave="corrupt")  # uv reads the true files; ours are altered on the way
    project = make_project(tmp_path / "app", {"requirements.txt": "lonely==1.0\n"})
    cache = tmp_path / "cache"

    run = chalicepack("build", project, "--cache-dir", cache, env={"PIP_INDEX_URL": index.url})

    assert run.returncode == 2, run.stderr
    assert "lonely 1.0: lonely-1.0-py3-none-any.whl" in run.stderr
    assert "has sha256" in run.stderr and "the index announced" in run.stderr
    assert [entry for entry in store_files(cache) if "lonely" in entry] == []
    assert not any(p.name.startswith(".fetch-") for p in (cache / "wheels").iterdir())
    assert not (project / "dist").exists()


def test_a_dropped_connection_is_retried(tmp_path: Path, serve: Any, chalicepack: Any) -> None:
    index = serve(misbehave="cut", times=1)  # each file: half of it, then the connection ends
    project = make_project(tmp_path / "app", {"requirements.txt": "service-sdk\n"})

    run = chalicepack("build", project, "--json", env={"PIP_INDEX_URL": index.url})

    assert run.returncode == 0, run.stderr
    wheels = sorted(d["wheel"] for d in run.json()["dependencies"])
    assert sorted(index.requests(OURS)) == [("GET", f"/files/{w}") for w in wheels for _ in (1, 2)]


@pytest.mark.parametrize(
    ("misbehave", "problem"),
    [("cut", "the connection closed after"), ("close", "Remote end closed")],
)
def test_an_index_that_keeps_dropping_the_connection_is_an_outside_failure(
    tmp_path: Path, serve: Any, chalicepack: Any, misbehave: str, problem: str
) -> None:
    secret = f"SECRET-{secrets.token_hex(8)}"
    index = serve(misbehave=misbehave, auth=("deploy", secret))
    project = make_project(tmp_path / "app", {"requirements.txt": "lonely==1.0\n"})
    cache = tmp_path / "cache"

    run = chalicepack(
        "build", project, "-v", "--cache-dir", cache,
        env={"PIP_INDEX_URL": index.url, "PIP_RETRIES": "2"},
    )  # fmt: skip

    assert run.returncode == 1, run.stderr
    assert UV_ANSWERED in run.stderr
    wheel = "lonely-1.0-py3-none-any.whl"
    assert f"could not download {wheel} (lonely 1.0)" in run.stderr
    assert problem in run.stderr and "after 3 attempts" in run.stderr
    assert index.requests(OURS) == [("GET", f"/files/{wheel}")] * 3  # the first try, 2 retries
    assert secret not in run.stderr + run.stdout
    assert [entry for entry in store_files(cache) if "lonely" in entry] == []
    assert not (project / "dist").exists()


def test_credentials_follow_a_redirect_on_the_same_host(
    tmp_path: Path, serve: Any, chalicepack: Any
) -> None:
    index = serve(misbehave="redirect", auth=("deploy", f"SECRET-{secrets.token_hex(8)}"))
    project = make_project(tmp_path / "app", {"requirements.txt": "lonely==1.0\n"})

    run = chalicepack("build", project, "--json", env={"PIP_INDEX_URL": index.url})

    assert run.returncode == 0, run.stderr
    wheel = "/files/lonely-1.0-py3-none-any.whl"
    assert index.requests(OURS) == [("GET", wheel), ("GET", f"{wheel}?moved")]


def test_credentials_from_netrc(tmp_path: Path, serve: Any, chalicepack: Any) -> None:
    secret = f"SECRET-{secrets.token_hex(8)}"
    index = serve(auth=("deploy", secret))
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1\nlogin deploy\npassword {secret}\n")
    netrc.chmod(0o600)
    project = make_project(tmp_path / "app", {"requirements.txt": "service-sdk\n"})
    url = index.url.replace(f"deploy:{secret}@", "")

    run = chalicepack(
        "build", project, "--json", "-v", env={"PIP_INDEX_URL": url, "NETRC": str(netrc)}
    )

    assert run.returncode == 0, run.stderr
    assert UV_ANSWERED in run.stderr
    assert len(index.requests(OURS)) == 3
    assert secret not in run.stderr + run.stdout


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8080/files/a.whl", ("env", "one")),  # the index's on that host+port
        ("http://127.0.0.1:9090/packages/a.whl", ("req", "two")),  # requirements.txt's index
        ("http://127.0.0.1:9090/team/files/a.whl", ("team", "four")),  # the longest same path
        ("http://127.0.0.1:7070/files/a.whl", ("netrc", "three")),  # that index has none
        ("http://127.0.0.1:6060/files/a.whl", ("netrc", "three")),  # no index there
        ("http://me:mine@127.0.0.1:8080/files/a.whl", ("me", "mine")),  # the URL's own first
        ("http://example.org/files/a.whl", None),
    ],
)
def test_which_credentials_go_with_a_file(
    tmp_path: Path, url: str, expected: tuple[str, str] | None
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login netrc password three\n")
    environ = {
        "PIP_INDEX_URL": "http://env:one@127.0.0.1:8080/simple/",
        "PIP_EXTRA_INDEX_URL": "http://127.0.0.1:7070/simple/",
        "NETRC": str(netrc),
    }
    options = ["--extra-index-url", "http://req:two@127.0.0.1:9090/simple/", "--pre"]
    options += ["--extra-index-url", "http://team:four@127.0.0.1:9090/team/simple/"]

    authorization = Network.from_environment(environ, options).authorization(url)

    if expected is None:
        assert authorization is None
    else:
        assert authorization == "Basic " + base64.b64encode(":".join(expected).encode()).decode()


def test_sigterm_while_fetching_ends_the_build_at_once_and_removes_the_partial_files(
    tmp_path: Path, serve: Any
) -> None:
    index = serve(misbehave="stall")  # our fetch gets half of each file, then waits
    project = make_project(tmp_path / "app", {"requirements.txt": "service-sdk\n"})
    cache = tmp_path / "cache"
    command = [
        sys.executable,
        "-m",
        "chalicepack",
        "build",
        str(project),
        "--cache-dir",
        str(cache),
    ]
    build = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PIP_INDEX_URL": index.url},
    )
    deadline = time.monotonic() + 60
    while len(index.requests(OURS)) < 3 and build.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(index.requests(OURS)) == 3, build.communicate()[1]
    assert list((cache / "wheels").glob(".download-*/*.whl"))  # partial files, being written

    build.send_signal(signal.SIGTERM)
    started = time.monotonic()
    _, stderr = build.communicate(timeout=60)

    assert build.returncode == 128 + signal.SIGTERM, stderr
    assert time.monotonic() - started < 5  # not after the stalled reads' timeout (30 s)
    assert "terminated; temporary files removed" in stderr
    assert cache_scratch(cache) == []
    assert not list((cache / "wheels").rglob("*.whl"))
    assert not (project / "dist").exists()


def test_limits_that_are_not_numbers_are_bad_input() -> None:
    with pytest.raises(BadInput, match="PIP_TIMEOUT='soon'"):
        Network.from_environment({"PIP_TIMEOUT": "soon"}, [])


class _Proxy(BaseHTTPRequestHandler):
    """A forwarding HTTP proxy that records what it forwards: (method, URL, User-Agent)."""

    forwarded: list[tuple[str, str, str]]
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._forward()

    def do_HEAD(self) -> None:
        self._forward()

    def _forward(self) -> None:
        self.forwarded.append((self.command, self.path, self.headers.get("User-Agent", "")))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        request = urllib.request.Request(self.path, headers=headers, method=self.command)
        try:
            with self.direct.open(request) as response:
                status, body, answer = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, body, answer = error.code, error.read(), error.headers
        self.send_response(status)
        for name, value in answer.items():
            if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def test_files_go_through_the_proxy_the_environment_names(
    tmp_path: Path, serve: Any, chalicepack: Any
) -> None:
    index = serve()
    forwarded: list[tuple[str, str, str]] = []
    proxy = ThreadingHTTPServer(
        ("127.0.0.1", 0), type("Proxy", (_Proxy,), {"forwarded": forwarded})
    )
    threading.Thread(
        target=proxy.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    address = f"http://127.0.0.1:{proxy.server_address[1]}"
    project = make_project(tmp_path / "app", {"requirements.txt": "service-sdk\n"})
    env = {"PIP_INDEX_URL": index.url, "http_proxy": address, "HTTP_PROXY": address}
    env.update(no_proxy="", NO_PROXY="")

    try:
        run = chalicepack("build", project, "--json", "-v", env=env)
    finally:
        proxy.shutdown()
        proxy.server_close()

    assert run.returncode == 0, run.stderr
    assert UV_ANSWERED in run.stderr
    wheels = sorted(d["wheel"] for d in run.json()["dependencies"])
    base = f"http://127.0.0.1:{index.port}"
    ours = sorted((m, url) for m, url, agent in forwarded if agent.startswith(OURS))
    assert ours == [("GET", f"{base}/files/{w}") for w in wheels]


def certificate_authority(folder: Path) -> tuple[Path, ssl.SSLContext]:
    """A CA of this test's own (its certificate written to ``folder``) and a server context
    with a certificate it signed for 127.0.0.1: trusted only by who is given the CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def certificate(subject: str, key: Any, issuer: Any, signer: Any, ca: bool) -> Any:
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            address = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
            builder = builder.add_extension(x509.SubjectAlternativeName([address]), False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chalicepack test CA")])
    ca = certificate("chalicepack test CA", ca_key, ca_name, ca_key, ca=True)
    server = certificate("127.0.0.1", server_key, ca_name, ca_key, ca=False)
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "server.pem").write_bytes(server.public_bytes(pem))
    (folder / "server.key").write_bytes(
        server_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    return folder / "ca.pem", context


def test_files_are_fetched_over_https_trusting_the_certificates_pip_cert_names(
    tmp_path: Path, serve: Any, chalicepack: Any
) -> None:
    ca, context = certificate_authority(tmp_path)
    index = serve(tls=context)
    project = make_project(tmp_path / "app", {"requirements.txt": "service-sdk\n"})

    run = chalicepack(
        "build", project, "--json", "-v", env={"PIP_INDEX_URL": index.url, "PIP_CERT": str(ca)}
    )

    assert run.returncode == 0, run.stderr
    assert UV_ANSWERED in run.stderr
    assert index.url.startswith("https://")
    wheels = sorted(d["wheel"] for d in run.json()["dependencies"])
    assert sorted(index.requests(OURS)) == [("GET", f"/files/{w}") for w in wheels]
