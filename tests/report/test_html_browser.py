"""The HTML report in a real browser, headless Chromium: it renders under its own CSP without an error, hostile
values stay text, and the search, filters, sorting and chart show exactly the rows and numbers they should.

The expected rows come from the findings themselves, in the page's order (grouped by section, then as reported);
each message starts with a unique key (m000, m001, ...) that names its row.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from headless_chromium import CHROMIUM, Browser, Page
from report_samples import DAEMON, HOST, WEB, cis, make_report

from portcullis.model.findings import Finding, Severity, Status, Target, TargetKind
from portcullis.report import html
from portcullis.report.sections import section_key, section_title

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed; `make programs` installs it (scripts/programs.tsv)"
)

SCRIPT_TAG = "<script>alert(1)</script>"
IMG_TAG = '"><img src=x onerror=alert(1)>'
TEMPLATE = "{{7*7}}"
UNICODE = "Ünïcödé-容器-🐳"
LONG_NAME = "/" + "a" * 4000  # no break opportunity: the page must wrap it, not scroll sideways

SCRIPT_TARGET = Target(kind=TargetKind.CONTAINER, name=SCRIPT_TAG)
UNICODE_TARGET = Target(kind=TargetKind.IMAGE, name=UNICODE)
LONG_TARGET = Target(kind=TargetKind.FILE, name=LONG_NAME)

# Six statuses against five severities: every pair occurs within 30 findings.
STATUSES = [Status.FAIL, Status.PASS, Status.ERROR, Status.NOT_APPLICABLE, Status.MANUAL, Status.SKIP]
SEVERITIES = list(Severity)
RULES = ["CIS-5.{}", "CIS-2.{}", "DKR-IMG-00{}", "DKR-RUN-00{}"]
TITLES = ["Privileged container", "Writable root filesystem", "Image runs as root"]
WORDS = ["host network", "shared pid namespace", "no health check"]
TARGETS = [WEB, SCRIPT_TARGET, UNICODE_TARGET, DAEMON, HOST]
ATTENTION = {Status.FAIL, Status.ERROR, Status.MANUAL, Status.SKIP}
# The status filter's order, which is also the status sort order: most urgent first, suppressed last.
STATUS_ORDER = ["fail", "error", "manual", "skip", "not_applicable", "pass", "suppressed"]


def bulk(count: int) -> list[Finding]:
    return [
        Finding(
            rule_id=(rule := RULES[i % 4].format(i % 7 + 1)),
            title=TITLES[i % 3],
            cis=cis(rule.removeprefix("CIS-")) if rule.startswith("CIS-") else None,
            status=STATUSES[i % 6],
            severity=SEVERITIES[i % 5],
            target=TARGETS[i % 5],
            message=f"m{i:03d} {WORDS[i % 3]}",
            # Every 18th is a failure (i % 6 == 0) someone accepted.
            suppressed_by=f"ignore#{i}: accepted" if i % 18 == 0 else None,
        )
        for i in range(count)
    ]


def hostile() -> list[Finding]:
    return [
        Finding(
            rule_id="DKR-IMG-900",
            title=TEMPLATE,
            cis=None,
            status=Status.FAIL,
            severity=Severity.CRITICAL,
            target=SCRIPT_TARGET,
            message=f"m900 {IMG_TAG}",
            evidence={"cmd": SCRIPT_TAG},
            remediation=IMG_TAG,
        ),
        Finding(
            rule_id="DKR-IMG-901",
            title=f"label {UNICODE}",
            cis=None,
            status=Status.MANUAL,
            severity=Severity.INFO,
            target=UNICODE_TARGET,
            message="m901 ünïcödé ß in the image label",
        ),
        Finding(
            rule_id="DKR-RUN-902",
            title="a very long mount path",
            cis=None,
            status=Status.SKIP,
            severity=Severity.LOW,
            target=LONG_TARGET,
            message="m902 " + "word " * 3000,
        ),
    ]


REPORT = make_report([*bulk(90), *hostile()])


def key(finding: Finding) -> str:
    return finding.message.split(" ")[0]


def keys(text: str) -> list[str]:
    return text.split()


def status_key(finding: Finding) -> str:
    return "suppressed" if finding.suppressed_by else finding.status.value


def sections(findings: list[Finding]) -> dict[str, list[Finding]]:
    """The page's sections in order, each with its findings in report order."""
    grouped: dict[str, list[Finding]] = {}
    for finding in findings:
        grouped.setdefault(section_title(section_key(finding), finding.cis), []).append(finding)
    return grouped


