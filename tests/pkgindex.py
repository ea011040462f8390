"""A real PEP 503 package index on 127.0.0.1, holding the distributions a test puts in it."""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

import distfactory


def _project_of(filename: str) -> str:
    if filename.endswith(".whl"):
        return canonicalize_name(parse_wheel_filename(filename)[0])
    return canonicalize_name(parse_sdist_filename(filename)[0])


class _QuietHandler(SimpleHTTPRequestHandler):
    required_authorization: str | None = None
    immutable_files = False
    # The index's access log: every GET's path, in order (list.append is atomic under the GIL,
    # and the server answers from several threads). None in handlers made outside PackageIndex.
    access_log: list[str] | None = None

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def end_headers(self) -> None:
        # As PyPI serves distribution files: immutable, cacheable for a year, so pip's and uv's
        # HTTP caches keep them as they do in real use. Opt-in: tests that republish a file
        # under the same name rely on it being fetched afresh.
        if self.immutable_files and self.path.startswith("/files/"):
            self.send_header("Cache-Control", "max-age=365000000, immutable, public")
        super().end_headers()

    def do_GET(self) -> None:
        if self.access_log is not None:
            self.access_log.append(self.path)
        expected = self.required_authorization
        if expected is not None and self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="private index"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()


class PackageIndex:
    """Serves ``<root>/simple/<project>/`` pages and ``<root>/files/`` over HTTP.

    ``add_wheel``/``add_sdist`` build a distribution into the index; ``url`` is what pip
    takes as ``--index-url``. ``stop()`` makes the index unreachable (connection refused).
    """

    def __init__(
        self, root: Path, auth: tuple[str, str] | None = None, *, immutable_files: bool = False
    ) -> None:
        self.root = root
        self.auth = auth
        self.immutable_files = immutable_files
        self.files = root / "files"
        self.files.mkdir(parents=True, exist_ok=True)
        (root / "simple").mkdir(exist_ok=True)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.yanked: set[str] = set()  # file names the project pages mark as yanked (PEP 592)
        self.access_log: list[str] = []  # the path of every GET, in order

    def downloads(self) -> list[str]:
        """The distribution files fetched so far (file names, in order, repeats kept)."""
        return [path.rsplit("/", 1)[1] for path in self.access_log if path.startswith("/files/")]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/simple/"

    @property
    def url_with_credentials(self) -> str:
        assert self.auth is not None
        user, password = self.auth
        return f"http://{user}:{password}@127.0.0.1:{self.port}/simple/"

    def start(self) -> None:
        authorization = None
        if self.auth is not None:
            token = base64.b64encode(":".join(self.auth).encode()).decode()
            authorization = f"Basic {token}"
        attributes = {
            "required_authorization": authorization,
            "immutable_files": self.immutable_files,
            "access_log": self.access_log,
        }
        handler_class = type("Handler", (_QuietHandler,), attributes)
        handler = functools.partial(handler_class, directory=str(self.root))
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.port = self._server.server_address[1]
        # A short poll interval: stop() (shutdown) waits up to one interval.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def add_wheel(self, name: str, version: str, **options: Any) -> Path:
        return self.add_file(distfactory.build_wheel(self.files, name, version, **options))

    def add_sdist(self, name: str, version: str, **options: Any) -> Path:
        return self.add_file(distfactory.build_sdist(self.files, name, version, **options))

    def yank(self, path: Path) -> None:
        self.yanked.add(path.name)
        self._write_project_page(_project_of(path.name))

    def add_file(self, path: Path) -> Path:
        if path.parent != self.files:
            path = Path(shutil.copy2(path, self.files / path.name))
        self._write_project_page(_project_of(path.name))
        return path

    def _write_project_page(self, project: str) -> None:
        links = []
        for path in sorted(self.files.iterdir()):
            if _project_of(path.name) != project:
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            href = html.escape(f"../../files/{path.name}#sha256={digest}")
            yanked = ' data-yanked=""' if path.name in self.yanked else ""
            links.append(f'<a href="{href}"{yanked}>{html.escape(path.name)}</a><br/>')
        page = self.root / "simple" / project / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        body = "\n".join(links)
        page.write_text(f"<!DOCTYPE html><html><body>\n{body}\n</body></html>\n")
