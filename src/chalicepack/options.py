"""What each command is asked to do, as values: ``build``/``check``, ``package`` and
``publish-layer``. The CLI (``cli``, all of argparse) and the Action (``action.inputs``, through
the CLI's parser) make them; the stages take them. Cheap to import: an unchanged build reads
them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from chalicepack.errors import BadInput
from chalicepack.inputs.config import DEFAULT_STAGE
from chalicepack.report import REPORT_NAME


@dataclass(frozen=True)
class BuildOptions:
    project_dir: Path
    stage: str = DEFAULT_STAGE
    out_dir: Path | None = None  # default: <project>/dist
    automatic_layer: bool | None = None  # None: as config.json says
    runtime: str | None = None  # default: the running interpreter's python3.X
    arch: str | None = None  # default: config.json's lambda_architecture, else x86_64
    strict: bool = False
    check_only: bool = False  # resolve and report; write no zip
    import_app: bool = True  # import app.py from the staged package, as Chalice does
    import_timeout: float = 60.0
    refresh: bool = False  # resolve requirements again even if a recent resolution is cached
    exclude: tuple[str, ...] = ()  # globs of dependency/vendor paths to leave out
    without_runtime_provided: bool = False  # leave out boto3 & co, which Lambda provides
    cache_dir: Path | None = None  # default: $XDG_CACHE_HOME/chalicepack
    resolver: str = "auto"  # "auto": uv where it answers as pip would (see deps.uv_resolver); "pip"
    requirements: Path | None = None  # a requirements file or lock (see inputs.locks); None: found
    groups: tuple[str, ...] = ()  # a lock's dependency groups to ship besides the production set
    extras: tuple[str, ...] = ()  # the project's extras to ship, from a lock


@dataclass(frozen=True)
class PublishOptions:
    """What ``publish-layer`` publishes, and where (boto3 is imported only to publish)."""

    report_path: Path = Path("dist") / REPORT_NAME
    layer_name: str | None = None  # default: <app_name>-<stage>-managed-layer, as Chalice names it
    s3_bucket: str | None = None  # needed for a layer zip over 50 MB
    region: str | None = None  # default: AWS_REGION, then boto3's (AWS_DEFAULT_REGION, profile)


PkgFormat = Literal["cloudformation", "terraform"]


TemplateFormat = Literal["json", "yaml"]


PKG_FORMATS: tuple[PkgFormat, ...] = ("cloudformation", "terraform")


TEMPLATE_FORMATS: tuple[TemplateFormat, ...] = ("json", "yaml")


@dataclass(frozen=True)
class PackageOptions:
    """``chalicepack package``'s input: the build's options plus ``chalice package``'s."""

    build: BuildOptions  # its out_dir is ignored: the zips go to out_dir below
    out_dir: Path
    pkg_format: PkgFormat = "cloudformation"
    template_format: TemplateFormat = "json"
    merge_template: Path | None = None
    profile: str | None = None

    @classmethod
    def parse(
        cls,
        build: BuildOptions,
        out_dir: Path,
        pkg_format: str = "cloudformation",
        template_format: str = "json",
        merge_template: Path | None = None,
        profile: str | None = None,
    ) -> PackageOptions:
        """Check the ``chalice package`` options; raise one ``BadInput`` naming the option."""
        if pkg_format not in PKG_FORMATS:
            raise BadInput(
                f"--pkg-format {pkg_format!r} is not supported; use one of: "
                + ", ".join(PKG_FORMATS)
            )
        template_format = template_format.lower()  # Chalice accepts any case
        if template_format not in TEMPLATE_FORMATS:
            raise BadInput(
                f"--template-format {template_format!r} is not supported; use one of: "
                + ", ".join(TEMPLATE_FORMATS)
            )
        if pkg_format == "terraform" and (merge_template is not None or template_format != "json"):
            raise BadInput(
                "--pkg-format terraform writes chalice.tf.json only: it takes no "
                "--merge-template and no --template-format yaml (as with chalice package); "
                "drop them, or use --pkg-format cloudformation"
            )
        if merge_template is not None and not merge_template.is_file():
            raise BadInput(
                f"--merge-template {merge_template}: no such file; give the JSON or YAML "
                "template to merge into the generated one"
            )
        return cls(
            build=build,
            out_dir=out_dir,
            pkg_format=pkg_format,
            template_format=template_format,
            merge_template=None if merge_template is None else merge_template.resolve(),
            profile=profile,
        )
