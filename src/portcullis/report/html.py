"""A self-contained HTML report: inline CSS and one tiny inline script, no external URL, works air-gapped.

Every value from the report goes through jinja2's autoescape; the page's Content-Security-Policy allows
only the one script whose hash it names, so even a value that slipped through could not run.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import jinja2

from portcullis.model.findings import Finding, Report, Severity, Status
from portcullis.report.sections import section_key, section_title

STATUS_LABELS = {
    Status.FAIL: "fail",
    Status.ERROR: "error",
    Status.MANUAL: "manual",
    Status.SKIP: "skip",
    Status.NOT_APPLICABLE: "n/a",
    Status.PASS: "pass",
}


@dataclass(frozen=True)
class Section:
    title: str
    findings: list[Finding]


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("portcullis.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pretty_json"] = lambda value: json.dumps(value, indent=2, sort_keys=True, default=str)
    return env


def _script() -> str:
    return files("portcullis.report").joinpath("templates/filter.js").read_text(encoding="utf-8")


def render(report: Report) -> str:
    sections: dict[str, list[Finding]] = {}
    for finding in report.findings:
        sections.setdefault(section_key(finding), []).append(finding)
    script = _script()
    script_hash = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            report=report,
            sections=[Section(section_title(key, items[0].cis), items) for key, items in sections.items()],
            statuses=list(STATUS_LABELS.items()),
            severities=sorted(Severity, key=lambda s: -s.rank),
            script=script,
            script_hash=script_hash,
        )
    )
