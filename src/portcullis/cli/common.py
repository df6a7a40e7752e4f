"""What every command shares: output formats, the --fail-on gate, exit codes, one-line errors."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

from portcullis.model.findings import Report, Severity

EXIT_OK = 0
EXIT_TOOL_ERROR = 1
EXIT_FINDINGS = 2

stderr = Console(stderr=True, highlight=False, soft_wrap=True)


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    sarif = "sarif"
    junit = "junit"
    html = "html"


class FailOn(StrEnum):
    critical = "critical"
    high = "high"
    medium = "medium"
    low = "low"
    info = "info"
    none = "none"


def die(message: str) -> NoReturn:
    """One clear line on stderr, exit code 1."""
    stderr.print(f"portcullis: error: {message}", markup=False)
    raise typer.Exit(EXIT_TOOL_ERROR)


def emit(report: Report, fmt: OutputFormat, output: Path | None, fail_on: FailOn | None) -> int:
    """Render the report to stdout or --output and return the exit code the gate decides."""
    from portcullis.report import renderers

    available = renderers()
    if fmt.value not in available:
        die(f"format {fmt.value!r} is not available for this command")
    rendered = available[fmt.value](report)
    if output is None:
        sys.stdout.write(rendered)
        sys.stdout.flush()
    else:
        try:
            output.write_text(rendered, encoding="utf-8")
        except OSError as exc:
            die(f"cannot write {output}: {exc.strerror}")
        stderr.print(f"report written to {output}", markup=False)
    if fail_on is None or fail_on is FailOn.none:
        return EXIT_OK
    gate = report.failures_at_or_above(Severity(fail_on.value))
    if gate:
        stderr.print(f"{len(gate)} failure(s) at or above {fail_on.value}", markup=False)
        return EXIT_FINDINGS
    return EXIT_OK
