"""``python -m bench``: build each sample app with each tool in each variant, N runs each,
then write BENCHMARKS.md.

Variants (each in its own project copy and its own cache directories):
- cold: a fresh project and empty caches for every run;
- warm: one unmeasured build, then N unchanged rebuilds;
- app-change: one unmeasured build, then N rebuilds each after new app.py content;
- req-change: one unmeasured build, then N rebuilds, each after requirements.txt gains the
  extra package at a version no earlier build of the project saw (one small download);
- other-target, ci-rerun and ci-moved (chalicepack only): see bench/variants.py.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.apps import (
    APPS,
    EXTRA_PACKAGE,
    EXTRA_VERSIONS,
    App,
    change_app,
    change_requirements,
    write_project,
)
from bench.measure import (
    Command,
    Sample,
    ZipStats,
    isolated_environment,
    run_measured,
    zip_stats,
)
from bench.report import render
from bench.tools import ARCH, OURS_ONLY, RUNTIME, TOOLS, Resolved, Tool, Toolchain, Variant
from bench.variants import measure_ours_only

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Measurement:
    app: str
    tool: str
    variant: Variant
    samples: tuple[Sample, ...]
    zips: tuple[ZipStats, ...]  # what the last run left
    # sha256 of each zip after the unmeasured first build, then after each measured run.
    digests: tuple[dict[str, str], ...]
    warnings: tuple[str, ...]  # the tool's missing-dependency warning, if it printed one
    failure: str = ""  # why a measured run failed (its samples end there), or ""


@dataclass
class Run:
    """Everything the report needs; also saved as JSON in build/bench/."""

    command: str
    cpus: int
    runs: int
    apps: list[str]
    tools: list[str]
    started: str
    machine: dict[str, str]
    resolved: dict[str, Resolved] = field(default_factory=dict)
    measurements: list[Measurement] = field(default_factory=list)
    load_at_start: float = 0.0  # 1-minute load average before the first build
    # Share of the machine's CPU time that processes other than the harness's used meanwhile.
    others_cpu_share: float = 0.0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    apps = ["small"] if args.quick and args.apps is None else (args.apps or list(APPS))
    runs = 1 if args.quick and args.runs is None else (args.runs or 3)
    if not 1 <= runs <= len(EXTRA_VERSIONS):
        raise SystemExit(f"--runs must be 1 to {len(EXTRA_VERSIONS)}")
    output = args.output or (REPO / "build/bench/BENCHMARKS-quick.md" if args.quick else None)
    output = output or REPO / "BENCHMARKS.md"
    workdir = Path(tempfile.mkdtemp(prefix="chalicepack-bench-"))
    try:
        tools = Toolchain.find(REPO, workdir)
        run = Run(
            command=_command_line(argv),
            cpus=len(os.sched_getaffinity(0)),
            runs=runs,
            apps=apps,
            tools=args.tools,
            started=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            machine=describe_machine(tools),
            notes=list(args.note),
        )
        _say(f"working in {workdir}; {runs} run(s) per figure")
        run_all(run, tools, workdir, keep=args.keep)
    finally:
        if args.keep:
            _say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(run))
    raw = REPO / "build" / "bench" / f"{output.stem}.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(_raw(run), indent=1) + "\n")
    _say(f"wrote {output} (raw figures: {raw}) in {run.seconds:.0f} s")
    return 0


def run_all(run: Run, tools: Toolchain, workdir: Path, *, keep: bool) -> None:
    """Every app, tool and variant of ``run``, in that order; the figures go into ``run``."""
    run.load_at_start = float(Path("/proc/loadavg").read_text().split()[0])
    busy_at_start = _machine_busy_seconds()
    start = time.monotonic()
    try:
        for name in run.apps:
            app = APPS[name]
            run.resolved[name] = resolve(tools, app, workdir / name / "resolve")
            for tool in (TOOLS[t] for t in run.tools):
                for variant in tool.variants if not app.cold_only else ("cold",):
                    if variant == "other-target" and not app.from_source:
                        continue
                    measurement = measure(
                        tools, tool, app, variant, run.runs, run.resolved[name], workdir, keep
                    )
                    run.measurements.append(measurement)
    finally:
        run.seconds = time.monotonic() - start
        others = _machine_busy_seconds() - busy_at_start - _our_cpu_seconds()
        run.others_cpu_share = max(0.0, others) / (run.seconds * run.cpus)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="1 run, small app only (unless --runs/--apps)"
    )
    parser.add_argument("--apps", type=_names(APPS), help=f"comma-separated: {','.join(APPS)}")
    parser.add_argument("--tools", type=_names(TOOLS), default=list(TOOLS), help="default: all")
    parser.add_argument("--runs", type=int, help="runs per figure (default 3; --quick: 1)")
    parser.add_argument(
        "--output", type=Path, help="default: BENCHMARKS.md (--quick: build/bench/...)"
    )
    parser.add_argument("--note", action="append", default=[], help="a line for the report")
    parser.add_argument("--keep", action="store_true", help="keep the temporary projects")
    return parser


def _names(known: Mapping[str, object]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(known)}")
        return names

    return parse


def resolve(tools: Toolchain, app: App, where: Path) -> Resolved:
    """What chalicepack resolves for the app (``chalicepack check``, unmeasured)."""
    project = write_project(app, where / "project")
    options = ["--json", "--runtime", RUNTIME, "--arch", ARCH]
    cache = ["--cache-dir", str(where / "cp")]
    check = tools.chalicepack("check", str(project), *options, *cache, cwd=project)
    completed = _run(check, isolated_environment(where / "caches"))
    if completed.returncode != 0:
        raise SystemExit(f"chalicepack check failed for {app.name}:\n{completed.stderr}")
    report = json.loads(completed.stdout)
    dependencies = report["dependencies"]
    if any(d["name"] == EXTRA_PACKAGE for d in dependencies):
        raise SystemExit(f"{EXTRA_PACKAGE} is in {app.name}'s set: pick another EXTRA_PACKAGE")
    return Resolved(
        pins=tuple(f"{d['name']}=={d['version']}" for d in dependencies),
        from_source=tuple(d["name"] for d in dependencies if d["built_from_source"]),
    )


def measure(
    tools: Toolchain,
    tool: Tool,
    app: App,
    variant: Variant,
    runs: int,
    resolved: Resolved,
    workdir: Path,
    keep: bool,
) -> Measurement:
    base = workdir / app.name / tool.name / variant
    if variant in OURS_ONLY:
        return _ours_only(tools, tool, app, variant, runs, base, keep)
    samples: list[Sample] = []
    digests: list[dict[str, str]] = []

    def build(project: Path, caches: Path, log: Path) -> Sample:
        tool.reset(project)
        commands: list[Command] = tool.commands(tools, app, project, resolved)
        return run_measured(commands, isolated_environment(caches), log)

    if variant == "cold":
        for number in range(runs):
            project, caches = base / f"project-{number}", base / f"caches-{number}"
            log = base / f"run-{number}.log"
            write_project(app, project)
            samples.append(_report(app, tool, variant, number, runs, build(project, caches, log)))
            digests.append(_digests(tool.outputs(project)))
            if number < runs - 1 and not keep:
                shutil.rmtree(project)
                shutil.rmtree(caches, ignore_errors=True)
    else:
        project, caches, log = base / "project", base / "caches", base / "run.log"
        write_project(app, project)
        build(project, caches, log)
        digests.append(_digests(tool.outputs(project)))
        for number in range(runs):
            if variant == "app-change":
                change_app(app, project, revision=number + 1)
            elif variant == "req-change":
                change_requirements(app, project, EXTRA_VERSIONS[number])
            samples.append(_report(app, tool, variant, number, runs, build(project, caches, log)))
            digests.append(_digests(tool.outputs(project)))
    zips = tuple(zip_stats(name, path) for name, path in tool.outputs(project).items())
    warnings = _missing_warning(log.read_text(errors="replace"))
    if not keep:
        shutil.rmtree(base, ignore_errors=True)
    return Measurement(app.name, tool.name, variant, tuple(samples), zips, tuple(digests), warnings)


def _ours_only(
    tools: Toolchain, tool: Tool, app: App, variant: Variant, runs: int, base: Path, keep: bool
) -> Measurement:
    """chalicepack's own variants (bench/variants.py); a failed run is recorded, not raised."""
    outcome = measure_ours_only(tools, app, variant, runs, base)
    for number, sample in enumerate(outcome.samples):
        _report(app, tool, variant, number, runs, sample)
    if outcome.failure:
        _say(f"{app.name} {tool.name} {variant} failed: {outcome.failure}")
    zips = tuple(zip_stats(name, path) for name, path in outcome.zips.items())
    warnings = _missing_warning(outcome.log.read_text(errors="replace"))
    if not keep:
        shutil.rmtree(base, ignore_errors=True)
    return Measurement(
        app.name, tool.name, variant, outcome.samples, zips, outcome.digests, warnings,
        outcome.failure,
    )  # fmt: skip


