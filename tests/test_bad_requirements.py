"""requirements.txt the build cannot use, and indexes that fail: exit 2 naming the line and the
fix when the file is wrong, exit 1 when the index is; either way the previous artifacts stay as
they were and the cache records nothing half-done. An index that never answers fails in time."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from aftermath import assert_untouched, cache_scratch, error_line, seed_previous_build
from conftest import make_project
from pkgindex import PackageIndex

# pip's own bounds, from the environment: a failing index costs about a second, not minutes.
FAST_FAILING_PIP = {"PIP_RETRIES": "0", "PIP_TIMEOUT": "1"}


def build(chalicepack: Any, project: Path, out: Path, env: dict[str, str] | None = None) -> Any:
    return chalicepack("build", project, "--out", out, "--no-import", env=env)


def assert_nothing_recorded(cache: Path) -> None:
    """A failed resolution records no resolution and leaves no scratch install or download."""
    assert not list(cache.glob("resolutions/*.json"))
    assert cache_scratch(cache) == []


# --- the file is wrong: exit 2, one line naming file:line and the fix -------------------------

CASES = {
    "unparsable-line": (
        {"requirements.txt": "# deps\nalpha\nfoo==>1\n"},
        "requirements.txt:3: cannot parse requirement 'foo==>1'",
        "write it as 'name', 'name==version' or 'name @ url'",
    ),
    "unknown-project": (
        {"requirements.txt": "alpha\nno-such-project==1.0\n"},
        "requirements.txt:2: 'no-such-project==1.0': no release of no-such-project==1.0",
        "fix the name or version",
    ),
    "missing-version": (
        {"requirements.txt": "alpha==9.9\n"},
        "requirements.txt:1: 'alpha==9.9': no release of alpha==9.9",
        "fix the name or version",
    ),
    "missing-include": (
        {"requirements.txt": "alpha\n-r requirements/base.txt\n"},
        "requirements.txt:2: '-r requirements/base.txt':",
        "does not exist; fix the path",
    ),
    "self-include": (
        {"requirements.txt": "alpha\n-r requirements.txt\n"},
        "requirements.txt:2: '-r requirements.txt' includes",
        "remove that line",
    ),
    "include-loop": (
        {
            "requirements.txt": "-r base.txt\n",
            "base.txt": "alpha\n--requirement requirements.txt\n",
        },
        "base.txt:2: '--requirement requirements.txt' includes",
        "requirements.txt -> base.txt -> requirements.txt",
    ),
}


@pytest.mark.parametrize(("files", "names", "fix"), CASES.values(), ids=CASES.keys())
def test_a_requirements_file_that_cannot_be_used_is_exit_2_naming_the_line(
    tmp_path: Path,
    index: PackageIndex,
    chalicepack: Any,
    files: dict[str, str],
    names: str,
    fix: str,
) -> None:
    index.add_wheel("alpha", "1.0")
    project = make_project(tmp_path / "app", files)
    out = tmp_path / "out"
    before = seed_previous_build(out)

    run = build(chalicepack, project, out)

    assert run.returncode == 2, run.stderr
    message = error_line(run.stderr)
    assert str(project) in message
    assert names in message
    assert fix in message
    assert run.stdout == ""
    assert_untouched(out, before)
    assert_nothing_recorded(tmp_path / "cache")


def test_a_hash_mismatch_is_exit_2_naming_the_line_and_nothing_of_the_file_is_kept(
    tmp_path: Path, index: PackageIndex, chalicepack: Any
) -> None:
    wheel = index.add_wheel("alpha", "1.0")
    actual = hashlib.sha256(wheel.read_bytes()).hexdigest()
    project = make_project(
        tmp_path / "app", {"requirements.txt": f"# pinned\nalpha==1.0 --hash=sha256:{'0' * 64}\n"}
    )
    out = tmp_path / "out"
    before = seed_previous_build(out)

    run = build(chalicepack, project, out)

    assert run.returncode == 2, run.stderr
    message = error_line(run.stderr)
    assert f"{project / 'requirements.txt'}:2: alpha==1.0:" in message
    assert f"does not match its --hash (its sha256 is {actual}, not {'0' * 64})" in message
    assert "update the --hash only if the release was re-published legitimately" in message
    assert_untouched(out, before)
    assert_nothing_recorded(tmp_path / "cache")
    assert not list((tmp_path / "cache").glob(f"wheels/{actual}/*"))


# --- the index fails: exit 1 (or 2 when it says the project does not exist) -------------------


class _Answers(BaseHTTPRequestHandler):
    status = 500

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = f"{self.status}\n".encode()
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def failing_index(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An index on 127.0.0.1 that answers every request with one status code."""
    servers: list[ThreadingHTTPServer] = []

    def start(status: int) -> str:
        handler = type("Handler", (_Answers,), {"status": status})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        url = f"http://127.0.0.1:{server.server_address[1]}/simple/"
        monkeypatch.setenv("PIP_INDEX_URL", url)
        return url

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_an_index_answering_404_means_no_such_project_exit_2_naming_the_line_and_the_url(
    tmp_path: Path, failing_index: Any, chalicepack: Any
) -> None:
    url = failing_index(404)
    project = make_project(tmp_path / "app", {"requirements.txt": "alpha==1.0\n"})
    out = tmp_path / "out"
    before = seed_previous_build(out)

    run = build(chalicepack, project, out, env=FAST_FAILING_PIP)

    assert run.returncode == 2, run.stderr
    message = error_line(run.stderr)
    assert "requirements.txt:1: 'alpha==1.0': no release of alpha==1.0" in message
    assert f"{url}alpha/ answered 404" in message
    assert "fix the name or version, or the index URL" in message
    assert_untouched(out, before)
    assert_nothing_recorded(tmp_path / "cache")


def test_an_index_answering_500_is_an_outside_failure_after_bounded_retries(
    tmp_path: Path, failing_index: Any, chalicepack: Any
) -> None:
    url = failing_index(500)
    project = make_project(tmp_path / "app", {"requirements.txt": "alpha==1.0\n"})
    out = tmp_path / "out"
    before = seed_previous_build(out)

    run = build(chalicepack, project, out, env={"PIP_RETRIES": "1"})

    assert run.returncode == 1, run.stderr
    message = error_line(run.stderr)
    assert "could not reach the package index" in message
    assert f"{url}alpha/" in message
    assert "500 error responses" in message
    assert "check the network and the index URL, then retry" in message
    assert_untouched(out, before)
    assert_nothing_recorded(tmp_path / "cache")


def test_an_index_that_never_answers_fails_within_pips_timeout_from_the_environment(
    tmp_path: Path, silent_index: str, chalicepack: Any
) -> None:
    project = make_project(tmp_path / "app", {"requirements.txt": "alpha==1.0\n"})
    out = tmp_path / "out"
    before = seed_previous_build(out)

    started = time.monotonic()
    run = build(chalicepack, project, out, env=FAST_FAILING_PIP)
    elapsed = time.monotonic() - started

    assert run.returncode == 1, run.stderr
    # chalicepack's own default is 30 s and 2 retries per request: the environment won.
    assert elapsed < 15, f"took {elapsed:.1f} s"
    message = error_line(run.stderr)
    assert "could not reach the package index" in message
    assert f"{silent_index}alpha/" in message
    assert "didn't respond within 1.0 seconds" in message
    assert_untouched(out, before)
    assert_nothing_recorded(tmp_path / "cache")
