"""The local vulnerability database: one SQLite file, keyed by (ecosystem, package) for matching.

A database is only ever changed through `rebuild()`: the live file is copied, the copy is changed, checked and
then renamed over the live one, so a failed update or import leaves the old database working.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs

SCHEMA_VERSION = "1"
DB_FILENAME = "vuln.db"

_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sources(
    name TEXT PRIMARY KEY,      -- debian-tracker, osv:PyPI, alpine-secdb:v3.19/main
    origin TEXT NOT NULL,       -- the URL or local path it came from
    fetched_at TEXT NOT NULL,   -- when this content was obtained (ISO 8601, UTC)
    etag TEXT NOT NULL DEFAULT '',
    last_modified TEXT NOT NULL DEFAULT '',
    sha256 TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL DEFAULT 0,
    advisories INTEGER NOT NULL DEFAULT 0,
    affected INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE advisories(
    id TEXT NOT NULL,
    source TEXT NOT NULL REFERENCES sources(name),
    aliases TEXT NOT NULL,      -- JSON list
    summary TEXT NOT NULL,
    severity TEXT NOT NULL,     -- the vendor's own word, '' when none
    cvss TEXT NOT NULL,         -- JSON list of CVSS vectors
    modified TEXT NOT NULL,
    UNIQUE(source, id)
);
CREATE TABLE affected(
    advisory INTEGER NOT NULL REFERENCES advisories(rowid),
    ecosystem TEXT NOT NULL,    -- portcullis Ecosystem value
    release TEXT NOT NULL,      -- bookworm, 12, v3.19; '' for language ecosystems
    package TEXT NOT NULL,      -- source package for OS ecosystems, normalised name otherwise
    data TEXT NOT NULL          -- JSON: what decides affectedness (tracker block, OSV ranges, secdb fix)
);
CREATE INDEX affected_lookup ON affected(ecosystem, package);
CREATE INDEX advisories_source ON advisories(source);
"""


class DatabaseError(Exception):
    """The database is missing, unreadable or not ours; the message is one line for the user."""


@dataclass
class AffectedRow:
    ecosystem: str
    release: str
    package: str
    data: dict[str, Any]


@dataclass
class Advisory:
    id: str
    aliases: list[str] = field(default_factory=list)
    summary: str = ""
    severity: str = ""
    cvss: list[str] = field(default_factory=list)
    modified: str = ""
    affected: list[AffectedRow] = field(default_factory=list)


@dataclass
class SourceInfo:
    name: str
    origin: str
    fetched_at: str
    etag: str = ""
    last_modified: str = ""
    sha256: str = ""
    size: int = 0
    advisories: int = 0
    affected: int = 0

    def age_days(self, now: datetime | None = None) -> float:
        fetched = datetime.fromisoformat(self.fetched_at)
        return ((now or datetime.now(UTC)) - fetched).total_seconds() / 86400


class CandidateRow:
    """An affected row joined with its advisory, as matching sees it; JSON columns are decoded on first use
    because most candidate rows are rejected on release or version before their details matter."""

    def __init__(
        self,
        advisory_id: str,
        source: str,
        aliases: str,
        summary: str,
        severity: str,
        cvss: str,
        release: str,
        package: str,
        data: str,
    ) -> None:
        self.advisory_id, self.source, self.summary, self.severity = advisory_id, source, summary, severity
        self.release, self.package = release, package
        self._aliases, self._cvss, self._data = aliases, cvss, data

    @functools.cached_property
    def aliases(self) -> list[str]:
        return list(json.loads(self._aliases))

    @functools.cached_property
    def cvss(self) -> list[str]:
        return list(json.loads(self._cvss))

    @functools.cached_property
    def data(self) -> dict[str, Any]:
        return dict(json.loads(self._data))


def default_path() -> Path:
    """The database in the user cache dir (platformdirs); PORTCULLIS_DB overrides it."""
    override = os.environ.get("PORTCULLIS_DB")
    if override:
        return Path(override)
    return Path(platformdirs.user_cache_dir("portcullis")) / DB_FILENAME


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


