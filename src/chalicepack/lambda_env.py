"""Facts of Lambda's Python runtime, in one place: its size limits, checked from file sizes
before anything is zipped (``publish-layer`` and the Action's summary use them too), and what the
runtime itself provides on ``sys.path``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from chalicepack.errors import BadInput
from chalicepack.package.archive import ZipEntry
from chalicepack.report import human_size

# Lambda's quotas (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
UNZIPPED_LIMIT = 262_144_000  # 250 MiB unzipped: a function and all its layers together
DIRECT_UPLOAD_LIMIT = 52_428_800  # 50 MiB zipped: a bigger zip must come from S3
BIGGEST_SHOWN = 5

# What Lambda's Python runtime has on sys.path itself (/var/runtime): an app may import these
# without shipping them, as Chalice's documentation allows for boto3. Distribution -> import name.
RUNTIME_PROVIDED = {
    "boto3": "boto3",
    "botocore": "botocore",
    "s3transfer": "s3transfer",
    "jmespath": "jmespath",
    "python-dateutil": "dateutil",
    "urllib3": "urllib3",
    "six": "six",
}
# Of those, the AWS SDK's own: ``--without-runtime-provided`` always leaves them out. The rest
# are left out only when nothing but the SDK needs them: another package may need a release of
# urllib3 or six that the runtime's copy is not.
RUNTIME_SDK = ("boto3", "botocore", "s3transfer", "jmespath")


def refuse_over_unzipped_limit(entries: Sequence[ZipEntry], project_root: Path) -> None:
    """Refuse a package Lambda would refuse: ``entries`` (the function's and the layer's, each
    file once) over 250 MB unzipped. Sizes come from ``stat`` and the wheels' listings, so a
    huge file is refused without being read."""
    sizes = [(entry.size, entry) for entry in entries]
    total = sum(size for size, _ in sizes)
    if total <= UNZIPPED_LIMIT:
        return
    biggest = sorted(sizes, key=lambda item: (-item[0], item[1].arcname))[:BIGGEST_SHOWN]
    listing = ", ".join(f"{_origin(entry, project_root)} ({human_size(s)})" for s, entry in biggest)
    raise BadInput(
        f"the function and its layer would be {human_size(total)} unzipped ({total} bytes), over"
        f" Lambda's limit of {UNZIPPED_LIMIT} bytes (250 MB) for a function and its layers;"
        f" the biggest files: {listing}; remove what the function does not need (load big data"
        " from S3 at run time)"
    )


def _origin(entry: ZipEntry, project_root: Path) -> str:
    """Where a file to ship comes from, as the user knows it."""
    if entry.raw is not None:
        return f"{entry.arcname} from {entry.raw.archive.name}"
    if entry.source.is_relative_to(project_root):
        return str(entry.source.relative_to(project_root))
    return entry.arcname
