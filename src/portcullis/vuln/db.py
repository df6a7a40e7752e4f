"""The local vulnerability database: one SQLite file, keyed by (ecosystem, package) for matching.

A database is only ever changed through `rebuild()`: the live file is copied, the copy is changed, checked and
then renamed over the live one, so a failed update or import leaves the old database working.

Matching reads only plain columns: what decides affectedness (tracker status and fixed version, secdb fix, OSV
events pre-sorted at build time, OSV explicit versions) is stored decoded, so no JSON is parsed while matching.
The `data` column keeps the row's full JSON for export and for rows whose versions did not parse at build time.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

import platformdirs

from portcullis.model.vuln import Ecosystem
from portcullis.vuln.versions import VersionError, compare, sort_key

SCHEMA_VERSION = "3"  # 2: decoded match columns; 3: `affected` clustered by lookup key. Older files are migrated
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
-- Stored in lookup-key order (WITHOUT ROWID), so all rows of one package sit together on the same pages.
CREATE TABLE affected(
    ecosystem TEXT NOT NULL,    -- portcullis Ecosystem value
    package TEXT NOT NULL,      -- source package for OS ecosystems, normalised name otherwise
    release TEXT NOT NULL,      -- bookworm, 12, v3.19; '' for language ecosystems
    advisory INTEGER NOT NULL REFERENCES advisories(rowid),
    seq INTEGER NOT NULL,       -- tells apart several rows of one advisory for the same package and release
    kind TEXT NOT NULL,         -- tracker, osv, secdb
    status TEXT NOT NULL,       -- tracker: resolved / open / undetermined; '' otherwise
    fixed TEXT NOT NULL,        -- tracker fixed_version, secdb fixed version; '' when none
    urgency TEXT NOT NULL,      -- tracker urgency, OSV ecosystem_specific severity
    nodsa TEXT NOT NULL,
    nodsa_reason TEXT NOT NULL,
    events TEXT NOT NULL,       -- OSV ranges, events sorted by version (`encode_events`); '!' = not sortable
    versions TEXT NOT NULL,     -- OSV explicit versions, each one preceded and followed by a newline
    data TEXT NOT NULL,         -- JSON: the row as the feed parser produced it, less `versions` (kept above)
    PRIMARY KEY (ecosystem, package, release, advisory, seq)
) WITHOUT ROWID;
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


_RANGE_SEP, _EVENT_SEP = "\x1e", "\x1f"
EVENT_CODES = {"introduced": "i", "fixed": "f", "last_affected": "l"}
UNSORTED_EVENTS = "!"  # a version did not parse at build time: matching evaluates the row's JSON and reports why


def sort_osv_events(ecosystem: Ecosystem, events: list[dict[str, str]]) -> list[tuple[str, str]]:
    """OSV events as (kind, version) in version order; `introduced: 0` first. Raises VersionError."""
    flat = [(kind, str(value)) for event in events for kind, value in event.items()]

    def order(a: tuple[str, str], b: tuple[str, str]) -> int:
        if a[1] == b[1]:
            return 0
        if a[0] == "introduced" and a[1] == "0":
            return -1
        if b[0] == "introduced" and b[1] == "0":
            return 1
        return compare(ecosystem, a[1], b[1])

    return sorted(flat, key=functools.cmp_to_key(order))


def range_ecosystem(row_ecosystem: Ecosystem, range_type: str) -> Ecosystem:
    """SEMVER ranges are ordered by semver whatever the package ecosystem; ECOSYSTEM ranges by the ecosystem's own."""
    return Ecosystem.NPM if range_type == "SEMVER" else row_ecosystem


