"""The layer zip's reuse: when a rebuild would write the same bytes, the last build's layer zip
is kept as it is (its sha256, and so the published layer version, stay the same)."""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chalicepack import __version__
from chalicepack.package.archive import ZipEntry, raw_copyable, stage_zip, zip_timestamp
from chalicepack.package.digest import DigestRecord, file_sha256
from chalicepack.report import REPORT_NAME, Artifact, BuildReport

log = logging.getLogger(__name__)

LAYER_ZIP = "layer-deployment.zip"


@dataclass(frozen=True)
class LayerReuse:
    inputs: str | None  # what the layer zip's bytes are made of (see layer_inputs)
    kept: Artifact | None  # the last build's layer artifact, made of the same, kept


def reusable_layer(
    out_dir: Path, entries: Sequence[ZipEntry] | None, digests: DigestRecord
) -> LayerReuse:
    """The layer zip the last build left in ``out_dir``, when it was made of the same inputs
    and is still, byte for byte, what that build reported: it is kept rather than written
    again (the same bytes; its modification time stays too, for tools that look at it)."""
    if entries is None:
        return LayerReuse(None, None)
    inputs = layer_inputs(entries)
    path = out_dir / LAYER_ZIP
    try:
        document = json.loads((out_dir / REPORT_NAME).read_text(encoding="utf-8"))
        last = BuildReport.from_json(document).artifacts["layer"]
        if (
            inputs is not None
            and last.inputs_sha256 == inputs
            and Path(last.path) == path
            and path.stat().st_size == last.size
            and digests.sha256(path) == last.sha256  # hashed, unless verified unchanged
        ):
            digests.save()
            log.info("the layer's contents are unchanged: keeping %s", path)
            return LayerReuse(inputs, last)
    except (OSError, ValueError, KeyError):
        pass  # no usable report of a layer: write it
    return LayerReuse(inputs, None)


_LAYER_INPUTS_FORMAT = "chalicepack layer inputs 1"  # a new digest when what it covers changes


_SHA256_HEX = re.compile("[0-9a-f]{64}")


def layer_inputs(entries: Sequence[ZipEntry]) -> str | None:
    """A digest of everything the bytes of a zip of ``entries`` depend on: each entry's path,
    mode and data (a wheel member's, named by the wheel's sha256 and the member's name; else
    the file's sha256), the timestamp, zlib (which deflates files) and the writer's own code.
    None when a wheel is not named by its sha256 in the store."""
    from chalicepack.deps.install import stored_sha256  # (installer: imported when needed)

    writer = Path(inspect.getfile(stage_zip)).read_bytes()
    header = [
        _LAYER_INPUTS_FORMAT, __version__, hashlib.sha256(writer).hexdigest(),
        zlib.ZLIB_RUNTIME_VERSION, list(zip_timestamp()),
    ]  # fmt: skip
    digest = hashlib.sha256(json.dumps(header).encode())
    for entry in sorted(entries, key=lambda entry: entry.arcname):
        if entry.raw is not None and raw_copyable(entry.raw.info):  # as the writer decides
            wheel = stored_sha256(entry.raw.archive)
            if not _SHA256_HEX.fullmatch(wheel):
                return None
            info = entry.raw.info
            data = f"{wheel}\0{info.filename}\0{info.header_offset}\0{info.CRC}"
        else:
            data = file_sha256(entry.source)
        digest.update(f"\0{entry.arcname}\0{entry.mode:o}\0{data}".encode())
    return digest.hexdigest()
