"""Renderers: every format renders the same Report model."""

from __future__ import annotations

from collections.abc import Callable

from portcullis.model.findings import Report

Renderer = Callable[[Report], str]


def renderers() -> dict[str, Renderer]:
    from portcullis.report import json_report, text

    return {
        "text": text.render,
        "json": json_report.render,
    }
