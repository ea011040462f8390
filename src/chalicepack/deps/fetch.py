"""The files uv picked, fetched by their URLs straight into the content-addressed wheel store.

Each file is fetched once, all of them at the same time, and kept only when its sha256 is
the one the index announced. This is done here, in-process, with ``urllib`` on a few threads,
rather than by ``pip download``, which asked the index nothing more but cost a process: on a
shared 2-CPU machine 0.8-1.0 s before its first request and 0.2 s to exit, against 0.09 s
for fetching the small bench app's 6 files and 0.5 s for the medium one's 10 (33 MB), one
after another. uv has no command that only downloads. No new dependency: urllib is enough
for GETs, and is imported only by builds that fetch. The requests go out as pip's would:

- credentials: those in the URL, else those of the index URL (``PIP_INDEX_URL``,
  ``PIP_EXTRA_INDEX_URL``, ``--index-url``/``--extra-index-url`` in requirements.txt) on the
  same host and port with the longest common path, else ``$NETRC`` or ``~/.netrc``'s; never
  sent on to another host when the index redirects;
- certificates: ``PIP_CERT``, else ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` (as requests
  under pip reads them), else the system's (``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` apply);
- proxies: ``http_proxy`` / ``https_proxy`` / ``no_proxy`` from the environment;
- timeout and retries: ``pip.network_limits``, the one definition for pip, uv and this.

uv's answer never holds pip's own configuration beyond these (``uv_resolver`` leaves any other
setting to pip), so nothing else can change what pip would have fetched.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import logging
import netrc
import os
import queue
import shutil
import ssl
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit, urlunsplit

from chalicepack import __version__
from chalicepack.deps.deadline import Deadline
from chalicepack.deps.pip import index_urls, network_limits, redact
from chalicepack.deps.pip_resolver import Distribution
from chalicepack.errors import BadInput, BuildFailure

log = logging.getLogger(__name__)

# Files fetched at once: enough to hide each request's round trips behind the others'.
_WORKERS = 8
_CHUNK = 1 << 18
# What pip's urllib3 retries besides failed connections and reads (pip's network.session).
_RETRIED_STATUS = frozenset({500, 502, 503, 520, 527})
_SCHEMES = ("http", "https")


def fetchable(distribution: Distribution) -> bool:
    """Whether ``distribution`` is a file uv picked that this module can fetch: named by an
    http(s) URL with the sha256 the index announced for it."""
    scheme = urlsplit(distribution.url).scheme
    return distribution.by_url and distribution.sha256 is not None and scheme in _SCHEMES


@dataclass(frozen=True)
class _Index:
    netloc: str  # host[:port], as the URL writes it, without credentials
    path: str
    credentials: tuple[str, str] | None


@dataclass(frozen=True)
class Network:
    """How requests go out: the user's timeout, retries, certificates and credentials."""

    timeout: float
    retries: int
    cafile: str | None  # None: the system's certificates
    indexes: tuple[_Index, ...]  # in the order pip reads them
    netrc_file: str | None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], index_options: Sequence[str]) -> Network:
        timeout, retries = network_limits(environ)
        try:
            limits = float(timeout), int(retries)
        except ValueError:
            raise BadInput(
                f"PIP_TIMEOUT={timeout!r} / PIP_RETRIES={retries!r}: give seconds and a count"
                " (e.g. PIP_TIMEOUT=30, PIP_RETRIES=2)"
            ) from None
        cafile = (
            environ.get("PIP_CERT")
            or environ.get("REQUESTS_CA_BUNDLE")
            or environ.get("CURL_CA_BUNDLE")
            or None
        )
        indexes = tuple(
            _Index(_netloc(url), urlsplit(url).path, _userinfo(url))
            for url in index_urls(environ, index_options)
        )
        home_netrc = os.path.join(os.path.expanduser("~"), ".netrc")
        netrc_file = environ.get("NETRC") or (home_netrc if os.path.isfile(home_netrc) else None)
        return cls(*limits, cafile, indexes, netrc_file)

    def authorization(self, url: str) -> str | None:
        """The Basic ``Authorization`` header pip would send with ``url``, if any: the URL's
        own credentials, else those of the index on the same host and port whose path shares
        the longest prefix with the URL's (pip's ``MultiDomainBasicAuthHandler``), else
        netrc's for the host."""
        found = _userinfo(url)
        if found is None:
            netloc, path = _netloc(url), urlsplit(url).path
            same_host = [index for index in self.indexes if index.netloc == netloc]
            if same_host:
                # By characters, then back to a "/", as pip ranks them; max keeps the first
                # of equals, as pip's stable sort does.
                best = max(same_host, key=lambda i: _shared(path, i.path))
                found = best.credentials
        hostname = urlsplit(url).hostname
        if found is None and self.netrc_file is not None and hostname:
            found = _from_netrc(self.netrc_file, hostname)
        if found is None:
            return None
        token = base64.b64encode(f"{found[0]}:{found[1]}".encode()).decode()
        return f"Basic {token}"