def encode_events(ecosystem: str, data: dict[str, Any]) -> str:
    """OSV ranges pre-sorted for matching: ranges joined by RS, each `<type>` then `<i|f|l><version>` joined by US.

    '' when there are no ranges; UNSORTED_EVENTS when a version does not parse or an event is not one matching knows.
    """
    encoded = []
    try:
        row_ecosystem = Ecosystem(ecosystem)
        for rng in data.get("ranges", []):
            range_type = str(rng.get("type", ""))
            ordering = range_ecosystem(row_ecosystem, range_type)
            events = sort_osv_events(ordering, rng.get("events", []))
            for kind, version in events:  # sorting may not have compared every version; all must parse
                if not (kind == "introduced" and version == "0"):
                    sort_key(ordering, version)
            if any(kind not in EVENT_CODES or _RANGE_SEP in v or _EVENT_SEP in v for kind, v in events):
                return UNSORTED_EVENTS
            encoded.append(_EVENT_SEP.join([range_type, *(EVENT_CODES[kind] + v for kind, v in events)]))
    except (VersionError, ValueError, AttributeError):
        return UNSORTED_EVENTS
    return _RANGE_SEP.join(encoded)


def decode_events(text: str) -> list[tuple[str, list[str]]]:
    """The inverse of `encode_events`: [(range type, ['i0', 'f1.2', ...])]."""
    ranges: list[tuple[str, list[str]]] = []
    if text:
        for chunk in text.split(_RANGE_SEP):
            parts = chunk.split(_EVENT_SEP)
            ranges.append((parts[0], parts[1:]))
    return ranges


def match_columns(row: AffectedRow) -> tuple[str, str, str, str, str, str, str, str]:
    """(kind, status, fixed, urgency, nodsa, nodsa_reason, events, versions) for one affected row."""
    data = row.data
    kind = str(data.get("k") or "osv")
    if kind == "tracker":
        fixed = data.get("fixed_version") or ""
        return (
            kind,
            str(data.get("status") or ""),
            str(fixed),
            str(data.get("urgency") or ""),
            str(data.get("nodsa") or ""),
            str(data.get("nodsa_reason") or ""),
            "",
            "",
        )
    if kind == "secdb":
        return kind, "", str(data.get("fixed") or ""), "", "", "", "", ""
    versions = [str(v) for v in data.get("versions") or []]
    listed = "\n" + "\n".join(versions) + "\n" if versions else ""
    return kind, "", "", str(data.get("severity") or ""), "", "", encode_events(row.ecosystem, data), listed


def _json_list(text: str) -> list[str]:
    """A JSON list of strings as `json.dumps` wrote it; plain ones ('["a", "b"]', nothing escaped) are split
    without the JSON parser: every item then holds no quote, so the quote count proves the split."""
    if text == "[]":  # most advisories carry no aliases or CVSS vectors
        return []
    if text.startswith('["') and text.endswith('"]') and "\\" not in text:
        items = text[2:-2].split('", "')
        if text.count('"') == 2 * len(items):
            return items
    return list(json.loads(text))


_CANDIDATE_COLUMNS = (
    "v.id, v.source, v.aliases, v.summary, v.severity, v.cvss,"
    " a.release, a.package, a.kind, a.status, a.fixed, a.urgency, a.nodsa, a.nodsa_reason, a.events, a.versions,"
    f" CASE WHEN a.events = '{UNSORTED_EVENTS}' THEN a.data ELSE '' END"
)


class CandidateRow(NamedTuple):
    """An affected row joined with its advisory, as matching sees it: a plain tuple straight from SQLite (thousands
    are read per scan); the JSON columns are decoded only for the rows that become matches."""

    advisory_id: str
    source: str
    aliases_json: str
    summary: str
    severity: str
    cvss_json: str
    release: str
    package: str
    kind: str
    status: str
    fixed: str
    urgency: str
    nodsa: str
    nodsa_reason: str
    events: str
    versions: str
    data_json: str  # the row's full JSON, read only when its events could not be pre-sorted

    @property
    def aliases(self) -> list[str]:
        return _json_list(self.aliases_json)

    @property
    def cvss(self) -> list[str]:
        return _json_list(self.cvss_json)

    @property
    def data(self) -> dict[str, Any]:
        if not self.data_json:
            return {}
        data = dict(json.loads(self.data_json))
        if self.kind == "osv":
            data["versions"] = self.versions.strip("\n").split("\n") if self.versions else []
        return data


