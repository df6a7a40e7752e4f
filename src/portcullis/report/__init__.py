"""Renderers: every format renders the same Report model."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from portcullis.model.findings import Report

Renderer = Callable[[Report], str]

# Where the project and its rule pages live; SARIF consumers link to it from every alert.
PROJECT_URL = "https://github.com/portcullis/portcullis"
RULE_DOCS_URL = PROJECT_URL + "/blob/main/docs/rules/{rule_id}.md"


# Format -> the module whose `render` writes it; imported on use (HTML pulls in jinja2, a JSON run should not).
RENDERER_MODULES = {
    "text": "portcullis.report.text",
    "json": "portcullis.report.json_report",
    "sarif": "portcullis.report.sarif",
    "junit": "portcullis.report.junit",
    "html": "portcullis.report.html",
}


def renderer(fmt: str) -> Renderer:
    render: Renderer = importlib.import_module(RENDERER_MODULES[fmt]).render
    return render
