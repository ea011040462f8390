"""The software bill of materials beside the zips: ``sbom.cdx.json``, CycloneDX 1.6.

One component per distribution the build reports as shipped (name, version, ``pkg:pypi`` purl,
the sha256 of the wheel installed, its license from the wheel's METADATA where it says one), the
app itself as the BOM's subject, and who requires whom as the dependency graph. Written with
cyclonedx-python-lib, whose models serialise to the schema. Byte-reproducible like the zips: the
serial number is derived from the content, and the timestamp is ``SOURCE_DATE_EPOCH``'s or left
out (a build time would make every rebuild differ).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.errors import MessageError
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.metadata import parse_email

from chalicepack import __version__
from chalicepack.package.digest import file_sha256
from chalicepack.report import BuildReport, write_json_atomically

if TYPE_CHECKING:
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model.license import License
    from packageurl import PackageURL

SBOM_NAME = "sbom.cdx.json"
# A License field longer than this, or on several lines, is the license's text, not its name.
_LICENSE_NAME_LIMIT = 100
# Namespace of the content-derived serial numbers (uuid5 of the BOM's content).
_SERIAL_NAMESPACE = uuid.UUID("5b3f9a57-45a3-4f47-9e54-7a0c3f6b3c2e")


@dataclass(frozen=True)
class ShippedDistribution:
    """What the SBOM says of one distribution in the zips."""

    name: str
    version: str
    wheel_sha256: str
    licenses: tuple[str, ...]  # SPDX expressions or names, from the wheel's METADATA
    requires: tuple[str, ...]  # the names of the shipped distributions it requires
    built_from_source: bool

    @property
    def purl(self) -> PackageURL:
        from packageurl import PackageURL

        return PackageURL(type="pypi", name=self.name, version=self.version)


def shipped_distributions(
    report: BuildReport, wheels: Mapping[str, Path]
) -> list[ShippedDistribution]:
    """The report's dependencies (what ships), with what their wheels say. The one place the
    report is read, so the report's shape concerns only this function."""
    requires: dict[str, list[str]] = {d.name: [] for d in report.dependencies}
    for dependency in report.dependencies:
        for parent in dependency.required_by:
            if parent in requires:
                requires[parent].append(dependency.name)
    return [
        ShippedDistribution(
            name=d.name,
            version=d.version,
            wheel_sha256=file_sha256(wheels[d.name]),
            licenses=wheel_licenses(wheels[d.name]),
            requires=tuple(sorted(requires[d.name])),
            built_from_source=d.built_from_source,
        )
        for d in report.dependencies
    ]


def preload() -> None:
    """Import cyclonedx-python-lib now (0.3-0.5 s), on a thread that would otherwise wait:
    the SBOM is written last, once nothing else is left to overlap with."""
    import cyclonedx.contrib.license.factories
    import cyclonedx.model.bom
    import cyclonedx.output.json  # noqa: F401


def wheel_licenses(wheel: Path) -> tuple[str, ...]:
    """The license a wheel's METADATA declares: License-Expression (PEP 639), else a short
    License field, else the ``License ::`` classifiers' names; () when it says none."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            name = next(
                n
                for n in archive.namelist()
                if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
            )
            raw, _ = parse_email(archive.read(name))
    except (OSError, StopIteration, zipfile.BadZipFile, MessageError, ValueError):
        return ()
    if expression := raw.get("license_expression", "").strip():
        return (expression,)
    text = raw.get("license", "").strip()
    if text and "\n" not in text and len(text) <= _LICENSE_NAME_LIMIT and text != "UNKNOWN":
        return (text,)
    classifiers = raw.get("classifiers", [])
    return tuple(c.split(" :: ")[-1] for c in classifiers if c.startswith("License :: "))


def sbom_document(
    app_name: str,
    stage: str,
    distributions: Sequence[ShippedDistribution],
    artifact_sha256s: Sequence[str],
    epoch: str | None,
) -> dict[str, Any]:
    """The CycloneDX 1.6 JSON document."""
    # Imported here: cyclonedx-python-lib takes 0.3 s to import, which every start of the
    # Action and the CLI (this module is imported with the pipeline) would pay for nothing.
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6

    factory = LicenseFactory()
    app = Component(
        name=app_name,
        type=ComponentType.APPLICATION,
        bom_ref=f"app:{app_name}",
        properties=[Property(name="chalicepack:stage", value=stage)],
    )
    components = {
        d.name: Component(
            name=d.name,
            version=d.version,
            type=ComponentType.LIBRARY,
            bom_ref=d.purl.to_string(),
            purl=d.purl,
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=d.wheel_sha256)],
            licenses=_licenses(factory, d.licenses),
            properties=[Property(name="chalicepack:built_from_source", value="true")]
            if d.built_from_source
            else None,
        )
        for d in distributions
    }
    bom = Bom(components=components.values(), metadata=BomMetaData(component=app))
    bom.metadata.tools.components.add(
        Component(name="chalicepack", version=__version__, type=ComponentType.APPLICATION)
    )
    top = [components[d.name] for d in distributions if not _required(d, distributions)]
    bom.register_dependency(app, top)
    for d in distributions:
        bom.register_dependency(components[d.name], [components[name] for name in d.requires])
    bom.serial_number = _serial(app_name, stage, distributions, artifact_sha256s)
    bom.metadata.timestamp = _timestamp(epoch)  # type: ignore[assignment]
    document: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string())
    return document


def write_sbom(
    out_dir: Path,
    report: BuildReport,
    wheels: Mapping[str, Path],
    distributions: Sequence[ShippedDistribution] | None = None,
) -> Path:
    """Write ``sbom.cdx.json`` in ``out_dir`` for the build ``report`` describes;
    ``distributions``: ``shipped_distributions(report, wheels)`` when already read."""
    if distributions is None:
        distributions = shipped_distributions(report, wheels)
    zips = sorted(artifact.sha256 for artifact in report.artifacts.values())
    document = sbom_document(
        report.app_name,
        report.stage,
        distributions,
        zips,
        os.environ.get("SOURCE_DATE_EPOCH"),
    )
    path = out_dir / SBOM_NAME
    write_json_atomically(path, document)
    return path


def _licenses(factory: LicenseFactory, names: Sequence[str]) -> list[License]:
    return [factory.make_from_string(name) for name in names]


def _required(distribution: ShippedDistribution, others: Sequence[ShippedDistribution]) -> bool:
    return any(distribution.name in other.requires for other in others)


def _serial(
    app_name: str,
    stage: str,
    distributions: Sequence[ShippedDistribution],
    artifact_sha256s: Sequence[str],
) -> uuid.UUID:
    """Unique per BOM content (the zips' digests cover the app's code), the same on a rebuild."""
    wheels = [(d.name, d.version, d.wheel_sha256) for d in distributions]
    content = [app_name, stage, wheels, list(artifact_sha256s)]
    digest = hashlib.sha256(json.dumps(content).encode()).hexdigest()
    return uuid.uuid5(_SERIAL_NAMESPACE, digest)


def _timestamp(epoch: str | None) -> datetime.datetime | None:
    if not epoch:
        return None
    try:
        return datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None  # the zips' writer has already refused a SOURCE_DATE_EPOCH that is not
