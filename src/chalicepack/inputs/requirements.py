"""requirements.txt as the user wrote it: which line names which project.

pip reads the file itself (every option it supports keeps working); this module only maps
project names back to ``file:line`` so warnings and annotations point at the right line.
"""

from __future__ import annotations

import codecs
import itertools
import os
import re
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from urllib.request import url2pathname

from packaging.utils import canonicalize_name

from chalicepack.errors import RequirementsError

if TYPE_CHECKING:
    from packaging.requirements import InvalidRequirement

_INCLUDE_OPTIONS = ("-r", "--requirement")
# Lines pip accepts that do not name a project by PEP 508 syntax: paths, URLs, VCS links.
_LOCATION = re.compile(r"^(\.|/|~|[a-zA-Z][a-zA-Z0-9+.-]*://|[a-zA-Z]:\\)|\.(whl|zip|tar\.gz)$")
# pip takes a line naming an archive file as a path to it unless it is ``name @ url``.
_ARCHIVE = re.compile(r"\.(whl|zip|tar\.gz|tar\.bz2|tgz)$", re.IGNORECASE)
# ``name @ url`` (with extras): a direct reference, its URL after the "@".
_NAMED_URL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?\s*@")
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
# An option line: the option, then its value after whitespace or "=".
_OPTION = re.compile(r"(-[^\s=]*)(?:[\s=]\s*(.*))?$")


@dataclass(frozen=True)
class RequirementLine:
    path: Path
    lineno: int
    text: str
    name: str | None  # canonical project name; None for a path or URL requirement

    def where(self, root: Path | None = None) -> str:
        path = self.path
        if root is not None and path.is_relative_to(root):
            path = path.relative_to(root)
        return f"{path}:{self.lineno}"


def read_requirement_lines(path: Path) -> tuple[RequirementLine, ...]:
    """Every requirement in ``path`` and the files it includes with ``-r``."""
    return tuple(_read(path.resolve(), stack=(), included_by=None))


@dataclass(frozen=True)
class _Include:
    """The ``-r`` line that included a file: where it is and what it says."""

    path: Path
    lineno: int
    text: str


def _read(
    path: Path, stack: tuple[Path, ...], included_by: _Include | None
) -> Iterator[RequirementLine]:
    if path in stack and included_by is not None:
        chain = " -> ".join(item.name for item in (*stack[stack.index(path) :], path))
        raise RequirementsError(
            f"{included_by.path}:{included_by.lineno}: {included_by.text!r} includes {path},"
            f" which is already being read (a -r loop: {chain}); remove that line",
            file=included_by.path,
            line=included_by.lineno,
        )
    try:
        text = read_requirements_text(path)
    except FileNotFoundError:
        if included_by is None:
            raise RequirementsError(f"requirements file {path} does not exist") from None
        raise RequirementsError(
            f"{included_by.path}:{included_by.lineno}: {included_by.text!r}: {path} does not"
            f" exist; fix the path (relative to {included_by.path.parent}) or remove the line",
            file=included_by.path,
            line=included_by.lineno,
        ) from None
    except (OSError, UnicodeDecodeError, LookupError) as error:
        raise RequirementsError(
            f"{path}: cannot read requirements: {error}; make it a readable UTF-8 file",
            file=path,
        ) from error
    for lineno, line in _logical_lines(text):
        if line.startswith("-"):
            include = _included_file(line)
            if include is not None:
                yield from _read(
                    (path.parent / include).resolve(),
                    (*stack, path),
                    _Include(path, lineno, line),
                )
            continue
        yield RequirementLine(path, lineno, line, _project_name(path, lineno, line))


# As pip decodes a requirements file: a byte order mark says the encoding (Windows editors
# write one), else a PEP 263 comment on one of the first two lines, else UTF-8. The order
# matters: UTF-16-LE's mark begins UTF-32-LE's.
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)
_CODING = re.compile(rb"coding[:=]\s*([-\w.]+)")


