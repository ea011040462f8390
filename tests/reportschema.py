"""build-report.json against its published JSON Schema (src/chalicepack/report.schema.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from chalicepack.report import SCHEMA_PATH, BuildReport

SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
Draft202012Validator.check_schema(SCHEMA)
VALIDATOR = Draft202012Validator(SCHEMA)


def schema_errors(document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in VALIDATOR.iter_errors(document)
    ]


def assert_valid_report(path: Path) -> dict[str, Any]:
    """The report at ``path``: valid against the schema, and read back by chalicepack as the
    same document (what deploy scripts parse is what the typed report says)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    assert schema_errors(document) == []
    assert BuildReport.from_json(document).to_json() == document
    return document
