"""The store read as a fleet: engines and images in their latest runs, findings by filter, failures over time, and
the fleet service's tokens (only their hashes are kept).

"Latest" means the newest run of each stream, a stream being one agent's runs of one command on one subject: an
engine's state is its last audit, an image's its last scan, whoever else pushed since.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from portcullis.model.vuln import VULN_RULE_ID
from portcullis.store import Run, Store

LATEST_RUNS = "SELECT max(id) FROM runs GROUP BY agent, command, subject"
_UNSUPPRESSED_FAILURE = "f.status = 'fail' AND f.suppressed_by IS NULL"


@dataclass(frozen=True)
class Subject:
    """An engine or an image as the latest runs see it: its failures by severity, when it was last seen."""

    name: str
    last_run: int
    last_seen: str
    findings: int
    failing: dict[str, int] = field(default_factory=dict)
    vulnerable: dict[str, int] = field(default_factory=dict)  # the failing DKR-VULN findings among them

    def controls(self) -> dict[str, int]:
        """The failures that are not vulnerabilities (controls, checks), by severity."""
        left = {s: n - self.vulnerable.get(s, 0) for s, n in self.failing.items()}
        return {s: n for s, n in left.items() if n}


@dataclass(frozen=True)
class FleetFinding:
    run_id: int
    started_at: str
    agent: str | None
    command: str
    subject: str
    engine: str | None
    image: str | None
    fingerprint: str
    rule_id: str
    advisory: str | None
    status: str
    severity: str
    target_kind: str
    target_name: str
    message: str
    suppressed_by: str | None


@dataclass(frozen=True)
class FindingFilter:
    engine: str | None = None
    image: str | None = None
    rule: str | None = None  # a rule id, or an advisory id (CVE-…) for vulnerability findings
    severities: Sequence[str] = ()
    statuses: Sequence[str] = ()
    run_id: int | None = None  # None: the latest run of every stream


@dataclass(frozen=True)
class TrendPoint:
    run_id: int
    started_at: str
    agent: str | None
    command: str
    subject: str
    failing: dict[str, int]  # unsuppressed failures by severity


def _subjects(store: Store, column: str) -> list[Subject]:
    rows = store.execute(
        f"SELECT f.{column}, max(f.run_id), max(r.started_at), count(*),"
        f" sum(CASE WHEN {_UNSUPPRESSED_FAILURE} THEN 1 ELSE 0 END),"
        f" sum(CASE WHEN {_UNSUPPRESSED_FAILURE} AND f.rule_id = ? THEN 1 ELSE 0 END), f.severity"
        f" FROM findings f JOIN runs r ON r.id = f.run_id"
        f" WHERE f.run_id IN ({LATEST_RUNS}) AND f.{column} IS NOT NULL"
        f" GROUP BY f.{column}, f.severity ORDER BY f.{column}",
        (VULN_RULE_ID,),
    )
    merged: dict[str, dict[str, Any]] = {}
    for name, last_run, last_seen, count, failing, vulnerable, severity in rows:
        entry = merged.setdefault(
            name, {"last_run": 0, "last_seen": "", "findings": 0, "failing": {}, "vulnerable": {}}
        )
        entry["last_run"] = max(entry["last_run"], int(last_run))
        entry["last_seen"] = max(entry["last_seen"], last_seen)
        entry["findings"] += int(count)
        if failing:
            entry["failing"][severity] = int(failing)
        if vulnerable:
            entry["vulnerable"][severity] = int(vulnerable)
    return [Subject(name, **entry) for name, entry in merged.items()]


def engines(store: Store) -> list[Subject]:
    """Every engine in the latest runs, by name."""
    return _subjects(store, "engine")


def images(store: Store) -> list[Subject]:
    """Every image in the latest runs, by name."""
    return _subjects(store, "image")


def latest_runs_of(store: Store, *, engine: str | None = None, image: str | None = None) -> list[Run]:
    """The latest run of each stream that has findings about `engine` (or `image`), newest first."""
    column, value = ("engine", engine) if engine is not None else ("image", image)
    rows = store.execute(
        "SELECT r.id, r.started_at, r.command, r.subject, r.tool_version FROM runs r"
        f" WHERE r.id IN ({LATEST_RUNS}) AND EXISTS (SELECT 1 FROM findings f WHERE f.run_id = r.id"
        f" AND f.{column} = ?) ORDER BY r.id DESC",
        (value,),
    )
    return [Run(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]


def previous_run(store: Store, run: Run) -> Run | None:
    """The run before `run` in its stream (the same agent, command and subject), if one is kept."""
    rows = store.execute(
        "SELECT p.id, p.started_at, p.command, p.subject, p.tool_version FROM runs p JOIN runs r ON r.id = ?"
        " WHERE p.agent IS NOT DISTINCT FROM r.agent AND p.command = r.command AND p.subject = r.subject"
        " AND p.id < r.id ORDER BY p.id DESC LIMIT 1",
        (run.id,),
    )
    return Run(int(rows[0][0]), rows[0][1], rows[0][2], rows[0][3], rows[0][4]) if rows else None


def find(store: Store, which: FindingFilter, *, limit: int, offset: int = 0) -> list[FleetFinding]:
    """The findings `which` selects, newest run first and in report order within a run; a page of `limit`."""
    where: list[str] = []
    params: list[str | int] = []
    if which.run_id is None:
        where.append(f"f.run_id IN ({LATEST_RUNS})")
    else:
        where.append("f.run_id = ?")
        params.append(which.run_id)
    for column, value in (("engine", which.engine), ("image", which.image)):
        if value is not None:
            where.append(f"f.{column} = ?")
            params.append(value)
    if which.rule is not None:
        where.append("(f.rule_id = ? OR f.advisory = ?)")
        params += [which.rule, which.rule]
    for column, values in (("severity", which.severities), ("status", which.statuses)):
        if values:
            where.append(f"f.{column} IN ({', '.join('?' for _ in values)})")
            params += list(values)
    rows = store.execute(
        "SELECT f.run_id, r.started_at, r.agent, r.command, r.subject, f.engine, f.image, f.fingerprint, f.rule_id,"
        " f.advisory, f.status, f.severity, f.target_kind, f.target_name, f.message, f.suppressed_by"
        " FROM findings f JOIN runs r ON r.id = f.run_id WHERE "
        + " AND ".join(where)
        + f" ORDER BY f.run_id DESC, f.position LIMIT {int(limit)} OFFSET {int(offset)}",
        params,
    )
    return [FleetFinding(*row) for row in rows]


def trends(
    store: Store, *, engine: str | None = None, image: str | None = None, since: str | None = None, limit: int = 500
) -> list[TrendPoint]:
    """Unsuppressed failures by severity in each run (of `engine` or `image` when given, since the ISO time
    `since`), oldest first; runs with no failure are listed with none. The newest `limit` runs."""
    run_where, params = [], []
    if since is not None:
        run_where.append("r.started_at >= ?")
        params.append(since)
    for column, value in (("engine", engine), ("image", image)):
        if value is not None:
            run_where.append(f"r.id IN (SELECT run_id FROM findings WHERE {column} = ?)")
            params.append(value)
    runs = store.execute(
        "SELECT r.id, r.started_at, r.agent, r.command, r.subject FROM runs r"
        + (" WHERE " + " AND ".join(run_where) if run_where else "")
        + f" ORDER BY r.id DESC LIMIT {int(limit)}",
        params,
    )
    if not runs:
        return []
    counted: dict[int, dict[str, int]] = {int(r[0]): {} for r in runs}
    marks = ", ".join("?" for _ in counted)
    scope, scope_params = [], []
    for column, value in (("engine", engine), ("image", image)):
        if value is not None:  # a run of several engines counts only this engine's failures
            scope.append(f" AND f.{column} = ?")
            scope_params.append(value)
    for run_id, severity, count in store.execute(
        f"SELECT f.run_id, f.severity, count(*) FROM findings f WHERE f.run_id IN ({marks})"
        f" AND {_UNSUPPRESSED_FAILURE}{''.join(scope)} GROUP BY f.run_id, f.severity",
        [*counted, *scope_params],
    ):
        counted[int(run_id)][severity] = int(count)
    return [TrendPoint(int(r[0]), r[1], r[2], r[3], r[4], counted[int(r[0])]) for r in reversed(runs)]


@dataclass(frozen=True)
class StoredToken:
    token_id: str
    name: str
    role: str
    salt: str
    digest: str
    created_at: str
    revoked_at: str | None


_TOKEN_COLUMNS = "token_id, name, role, salt, digest, created_at, revoked_at"


def add_token(store: Store, token: StoredToken) -> None:
    store.execute(
        f"INSERT INTO tokens ({_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (token.token_id, token.name, token.role, token.salt, token.digest, token.created_at, token.revoked_at),
    )
    store.commit()


def token(store: Store, token_id: str) -> StoredToken | None:
    rows = store.execute(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE token_id = ?", (token_id,))
    return StoredToken(*rows[0]) if rows else None


def tokens(store: Store, name: str | None = None) -> list[StoredToken]:
    """Every token (of `name` when given), revoked ones too, oldest first."""
    sql = f"SELECT {_TOKEN_COLUMNS} FROM tokens" + (" WHERE name = ?" if name is not None else "") + " ORDER BY id"
    return [StoredToken(*row) for row in store.execute(sql, () if name is None else (name,))]


def revoke_tokens(store: Store, name: str, when: str) -> int:
    """Revoke the live tokens of `name`; how many there were."""
    rows = store.execute(
        "UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL RETURNING token_id", (when, name)
    )
    store.commit()
    return len(rows)