def in_page_order(findings: list[Finding]) -> list[Finding]:
    return [finding for group in sections(findings).values() for finding in group]


def needs_attention(findings: list[Finding]) -> list[str]:
    return [key(f) for f in in_page_order(findings) if f.status in ATTENTION and not f.suppressed_by]


VISIBLE_ROWS = """Array.from(document.querySelectorAll("tr[data-status]"))
  .filter(row => row.getClientRects().length > 0)
  .map(row => row.querySelector(".message").textContent.split(" ")[0])"""
VISIBLE_SECTIONS = """Array.from(document.querySelectorAll("section[data-section]"))
  .filter(section => section.getClientRects().length > 0)
  .map(section => [section.querySelector("h2").textContent, Array.from(section.querySelectorAll("tr[data-status]"))
    .filter(row => row.getClientRects().length > 0)
    .map(row => row.querySelector(".message").textContent.split(" ")[0])])"""


def shown(page: Page) -> str:
    return str(page.evaluate('document.getElementById("shown").textContent'))


def assert_clean(page: Page) -> None:
    """No CSP violation, console error, uncaught exception or dialog (alert) on the page."""
    assert (page.errors, page.dialogs) == ([], [])


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = Browser()
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(html.render(REPORT), encoding="utf-8")
    return path


@contextlib.contextmanager
def opened(browser: Browser, path: Path, javascript: bool = True) -> Iterator[Page]:
    page = browser.new_page(javascript=javascript)
    page.open(path)
    yield page
    page.close()


@pytest.fixture
def page(browser: Browser, report_file: Path) -> Iterator[Page]:
    with opened(browser, report_file) as page:
        yield page


@pytest.fixture
def page_without_js(browser: Browser, report_file: Path) -> Iterator[Page]:
    with opened(browser, report_file, javascript=False) as page:
        yield page


def test_renders_under_its_csp_and_hostile_values_stay_text(page: Page) -> None:
    assert_clean(page)
    assert page.evaluate("document.title") == "Portcullis audit: unix:///var/run/docker.sock"
    elements = page.evaluate(
        "['script', 'img', 'svg', 'iframe', 'object'].map(name => document.getElementsByTagName(name).length)"
    )
    assert elements == [1, 0, 1, 0, 0], "only the page's own script and chart"
    texts = page.evaluate(
        """Array.from(document.querySelectorAll("tr[data-status]"))
          .filter(row => row.querySelector(".message").textContent.startsWith("m900 "))
          .map(row => [row.querySelector("strong").textContent, row.querySelector(".title").textContent,
                       row.querySelector(".message").textContent, row.querySelector("pre").textContent,
                       row.querySelector("details p").textContent])"""
    )
    assert texts == [[SCRIPT_TAG, TEMPLATE, f"m900 {IMG_TAG}", f'{{\n  "cmd": "{SCRIPT_TAG}"\n}}', f"Fix: {IMG_TAG}"]]
    unicode_title = page.evaluate(
        'Array.from(document.querySelectorAll(".title")).find(t => t.textContent.startsWith("label ")).textContent'
    )
    assert unicode_title == f"label {UNICODE}"
    long_cell = page.evaluate(
        'Array.from(document.querySelectorAll("strong")).find(s => s.textContent.startsWith("/a")).textContent.length'
    )
    assert long_cell == len(LONG_NAME)
    width = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width[0] == width[1], "long values wrap instead of widening the page"


def test_without_javascript_the_page_is_the_full_table(page_without_js: Page) -> None:
    page = page_without_js
    assert page.evaluate(VISIBLE_ROWS) == [key(f) for f in in_page_order(REPORT.findings)]
    assert page.evaluate('document.getElementById("controls").getClientRects().length') == 0
    assert page.evaluate('document.querySelectorAll("th button").length') == 0
    assert_clean(page)


