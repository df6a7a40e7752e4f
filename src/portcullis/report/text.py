"""Text for people: what needs attention, grouped by section, then a summary that counts everything.

It fits the terminal: the real width on a TTY, `COLUMNS` when set, else 80 columns. Colour only on a TTY (or with
`PORTCULLIS_COLOR=always`), never under `NO_COLOR` or `PORTCULLIS_COLOR=never`. By default only findings that need
attention are listed (fail, error, manual, skip); pass, not_applicable and suppressed ones are counted in the summary,
and `show_all` lists them too. Vulnerabilities are one table per image: package, installed, fixed in, advisory,
severity, layer.
"""

from __future__ import annotations

import io
import os
import sys
from itertools import groupby
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from portcullis.model.findings import Finding, Report, Severity, Status
from portcullis.model.vuln import FixState
from portcullis.report.sections import section_key, section_title

DEFAULT_WIDTH = 80  # off a TTY without COLUMNS: what a pager, a CI log or an e-mail shows cleanly
WIDE = 110  # from this width the message gets its own column

STATUS_STYLE = {
    Status.PASS: ("PASS", "green"),
    Status.FAIL: ("FAIL", "bold red"),
    Status.MANUAL: ("MANUAL", "yellow"),
    Status.SKIP: ("SKIP", "dim"),
    Status.NOT_APPLICABLE: ("N/A", "dim"),
    Status.ERROR: ("ERROR", "bold magenta"),
}
SEVERITY_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
ATTENTION = frozenset({Status.FAIL, Status.ERROR, Status.MANUAL, Status.SKIP})
_NO_FIX_WORDS = {
    FixState.NOT_FIXED: "no fix yet",
    FixState.WONT_FIX: "won't fix",
    FixState.UNDETERMINED: "undetermined",
    FixState.NOT_AFFECTED: "not affected",
}


