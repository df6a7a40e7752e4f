"""`portcullis history` and `portcullis diff`: the runs kept in the store, and what changed between two of them."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from portcullis.cli.common import StoreOption, die
from portcullis.pipelines.errors import PipelineError
from portcullis.pipelines.history import RunDiff, diff_runs, list_runs
from portcullis.store import Run, StoredFinding

_STATUS_ORDER = ("fail", "error", "manual", "skip", "not_applicable", "pass")


class HistoryFormat(StrEnum):
    text = "text"
    json = "json"


FormatOption = Annotated[HistoryFormat, typer.Option("--format", "-f", help="text or json")]


def _counts(run: Run) -> str:
    return ", ".join(f"{run.counts[s]} {s}" for s in _STATUS_ORDER if run.counts.get(s)) or "no findings"


def _run_json(run: Run) -> dict[str, object]:
    return {
        "id": run.id,
        "started_at": run.started_at,
        "command": run.command,
        "subject": run.subject,
        "tool_version": run.tool_version,
        "counts": run.counts,
    }


def history(
    subject: Annotated[str | None, typer.Option("--subject", help="only the runs of this engine or image")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="at most this many runs, newest first")] = 20,
    output_format: FormatOption = HistoryFormat.text,
    store: StoreOption = None,
) -> None:
    """List the stored runs of `audit` and `image`: id, time, command, subject, findings by status.

    Examples: `portcullis history`, `portcullis history --subject alpine:3.20 -f json`.
    """
    try:
        runs = list_runs(store, subject, limit)
    except PipelineError as exc:
        die(str(exc))
    if output_format is HistoryFormat.json:
        typer.echo(json.dumps([_run_json(r) for r in runs], indent=2))
        return
    for run in runs:
        typer.echo(
            f"{run.id:>5}  {run.started_at[:19].replace('T', ' ')}  {run.command:<6} {run.subject}  {_counts(run)}"
        )
    if not runs:
        typer.echo("no stored runs")


def _finding_json(finding: StoredFinding) -> dict[str, object]:
    return {
        "fingerprint": finding.fingerprint,
        "rule_id": finding.rule_id,
        "severity": finding.severity,
        "target": {"kind": finding.target_kind, "name": finding.target_name},
        "message": finding.message,
    }


def _diff_text(change: RunDiff) -> str:
    lines = [
        f"run {change.before.id} ({change.before.started_at[:19]}) -> run {change.after.id} "
        f"({change.after.started_at[:19]}), {change.after.command} {change.after.subject}",
        f"{len(change.new)} new, {len(change.fixed)} fixed, {len(change.unchanged)} unchanged failure(s)",
    ]
    for word, group in (("new", change.new), ("fixed", change.fixed)):
        for f in group:
            lines.append(f"  {word:<5} {f.severity:<8} {f.rule_id:<12} {f.target_kind} {f.target_name}: {f.message}")
    return "\n".join(lines)


def diff(
    before: Annotated[str, typer.Argument(metavar="A", help="the earlier run: an id, latest or previous")],
    after: Annotated[str, typer.Argument(metavar="B", help="the later run: an id, latest or previous")],
    subject: Annotated[
        str | None,
        typer.Option("--subject", help="latest/previous of this engine or image (default: the newest run's)"),
    ] = None,
    output_format: FormatOption = HistoryFormat.text,
    store: StoreOption = None,
) -> None:
    """Compare two stored runs by finding fingerprint: failures new in B, fixed since A, and unchanged.

    Examples: `portcullis diff previous latest`, `portcullis diff 12 15 -f json`.
    """
    try:
        change = diff_runs(store, before, after, subject)
    except PipelineError as exc:
        die(str(exc))
    if output_format is HistoryFormat.text:
        typer.echo(_diff_text(change))
        return
    document = {
        "before": _run_json(change.before),
        "after": _run_json(change.after),
        "new": [_finding_json(f) for f in change.new],
        "fixed": [_finding_json(f) for f in change.fixed],
        "unchanged": [_finding_json(f) for f in change.unchanged],
    }
    typer.echo(json.dumps(document, indent=2))