def _report(app: App, tool: Tool, variant: str, number: int, runs: int, sample: Sample) -> Sample:
    _say(
        f"{app.name:13} {tool.name:12} {variant:10} run {number + 1}/{runs}: "
        f"{sample.seconds:6.2f} s, peak {sample.peak_rss_mb:5.0f} MB"
    )
    return sample


def _digests(zips: dict[str, Path]) -> dict[str, str]:
    return {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in zips.items()}


def _missing_warning(log: str) -> tuple[str, ...]:
    """The names under the last "Could not install dependencies:" (Chalice's wording, which
    chalicepack prints too), or nothing."""
    _, found, rest = log.rpartition("Could not install dependencies:")
    if not found:
        return ()
    names = []
    for line in rest.splitlines()[1:]:
        if not line.strip() or line.startswith("You will have to"):
            break
        names.append(line.strip().removeprefix("chalicepack: "))
    return tuple(names)


def _run(command: Command, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """An unmeasured command, its output captured."""
    return subprocess.run(
        command.argv,
        cwd=command.cwd,
        env={**env, **dict(command.env)},
        capture_output=True,
        text=True,
        check=False,
    )


def describe_machine(tools: Toolchain) -> dict[str, str]:
    def output(*argv: str, line: str = "") -> str:
        """The first line of the command's output (that starts with ``line``)."""
        completed = _run(Command(argv, REPO), os.environ)
        lines = (completed.stdout or completed.stderr).strip().splitlines()
        return next((text for text in lines if text.startswith(line)), "")

    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown")  # fmt: skip
    meminfo = Path("/proc/meminfo").read_text().split()
    memory_gb = int(meminfo[meminfo.index("MemTotal:") + 1]) * 1024 / 1e9
    venv_python = str(tools.python)
    dirty = output("git", "status", "--porcelain", "--", "src") != ""
    commit = output("git", "rev-parse", "--short", "HEAD")
    version = _run(tools.chalicepack("--version", cwd=REPO), os.environ).stdout.strip()
    source = hashlib.sha256()
    for path in sorted(tools.source.rglob("*.py")):
        source.update(f"{path.relative_to(tools.source)}\0".encode() + path.read_bytes())
    return {
        "CPU": f"{model}, {len(os.sched_getaffinity(0))} CPUs available (nproc)",
        "memory": f"{memory_gb:.1f} GB",
        "OS": f"{platform.system()} {platform.release()}",
        "chalicepack": f"{version} at {commit}"
        + (" with uncommitted changes in src/" if dirty else "")
        + f" (the run used a copy of src/ taken at its start, sha256 {source.hexdigest()[:12]} "
        + f"of its .py files); {output(venv_python, '--version')}, "
        + output(venv_python, "-m", "pip", "--version").split(" from ")[0],
        "chalice": output(str(tools.chalice), "--version")
        + f"; {output(str(tools.bench_python), '-m', 'pip', '--version').split(' from ')[0]}",
        "uv": output(str(tools.uv), "--version"),
        "zip": output(str(tools.zip), "-v", line="This is Zip").removeprefix("This is ")
        if tools.zip
        else "none installed: zipfile at deflate level 6 stands in for `zip -r -q`",
    }


def _command_line(argv: Sequence[str]) -> str:
    """How to run this again: ``make bench`` (with its BENCH_ARGS) when make ran us."""
    if os.environ.get("MAKELEVEL"):
        args = os.environ.get("BENCH_ARGS", "").strip()
        return "make bench" + (f" BENCH_ARGS={shlex.quote(args)}" if args else "")
    return shlex.join([".venv/bin/python", "-m", "bench", *argv])


def _machine_busy_seconds() -> float:
    """CPU seconds all processes have used since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _our_cpu_seconds() -> float:
    """CPU seconds used by the harness and every process it ran (all waited for)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _raw(run: Run) -> dict[str, Any]:
    """The run as JSON, with file counts instead of the zips' file lists."""
    document = asdict(run)
    for measurement in document["measurements"]:
        for stats in measurement["zips"]:
            stats["files"] = len(stats["files"])
    return document


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)