def _shared(path: str, other: str) -> int:
    return os.path.commonprefix([path, other]).rfind("/")  # noqa: RUF071 (pip's measure)


def _netloc(url: str) -> str:
    return urlsplit(url).netloc.rsplit("@", 1)[-1]


def _userinfo(url: str) -> tuple[str, str] | None:
    parts = urlsplit(url)
    if parts.username is None:
        return None
    return unquote(parts.username), unquote(parts.password or "")


def _from_netrc(path: str, host: str) -> tuple[str, str] | None:
    try:
        found = netrc.netrc(path).authenticators(host)
    except (OSError, netrc.NetrcParseError):  # as requests under pip: an unreadable netrc is none
        return None
    if found is None:
        return None
    login, _, password = found
    return login, password or ""


def fetch_into_store(
    distributions: Sequence[Distribution],
    store: Path,
    network: Network,
    deadline: Deadline | None = None,
) -> dict[str, Path]:
    """The wheel of each distribution (by name), fetched into ``store`` at
    ``<sha256>/<file>``. A file is moved there only once its sha256 matched; on any failure
    (or SIGTERM) the files being fetched are removed and the first failure is raised."""
    store.mkdir(parents=True, exist_ok=True)
    # ".download-": the scratch name every build removes when it was left by a killed one.
    scratch = Path(tempfile.mkdtemp(dir=store, prefix=".download-"))
    opener = _opener(network)
    stop = threading.Event()  # set at the first failure: the others give up at their next read
    started = time.monotonic()

    def fetch(distribution: Distribution) -> Path:
        return _fetch_one(distribution, scratch, store, opener, network, stop)

    try:
        wheels = {d.name: path for d, path in _arrivals(distributions, fetch, stop, deadline)}
    finally:
        stop.set()
        shutil.rmtree(scratch, ignore_errors=True)
    size = sum(path.stat().st_size for path in wheels.values())
    log.info(
        "fetched the %d files uv picked (%.1f MB) in %.2f s, each checked against its sha256",
        len(wheels), size / 1e6, time.monotonic() - started,
    )  # fmt: skip
    return wheels


def fetch_file(distribution: Distribution, store: Path, network: Network) -> Path:
    """One file (an sdist to build) at ``store/<sha256>/<file>``: the stored copy when there
    is one, else fetched as ``fetch_into_store`` fetches, checked against its sha256."""
    assert distribution.sha256 is not None
    kept = store / distribution.sha256 / distribution.filename
    if kept.is_file():
        return kept
    store.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=store, prefix=".download-"))
    try:
        opener, stop = _opener(network), threading.Event()
        return _fetch_one(distribution, scratch, store, opener, network, stop)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _arrivals(
    distributions: Sequence[Distribution],
    fetch: Callable[[Distribution], Path],
    stop: threading.Event,
    deadline: Deadline | None = None,
) -> Iterator[tuple[Distribution, Path]]:
    """Each distribution with its fetched file, as they arrive; the first failure raised.

    Daemon threads, not a ThreadPoolExecutor: its threads are joined at exit, so a SIGTERM or
    a failure would wait for a stalled download's timeout before the build could end.
    """
    pending = list(reversed(distributions))  # popped from the end: in the order asked
    arrived: queue.Queue[tuple[Distribution, Path | BaseException]] = queue.Queue()

    def work() -> None:
        while not stop.is_set():
            try:
                distribution = pending.pop()  # atomic: each taken by one thread
            except IndexError:
                return
            try:
                arrived.put((distribution, fetch(distribution)))
            except BaseException as error:  # handed to the caller, raised there
                arrived.put((distribution, error))

    for _ in range(min(_WORKERS, len(distributions))):
        threading.Thread(target=work, name="chalicepack-fetch", daemon=True).start()
    for _ in distributions:
        # A signal's handler still runs while waiting.
        distribution, result = _next_arrival(arrived, deadline)
        if isinstance(result, BaseException):
            raise result
        yield distribution, result


def _next_arrival(
    arrived: queue.Queue[tuple[Distribution, Path | BaseException]], deadline: Deadline | None
) -> tuple[Distribution, Path | BaseException]:
    if deadline is None:
        return arrived.get()
    try:
        return arrived.get(timeout=deadline.remaining())
    except queue.Empty:
        raise deadline.exceeded("the download of the files uv picked") from None


class _Retry(Exception):
    """A failure worth another attempt: no connection, a timeout, a cut transfer, a 5xx."""


class _Stopped(Exception):
    """Another file failed: this one is no longer wanted."""