class VulnDB:
    """Read (and, inside `rebuild`, write) access to one database file."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path) -> VulnDB:
        if not path.is_file():
            raise DatabaseError(f"no vulnerability database at {path}; run `portcullis db update` or `db import`")
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"{path} is not a portcullis vulnerability database: {exc}") from None
        if version is None or version[0] != SCHEMA_VERSION:
            conn.close()
            found = version[0] if version else "none"
            raise DatabaseError(f"{path} has schema version {found}, expected {SCHEMA_VERSION}; run `db update`")
        return cls(conn, path)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> VulnDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading -------------------------------------------------------------------------------------------

    def sources(self) -> list[SourceInfo]:
        rows = self.conn.execute(
            "SELECT name, origin, fetched_at, etag, last_modified, sha256, size, advisories, affected"
            " FROM sources ORDER BY name"
        ).fetchall()
        return [SourceInfo(*row) for row in rows]

    def source(self, name: str) -> SourceInfo | None:
        return next((s for s in self.sources() if s.name == name), None)

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def candidates(
        self, ecosystem: str, packages: Sequence[str], releases: Sequence[str]
    ) -> dict[str, list[CandidateRow]]:
        """Every affected row for these package names in one ecosystem and these releases, grouped by name."""
        found: dict[str, list[CandidateRow]] = {}
        unique = sorted(set(packages))
        release_marks = ",".join("?" * len(releases))
        for start in range(0, len(unique), 500):  # stay far below SQLite's bound-parameter limit
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                "SELECT v.id, v.source, v.aliases, v.summary, v.severity, v.cvss, a.release, a.package, a.data"
                " FROM affected a JOIN advisories v ON v.rowid = a.advisory"
                f" WHERE a.ecosystem = ? AND a.package IN ({marks}) AND a.release IN ({release_marks})",
                (ecosystem, *chunk, *releases),
            )
            for row in rows:
                found.setdefault(row[7], []).append(CandidateRow(*row))
        return found

    # --- writing (only on the working copy inside `rebuild`) -------------------------------------------------

    def replace_source(self, info: SourceInfo, advisories: Iterable[Advisory]) -> SourceInfo:
        """Drop everything the source held and insert its new content; returns the info with the counts."""
        conn = self.conn
        conn.execute(
            "DELETE FROM affected WHERE advisory IN (SELECT rowid FROM advisories WHERE source = ?)", (info.name,)
        )
        conn.execute("DELETE FROM advisories WHERE source = ?", (info.name,))
        conn.execute("DELETE FROM sources WHERE name = ?", (info.name,))
        conn.execute(
            "INSERT INTO sources(name, origin, fetched_at) VALUES (?, ?, ?)", (info.name, info.origin, info.fetched_at)
        )
        merged: dict[str, Advisory] = {}
        for adv in advisories:  # a feed may repeat an id (one record per package); keep one advisory row
            known = merged.get(adv.id)
            if known is None:
                merged[adv.id] = adv
            else:
                known.affected.extend(adv.affected)
                known.aliases.extend(a for a in adv.aliases if a not in known.aliases)
        n_aff = 0
        for adv in merged.values():
            cur = conn.execute(
                "INSERT INTO advisories(id, source, aliases, summary, severity, cvss, modified)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    adv.id,
                    info.name,
                    json.dumps(adv.aliases),
                    adv.summary,
                    adv.severity,
                    json.dumps(adv.cvss),
                    adv.modified,
                ),
            )
            conn.executemany(
                "INSERT INTO affected(advisory, ecosystem, release, package, data) VALUES (?, ?, ?, ?, ?)",
                [
                    (cur.lastrowid, a.ecosystem, a.release, a.package, json.dumps(a.data, separators=(",", ":")))
                    for a in adv.affected
                ],
            )
            n_aff += len(adv.affected)
        n_adv = len(merged)
        info.advisories, info.affected = n_adv, n_aff
        conn.execute(
            "UPDATE sources SET etag = ?, last_modified = ?, sha256 = ?, size = ?, advisories = ?, affected = ?"
            " WHERE name = ?",
            (info.etag, info.last_modified, info.sha256, info.size, n_adv, n_aff, info.name),
        )
        return info

    def touch_source(self, name: str, fetched_at: str) -> None:
        """The upstream answered 'not modified': the content is as fresh as this check."""
        self.conn.execute("UPDATE sources SET fetched_at = ? WHERE name = ?", (fetched_at, name))


def _create(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.executescript(_SCHEMA)
    conn.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
    conn.commit()
    return conn


@contextlib.contextmanager
def rebuild(path: Path, fresh: bool = False) -> Iterator[VulnDB]:
    """Work on a copy of the database at `path` and swap it in atomically when the block succeeds.

    The old file stays in place, untouched, if anything in the block raises.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    work = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    work.unlink(missing_ok=True)
    try:
        if path.exists() and not fresh:
            with VulnDB.open(path) as old:
                conn = sqlite3.connect(work)
                old.conn.backup(conn)
        else:
            conn = _create(work)
        db = VulnDB(conn, path)
        try:
            with conn:
                yield db
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('updated_at', ?)", (now_iso(),))
            conn.commit()
            conn.execute("VACUUM")
        finally:
            conn.close()
        os.replace(work, path)
    finally:
        work.unlink(missing_ok=True)
