"""The exception tree; exit codes are assigned from it in exactly one place (``cli``)."""

from __future__ import annotations

from pathlib import Path


class ChalicepackError(Exception):
    """Root of every error chalicepack raises on purpose; the message is for the user.

    ``file`` and ``line``, when known, say where the problem is, so the Action can annotate it.
    """

    exit_code = 1

    def __init__(self, message: str, *, file: Path | None = None, line: int | None = None):
        super().__init__(message)
        self.file = file
        self.line = line


class BadInput(ChalicepackError):
    """Input the user must fix (config, requirements line, project tree, CLI input): exit 2."""

    exit_code = 2


class ConfigError(BadInput):
    """``.chalice/config.json`` is missing, malformed or names an unknown stage."""


class ProjectError(BadInput):
    """The project tree cannot be packaged as it is (no app.py, escaping symlink, ...)."""


class RequirementsError(BadInput):
    """A requirements.txt line cannot be parsed or resolved at all."""


class BuildFailure(ChalicepackError):
    """The build failed for a reason outside the project (network, index, disk): exit 1."""


class MissingDependencies(ChalicepackError):
    """Some dependencies have no build usable on the target and ``--strict`` was given.

    ``report_path`` is the build-report.json written before refusing to write zips.
    """

    def __init__(self, message: str, *, report_path: Path) -> None:
        super().__init__(message)
        self.report_path = report_path


class PublishError(BuildFailure):
    """AWS could not be reached, or refused the credentials or a permission, while publishing."""


class AppImportError(BadInput):
    """Importing ``app.py`` as Lambda will load it failed: an exception, a missing module,
    a syntax error, a timeout, or no Chalice ``app`` object.

    ``output`` is what the app printed before it failed, so the caller can log it.
    """

    def __init__(
        self,
        message: str,
        *,
        file: Path | None = None,
        line: int | None = None,
        output: str = "",
        timed_out: bool = False,
    ):
        super().__init__(message, file=file, line=line)
        self.output = output
        self.timed_out = timed_out  # past --import-timeout (no exception to read)
