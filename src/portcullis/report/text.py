"""Text for people: grouped by section, with counts; readable without colour and off a TTY."""

from __future__ import annotations

import io
import os
from itertools import groupby

from rich.console import Console
from rich.table import Table
from rich.text import Text

from portcullis.model.findings import Finding, Report, Status
from portcullis.report.sections import section_key, section_title

STATUS_STYLE = {
    Status.PASS: ("PASS", "green"),
    Status.FAIL: ("FAIL", "bold red"),
    Status.MANUAL: ("MANUAL", "yellow"),
    Status.SKIP: ("SKIP", "dim"),
    Status.NOT_APPLICABLE: ("N/A", "dim"),
    Status.ERROR: ("ERROR", "bold magenta"),
}


def _section(finding: Finding) -> str:
    return section_title(section_key(finding), finding.cis)


def render(report: Report, width: int | None = None) -> str:
    buffer = io.StringIO()
    colour = os.environ.get("NO_COLOR") is None and os.environ.get("PORTCULLIS_COLOR") == "always"
    console = Console(
        file=buffer, width=width or 120, no_color=not colour, force_terminal=colour, highlight=False, soft_wrap=False
    )
    console.print(Text(f"Portcullis {report.command}: {report.subject}", style="bold"))
    if report.tool.benchmark:
        console.print(f"Benchmark: {report.tool.benchmark}")
    for section, group in groupby(report.findings, key=_section):
        table = Table(title=section, title_justify="left", show_edge=False, expand=False, pad_edge=False)
        table.add_column("status", no_wrap=True)
        table.add_column("rule", no_wrap=True)
        table.add_column("severity", no_wrap=True)
        table.add_column("target", overflow="fold", max_width=28)
        table.add_column("message", overflow="fold")
        for finding in group:
            label, style = STATUS_STYLE[finding.status]
            if finding.suppressed_by:
                label, style = "IGNORED", "dim"
            target = finding.target.name
            if finding.location:
                target = (
                    f"{finding.location.path}:{finding.location.line}"
                    if finding.location.line
                    else finding.location.path
                )
            table.add_row(Text(label, style=style), finding.rule_id, finding.severity.value, target, finding.message)
        console.print()
        console.print(table)
    console.print()
    counts = ", ".join(
        f"{report.summary.by_status.get(status, 0)} {STATUS_STYLE[status][0].lower()}" for status in Status
    )
    console.print(Text(f"Summary: {report.summary.total} findings: {counts}", style="bold"))
    if report.summary.suppressed:
        console.print(f"{report.summary.suppressed} suppressed by ignore rules")
    if report.summary.failed_by_severity:
        by_sev = ", ".join(
            f"{n} {s.value}"
            for s, n in sorted(report.summary.failed_by_severity.items(), key=lambda item: -item[0].rank)
        )
        console.print(f"Failures by severity: {by_sev}")
    for problem in report.problems:
        console.print(f"note: {problem.fact} not collected: {problem.reason}")
    return buffer.getvalue()
