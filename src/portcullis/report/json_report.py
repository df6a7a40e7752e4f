"""JSON: the Report model itself; its JSON Schema is `portcullis schema`."""

from __future__ import annotations

import json
from typing import Any

from portcullis.model.findings import Report


def render(report: Report) -> str:
    return report.model_dump_json(indent=2) + "\n"


def schema() -> dict[str, Any]:
    return Report.model_json_schema()


def schema_text() -> str:
    return json.dumps(schema(), indent=2) + "\n"
