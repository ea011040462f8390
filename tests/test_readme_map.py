"""The README's map of the code names every module there is, in the folder it is in."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "src" / "chalicepack"


def modules_in_the_tree() -> set[str]:
    return {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name not in {"__init__.py", "__main__.py"}
    }


def modules_on_the_map() -> set[str]:
    """Each row: a sub-package (``inputs/``) and the modules its description names, or a
    cell of top-level modules."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Where the code is", 1)[1].split("\n#", 1)[0]
    named = set()
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        if len(cells) != 2 or not cells[0].startswith("`"):
            continue
        folder = re.fullmatch(r"`([a-z_]+/)`", cells[0])
        text = cells[1] if folder else cells[0]
        prefix = folder[1] if folder else ""
        named |= {prefix + Path(name).name for name in re.findall(r"`([\w./]+\.py)`", text)}
    return named


def test_the_readme_map_names_every_module_and_no_other() -> None:
    assert modules_on_the_map() == modules_in_the_tree()