_PACKAGE_COLUMN = itemgetter(CandidateRow._fields.index("package"))
# CandidateRow._make without its Python-level length check: the SELECT above has exactly CandidateRow's columns
_as_candidate: Callable[[tuple[Any, ...]], CandidateRow] = functools.partial(tuple.__new__, CandidateRow)


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
            conn.execute("PRAGMA mmap_size = 1073741824")  # read pages in place instead of copying them in
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
        """Every affected row for these package names in one ecosystem and these releases, grouped by name.

        Each name's rows come vendor feeds first (OSV copies last), then by advisory id: the order matching decides in.
        """
        found: dict[str, list[CandidateRow]] = {}
        unique = sorted(set(packages))
        release_marks = ",".join("?" * len(releases))
        conn = self.conn
        for start in range(0, len(unique), 500):  # stay far below SQLite's bound-parameter limit
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT {_CANDIDATE_COLUMNS} FROM affected a JOIN advisories v ON v.rowid = a.advisory"
                f" WHERE a.ecosystem = ? AND a.package IN ({marks}) AND a.release IN ({release_marks})"
                " ORDER BY a.package, v.source LIKE 'osv:%', v.id",
                (ecosystem, *chunk, *releases),
            )
            for package, group in itertools.groupby(rows, _PACKAGE_COLUMN):  # rows come ordered by package
                found[package] = list(map(_as_candidate, group))
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
        rows: list[tuple[Any, ...]] = []
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
            rows.extend(
                (
                    a.ecosystem,
                    a.package,
                    a.release,
                    cur.lastrowid,
                    seq,
                    *match_columns(a),
                    _data_json(a.data),
                )
                for seq, a in enumerate(adv.affected)
            )
        rows.sort(key=lambda row: row[:5])  # appending in key order keeps the clustered table's pages full
        conn.executemany(f"INSERT INTO affected({_AFFECTED_COLUMNS}) VALUES ({_AFFECTED_MARKS})", rows)
        n_adv, n_aff = len(merged), len(rows)
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


_AFFECTED_COLUMNS = (
    "ecosystem, package, release, advisory, seq,"
    " kind, status, fixed, urgency, nodsa, nodsa_reason, events, versions, data"
)
_AFFECTED_MARKS = ",".join("?" * len(_AFFECTED_COLUMNS.split(",")))


_MIGRATABLE = {"1", "2"}


def _data_json(data: dict[str, Any]) -> str:
    """The row JSON without the explicit version list, which has its own column (PyPA lists run to kilobytes)."""
    return json.dumps({k: v for k, v in data.items() if k != "versions"}, separators=(",", ":"))


def _schema_version(path: Path) -> str | None:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return None
    return None if row is None else str(row[0])


def _migrate(old: Path, conn: sqlite3.Connection) -> None:
    """Carry an older database (schema 1 or 2) into a fresh one: every later column is derived from the row's JSON,
    which all versions keep."""
    conn.execute("ATTACH DATABASE ? AS old", (f"file:{old}?mode=ro",))
    try:
        conn.execute("INSERT INTO sources SELECT * FROM old.sources")
        conn.execute(
            "INSERT INTO advisories(rowid, id, source, aliases, summary, severity, cvss, modified)"
            " SELECT rowid, id, source, aliases, summary, severity, cvss, modified FROM old.advisories"
        )
        rows = conn.execute(
            "SELECT ecosystem, package, release, advisory, rowid, data FROM old.affected"
            " ORDER BY ecosystem, package, release, advisory, rowid"
        ).fetchall()
        conn.executemany(
            f"INSERT INTO affected({_AFFECTED_COLUMNS}) VALUES ({_AFFECTED_MARKS})",
            [
                (eco, pkg, rel, advisory, seq, *match_columns(row), _data_json(row.data))
                for eco, pkg, rel, advisory, seq, data in rows
                for row in [AffectedRow(eco, rel, pkg, json.loads(data))]
            ],
        )
        conn.commit()
    finally:
        conn.execute("DETACH DATABASE old")


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
        if path.exists() and not fresh and _schema_version(path) in _MIGRATABLE:
            conn = _create(work)
            _migrate(path, conn)
        elif path.exists() and not fresh:
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
