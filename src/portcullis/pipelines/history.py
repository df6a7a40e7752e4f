"""History: reports kept in the store, runs compared by finding fingerprint, and a baseline that quiets the gate
for the failures an earlier run already had."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from portcullis.model.findings import Report, Status, Summary
from portcullis.model.fingerprint import report_fingerprints
from portcullis.pipelines.errors import HistoryError
from portcullis.store import Run, Store, StoredFinding, StoreError, open_store
from portcullis.store.retention import Pruned, Retention, pin, prune

IN_BASELINE = "in baseline"
RELATIVE_RUNS = ("latest", "previous")


def open_history(location: str | None) -> Store:
    """The store at `location` (None: PORTCULLIS_STORE or the user data dir); one-line HistoryError otherwise."""
    try:
        return open_store(location)
    except StoreError as exc:
        raise HistoryError(str(exc)) from exc


def save_run(report: Report, location: str | None) -> int:
    """Keep `report` in the store; its run id."""
    store = open_history(location)
    try:
        return store.save(report)
    except StoreError as exc:
        raise HistoryError(str(exc)) from exc
    finally:
        store.close()


def list_runs(location: str | None, subject: str | None, limit: int) -> list[Run]:
    store = open_history(location)
    try:
        return store.runs(subject=subject, limit=limit)
    except StoreError as exc:
        raise HistoryError(str(exc)) from exc
    finally:
        store.close()


def resolve_run(store: Store, ref: str, subject: str | None = None) -> Run:
    """A run by id, or `latest` (the newest, of `subject` when given) or `previous` (the run before the latest of
    the same command and subject)."""
    try:
        if ref.isdigit():
            return store.run(int(ref))
        if ref not in RELATIVE_RUNS:
            raise HistoryError(f"{ref!r} is not a run: give a run id, latest or previous")
        newest = store.runs(subject=subject, limit=1)
        if not newest:
            raise HistoryError(f"no stored run{f' of {subject}' if subject else ''} in {store.where}")
        if ref == "latest":
            return newest[0]
        earlier = store.runs(subject=newest[0].subject, command=newest[0].command, limit=2)[1:]
        if not earlier:
            raise HistoryError(f"{newest[0].subject} has only one stored {newest[0].command} run, no previous one")
        return earlier[0]
    except StoreError as exc:
        raise HistoryError(str(exc)) from exc


@dataclass(frozen=True)
class RunDiff:
    before: Run
    after: Run
    new: list[StoredFinding]
    fixed: list[StoredFinding]
    unchanged: list[StoredFinding]


def _failures(findings: list[StoredFinding]) -> dict[str, StoredFinding]:
    return {f.fingerprint: f for f in findings if f.status == Status.FAIL.value}


def diff_runs(location: str | None, before_ref: str, after_ref: str, subject: str | None = None) -> RunDiff:
    """Failures of `after_ref` not in `before_ref` (new), the other way round (fixed), and in both (unchanged)."""
    store = open_history(location)
    try:
        return diff_stored(store, resolve_run(store, before_ref, subject), resolve_run(store, after_ref, subject))
    except StoreError as exc:
        raise HistoryError(str(exc)) from exc
    finally:
        store.close()


def diff_stored(store: Store, before: Run, after: Run) -> RunDiff:
    """`diff_runs` over an open store, for two runs already resolved (StoreError when one has gone)."""
    old, now = _failures(store.findings(before.id)), _failures(store.findings(after.id))
    return RunDiff(
        before=before,
        after=after,
        new=[f for p, f in now.items() if p not in old],
        fixed=[f for p, f in old.items() if p not in now],
        unchanged=[f for p, f in now.items() if p in old],
    )


def load_baseline(ref: str, location: str | None) -> set[str]:
    """The failure fingerprints of a baseline: a JSON report file (`-f json`), or the report of a stored run (id,
    latest, previous). A file that is there wins over a run of the same name."""
    path = Path(ref)
    if path.is_file() or not (ref.isdigit() or ref in RELATIVE_RUNS):
        try:
            report = Report.model_validate_json(path.read_bytes())
        except OSError as exc:
            raise HistoryError(f"baseline {ref}: {exc.strerror or exc}; give a JSON report or a run id") from exc
        except ValidationError as exc:  # also malformed JSON
            raise HistoryError(f"baseline {ref}: not a portcullis JSON report (-f json)") from exc
    else:
        store = open_history(location)
        try:
            report = store.report(resolve_run(store, ref).id)
        except StoreError as exc:
            raise HistoryError(str(exc)) from exc
        finally:
            store.close()
    return {
        mark
        for f, mark in zip(report.findings, report_fingerprints(report.findings), strict=True)
        if f.status is Status.FAIL
    }


def apply_baseline(report: Report, known: set[str]) -> Report:
    """Mark the failures whose fingerprint the baseline has as suppressed "in baseline": still listed, not gated."""
    prints = report_fingerprints(report.findings)
    findings = [
        f.model_copy(update={"suppressed_by": IN_BASELINE})
        if f.status is Status.FAIL and not f.suppressed_by and mark in known
        else f
        for f, mark in zip(report.findings, prints, strict=True)
    ]
    return report.model_copy(update={"findings": findings, "summary": Summary.of(findings)})


def prune_runs(location: str | None, retention: Retention, *, dry_run: bool) -> Pruned:
    """Remove the runs `retention` lets go (pinned runs and each subject's newest stay), in one transaction."""
    store = open_history(location)
    try:
        return prune(store, retention, dry_run=dry_run)
    except StoreError as exc:
        raise HistoryError(str(exc)) from exc
    finally:
        store.close()


def pin_run(location: str | None, ref: str, pinned: bool) -> Run:
    """Pin (or unpin) the run `ref` names (an id, latest or previous) so pruning keeps it; the run."""
    store = open_history(location)
    try:
        return pin(store, resolve_run(store, ref).id, pinned)
    except StoreError as exc:
        raise HistoryError(str(exc)) from exc
    finally:
        store.close()
