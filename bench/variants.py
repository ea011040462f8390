"""chalicepack's own variants, which other tools have no counterpart for.

- other-target: one build for the default target and one for OTHER_ARCH (warming every cache,
  zig's stubs for both machines included; unmeasured), then before each measured run what
  chalicepack keeps per target for OTHER_ARCH is dropped (its resolution records and the
  wheels built for it; ``_drop_built_for``), and the run builds the project for OTHER_ARCH
  into a new output dir: a real source build for a second target with warm build caches.
- ci-rerun: one cold build (unmeasured), then the project (with its dist/) and the caches are
  archived by tar; before each run both are deleted and restored from the archive (tar keeps
  mtimes), as a new CI runner gets a fresh checkout and actions/cache restores the cache, at
  the same paths. The measured build runs under ``unshare -n`` (no network): a build that
  needed the network fails.
- ci-moved: as ci-rerun, but restored under another path (``restored-N``), as on a CI whose
  checkout path changes between jobs (the cached resolution is keyed on the requirements
  files' paths from the project, not from /, so it is found there too).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.apps import App, write_project
from bench.measure import Command, CommandFailed, Sample, isolated_environment, run_measured
from bench.tools import OTHER_ARCH, Toolchain, Variant, chalicepack_build, zips_in


@dataclass(frozen=True)
class Outcome:
    samples: tuple[Sample, ...]
    # sha256 of each zip after the unmeasured first build, then after each measured run.
    digests: tuple[dict[str, str], ...]
    zips: dict[str, Path]  # what the last build left (or the first, when a run failed)
    log: Path  # the measured runs' output only
    failure: str  # why a measured run failed, or ""


def measure_ours_only(
    tools: Toolchain, app: App, variant: Variant, runs: int, base: Path
) -> Outcome:
    project, caches = write_project(app, base / "project"), base / "caches"
    setup_log, log = base / "setup.log", base / "run.log"
    log.touch()
    # The first build is the same in both variants: the default target, empty caches.
    run_measured(
        [chalicepack_build(tools, project, project / "dist")],
        isolated_environment(caches),
        setup_log,
    )
    zips = zips_in(project / "dist")
    digests = [_digests(zips)]
    if variant == "other-target":
        other = chalicepack_build(tools, project, project / f"dist-{OTHER_ARCH}-warm", OTHER_ARCH)
        run_measured([other], isolated_environment(caches), setup_log)
    samples: list[Sample] = []
    try:
        for number in range(runs):
            if variant == "other-target":
                out = project / f"dist-{OTHER_ARCH}-{number}"
                command = chalicepack_build(tools, project, out, OTHER_ARCH)
                env = isolated_environment(caches)
                _drop_built_for(caches / "xdg" / "chalicepack", OTHER_ARCH)
            else:
                out, command, env = _restored(tools, base, number, variant == "ci-moved")
            samples.append(run_measured([command], env, log))
            zips = zips_in(out)
            digests.append(_digests(zips))
    except CommandFailed as failed:
        return Outcome(tuple(samples), tuple(digests), {}, log, _why(str(failed), log))
    return Outcome(tuple(samples), tuple(digests), zips, log, "")


def _restored(
    tools: Toolchain, base: Path, number: int, moved: bool
) -> tuple[Path, Command, dict[str, str]]:
    """The project and caches restored by tar (archived before the first run) in place of the
    originals, or ``moved`` into a new directory; the offline build there: its output dir,
    command and environment."""
    archive = base / "restore.tar"
    if number == 0:
        subprocess.run(["tar", "-C", str(base), "-cf", str(archive), "project", "caches"],
                       check=True)  # fmt: skip
    place = base / f"restored-{number}" if moved else base
    if moved:
        place.mkdir()
    else:
        for name in ("project", "caches"):
            shutil.rmtree(place / name)
    subprocess.run(["tar", "-C", str(place), "-xf", str(archive)], check=True)
    project = place / "project"
    build = chalicepack_build(tools, project, project / "dist")
    # unshare -n: a new network namespace with only a down loopback, so no index is reachable.
    offline = Command(("unshare", "-n", *build.argv), build.cwd, build.env)
    return project / "dist", offline, isolated_environment(place / "caches")


def _drop_built_for(cache: Path, arch: str) -> None:
    """Forget what chalicepack keeps per target for ``arch``: the resolution records built for
    it (else the next build reuses them) and the wheels built for it (else the store still
    holds the very file); the build caches (uv's, zig's, the sdists) stay."""
    machine = {"arm64": "aarch64"}.get(arch, arch)
    for record in (cache / "resolutions").glob("*.json"):
        builds = json.loads(record.read_text()).get("source_builds", [])
        if any(build["target"].endswith(f" {arch}") for build in builds):
            record.unlink()
    for wheel in (cache / "wheels").glob(f"*/*_{machine}.whl"):
        wheel.unlink()


def _why(failed: str, log: Path) -> str:
    """A failed run in one line: its exit code and the tool's last error line."""
    code = re.search(r"exited with (-?\d+)", failed)
    lines = log.read_text(errors="replace").splitlines()
    errors = [line for line in lines if "error" in line.lower()] or lines[-1:] or [failed]
    return f"exit {code[1] if code else '?'}: {errors[-1].strip()}"


def _digests(zips: dict[str, Path]) -> dict[str, str]:
    return {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in zips.items()}
