"""Renderers: every format renders the same Report model."""

from __future__ import annotations

from collections.abc import Callable

from portcullis.model.findings import Report

Renderer = Callable[[Report], str]

# Where the project and its rule pages live; SARIF consumers link to it from every alert.
PROJECT_URL = "https://github.com/portcullis/portcullis"
RULE_DOCS_URL = PROJECT_URL + "/blob/main/docs/rules/{rule_id}.md"


def renderers() -> dict[str, Renderer]:
    from portcullis.report import html, json_report, junit, sarif, text

    return {
        "text": text.render,
        "json": json_report.render,
        "sarif": sarif.render,
        "junit": junit.render,
        "html": html.render,
    }
