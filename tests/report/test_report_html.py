"""HTML: escapes hostile values, needs nothing from the network, counts and groups like the other reports."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

from report_samples import HOSTILE, make_report

from portcullis.model.findings import Report
from portcullis.report import html


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text of <script> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def parse(text: str) -> Elements:
    parser = Elements()
    parser.feed(text)
    return parser


def test_hostile_names_and_evidence_are_escaped(mixed_report: Report) -> None:
    page = html.render(mixed_report)
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    elements = parse(page)
    assert [tag for tag, _ in elements.tags].count("script") == 1, "only the page's own filter script"


def test_self_contained_with_a_csp_naming_the_only_script(mixed_report: Report) -> None:
    page = html.render(mixed_report)
    elements = parse(page)
    for tag, attrs in elements.tags:
        assert tag not in ("link", "img", "iframe", "object"), tag
        for name in ("src", "href", "action"):
            assert not attrs.get(name), f"<{tag} {name}=...> reaches outside the page"
    csp = next(
        a["content"] for t, a in elements.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    )
    assert csp is not None
    assert "default-src 'none'" in csp
    [script] = elements.scripts
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp


def test_summary_counts_and_filters(mixed_report: Report) -> None:
    page = html.render(mixed_report)
    counts = dict(re.findall(r'<td data-count="(\w+)">(\d+)</td>', page))
    assert counts == {
        "fail": "5",
        "error": "1",
        "manual": "1",
        "skip": "1",
        "not_applicable": "1",
        "pass": "1",
        "suppressed": "1",
    }
    inputs = [
        (a.get("id") or a.get("data-filter") or a.get("data-severity"), "checked" in a)
        for t, a in parse(page).tags
        if t == "input"
    ]
    assert inputs == [
        ("search", False),
        # The status filter shows what needs attention at first.
        ("fail", True),
        ("error", True),
        ("manual", True),
        ("skip", True),
        ("not_applicable", False),
        ("pass", False),
        ("suppressed", False),
        ("critical", True),
        ("high", True),
        ("medium", True),
        ("low", True),
        ("info", True),
    ]


def test_findings_are_grouped_by_section(mixed_report: Report) -> None:
    page = html.render(mixed_report)
    headings = re.findall(r"<section data-section>\s*<h2>([^<]+)</h2>", page)
    assert headings == [
        "CIS 2 Docker daemon configuration",
        "CIS 1 Host configuration",
        "CIS 5 Container runtime",
        "DKR-DF",
    ]
    rows = re.findall(r'<tr data-status="(\w+)"( data-suppressed)?>', page)
    assert len(rows) == len(mixed_report.findings)
    assert rows.count(("fail", " data-suppressed")) == 1
    assert "app/Dockerfile:7" in page
    assert "suppressed: ignore#1: legacy host" in page
    assert "Failures by severity: 1 critical, 2 high, 1 medium, 1 low</p>" in page


def test_a_whole_audit_renders(baseline_audit: Report) -> None:
    page = html.render(baseline_audit)
    assert len(re.findall(r"<tr data-status=", page)) == len(baseline_audit.findings)


def test_2000_findings_stay_under_a_megabyte(baseline_audit: Report) -> None:
    """A large report: the baseline audit's findings, evidence and all, repeated to 2,000 (about 0.9 MB now)."""
    findings = (baseline_audit.findings * 17)[:2000]
    assert len(findings) == 2000
    assert len(html.render(make_report(findings)).encode()) < 1_000_000