def test_at_first_only_what_needs_attention_shows(page: Page) -> None:
    expected = needs_attention(REPORT.findings)
    assert len(expected) == 58
    assert page.evaluate(VISIBLE_ROWS) == expected
    assert shown(page) == "58 of 93 findings shown"
    assert_clean(page)


# Among the findings that need attention (the default filter), in page order.
SEARCHES = [
    (TEMPLATE, ["m900"]),
    ("onerror=alert(1)", ["m900"]),
    (SCRIPT_TAG, ["m016", "m056", "m076", "m041", "m006", "m026", "m046", "m066", "m086", "m900", "m011", "m071"]),
    ("容器", ["m012", "m032", "m052", "m017", "m077", "m002", "m022", "m042", "m062", "m082", "m901", "m047"]),
    ("ÜNÏCÖDÉ", ["m012", "m032", "m052", "m017", "m077", "m002", "m022", "m042", "m062", "m082", "m901", "m047"]),
    ("ünïcödé ß", ["m901"]),
    ("DKR-RUN-003", ["m023"]),
    ("CIS-5.4", ["m024", "m052", "m080"]),
    ("writable ROOT", keys("m004 m016 m028 m040 m052 m064 m076 m088 m010 m022 m034 m046 m058 m070 m082")),
    ("host network", ["m012", "m024", "m048", "m060", "m084", "m006", "m030", "m042", "m066", "m078"]),
    ("  M902   WORD ", ["m902"]),
    ("no such finding", []),
]


@pytest.mark.parametrize(("query", "rows"), SEARCHES)
def test_search_finds_exactly_these_rows(page: Page, query: str, rows: list[str]) -> None:
    """Every word of the query, in any case, in the rule id, title, target or message."""
    page.type("#search", query)
    assert page.evaluate(VISIBLE_ROWS) == rows
    assert shown(page) == f"{len(rows)} of 93 findings shown"
    if not rows:
        assert page.evaluate(VISIBLE_SECTIONS) == [], "a section with no row left is hidden"
    assert_clean(page)


def test_severity_filter_and_status_toggles_show_exactly_the_chosen_rows(page: Page) -> None:
    def expected(statuses: set[str], severities: set[Severity]) -> list[str]:
        return [
            key(f) for f in in_page_order(REPORT.findings) if status_key(f) in statuses and f.severity in severities
        ]

    statuses = {"fail", "error", "manual", "skip"}
    severities = set(Severity)
    page.click('input[data-severity="critical"]')
    page.click('input[data-severity="high"]')
    severities -= {Severity.CRITICAL, Severity.HIGH}
    assert page.evaluate(VISIBLE_ROWS) == expected(statuses, severities)
    for status in ("pass", "not_applicable", "suppressed"):
        page.click(f'input[data-filter="{status}"]')
        statuses.add(status)
        assert page.evaluate(VISIBLE_ROWS) == expected(statuses, severities)
    page.click('input[data-filter="fail"]')
    statuses.remove("fail")
    assert page.evaluate(VISIBLE_ROWS) == expected(statuses, severities)
    page.type("#search", "DKR-IMG")
    assert page.evaluate(VISIBLE_ROWS) == keys("m002 m014 m018 m022 m034 m038 m054 m058 m062 m074 m082 m901")
    assert shown(page) == "12 of 93 findings shown"
    assert_clean(page)