def read_requirements_text(path: Path) -> str:
    """``path``'s text as pip reads it; raise ``UnicodeDecodeError`` or ``LookupError`` (an
    unknown encoding named) when it cannot be read so. pip falls back to the locale's
    encoding where UTF-8 fails: not here, so that a build reads the file alike everywhere."""
    data = path.read_bytes()
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding)
    for line in data.split(b"\n")[:2]:
        declared = _CODING.search(line) if line.startswith(b"#") else None
        if declared is not None:
            return data.decode(declared.group(1).decode("ascii"))
    return data.decode("utf-8")


def referenced_files(path: Path) -> list[Path]:
    """``path`` and every file it names with ``-r`` or ``-c``, recursively: what a build read."""
    seen: list[Path] = []
    pending = [path.resolve()]
    while pending:
        current = pending.pop()
        if current in seen or not current.is_file():
            continue
        seen.append(current)
        for _, line in _logical_lines(read_requirements_text(current)):
            if line.startswith("-"):
                named = _included_file(line) or _constraints_file(line)
                if named is not None:
                    pending.append((current.parent / named).resolve())
    return seen


def logical_lines(path: Path) -> Iterator[tuple[Path, int, str]]:
    """Each logical line (comments cut, continuations joined) of ``path`` and of every file it
    names with ``-r`` or ``-c``, with its file and first line number."""
    for current in referenced_files(path):
        for lineno, line in _logical_lines(read_requirements_text(current)):
            yield current, lineno, line


def local_sources(path: Path) -> list[Path]:
    """The directories and files that requirement lines of ``path`` (and of the files it
    names with ``-r`` or ``-c``) name as local sources (``./pkg``, ``-e ./pkg``,
    ``./dist/pkg-1.0-py3-none-any.whl``, ``pkg @ file:///...``), where pip finds them."""
    sources: list[Path] = []
    for _, _, line in logical_lines(path):
        location = _local_location(_expand_variables(line))
        if location is None:
            continue
        # pip reads a relative path from its working directory (this process's), not from
        # the requirements file's folder as it does for -r, -c and --find-links.
        found = Path(os.path.abspath(location))
        if found.exists() and found not in sources:
            sources.append(found)
    return sources


def _local_location(line: str) -> str | None:
    """The path a requirement line names its source by, as pip takes it, else None."""
    if line.startswith("-"):
        match = _OPTION.match(line)
        if match is None or not match.group(1).startswith(("-e", "--editable")):
            return None
        option, value = match.groups(default="")
        line = value if option in ("-e", "--editable") else option.removeprefix("-e")
    text = re.split(r"\s--", line.strip(), maxsplit=1)[0].strip()  # per-requirement options
    named = _NAMED_URL.match(text)
    if named is not None:
        text = text[named.end() :].strip()
    if text[:5].lower() == "file:":
        return url2pathname(urlsplit(text.split(";", 1)[0].strip()).path)
    if _URL.match(text) or named is not None:
        return None  # remote, or VCS
    text = re.sub(r"\[[^\]]*\]$", "", text.split("; ", 1)[0].strip())  # markers, extras
    if _looks_like_path(text) or _ARCHIVE.search(text):
        return text
    return None


def _looks_like_path(text: str) -> bool:
    """pip's test for a line naming a local path rather than a project."""
    return os.sep in text or "/" in text or text.startswith(".")


def _expand_variables(line: str) -> str:
    """``${NAME}`` replaced by the environment's value, as pip does in requirements files."""
    return re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: os.environ.get(m.group(1), m.group(0)), line)


def _constraints_file(line: str) -> str | None:
    option, _, value = line.replace("=", " ", 1).partition(" ")
    if option in ("-c", "--constraint") and value.strip():
        return value.strip()
    if option.startswith("-c") and len(option) > 2:
        return option[2:]
    return None


