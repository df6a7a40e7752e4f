"""Retention: which runs (and fleet service leftovers) are old enough to go, and removing them in one transaction.

A run is kept when it is pinned (a baseline), when it is among the newest `keep_last` runs of its stream (one agent's
runs of one command on one subject: the fleet's "current state" is each stream's newest run), or when it is younger
than the cut-off. Everything else goes, its findings with it through the foreign key's cascade.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from portcullis.store import Run, Store
from portcullis.store.rematch import GIVEN_UP

T = TypeVar("T")


@dataclass(frozen=True)
class Retention:
    keep_last: int = 1  # the newest runs of each stream kept whatever their age; at least 1
    older_than: datetime | None = None  # None: age alone removes nothing, only keep_last counts

    def __post_init__(self) -> None:
        if self.keep_last < 1:
            raise ValueError("keep_last must be at least 1: the newest run of each subject always stays")


@dataclass(frozen=True)
class Pruned:
    runs: list[Run]  # the runs removed (or, on a dry run, that would be), newest first
    findings: int
    notifications: int = 0
    inventories: int = 0


def _doomed(retention: Retention) -> tuple[str, list[object]]:
    """The ids of the runs `retention` removes, as a subquery and its parameters."""
    sql = (
        "SELECT id FROM (SELECT id, started_at, pinned, row_number() OVER"
        " (PARTITION BY agent, command, subject ORDER BY id DESC) AS newer FROM runs) ranked"
        " WHERE newer > ? AND pinned = 0"
    )
    params: list[object] = [retention.keep_last]
    if retention.older_than is not None:
        sql += " AND started_at < ?"
        params.append(retention.older_than.isoformat())
    return sql, params


def _chunks(ids: list[T], size: int = 500) -> list[list[T]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def prune(store: Store, retention: Retention, *, dry_run: bool = False) -> Pruned:
    """Remove the runs `retention` lets go, with their findings, in one transaction; what went. With a cut-off, the
    fleet service's delivered (or given up) notifications and the inventories of images no engine has a container
    of go too when older than it; pending notifications and deployed images' inventories stay. `dry_run`: remove
    nothing."""
    doomed, params = _doomed(retention)
    rows = store.execute(
        f"SELECT id, started_at, command, subject, tool_version FROM runs WHERE id IN ({doomed}) ORDER BY id DESC",
        params,
    )
    runs = [Run(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]
    findings = 0
    # by the ids chosen once, so what is reported is exactly what goes even while agents push
    for chunk in _chunks([run.id for run in runs]):
        marks = ", ".join("?" for _ in chunk)
        findings += int(store.execute(f"SELECT count(*) FROM findings WHERE run_id IN ({marks})", chunk)[0][0])
        if not dry_run:
            store.execute(f"DELETE FROM runs WHERE id IN ({marks}) AND pinned = 0", chunk)  # pinned meanwhile: stays
    notifications = inventories = 0
    if retention.older_than is not None:
        cutoff = retention.older_than.isoformat()
        outbox = "FROM notifications WHERE created_at < ? AND (delivered_at IS NOT NULL OR next_attempt_at = ?)"
        # checked in the DELETE itself: an image an agent reports deployed meanwhile keeps its inventory
        unused = (
            "FROM inventories WHERE pushed_at < ?"
            " AND NOT EXISTS (SELECT 1 FROM containers c WHERE c.image_id = inventories.image_id)"
        )
        if dry_run:
            notifications = int(store.execute(f"SELECT count(*) {outbox}", (cutoff, GIVEN_UP))[0][0])
            inventories = int(store.execute(f"SELECT count(*) {unused}", (cutoff,))[0][0])
        else:
            notifications = len(store.execute(f"DELETE {outbox} RETURNING id", (cutoff, GIVEN_UP)))
            gone = [r[0] for r in store.execute(f"DELETE {unused} RETURNING image_id", (cutoff,))]
            inventories = len(gone)
            for chunk in _chunks(gone):
                marks = ", ".join("?" for _ in chunk)
                store.execute(f"DELETE FROM image_matches WHERE image_id IN ({marks})", chunk)
    if dry_run:
        store.release()
    else:
        store.commit()
    return Pruned(runs, findings, notifications, inventories)


def pin(store: Store, run_id: int, pinned: bool = True) -> Run:
    """Pin (or unpin) a run: a pinned run is never pruned. The run."""
    run = store.run(run_id)
    store.execute("UPDATE runs SET pinned = ? WHERE id = ?", (int(pinned), run_id))
    store.commit()
    return run