def test_sorting_by_severity_and_status_from_the_column_headers(page: Page) -> None:
    for status in ("pass", "not_applicable", "suppressed"):
        page.click(f'input[data-filter="{status}"]')
    position = {key(f): i for i, f in enumerate(REPORT.findings)}

    def sorted_by(rank: Callable[[Finding], int]) -> list[list[Any]]:
        """Each section's rows by rank; rows of equal rank keep the report's order."""
        return [
            [title, [key(f) for f in sorted(group, key=lambda f: (rank(f), position[key(f)]))]]
            for title, group in sections(REPORT.findings).items()
        ]

    sort_marks = 'Array.from(document.querySelectorAll("th[data-sort]")).map(th => th.getAttribute("aria-sort"))'
    page.click('th[data-sort="severity"] button')
    worst_first = sorted_by(lambda f: -f.severity.rank)
    assert page.evaluate(VISIBLE_SECTIONS) == worst_first
    assert worst_first[0] == [
        "CIS 5 Container runtime",
        # critical, then high, medium, low and info; within each, the report's order
        keys("m000 m020 m040 m060 m080 m016 m036 m056 m076 m012 m032 m052 m072")
        + keys("m008 m028 m048 m068 m088 m004 m024 m044 m064 m084"),
    ]
    assert page.evaluate(sort_marks) == [None, "descending"] * 4
    page.click('th[data-sort="severity"] button')
    assert page.evaluate(VISIBLE_SECTIONS) == sorted_by(lambda f: f.severity.rank)
    assert page.evaluate(sort_marks) == [None, "ascending"] * 4
    page.click('th[data-sort="status"] button')
    urgent_first = sorted_by(lambda f: STATUS_ORDER.index(status_key(f)))
    assert page.evaluate(VISIBLE_SECTIONS) == urgent_first
    assert page.evaluate(sort_marks) == ["descending", None] * 4
    # Filtering keeps the sorted order.
    page.type("#search", "host network")
    assert page.evaluate(VISIBLE_ROWS) == [
        k
        for _, in_section in urgent_first
        for k in in_section
        if "host network" in REPORT.findings[position[k]].message
    ]
    assert_clean(page)


def test_the_chart_shows_the_summary_without_script(page_without_js: Page) -> None:
    bars = page_without_js.evaluate(
        """Array.from(document.querySelectorAll("svg g[data-bar]")).map(g => [g.getAttribute("data-bar"),
             g.querySelectorAll("text")[0].textContent, Number(g.querySelectorAll("text")[1].textContent),
             g.querySelector("rect").getBBox().width])"""
    )
    # Bars scale to the largest count, 16, drawn 320 px wide.
    assert bars == [
        ["fail", "fail", 11, 220],
        ["error", "error", 15, 300],
        ["manual", "manual", 16, 320],
        ["skip", "skip", 16, 320],
        ["not_applicable", "n/a", 15, 300],
        ["pass", "pass", 15, 300],
        ["suppressed", "suppressed", 5, 100],
        ["critical", "critical", 3, 60],
        ["high", "high", 2, 40],
        ["medium", "medium", 2, 40],
        ["low", "low", 2, 40],
        ["info", "info", 2, 40],
    ]
    summary = REPORT.summary
    assert {name: count for name, _, count, _ in bars} == {
        **{status.value: summary.by_status[status] for status in Status},
        "suppressed": summary.suppressed,
        **{severity.value: summary.failed_by_severity[severity] for severity in Severity},
    }
    table = page_without_js.evaluate(
        'Array.from(document.querySelectorAll("td[data-count]")).map(td => [td.dataset.count, Number(td.textContent)])'
    )
    assert table == [[name, count] for name, _, count, _ in bars[:7]]
    assert_clean(page_without_js)


def test_a_2000_finding_report_filters_exactly(browser: Browser, tmp_path: Path) -> None:
    path = tmp_path / "large.html"
    path.write_text(html.render(make_report(bulk(2000))), encoding="utf-8")
    with opened(browser, path) as page:
        # fail, error, manual and skip are 4 of every 6 findings (1333), less the 112 suppressed failures
        assert shown(page) == "1221 of 2000 findings shown"
        assert len(page.evaluate(VISIBLE_ROWS)) == 1221
        page.type("#search", "DKR-RUN-003")
        # DKR-RUN-003 is every 28th finding from m023; a third of those are skips, the rest pass or n/a
        assert page.evaluate(VISIBLE_ROWS) == [f"m{23 + 84 * n:03d}" for n in range(24)]
        page.type("#search", "")
        page.click('input[data-filter="pass"]')
        page.click('input[data-filter="not_applicable"]')
        assert shown(page) == "1888 of 2000 findings shown"
        assert_clean(page)
