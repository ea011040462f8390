"""An unchanged rebuild is a hash check: when every input of the last build in the output
directory is the same and its zips are intact, that build's report is the answer.

The fingerprint covers chalicepack's and chalice's versions, the options that shape the
package, config.json, every file that ships from the project (content for files up to 1 MiB;
size and modification time for bigger vendor files, which are seldom edited and costly to
hash; and its executable bit, which the zip records), the resolution reused from the cache
(whose key covers what local path requirements hold, see ``cache``) and ``SOURCE_DATE_EPOCH``.

A zip is intact when its sha256 is the one in the report. Hashing a 30 MB zip costs more than
the rest of the check, so verified digests are kept in the cache (``outputs/``) and a zip whose
stat is unchanged since it was hashed is not hashed again (``digest.DigestRecord``).

This module imports only what the check needs; the pipeline (pip, installer, the zip writer,
the import check) loads only when there is something to build.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from chalicepack import __version__
from chalicepack.inputs.config import StageConfig, load_stage_config
from chalicepack.inputs.locks import requirements_file
from chalicepack.inputs.names import check_function_names
from chalicepack.inputs.project import Project, scan_project
from chalicepack.inputs.target import Target, host_runtime
from chalicepack.options import BuildOptions
from chalicepack.package.cache import (
    DEFAULT_MAX_AGE,
    default_cache_dir,
    resolution_key,
    reusable_resolution,
    usable_cache_dir,
    usable_directory,
)
from chalicepack.package.chaliceruntime import installed_version
from chalicepack.package.digest import DigestRecord, add_file_fingerprint
from chalicepack.report import (
    REPORT_NAME,
    Artifact,
    BuildReport,
    BuildResult,
    reported_missing_warning,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildInputs:
    """What a build is built from, as read before anything is resolved or installed."""

    options: BuildOptions
    project: Project
    config: StageConfig
    target: Target
    automatic_layer: bool
    out_dir: Path
    cache_dir: Path
    settings: Mapping[str, Any]  # the options that shape the package, as the fingerprint has them

    @classmethod
    def read(cls, options: BuildOptions) -> BuildInputs:
        """Read the config and the project tree; raise a ``ChalicepackError`` naming the fix."""
        project_dir = options.project_dir.resolve()
        config = load_stage_config(project_dir, options.stage)
        check_function_names(config)
        target = Target.parse(
            options.runtime or host_runtime(), options.arch or config.architecture or "x86_64"
        )
        project = scan_project(project_dir)
        cache_dir = usable_cache_dir(
            (options.cache_dir or default_cache_dir()).resolve(), options.cache_dir is not None
        )
        # A lock becomes the exact requirements it pins, generated into the cache (see locks).
        requirements = requirements_file(
            project_dir, options.requirements, target, cache_dir, options.groups, options.extras
        )
        project = replace(project, requirements=requirements)
        automatic_layer = (
            config.automatic_layer if options.automatic_layer is None else options.automatic_layer
        )
        settings = {
            "stage": config.stage,
            "runtime": target.runtime,
            "arch": target.arch,
            "automatic_layer": automatic_layer,
            "import_app": options.import_app,
            "strict": options.strict,
            "exclude": list(options.exclude),
            "without_runtime_provided": options.without_runtime_provided,
        }
        return cls(
            options=options,
            project=project,
            config=config,
            target=target,
            automatic_layer=automatic_layer,
            out_dir=usable_directory(
                (options.out_dir or project_dir / "dist").resolve(), "the output directory"
            ),
            cache_dir=cache_dir,
            settings=settings,
        )


def unchanged_build(inputs: BuildInputs) -> BuildResult | None:
    """The last build's result, when nothing it was built from changed and its zips are intact."""
    report_path = inputs.out_dir / REPORT_NAME
    try:
        report = BuildReport.from_json(json.loads(report_path.read_bytes()))
    except (OSError, ValueError):
        return None  # none, or not one this version reads: build
    if not report.artifacts:
        return None
    token = None
    if inputs.project.requirements is not None:
        try:
            key = resolution_key(
                inputs.project.requirements, inputs.target, inputs.options.resolver
            )
        except (OSError, ValueError, LookupError):  # LookupError: an unknown coding named
            return None  # the build reads requirements.txt again, and says what is wrong
        # --refresh: resolve again, however pinned the requirements are.
        refresh = inputs.options.refresh
        token = None if refresh else reusable_resolution(inputs.cache_dir, key, DEFAULT_MAX_AGE)
        if token is None:
            return None  # requirements must be resolved again: that alone may change the package
    fingerprint = build_fingerprint(inputs.project, inputs.config.path, inputs.settings, token)
    if report.fingerprint != fingerprint:
        return None
    if not _zips_intact(report.artifacts, zip_digests_path(inputs.cache_dir, inputs.out_dir)):
        return None
    log.info("nothing changed since the last build in %s: keeping its zips", inputs.out_dir)
    warnings = []
    warning = reported_missing_warning(report)
    if warning is not None:
        warnings.append(warning)
        log.warning("%s", warning)
    return BuildResult(report, report_path, warnings)


def build_fingerprint(
    project: Project,
    config_path: Path,
    settings: Mapping[str, Any],
    resolution: str | None,
) -> str:
    """The digest of everything a build's zips depend on; ``resolution`` identifies the
    reused resolution (None for a project without requirements.txt)."""
    digest = hashlib.sha256()
    header = {
        "chalicepack": __version__,
        "chalice": installed_version(),
        "settings": dict(settings),
        "resolution": resolution,
        "source_date_epoch": os.environ.get("SOURCE_DATE_EPOCH"),
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    digest.update(config_path.read_bytes())
    for file in [*project.app_files, *project.vendor_files]:
        add_file_fingerprint(digest, file.arcname, file.path)
    return digest.hexdigest()


def zip_digests_path(cache_dir: Path, out_dir: Path) -> Path:
    """Where the verified digests of the zips in ``out_dir`` are recorded."""
    key = hashlib.sha256(os.fsencode(out_dir)).hexdigest()
    return cache_dir / "outputs" / f"{key}.json"


def _zips_intact(artifacts: Mapping[str, Artifact], digests_path: Path) -> bool:
    """Whether each zip has the sha256 the report gives it (see ``digest.DigestRecord``)."""
    record = DigestRecord(digests_path)
    try:
        for artifact in artifacts.values():
            path = Path(artifact.path)
            try:
                intact = (
                    path.stat().st_size == artifact.size and record.sha256(path) == artifact.sha256
                )
            except OSError:
                log.info("%s is gone since the last build; building again", path)
                return False
            if not intact:
                log.info("%s changed since the last build; building again", path)
                return False
        return True
    finally:
        record.save()
