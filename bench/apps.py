"""The sample Chalice apps, written from a spec, and the edits the variants make to them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

# The "requirements change" variant adds EXTRA_PACKAGE pinned to a different version before
# each run, so every run is a requirements set no earlier build of the project saw (no tool's
# cache can answer it whole). tomli: small, no dependencies, in none of the apps' resolved sets
# (checked before it is used); these releases have only a pure wheel.
EXTRA_PACKAGE = "tomli"
EXTRA_VERSIONS = ("2.0.2", "2.0.1", "2.0.0", "1.2.3", "1.2.2", "1.2.1", "1.2.0", "1.1.0", "1.0.4")


@dataclass(frozen=True)
class App:
    name: str
    title: str
    requirements: tuple[str, ...]
    # Files that must be in the package for the app to import (paths inside site-packages);
    # a path with glob characters (fnmatch) matches any shipped path it fits, for file names
    # that depend on the target, such as an extension module's tag.
    expected: tuple[str, ...]
    automatic_layer: bool = False
    cold_only: bool = False  # measured cold only: it is there to show what each tool ships
    # Only an sdist on PyPI: built from source, so also measured for a second target.
    from_source: bool = False

    def missing(self, shipped: Iterable[str]) -> list[str]:
        """The expected paths (or patterns) that nothing in ``shipped`` matches."""
        paths = set(shipped)
        return [
            path
            for path in self.expected
            if path not in paths and not any(fnmatchcase(name, path) for name in paths)
        ]


APPS: dict[str, App] = {
    app.name: app
    for app in (
        App(
            "small",
            "requests + PyJWT",
            ("requests", "PyJWT"),
            ("requests/__init__.py", "jwt/__init__.py", "urllib3/__init__.py"),
        ),
        App(
            "medium",
            "numpy<2.3 + pandas + pydantic + orjson",
            ("numpy<2.3", "pandas", "pydantic", "orjson"),
            (
                "numpy/__init__.py",
                "pandas/__init__.py",
                "pydantic/__init__.py",
                "pydantic_core/__init__.py",
                "orjson/__init__.py",
            ),
        ),
        App(
            "medium-layer",
            "medium, automatic_layer",
            ("numpy<2.3", "pandas", "pydantic", "orjson"),
            (
                "numpy/__init__.py",
                "pandas/__init__.py",
                "pydantic/__init__.py",
                "pydantic_core/__init__.py",
                "orjson/__init__.py",
            ),
            automatic_layer=True,
        ),
        App("sdist", "docopt (sdist only)", ("docopt",), ("docopt.py",), from_source=True),
        # A C extension with only an sdist on PyPI: a compiler is needed for every target.
        App(
            "csdist",
            "ciso8601 2.2.0 (C extension, sdist only)",
            ("ciso8601==2.2.0",),
            ("ciso8601.cpython-3*-*-linux-gnu.so",),
            from_source=True,
        ),
        # The newest numpy has no wheel for python3.11's glibc (2.26): `chalice package` tries
        # to build it from source, fails, and ships without it; see what each tool produced.
        App(
            "medium-unpinned",
            "numpy (unpinned) + pandas + pydantic + orjson",
            ("numpy", "pandas", "pydantic", "orjson"),
            ("numpy/__init__.py", "pandas/__init__.py", "pydantic/__init__.py"),
            cold_only=True,
        ),
    )
}

_APP_PY = """\
from chalice import Chalice

app = Chalice(app_name="{name}")


@app.route("/")
def index():
    return {{"app": "{name}", "revision": {revision}}}
"""


def write_project(app: App, root: Path) -> Path:
    """A fresh Chalice project for ``app`` at ``root``: app.py, config.json, requirements."""
    (root / ".chalice").mkdir(parents=True)
    stage: dict[str, object] = {"api_gateway_stage": "api"}
    if app.automatic_layer:
        stage["automatic_layer"] = True
    config = {"version": "2.0", "app_name": f"bench-{app.name}", "stages": {"dev": stage}}
    (root / ".chalice" / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    change_app(app, root, revision=0)
    change_requirements(app, root)
    return root


def change_app(app: App, root: Path, revision: int) -> None:
    """Rewrite app.py with new content (what an app-only change is)."""
    (root / "app.py").write_text(_APP_PY.format(name=f"bench-{app.name}", revision=revision))


def change_requirements(app: App, root: Path, extra_version: str | None = None) -> None:
    """requirements.txt as the spec says, plus ``EXTRA_PACKAGE==extra_version`` if given."""
    extra = [f"{EXTRA_PACKAGE}=={extra_version}"] if extra_version else []
    lines = [*app.requirements, *extra]
    (root / "requirements.txt").write_text("\n".join(lines) + "\n")
