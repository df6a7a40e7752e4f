"""Where reports are kept between runs: SQLite (a file in the user data dir) or PostgreSQL, one schema on both.

The schema is versioned: `schema_version` holds the number of the last migration applied, and a store written by a
newer portcullis (a number this code does not know) is refused rather than misread.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from portcullis.model.findings import Report, TargetKind
from portcullis.model.fingerprint import advisory_rule_id, report_fingerprints

STORE_ENV = "PORTCULLIS_STORE"
STORE_FILENAME = "history.sqlite3"
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")

# Migration n is MIGRATIONS[n - 1]; `{id}` is the backend's auto-numbered primary key. Append, never edit.
MIGRATIONS: list[list[str]] = [
    [
        "CREATE TABLE runs (id {id}, started_at TEXT NOT NULL, command TEXT NOT NULL, subject TEXT NOT NULL,"
        " tool_version TEXT NOT NULL, report TEXT NOT NULL)",
        "CREATE INDEX runs_by_subject ON runs (subject, command, id)",
        "CREATE TABLE findings (run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,"
        " position INTEGER NOT NULL, fingerprint TEXT NOT NULL, rule_id TEXT NOT NULL, status TEXT NOT NULL,"
        " severity TEXT NOT NULL, target_kind TEXT NOT NULL, target_name TEXT NOT NULL, message TEXT NOT NULL,"
        " suppressed_by TEXT, PRIMARY KEY (run_id, position))",
    ],
    # 2: the fleet service. A pushed run keeps its agent and the client's report id (one run per pair, so a retried
    # push is found, not stored twice); each finding its engine and image, filled in for the runs already kept; the
    # service's tokens, hashed.
    [
        "ALTER TABLE runs ADD COLUMN agent TEXT",
        "ALTER TABLE runs ADD COLUMN report_uid TEXT",
        "CREATE UNIQUE INDEX runs_by_push ON runs (agent, report_uid)",
        "CREATE INDEX runs_by_stream ON runs (agent, command, subject, id)",
        "ALTER TABLE findings ADD COLUMN engine TEXT",
        "ALTER TABLE findings ADD COLUMN image TEXT",
        "ALTER TABLE findings ADD COLUMN advisory TEXT",
        "UPDATE findings SET engine = (SELECT subject FROM runs WHERE runs.id = findings.run_id AND command = 'audit')",
        "UPDATE findings SET image = COALESCE((SELECT subject FROM runs WHERE runs.id = findings.run_id"
        " AND command = 'image'), CASE WHEN target_kind = 'image' THEN target_name END)",
        "UPDATE findings SET advisory = rule_id",
        "CREATE INDEX findings_by_engine ON findings (engine, run_id)",
        "CREATE INDEX findings_by_image ON findings (image, run_id)",
        "CREATE INDEX findings_by_advisory ON findings (advisory, run_id)",
        "CREATE TABLE tokens (id {id}, token_id TEXT NOT NULL UNIQUE, name TEXT NOT NULL, role TEXT NOT NULL,"
        " salt TEXT NOT NULL, digest TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT)",
        "CREATE INDEX tokens_by_name ON tokens (name)",
    ],
    # 3: re-match and notify. The package inventory of each image pushed with one (by image id); the containers each
    # agent's engine has (its latest list replaces the one before); the advisories each deployed image was last
    # matched to (what a new database adds is what gets notified); the webhook outbox, delivered with retries.
    [
        "CREATE TABLE inventories (image_id TEXT PRIMARY KEY, image TEXT NOT NULL, agent TEXT NOT NULL,"
        " inventory TEXT NOT NULL, pushed_at TEXT NOT NULL, matched_at TEXT)",
        "CREATE TABLE containers (agent TEXT NOT NULL, container_id TEXT NOT NULL, name TEXT NOT NULL,"
        " image TEXT NOT NULL, image_id TEXT NOT NULL, running INTEGER NOT NULL, seen_at TEXT NOT NULL,"
        " PRIMARY KEY (agent, container_id))",
        "CREATE INDEX containers_by_image ON containers (image_id)",
        "CREATE TABLE image_matches (image_id TEXT NOT NULL, advisory TEXT NOT NULL, package TEXT NOT NULL,"
        " installed TEXT NOT NULL, fixed TEXT, severity TEXT NOT NULL, PRIMARY KEY (image_id, advisory, package))",
        "CREATE TABLE notifications (id {id}, created_at TEXT NOT NULL, body TEXT NOT NULL,"
        " attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at TEXT NOT NULL, delivered_at TEXT, last_error TEXT)",
        "CREATE INDEX notifications_pending ON notifications (delivered_at, next_attempt_at)",
    ],
    # 4: retention. A pinned run (a baseline) is never pruned; pruning finds old runs by time and old outbox
    # entries and inventories by theirs. Findings go with their run through the cascade on (run_id, position).
    [
        "ALTER TABLE runs ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX runs_by_time ON runs (started_at)",
        "CREATE INDEX notifications_by_time ON notifications (created_at)",
        "CREATE INDEX inventories_by_time ON inventories (pushed_at)",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(Exception):
    """The store cannot be opened, read or written; the message is one line."""


class StoreConflict(StoreError):
    """A row with the same unique key is already there (another writer got there first)."""


@dataclass(frozen=True)
class Run:
    id: int
    started_at: str  # ISO 8601, UTC
    command: str
    subject: str
    tool_version: str
    counts: dict[str, int] = field(default_factory=dict)  # findings by status
    pinned: bool = False  # kept whatever retention says (`history pin`)


@dataclass(frozen=True)
class StoredFinding:
    fingerprint: str
    rule_id: str
    status: str
    severity: str
    target_kind: str
    target_name: str
    message: str
    suppressed_by: str | None
    engine: str | None = None
    image: str | None = None


def default_location() -> str:
    """PORTCULLIS_STORE, else the SQLite file in the user data dir."""
    return os.environ.get(STORE_ENV) or str(Path(platformdirs.user_data_dir("portcullis")) / STORE_FILENAME)


def _one_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class Store:
    """One open store. SQL is written with `?` placeholders; PostgreSQL's driver wants `%s`."""

    def __init__(self, connection: Any, *, postgres: bool, where: str) -> None:
        self._db = connection
        self._postgres = postgres
        self.where = where
        self._errors: tuple[type[BaseException], ...] = (sqlite3.Error,)
        self._conflicts: tuple[type[BaseException], ...] = (sqlite3.IntegrityError,)
        if postgres:
            import psycopg

            self._errors = (psycopg.Error,)
            self._conflicts = (psycopg.errors.UniqueViolation,)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; its rows (none for a statement that returns none). Not committed: see commit()."""
        cursor = self._db.cursor()
        try:
            cursor.execute(sql.replace("?", "%s") if self._postgres else sql, tuple(params))
            return list(cursor.fetchall()) if cursor.description else []
        except self._errors as exc:
            self._db.rollback()
            if isinstance(exc, self._conflicts) and (self._postgres or "UNIQUE" in str(exc)):
                raise StoreConflict(f"store {self.where}: {_one_line(exc)}") from exc
            raise StoreError(f"store {self.where}: {_one_line(exc)}") from exc
        finally:
            cursor.close()

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement for many rows, in one round trip where the driver can (psycopg pipelines them)."""
        cursor = self._db.cursor()
        try:
            cursor.executemany(sql.replace("?", "%s") if self._postgres else sql, [tuple(r) for r in rows])
        except self._errors as exc:
            self._db.rollback()
            raise StoreError(f"store {self.where}: {_one_line(exc)}") from exc
        finally:
            cursor.close()

    def migrate(self) -> None:
        """Apply the migrations this store lacks; refuse a store from a newer portcullis."""
        self.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        rows = self.execute("SELECT max(version) FROM schema_version")
        current = rows[0][0] or 0
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"store {self.where} has schema version {current}, newer than this portcullis knows "
                f"({SCHEMA_VERSION}): upgrade portcullis to use it"
            )
        key = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY" if self._postgres else "INTEGER PRIMARY KEY"
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version - 1]:
                self.execute(statement.replace("{id}", key))
            self.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        self._db.commit()

    def save(self, report: Report, *, agent: str | None = None, report_uid: str | None = None) -> int:
        """Keep `report` with each finding's fingerprint, engine and image; the new run's id. `agent` names who pushed
        it to the service, `report_uid` the id that agent gave it (one run per agent and id: StoreConflict)."""
        rows = self.execute(
            "INSERT INTO runs (started_at, command, subject, tool_version, report, agent, report_uid)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                report.started_at.isoformat(),
                report.command,
                report.subject,
                report.tool.version,
                report.model_dump_json(),
                agent,
                report_uid,
            ),
        )
        run_id = int(rows[0][0])
        # An audit's findings are about its engine: the one each names, else the pushing agent's, else the subject.
        engine = agent or (report.subject if report.command == "audit" else None)
        # An image scan is of one image, its subject; an audit names images in the targets of its image rules.
        image = report.subject if report.command == "image" else None
        rows = [
            (
                run_id,
                position,
                mark,
                finding.rule_id,
                finding.status.value,
                finding.severity.value,
                finding.target.kind.value,
                finding.target.name,
                finding.message,
                finding.suppressed_by,
                finding.engine or engine,
                image or (finding.target.name if finding.target.kind is TargetKind.IMAGE else None),
                advisory_rule_id(finding),
            )
            for position, (finding, mark) in enumerate(
                zip(report.findings, report_fingerprints(report.findings), strict=True)
            )
        ]
        self.execute_many(
            "INSERT INTO findings (run_id, position, fingerprint, rule_id, status, severity, target_kind,"
            " target_name, message, suppressed_by, engine, image, advisory)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        self._db.commit()
        return run_id

    def pushed(self, agent: str, report_uid: str) -> tuple[int, str] | None:
        """The run `agent` pushed as `report_uid`, and its report as stored (JSON), if there is one."""
        rows = self.execute("SELECT id, report FROM runs WHERE agent = ? AND report_uid = ?", (agent, report_uid))
        return (int(rows[0][0]), rows[0][1]) if rows else None

    def runs(self, *, subject: str | None = None, command: str | None = None, limit: int | None = None) -> list[Run]:
        """Stored runs, newest first."""
        where, params = [], []
        if subject is not None:
            where.append("subject = ?")
            params.append(subject)
        if command is not None:
            where.append("command = ?")
            params.append(command)
        sql = "SELECT id, started_at, command, subject, tool_version, pinned FROM runs"
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        found = self.execute(sql, params)
        counts: dict[int, dict[str, int]] = {}
        if found:
            ids = [row[0] for row in found]
            marks = ", ".join("?" for _ in ids)
            for run_id, status, count in self.execute(
                f"SELECT run_id, status, count(*) FROM findings WHERE run_id IN ({marks}) GROUP BY run_id, status",
                ids,
            ):
                counts.setdefault(run_id, {})[status] = int(count)
        return [Run(int(r[0]), r[1], r[2], r[3], r[4], counts.get(r[0], {}), bool(r[5])) for r in found]

    def run(self, run_id: int) -> Run:
        rows = self.execute(
            "SELECT id, started_at, command, subject, tool_version, pinned FROM runs WHERE id = ?", (run_id,)
        )
        if not rows:
            raise StoreError(f"store {self.where} has no run {run_id}")
        counts = self.execute("SELECT status, count(*) FROM findings WHERE run_id = ? GROUP BY status", (run_id,))
        r = rows[0]
        return Run(int(r[0]), r[1], r[2], r[3], r[4], {status: int(n) for status, n in counts}, bool(r[5]))

    def findings(self, run_id: int) -> list[StoredFinding]:
        self.run(run_id)  # an unknown id is an error, not an empty run
        rows = self.execute(
            "SELECT fingerprint, rule_id, status, severity, target_kind, target_name, message, suppressed_by, engine,"
            " image FROM findings WHERE run_id = ? ORDER BY position",
            (run_id,),
        )
        return [StoredFinding(*row) for row in rows]

    def report(self, run_id: int) -> Report:
        self.run(run_id)
        (text,) = self.execute("SELECT report FROM runs WHERE id = ?", (run_id,))[0]
        return Report.model_validate_json(text)

    def commit(self) -> None:
        self._db.commit()

    def release(self) -> None:
        """End the transaction a read opened, so a connection kept between requests holds no snapshot or lock."""
        self._db.rollback()

    def close(self) -> None:
        self._db.close()


def _open_sqlite(path: Path) -> Store:
    # Reports name hosts, images and their weaknesses: the directory and the file are the owner's alone.
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        os.chmod(path, 0o600)
        # the service keeps one connection per thread but closes them all from one: ownership is the caller's
        connection = sqlite3.connect(path, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open store {path}: {_one_line(exc)}") from exc
    connection.execute("PRAGMA foreign_keys = ON")
    return Store(connection, postgres=False, where=str(path))


def _open_postgres(url: str) -> Store:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        where = str(conninfo_to_dict(url).get("dbname") or url.split("@")[-1])  # never the password
        connection = psycopg.connect(url, connect_timeout=10)
    except psycopg.Error as exc:
        raise StoreError(f"cannot open PostgreSQL store: {_one_line(exc)}") from exc
    return Store(connection, postgres=True, where=f"postgresql {where}")


def open_store(location: str | None = None, *, migrate: bool = True) -> Store:
    """The store at `location` (a postgresql:// URL, or an SQLite file path), else at `default_location()`,
    migrated to this code's schema (`migrate=False`: a further connection to a store already migrated)."""
    location = location or default_location()
    store = _open_postgres(location) if location.startswith(_POSTGRES_SCHEMES) else _open_sqlite(Path(location))
    if not migrate:
        return store
    try:
        store.migrate()
    except StoreError:
        store.close()
        raise
    return store
