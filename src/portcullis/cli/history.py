"""`portcullis history` and `portcullis diff`: the runs kept in the store, what changed between two of them, and
`history prune|pin|unpin` to keep the store bounded without losing a baseline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

import typer

from portcullis.cli.common import StoreOption, die, say
from portcullis.pipelines.errors import PipelineError
from portcullis.pipelines.history import RunDiff, diff_runs, list_runs, pin_run, prune_runs
from portcullis.store import Run, StoredFinding
from portcullis.store.retention import Retention

app = typer.Typer(
    name="history",
    help="List the stored runs; prune old ones, pin the ones to keep.",
    invoke_without_command=True,
)

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
        "pinned": run.pinned,
    }


@app.callback()
def history(
    ctx: typer.Context,
    subject: Annotated[str | None, typer.Option("--subject", help="only the runs of this engine or image")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="at most this many runs, newest first")] = 20,
    output_format: FormatOption = HistoryFormat.text,
    store: StoreOption = None,
) -> None:
    """List the stored runs of `audit` and `image`: id, time, command, subject, findings by status.

    Examples: `portcullis history`, `portcullis history --subject alpine:3.20 -f json`,
    `portcullis history prune --keep-days 90 --keep-last 10`.
    """
    if ctx.invoked_subcommand is not None:
        return
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
            + ("  (pinned)" if run.pinned else "")
        )
    if not runs:
        typer.echo("no stored runs")


@app.command()
def prune(
    keep_days: Annotated[
        int | None, typer.Option("--keep-days", metavar="N", min=0, help="remove runs older than N days")
    ] = None,
    keep_last: Annotated[
        int | None,
        typer.Option(
            "--keep-last", metavar="N", min=1, help="keep the newest N runs of each subject, whatever their age"
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would be removed; remove nothing")] = False,
    output_format: FormatOption = HistoryFormat.text,
    store: StoreOption = None,
) -> None:
    """Remove old runs and their findings in one transaction. The newest run of each subject (per command) and
    pinned runs (`history pin`) always stay; with both options a run goes only when both let it.

    Examples: `portcullis history prune --keep-days 30`, `portcullis history prune --keep-last 20 --dry-run`.
    """
    if keep_days is None and keep_last is None:
        die("say what to keep: --keep-days N and/or --keep-last N")
    older_than = None if keep_days is None else datetime.now(UTC) - timedelta(days=keep_days)
    try:
        pruned = prune_runs(store, Retention(keep_last=keep_last or 1, older_than=older_than), dry_run=dry_run)
    except PipelineError as exc:
        die(str(exc))
    if output_format is HistoryFormat.json:
        document = {
            "dry_run": dry_run,
            "runs": [_run_json(r) for r in pruned.runs],
            "findings": pruned.findings,
            "notifications": pruned.notifications,
            "inventories": pruned.inventories,
        }
        typer.echo(json.dumps(document, indent=2))
        return
    if dry_run:
        for run in pruned.runs:
            typer.echo(f"{run.id:>5}  {run.started_at[:19].replace('T', ' ')}  {run.command:<6} {run.subject}")
    verb = "would remove" if dry_run else "removed"
    service = ""
    if pruned.notifications or pruned.inventories:  # a fleet service's store
        service = f", {pruned.notifications} sent notification(s), {pruned.inventories} undeployed image inventory(ies)"
    say(f"{verb} {len(pruned.runs)} run(s) and {pruned.findings} finding(s){service}")


RunArgument = Annotated[str, typer.Argument(metavar="RUN", help="a run id, latest or previous")]


@app.command()
def pin(run: RunArgument, store: StoreOption = None) -> None:
    """Keep a run whatever `history prune` or the fleet service's --retain-days say: pin the runs you use as
    --baseline. Example: `portcullis history pin 42`."""
    _pin(run, store, pinned=True)


@app.command()
def unpin(run: RunArgument, store: StoreOption = None) -> None:
    """Let `history prune` remove a pinned run again. Example: `portcullis history unpin 42`."""
    _pin(run, store, pinned=False)


def _pin(ref: str, store: str | None, *, pinned: bool) -> None:
    try:
        run = pin_run(store, ref, pinned)
    except PipelineError as exc:
        die(str(exc))
    say(f"run {run.id} ({run.command} {run.subject}, {run.started_at[:19]}) {'pinned' if pinned else 'unpinned'}")


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