def _opener(network: Network) -> urllib.request.OpenerDirector:
    """urllib's opener with the environment's proxies (its default), the certificates pip
    would trust, and pip's credentials across redirects."""
    context = ssl.create_default_context(cafile=network.cafile)
    return urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=context), _Redirects(network)
    )


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Credentials follow a redirect as requests (under pip) lets them: kept on the same host,
    else those the new URL's own host is given (never the first host's)."""

    def __init__(self, network: Network) -> None:
        self.network = network

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        old_auth = req.unredirected_hdrs.get("Authorization")
        old, moved = urlsplit(req.full_url), urlsplit(newurl)
        downgraded = old.scheme == "https" and moved.scheme == "http"
        same_host = moved.hostname == old.hostname and not downgraded
        authorization = old_auth if same_host else self.network.authorization(newurl)
        if new is not None and authorization is not None:
            new.add_unredirected_header("Authorization", authorization)
        return new


def _fetch_one(
    distribution: Distribution,
    scratch: Path,
    store: Path,
    opener: urllib.request.OpenerDirector,
    network: Network,
    stop: threading.Event,
) -> Path:
    url, authorization = (
        _without_userinfo(distribution.url),
        network.authorization(distribution.url),
    )
    part = scratch / distribution.filename
    problem = ""
    for attempt in range(network.retries + 1):
        if attempt:
            # pip's (urllib3's) backoff: the first retry at once, then 0.5 s, 1 s, 2 s...
            time.sleep(min(0.25 * 2 ** (attempt - 1), 10.0) if attempt > 1 else 0.0)
        try:
            digest = _download(opener, url, authorization, part, network.timeout, stop)
            break
        except _Retry as error:
            problem = str(error)
            log.debug("%s: %s (attempt %d)", redact(url), problem, attempt + 1)
    else:
        raise BuildFailure(
            f"could not download {distribution.filename} ({distribution.name}"
            f" {distribution.version}) from {redact(url)}: {problem}, after"
            f" {network.retries + 1} attempts; check the network, the proxy and the index"
            " (PIP_TIMEOUT and PIP_RETRIES set how long to keep trying)"
        )
    if digest != distribution.sha256:
        raise BadInput(
            f"{distribution.name} {distribution.version}: {distribution.filename} from"
            f" {redact(url)} has sha256 {digest}, but the index announced"
            f" {distribution.sha256}; it was not kept. The index, or a proxy on the way, serves"
            " another file than the one it lists: have it fixed, or pin another release"
        )
    final = store / digest / distribution.filename
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, final)  # atomic: a concurrent build sees all of the file or none
    except OSError as error:
        raise BuildFailure(f"cannot keep {distribution.filename} in {store}: {error}") from error
    return final


def _download(
    opener: urllib.request.OpenerDirector,
    url: str,
    authorization: str | None,
    part: Path,
    timeout: float,
    stop: threading.Event,
) -> str:
    """Fetch ``url`` into ``part``; its sha256."""
    request = urllib.request.Request(url, headers={"User-Agent": f"chalicepack/{__version__}"})
    if authorization is not None:
        # Unredirected: a redirect to another host does not carry the index's credentials.
        request.add_unredirected_header("Authorization", authorization)
    digest, received = hashlib.sha256(), 0
    try:
        with opener.open(request, timeout=timeout) as response, part.open("wb") as out:
            expected = response.headers.get("Content-Length")
            while chunk := response.read(_CHUNK):
                if stop.is_set():
                    raise _Stopped
                digest.update(chunk)
                out.write(chunk)
                received += len(chunk)
    except urllib.error.HTTPError as error:
        if error.code in _RETRIED_STATUS:
            raise _Retry(f"HTTP {error.code} {error.reason}") from error
        raise BuildFailure(
            f"could not download {redact(url)}: HTTP {error.code} {error.reason}"
            + _HINTS.get(error.code, "")
        ) from error
    except (
        urllib.error.URLError,
        ConnectionError,
        TimeoutError,
        http.client.HTTPException,
    ) as error:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        if isinstance(reason, ssl.SSLCertVerificationError):  # no attempt will change it
            raise BuildFailure(
                f"could not download {redact(url)}: {reason}; if a private CA signs the"
                " index's certificate, give its bundle in PIP_CERT"
            ) from error
        raise _Retry(_describe(error)) from error
    except OSError as error:  # writing the file
        raise BuildFailure(f"cannot write {part}: {error}") from error
    # http.client ends a read early without a word when the server closes the connection.
    if expected is not None and expected.isdigit() and received != int(expected):
        raise _Retry(f"the connection closed after {received} of {expected} bytes")
    return digest.hexdigest()


_HINTS = {
    401: "; the index wants credentials: give them in the index URL or in ~/.netrc",
    403: "; the index refused the credentials given: check them",
}


def _describe(error: BaseException) -> str:
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    return redact(str(reason) or type(reason).__name__)


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
