"""The pure half of `portcullis overhead --runtime …`: the document, its tables and its figure. No I/O here.

The JSON document (`RuntimesReport`, `schema_version` 1):
- `runtimes`: one row per runtime asked for: `measured`, and either `how` it ran or the `reason` it cannot run here.
- `measurements`: one per (workload, environment), with the `runtime` it ran in; native is each workload's
  `baseline`. CPU and memory are timed in wall time here (a sandbox or a VM keeps its own CPU clock).
- `comparisons`: every environment's median against native, as `slowdown_percent` (extra time for the same work).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from portcullis.proofs.overhead_results import (
    HEADERS,
    PLOT_NOTE,
    Comparison,
    Measurement,
    PythonInfo,
    Settings,
    plot_measurements,
    table_rows,
)

SCHEMA_VERSION = 1


class RuntimeStatus(BaseModel):
    runtime: str
    measured: bool
    how: str | None = Field(None, description="what ran the instance, when it ran")
    reason: str | None = Field(None, description="why it cannot run on this host, when it did not")
    python: PythonInfo | None = None


class RuntimesReport(BaseModel):
    schema_version: int = SCHEMA_VERSION
    tool: str = "portcullis"
    version: str
    started_at: str
    duration_seconds: float
    settings: Settings
    kernel: str | None = None
    cpus: int | None = None
    image: str
    native_python: PythonInfo | None = None
    runtimes: list[RuntimeStatus]
    measurements: list[Measurement]
    comparisons: list[Comparison]
    notes: list[str]


def status_lines(report: RuntimesReport) -> list[str]:
    return [
        f"{row.runtime}: " + (f"measured — {row.how}" if row.measured else f"cannot run here — {row.reason}")
        for row in report.runtimes
    ]


def render_markdown(report: RuntimesReport) -> str:
    lines = [
        "# Runtimes side by side: native, runc, gVisor, VM",
        "",
        f"Measured by `portcullis overhead --runtime` {report.version} on {report.started_at} "
        f"({report.settings.completed_repetitions} repetitions, {report.duration_seconds:.0f} s), kernel "
        f"{report.kernel}, {report.cpus} CPUs, image `{report.image}`.",
        "",
        "| runtime | measured | how, or why not |",
        "|---|---|---|",
    ]
    for row in report.runtimes:
        lines.append(f"| {row.runtime} | {'yes' if row.measured else 'no'} | {row.how or row.reason} |")
    lines += ["", "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(report.measurements, report.comparisons)]
    lines += ["", "Slowdown = extra time for the same work (positive: slower than native).", ""]
    if report.notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def render_text(report: RuntimesReport) -> str:
    rows = [HEADERS, *table_rows(report.measurements, report.comparisons)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    out = [*status_lines(report), ""]
    table = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    table.insert(1, "  ".join("-" * width for width in widths))
    out += table + [""] + [f"note: {note}" for note in report.notes]
    return "\n".join(out) + "\n"


def render_plot(report: RuntimesReport) -> str:
    measured = ", ".join(row.runtime for row in report.runtimes if row.measured)
    missing = [row.runtime for row in report.runtimes if not row.measured]
    title = f"Native vs {measured} ({report.settings.completed_repetitions} runs each)"
    if missing:
        title += f"; not runnable here: {', '.join(missing)}"
    return plot_measurements(report.measurements, title, PLOT_NOTE)
