"""Workflow commands on stdout (``::add-mask::``, ``::group::``, annotations), in canonical form.

github-action-utils 2.0 (the only release) writes ``::{command} {properties}::{message}``, so a
command without properties comes out as ``::add-mask ::secret`` with a space before ``::``.
GitHub's runner accepts that; act (and the Gitea and Forgejo runners built on it) does not, and
prints the line as it stands: the secret we meant to mask, in clear. Its command writer is private
(``_commands.print_command``) and always inserts that space, so the stdout commands are written
here, one small function, with the runner's escaping (actions/toolkit ``command.ts``). The library
still writes the file commands (GITHUB_OUTPUT, the job summary), which have no such problem.
"""

from __future__ import annotations

import sys

# actions/toolkit's toCommandProperties: the keys annotations take, in its order.
_PROPERTY_NAMES = {
    "title": "title",
    "file": "file",
    "line": "line",
    "end_line": "endLine",
    "col": "col",
    "end_column": "endColumn",
}


def escape_data(text: str) -> str:
    """A command's message: % first, so an escape-looking text is decoded once."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A property's value: also the separators of the property list."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_command(name: str, message: str, **properties: str | int | None) -> str:
    """``::name key=value,...::message``, with no space when there are no properties."""
    given = [
        f"{_PROPERTY_NAMES[key]}={escape_property(str(value))}"
        for key, value in properties.items()
        if value is not None
    ]
    head = f"{name} {','.join(given)}" if given else name
    return f"::{head}::{escape_data(message)}"


def issue(name: str, message: str, **properties: str | int | None) -> None:
    """Write one command line to stdout as UTF-8 bytes (the runner reads UTF-8 whatever the
    locale), flushed so it lands between the log lines around it."""
    sys.stdout.flush()
    line = format_command(name, message, **properties) + "\n"
    sys.stdout.buffer.write(line.encode("utf-8"))
    sys.stdout.buffer.flush()


def add_mask(secret: str) -> None:
    issue("add-mask", secret)


def start_group(title: str) -> None:
    issue("group", title)


def end_group() -> None:
    issue("endgroup", "")


def warning(
    message: str, *, title: str | None = None, file: str | None = None, line: int | None = None
) -> None:
    issue("warning", message, title=title, file=file, line=line)


def error(
    message: str, *, title: str | None = None, file: str | None = None, line: int | None = None
) -> None:
    issue("error", message, title=title, file=file, line=line)