def is_exact_pin(line: RequirementLine) -> bool:
    """``name==1.2.3`` (or ``===``): the line allows exactly one release."""
    from packaging.requirements import InvalidRequirement, Requirement  # see _project_name

    if line.name is None:
        return False
    try:
        requirement = Requirement(line.text.split(" --", 1)[0].split("\t--", 1)[0])
    except InvalidRequirement:
        return False
    if requirement.url:
        return False
    specifiers = list(requirement.specifier)
    return (
        len(specifiers) == 1
        and specifiers[0].operator in ("==", "===")
        and ("*" not in specifiers[0].version)
    )


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Lines with comments removed and ``\\`` continuations joined, numbered by their first line."""
    pending: list[str] = []
    start = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = lineno
        line = re.sub(r"(^|\s+)#.*$", "", raw)
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        joined = " ".join([*pending, line]).strip()
        pending = []
        if joined:
            yield start, joined
    if pending and " ".join(pending).strip():
        yield start, " ".join(pending).strip()


def _included_file(line: str) -> str | None:
    words = shlex.split(line)
    for option in _INCLUDE_OPTIONS:
        if words[0] == option and len(words) > 1:
            return words[1]
        if words[0].startswith(option + "="):
            return words[0].split("=", 1)[1]
    if words[0].startswith("-r") and len(words[0]) > 2 and not words[0].startswith("--"):
        return words[0][2:]
    return None


def _project_name(path: Path, lineno: int, line: str) -> str | None:
    # Imported here: an unchanged build parses no line, and saves the parser's 7 ms import.
    from packaging.requirements import InvalidRequirement, Requirement

    # Cut per-requirement options (--hash=...), whatever whitespace precedes them.
    requirement_text = re.split(r"\s--", line, maxsplit=1)[0].strip()
    if _ARCHIVE.search(requirement_text.split(";", 1)[0].strip()) and "@" not in requirement_text:
        return None  # foo-1.0-py3-none-any.whl: a file, though it parses as a project name
    try:
        return canonicalize_name(Requirement(requirement_text).name)
    except InvalidRequirement as error:
        if _LOCATION.search(requirement_text) or "+" in requirement_text.split(":", 1)[0]:
            return None
        raise RequirementsError(
            f"{path}:{lineno}: cannot parse requirement {line!r}: {_one_line(error)}; "
            "write it as 'name', 'name==version' or 'name @ url'",
            file=path,
            line=lineno,
        ) from error


def _one_line(error: InvalidRequirement) -> str:
    """packaging's message (its first line), with the column its caret line points at."""
    first, *rest = str(error).splitlines()
    carets = [line for line in rest if line.strip() and set(line.strip()) <= {"^", "~"}]
    if carets and len(rest) >= 2:
        # The text is shown indented by 4 under the message, then the caret line.
        column = len(carets[0]) - len(carets[0].lstrip()) - 3
        return f"{first} at column {column}"
    return first


def lines_by_name(lines: tuple[RequirementLine, ...]) -> dict[str, RequirementLine]:
    """The first line naming each project."""
    named: dict[str, RequirementLine] = {}
    for line in lines:
        if line.name is not None:
            named.setdefault(line.name, line)
    return named


# Options that tell pip where to look; they must travel with any requirement we resolve alone.
_INDEX_OPTIONS = {
    "-i": "--index-url",
    "--index-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "-f": "--find-links",
    "--find-links": "--find-links",
    "--trusted-host": "--trusted-host",
    "--no-index": "--no-index",
    "--pre": "--pre",
}


def index_options(path: Path) -> list[str]:
    """pip options equal to the index options written in ``path`` (and its -r files)."""
    return list(_index_options(path.resolve(), stack=()))


def option_values(options: Sequence[str], *names: str) -> list[str]:
    """The values ``options`` (``index_options``' list) gives the options ``names``, in order."""
    return [value for option, value in itertools.pairwise(options) if option in names]


def _index_options(path: Path, stack: tuple[Path, ...]) -> Iterator[str]:
    if path in stack or not path.is_file():
        return
    for _, line in _logical_lines(read_requirements_text(path)):
        if not line.startswith("-"):
            continue
        include = _included_file(line)
        if include is not None:
            yield from _index_options((path.parent / include).resolve(), (*stack, path))
            continue
        # ``--option value`` or ``--option=value``; only the first separator splits (URLs hold "=").
        match = _OPTION.match(line)
        if match is None:
            continue
        option, value = match.groups(default="")
        long = _INDEX_OPTIONS.get(option)
        if long is None:
            continue
        value = value.strip()
        if long == "--find-links" and (path.parent / value).exists():
            value = str((path.parent / value).resolve())  # pip reads it relative to the file
        yield from [long, value] if value else [long]
