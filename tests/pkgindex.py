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

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
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

    def __init__(self, root: Path, auth: tuple[str, str] | None = None) -> None:
        self.root = root
        self.auth = auth
        self.files = root / "files"
        self.files.mkdir(parents=True, exist_ok=True)
        (root / "simple").mkdir(exist_ok=True)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.yanked: set[str] = set()  # file names the project pages mark as yanked (PEP 592)

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
        handler_class = type("Handler", (_QuietHandler,), {"required_authorization": authorization})
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