def terminal_width(stream: TextIO | None = None) -> int:
    """`COLUMNS` when set; the terminal's width when `stream` (stdout) is a TTY; else 80."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    stream = stream or sys.stdout
    try:
        if stream.isatty():
            return os.get_terminal_size(stream.fileno()).columns or DEFAULT_WIDTH
    except (OSError, ValueError, AttributeError):
        pass
    return DEFAULT_WIDTH


def use_colour(stream: TextIO | None = None) -> bool:
    """Colour on a TTY; `NO_COLOR` (any value) turns it off, `PORTCULLIS_COLOR=always|never` decides outright."""
    if os.environ.get("NO_COLOR") is not None:
        return False
    choice = os.environ.get("PORTCULLIS_COLOR", "").lower()
    if choice in ("always", "never"):
        return choice == "always"
    stream = stream or sys.stdout
    try:
        return stream.isatty()
    except (ValueError, AttributeError):
        return False


def shown(finding: Finding, show_all: bool) -> bool:
    return show_all or (finding.status in ATTENTION and not finding.suppressed_by)


def _section(finding: Finding) -> str:
    return section_title(section_key(finding), finding.cis)


def _where(finding: Finding) -> str:
    if finding.location:
        where = finding.location.path + (f":{finding.location.line}" if finding.location.line else "")
    else:
        where = finding.target.name
    return f"{finding.engine}: {where}" if finding.engine is not None else where


def _status_cell(finding: Finding) -> Text:
    label, style = STATUS_STYLE[finding.status]
    if finding.suppressed_by:
        label, style = "IGNORED", "dim"
    return Text(label, style=style)


def _findings_table(title: str, findings: list[Finding], width: int) -> Table:
    table = Table(title=Text(title), title_justify="left", title_style="bold", box=None, pad_edge=False, expand=False)
    table.add_column("status", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("rule", no_wrap=True)
    wide = width >= WIDE
    if wide:
        table.add_column("target", overflow="fold", max_width=max(16, width // 4))
        table.add_column("message", overflow="fold")
    else:  # the target on one line, its message under it: both get the rest of the width
        table.add_column("target / message", overflow="fold")
    for finding in findings:
        severity = Text(finding.severity.value, style=SEVERITY_STYLE[finding.severity])
        cells = [_status_cell(finding), severity, Text(finding.rule_id)]
        if wide:
            table.add_row(*cells, Text(_where(finding)), Text(finding.message))
        else:
            table.add_row(*cells, Text.assemble((_where(finding), "bold"), "\n", finding.message))
    return table


def _fixed_in(finding: Finding) -> str:
    detail = finding.vulnerability
    assert detail is not None
    return detail.fixed_version or _NO_FIX_WORDS.get(detail.fix_state, detail.fix_state.value)


def _vulnerability_table(target: str, findings: list[Finding], width: int) -> Table:
    findings = sorted(
        findings,
        key=lambda f: (
            -f.severity.rank,
            f.vulnerability.package if f.vulnerability else "",
            f.vulnerability.advisory_id if f.vulnerability else "",
        ),
    )
    title = f"Vulnerabilities in {target}: {len(findings)}"
    padding = (0, 1) if width >= WIDE else (0, 1, 0, 0)  # narrow: one space between columns, so versions fit whole
    table = Table(
        title=Text(title),
        title_justify="left",
        title_style="bold",
        box=None,
        pad_edge=False,
        expand=False,
        padding=padding,
    )
    table.add_column("package", overflow="fold")
    table.add_column("installed", overflow="fold")
    table.add_column("fixed in", overflow="fold")
    table.add_column("advisory", no_wrap=True)  # an id is read whole; versions fold instead
    table.add_column("severity", no_wrap=True)
    table.add_column("layer", no_wrap=True, justify="right")
    for finding in findings:
        detail = finding.vulnerability
        assert detail is not None
        severity = Text(finding.severity.value, style=SEVERITY_STYLE[finding.severity])
        if finding.suppressed_by:
            severity = Text("ignored", style="dim")
        elif finding.status is Status.MANUAL:
            severity.append("?", style="yellow")  # the vendor has not decided whether it applies
        layer = str(detail.layer.index) if detail.layer else "-"
        cells = [detail.package, detail.installed_version, _fixed_in(finding), detail.advisory_id]
        table.add_row(*(Text(cell) for cell in cells), severity, Text(layer))
    return table


def render(report: Report, width: int | None = None, *, show_all: bool = False, colour: bool | None = None) -> str:
    """The report as text `width` columns wide (default: `terminal_width()`); `show_all` lists pass, n/a and
    suppressed findings too; `colour` defaults to `use_colour()`."""
    width = width or terminal_width()
    colour = use_colour() if colour is None else colour
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        no_color=not colour,
        force_terminal=colour,
        color_system="standard" if colour else None,
        highlight=False,
        soft_wrap=False,
        legacy_windows=False,
    )
    console.print(Text(f"Portcullis {report.command}: {report.subject}", style="bold"))
    if report.tool.benchmark:
        console.print(Text(f"Benchmark: {report.tool.benchmark}"))
    if report.database is not None:
        db = report.database
        sources = ", ".join(f"{s.name} {s.fetched_at}" for s in db.sources) or "none"
        built = db.built_at or "unknown"
        console.print(Text(f"Vulnerability database: schema {db.schema_version}, built {built}; sources: {sources}"))
    listed = [f for f in report.findings if shown(f, show_all)]
    others = [f for f in listed if f.vulnerability is None]
    for section, group in groupby(others, key=_section):
        console.print()
        console.print(_findings_table(section, list(group), width))
    vulnerable: dict[str, list[Finding]] = {}
    for finding in listed:
        if finding.vulnerability is not None:
            vulnerable.setdefault(finding.target.name, []).append(finding)
    for target, rows in vulnerable.items():
        console.print()
        console.print(_vulnerability_table(target, rows, width))
    console.print()
    _summary(console, report, hidden=len(report.findings) - len(listed))
    return "".join(line.rstrip(" ") + "\n" for line in buffer.getvalue().splitlines())


def _summary(console: Console, report: Report, hidden: int) -> None:
    summary = report.summary
    counts = ", ".join(f"{summary.by_status.get(status, 0)} {STATUS_STYLE[status][0].lower()}" for status in Status)
    console.print(Text(f"Summary: {summary.total} findings: {counts}", style="bold"))
    if summary.suppressed:
        console.print(f"{summary.suppressed} suppressed by ignore rules")
    if summary.failed_by_severity:
        by_sev = ", ".join(
            f"{n} {s.value}" for s, n in sorted(summary.failed_by_severity.items(), key=lambda item: -item[0].rank)
        )
        console.print(f"Failures by severity: {by_sev}")
    if hidden:
        console.print(f"{hidden} passed, not applicable or suppressed finding(s) not listed (-a lists them)")
    for problem in report.problems:
        console.print(Text(f"note: {problem.fact} not collected: {problem.reason}"))
