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
from markupsafe import Markup

from portcullis.model.findings import Finding, Report, Severity, Status
from portcullis.report.heatmap import render_heatmap
from portcullis.report.sections import section_key, section_title

STATUS_LABELS = {
    Status.FAIL: "fail",
    Status.ERROR: "error",
    Status.MANUAL: "manual",
    Status.SKIP: "skip",
    Status.NOT_APPLICABLE: "n/a",
    Status.PASS: "pass",
}
# What the status filter shows at first: the findings someone has to act on or look at.
ATTENTION = frozenset({Status.FAIL, Status.ERROR, Status.MANUAL, Status.SKIP})

# The summary chart's geometry, in px: a label column, then bars scaled to the largest count.
LABEL_END = 110
BAR_START = 118
BAR_MAX = 320
ROW = 20


@dataclass(frozen=True)
class Section:
    title: str
    findings: list[Finding]


@dataclass(frozen=True)
class Bar:
    key: str
    label: str
    count: int
    y: int
    width: int


@dataclass(frozen=True)
class Heading:
    text: str
    y: int


@dataclass(frozen=True)
class Chart:
    """Horizontal bars drawn here, not in the browser: no script needed, and the numbers are the summary's."""

    headings: list[Heading]
    bars: list[Bar]
    height: int
    width: int = BAR_START + BAR_MAX + 60
    label_end: int = LABEL_END
    bar_start: int = BAR_START


def _chart(report: Report) -> Chart:
    summary = report.summary
    groups = [
        (
            "Findings by status",
            [(s.value, label, summary.by_status.get(s, 0)) for s, label in STATUS_LABELS.items()]
            + [("suppressed", "suppressed", summary.suppressed)],
        ),
        (
            "Failures by severity",
            [(s.value, s.value, summary.failed_by_severity.get(s, 0)) for s in _severities()],
        ),
    ]
    largest = max(1, *(count for _, rows in groups for _, _, count in rows))
    headings: list[Heading] = []
    bars: list[Bar] = []
    y = 0
    for title, rows in groups:
        headings.append(Heading(title, y + 14))
        y += ROW
        for key, label, count in rows:
            bars.append(Bar(key, label, count, y, round(BAR_MAX * count / largest)))
            y += ROW
        y += ROW // 2
    return Chart(headings, bars, height=y)


def _severities() -> list[Severity]:
    return sorted(Severity, key=lambda s: -s.rank)


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
            attention=ATTENTION,
            severities=_severities(),
            chart=_chart(report),
            script=script,
            script_hash=script_hash,
            # The heat map escapes every label it writes, so it is the one piece passed through unescaped.
            isolation_heatmap=Markup(render_heatmap(report.isolation)) if report.isolation else None,
        )
    )
