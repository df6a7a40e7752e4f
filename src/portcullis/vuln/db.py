"""The local vulnerability database: one SQLite file, keyed by (ecosystem, package) for matching.

A database is only ever changed through `rebuild()`: the live file is copied, the copy is changed, checked and
then renamed over the live one, so a failed update or import leaves the old database working.

Matching reads decoded fields only: what decides affectedness (tracker status and fixed version, secdb fix, OSV
events pre-sorted at build time, OSV explicit versions) is stored decoded, so no JSON is parsed while matching.
All of one feed's rows for one package and release are packed into a single `affected` row (`pack`), so a scan
reads one row per package and feed rather than one per advisory: per-row work dominates SQLite's cost here.
The rows' full JSON is kept beside them for export and for rows whose versions did not parse at build time.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import itertools
import json
import os
import re
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from portcullis.model.vuln import Ecosystem
from portcullis.vuln.versions import VersionError, compare, sort_key

# 2: decoded match columns; 3: `affected` clustered by lookup key; 4: one packed `affected` row per key and feed.
# Older files are migrated.
SCHEMA_VERSION = "4"

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
-- One row per lookup key and feed. `rows` packs the CandidateRow fields of each of the feed's affected rows (less
-- `data_json`) in advisory-id order, `data` their JSON in the same order. A rowid table: packed rows run to
-- kilobytes, which an index-ordered (WITHOUT ROWID) table would spill to mostly empty overflow pages.
CREATE TABLE affected(
    ecosystem TEXT NOT NULL,    -- portcullis Ecosystem value
    package TEXT NOT NULL,      -- source package for OS ecosystems, normalised name otherwise
    release TEXT NOT NULL,      -- bookworm, 12, v3.19; '' for language ecosystems
    source TEXT NOT NULL REFERENCES sources(name),
    rows TEXT NOT NULL,
    data TEXT NOT NULL,         -- JSON per row: as the feed parser produced it, less `versions` (kept in `rows`)
    UNIQUE (ecosystem, package, release, source)
);
CREATE INDEX affected_source ON affected(source);
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
        """Days since `fetched_at`; infinite when it is not a date (a hand-made bundle), so it counts as stale."""
        try:
            fetched = datetime.fromisoformat(self.fetched_at)
        except ValueError:
            return float("inf")
        if fetched.tzinfo is None:  # written without an offset: ours are UTC
            fetched = fetched.replace(tzinfo=UTC)
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


class CandidateRow(NamedTuple):
    """One affected row with its advisory's matching fields, as matching sees it: thousands are read per scan, so
    they are plain tuples split out of the packed `affected` rows; JSON fields are decoded only for rows that become
    matches. The advisory's summary, needed only then, is read separately (`VulnDB.summaries`)."""

    advisory_id: str
    source: str
    aliases_json: str
    severity: str
    cvss_json: str
    release: str
    kind: str
    status: str
    fixed: str
    urgency: str
    nodsa: str
    nodsa_reason: str
    events: str
    versions: str
    advisory: str  # the advisory's rowid, in decimal
    data_json: str  # the row's full JSON, filled in only when its events could not be pre-sorted

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


# CandidateRow._make without its Python-level length check: `pack` wrote exactly CandidateRow's fields
_as_candidate: Callable[[list[str]], CandidateRow] = functools.partial(tuple.__new__, CandidateRow)

# Packing: fields joined by FS, rows by RS. A field holding ESC, FS or RS has them written as ESC + e / f / r, so
# text without ESC (nearly all of it) unpacks with two plain splits.
_ESC, _FS, _RS = "\x1b", "\x1d", "\x1c"
_ESCAPES = {_ESC: _ESC + "e", _FS: _ESC + "f", _RS: _ESC + "r"}
_UNESCAPES = {code[1]: char for char, code in _ESCAPES.items()}
_ESCAPED = re.compile(f"{_ESC}(.)", re.DOTALL)


def _escape(field: str) -> str:
    return "".join(_ESCAPES.get(c, c) for c in field)


def pack(rows: Sequence[Sequence[str]]) -> str:
    """Rows of text fields as one text; at least one row (an empty text would unpack to one empty field)."""
    if not rows:
        raise ValueError("nothing to pack")
    text = _RS.join(_FS.join(row) for row in rows)
    if _ESC not in text and text.count(_RS) == len(rows) - 1 and text.count(_FS) == sum(len(r) - 1 for r in rows):
        return text  # the only separators are the ones joining: nothing to escape
    return _RS.join(_FS.join(map(_escape, row)) for row in rows)


def unpack(text: str) -> list[list[str]]:
    """The inverse of `pack`."""
    rows = [row.split(_FS) for row in text.split(_RS)]
    if _ESC in text:
        rows = [[_ESCAPED.sub(lambda m: _UNESCAPES[m.group(1)], field) for field in row] for row in rows]
    return rows


def _match_order(row: CandidateRow) -> tuple[bool, str]:
    """Vendor feeds first (OSV copies last), then by advisory id: the order matching decides in."""
    return row.source.startswith("osv:"), row.advisory_id


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


class VulnDB:
    """Read (and, inside `rebuild`, write) access to one database file."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path, any_thread: bool = False) -> VulnDB:
        """Read-only; `any_thread`: the handle may be used from threads other than this one, one at a time."""
        if not path.is_file():
            raise DatabaseError(f"no vulnerability database at {path}; run `portcullis db update` or `db import`")
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=not any_thread)
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
        Rows with equal id keep the order of (release, feed name, row within the feed).
        """
        found: dict[str, list[CandidateRow]] = {}
        merged: set[str] = set()  # names whose rows came from more than one packed row
        unique = sorted(set(packages))
        release_marks = ",".join("?" * len(releases))
        conn = self.conn
        for start in range(0, len(unique), 500):  # stay far below SQLite's bound-parameter limit
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for package, release, source, packed in conn.execute(
                "SELECT package, release, source, rows FROM affected"
                f" WHERE ecosystem = ? AND package IN ({marks}) AND release IN ({release_marks})"
                " ORDER BY package, release, source",
                (ecosystem, *chunk, *releases),
            ):
                rows = list(map(_as_candidate, unpack(packed)))
                if f"{_FS}{UNSORTED_EVENTS}{_FS}" in packed:  # a cheap test; their JSON is read only then
                    rows = self._with_data(ecosystem, package, release, source, rows)
                known = found.get(package)
                if known is None:
                    found[package] = rows
                else:
                    known.extend(rows)
                    merged.add(package)
        for package in merged:
            found[package].sort(key=_match_order)  # stable: keeps the query's order among equal keys
        return found

    def _with_data(
        self, ecosystem: str, package: str, release: str, source: str, rows: list[CandidateRow]
    ) -> list[CandidateRow]:
        """The rows with `data_json` filled in where their events could not be pre-sorted."""
        (packed,) = self.conn.execute(
            "SELECT data FROM affected WHERE ecosystem = ? AND package = ? AND release = ? AND source = ?",
            (ecosystem, package, release, source),
        ).fetchone()
        return [
            row._replace(data_json=data) if row.events == UNSORTED_EVENTS else row
            for row, (data,) in zip(rows, unpack(packed), strict=True)
        ]

    def summaries(self, advisories: Iterable[str]) -> dict[str, str]:
        """CandidateRow.advisory -> the advisory's summary."""
        found: dict[str, str] = {}
        wanted = sorted({int(a) for a in advisories})
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self.conn.execute(
                f"SELECT rowid, summary FROM advisories WHERE rowid IN ({','.join('?' * len(chunk))})", chunk
            )
            found.update((str(rowid), summary) for rowid, summary in rows)
        return found

    # --- writing (only on the working copy inside `rebuild`) -------------------------------------------------

    def replace_source(self, info: SourceInfo, advisories: Iterable[Advisory]) -> SourceInfo:
        """Drop everything the source held and insert its new content; returns the info with the counts."""
        conn = self.conn
        conn.execute("DELETE FROM affected WHERE source = ?", (info.name,))
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
        entries: list[_Entry] = []
        for adv in merged.values():
            aliases, cvss = json.dumps(adv.aliases), json.dumps(adv.cvss)
            cur = conn.execute(
                "INSERT INTO advisories(id, source, aliases, summary, severity, cvss, modified)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (adv.id, info.name, aliases, adv.summary, adv.severity, cvss, adv.modified),
            )
            entries.extend(
                _entry(a, seq, adv.id, info.name, aliases, adv.severity, cvss, cur.lastrowid)
                for seq, a in enumerate(adv.affected)
            )
        _write_affected(conn, info.name, entries)
        n_adv, n_aff = len(merged), len(entries)
        info.advisories, info.affected = n_adv, n_aff
        conn.execute(
            "UPDATE sources SET etag = ?, last_modified = ?, sha256 = ?, size = ?, advisories = ?, affected = ?"
            " WHERE name = ?",
            (info.etag, info.last_modified, info.sha256, info.size, n_adv, n_aff, info.name),
        )
        return info

    def source_advisories(self, name: str) -> list[Advisory]:
        """Everything the source holds, as `replace_source` takes it: merging files into a source rewrites it."""
        found: dict[str, Advisory] = {}
        for rowid, adv_id, aliases, summary, severity, cvss, modified in self.conn.execute(
            "SELECT rowid, id, aliases, summary, severity, cvss, modified FROM advisories WHERE source = ?", (name,)
        ):
            found[str(rowid)] = Advisory(adv_id, _json_list(aliases), summary, severity, _json_list(cvss), modified)
        for ecosystem, package, release, rows, data in self.conn.execute(
            "SELECT ecosystem, package, release, rows, data FROM affected WHERE source = ? ORDER BY rowid", (name,)
        ):
            for fields, (row_json,) in zip(unpack(rows), unpack(data), strict=True):
                row = _as_candidate(fields)
                row_data = dict(json.loads(row_json))
                if row.versions:
                    row_data["versions"] = row.versions.strip("\n").split("\n")
                found[row.advisory].affected.append(AffectedRow(ecosystem, release, package, row_data))
        return list(found.values())

    def touch_source(self, name: str, fetched_at: str) -> None:
        """The upstream answered 'not modified': the content is as fresh as this check."""
        self.conn.execute("UPDATE sources SET fetched_at = ? WHERE name = ?", (fetched_at, name))


class _Entry(NamedTuple):
    """One affected row on its way into the packed table."""

    key: tuple[str, str, str]  # ecosystem, package, release
    order: tuple[str, int]  # advisory id, then the row's place among that advisory's rows
    fields: tuple[str, ...]  # CandidateRow, less data_json
    data: str


def _entry(
    row: AffectedRow, seq: int, advisory_id: str, source: str, aliases: str, severity: str, cvss: str, rowid: int | None
) -> _Entry:
    return _Entry(
        (row.ecosystem, row.package, row.release),
        (advisory_id, seq),
        (advisory_id, source, aliases, severity, cvss, row.release, *match_columns(row), str(rowid)),
        _data_json(row.data),
    )


def _write_affected(conn: sqlite3.Connection, source: str, entries: list[_Entry]) -> None:
    """Insert one feed's affected rows, one packed row per lookup key, each key's rows in advisory-id order."""
    entries.sort(key=lambda e: (e.key, e.order))
    conn.executemany(
        "INSERT INTO affected(ecosystem, package, release, source, rows, data) VALUES (?, ?, ?, ?, ?, ?)",
        (
            (*key, source, pack([(*e.fields, "") for e in group]), pack([(e.data,) for e in group]))
            for key, group in ((k, list(g)) for k, g in itertools.groupby(entries, key=lambda e: e.key))
        ),
    )


_MIGRATABLE = {"1", "2", "3"}


def _data_json(data: dict[str, Any]) -> str:
    """The row JSON without the explicit version list, which has its own field (PyPA lists run to kilobytes)."""
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


def _migrate(old: Path, conn: sqlite3.Connection, version: str) -> None:
    """Carry an older database (schema 1 to 3) into a fresh one: every later field is derived again from the rows'
    JSON, which all versions keep (schema 3 keeps OSV's explicit versions in a column of their own)."""
    conn.execute("ATTACH DATABASE ? AS old", (f"file:{old}?mode=ro",))
    try:
        conn.execute("INSERT INTO sources SELECT * FROM old.sources")
        conn.execute(
            "INSERT INTO advisories(rowid, id, source, aliases, summary, severity, cvss, modified)"
            " SELECT rowid, id, source, aliases, summary, severity, cvss, modified FROM old.advisories"
        )
        order, listed = ("a.seq", "a.versions") if version == "3" else ("a.rowid", "''")
        rows = conn.execute(
            f"SELECT a.ecosystem, a.package, a.release, {order}, a.data, {listed},"
            " v.rowid, v.id, v.source, v.aliases, v.severity, v.cvss"
            " FROM old.affected a JOIN old.advisories v ON v.rowid = a.advisory"
        )
        by_source: dict[str, list[_Entry]] = {}
        for eco, pkg, rel, seq, data, versions, rowid, adv_id, source, aliases, severity, cvss in rows:
            row = AffectedRow(eco, rel, pkg, json.loads(data))
            if versions:
                row.data["versions"] = versions.strip("\n").split("\n")
            entry = _entry(row, seq, adv_id, source, aliases, severity, cvss, rowid)
            by_source.setdefault(source, []).append(entry)
        for source, entries in by_source.items():
            _write_affected(conn, source, entries)
        conn.commit()
    finally:
        conn.execute("DETACH DATABASE old")


def upgrade(path: Path) -> bool:
    """Carry a database file of an older schema (1 to 3) to the current one in place, keeping when it was last
    updated (a bundle built elsewhere says how old its data is); False when there was nothing to do."""
    version = _schema_version(path)
    if version not in _MIGRATABLE:
        return False
    with _swapped_in(path, "upgrade") as work:
        conn = _create(work)
        try:
            _migrate(path, conn, str(version))
            old = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                updated = old.execute("SELECT value FROM meta WHERE key = 'updated_at'").fetchone()
            finally:
                old.close()
            _seal(conn, updated[0] if updated is not None else None)
        finally:
            conn.close()
    return True


_WORK_SUFFIXES = ("tmp", "upgrade", "import")  # the work files of `rebuild`, `upgrade` and bundle imports


def work_file(path: Path, suffix: str) -> Path:
    """This process's work file beside `path`: `.vuln.db.<pid>.<suffix>`."""
    return path.with_name(f".{path.name}.{os.getpid()}.{suffix}")


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Hold the one writer's lock of the database at `path` for the block.

    Every writer reads the live file, works on a copy and swaps it in: two at once would each swap in a copy
    lacking the other's change. The lock is an flock on a file beside the database, so it dies with its holder;
    once it is held, work files whose writer has died (kill -9, SIGTERM) are removed.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.with_name(f".{path.name}.lock").open("a")
    except OSError as exc:
        raise DatabaseError(f"cannot write beside {path}: {exc.strerror or exc}") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            sys.stderr.write(f"portcullis: waiting for another portcullis writing {path}\n")
            sys.stderr.flush()
            fcntl.flock(handle, fcntl.LOCK_EX)
        _remove_stale_work_files(path)
        yield


def _remove_stale_work_files(path: Path) -> None:
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.(?:{'|'.join(_WORK_SUFFIXES)})(?:-journal)?")
    for entry in path.parent.iterdir():
        match = pattern.fullmatch(entry.name)
        if match and not _alive(int(match.group(1))):
            entry.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def check_database(path: Path, name: str = "") -> None:
    """A whole-file check before a file becomes the live database: SQLite's own page check, our schema and our
    schema version. Raises DatabaseError naming what is wrong (and the file as `name`, when given)."""
    name = name or str(path)
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            problems = [" ".join(str(row[0]).split()) for row in conn.execute("PRAGMA quick_check(3)")]
            if problems != ["ok"]:
                raise DatabaseError(f"{name} is damaged: {'; '.join(problems)}")
            for table, columns in _expected_columns().items():
                found = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
                if found != columns:
                    raise DatabaseError(f"{name} is not a portcullis vulnerability database (table {table})")
            version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"{name} is damaged: {exc}") from None
    if version is None or version[0] != SCHEMA_VERSION:
        raise DatabaseError(f"{name} has schema version {version[0] if version else 'none'}, expected {SCHEMA_VERSION}")


@functools.cache
def _expected_columns() -> dict[str, list[str]]:
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(_SCHEMA)
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: [row[1] for row in conn.execute(f"PRAGMA table_info({t})")] for t in tables}
    finally:
        conn.close()


def failure(path: Path, exc: sqlite3.Error | OSError) -> DatabaseError:
    """One line for a write that failed: the disk, the permissions or a damaged live database."""
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            return DatabaseError(f"no space left to write the database beside {path} ({exc.strerror})")
        return DatabaseError(f"cannot write the database beside {path}: {exc.strerror or exc}")
    text = str(exc)
    if exc.sqlite_errorname == "SQLITE_IOERR_WRITE":
        text += " (a write failed: a full disk or a file size limit?)"
    if "disk is full" in text:
        return DatabaseError(f"no space left to write the database beside {path} ({text})")
    if "malformed" in text or "not a database" in text:
        return DatabaseError(f"{path} is damaged ({text}); remove it and run `portcullis db update` or `db import`")
    return DatabaseError(f"cannot write the database beside {path}: {text}")


@contextlib.contextmanager
def _swapped_in(path: Path, suffix: str) -> Iterator[Path]:
    """A work file beside `path` that atomically replaces it when the block succeeds; removed in every case."""
    path.parent.mkdir(parents=True, exist_ok=True)
    work = work_file(path, suffix)
    work.unlink(missing_ok=True)
    try:
        yield work
        os.replace(work, path)
    finally:
        work.unlink(missing_ok=True)
        work.with_name(work.name + "-journal").unlink(missing_ok=True)


def _seal(conn: sqlite3.Connection, updated_at: str | None) -> None:
    """Record when the data was last updated (when known), commit and compact: the file is ready to swap in."""
    if updated_at is not None:
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('updated_at', ?)", (updated_at,))
    conn.commit()
    conn.execute("VACUUM")


def _create(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.executescript(_SCHEMA)
    conn.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
    conn.commit()
    return conn


@contextlib.contextmanager
def rebuild(path: Path, fresh: bool = False) -> Iterator[VulnDB]:
    """Work on a copy of the database at `path` and swap it in atomically when the block succeeds.

    The old file stays in place, untouched, if anything in the block raises. One writer at a time (`writing`);
    a live database that fails its check is not built upon. SQLite and file errors come out as DatabaseError.
    """
    with writing(path):
        try:
            with _swapped_in(path, "tmp") as work:
                version = _schema_version(path) if path.exists() and not fresh else None
                if version in _MIGRATABLE:
                    conn = _create(work)
                    _migrate(path, conn, str(version))
                elif path.exists() and not fresh:
                    check_database(path)
                    with VulnDB.open(path) as old:
                        conn = sqlite3.connect(work)
                        old.conn.backup(conn)
                else:
                    conn = _create(work)
                db = VulnDB(conn, path)
                try:
                    with conn:
                        yield db
                    _seal(conn, now_iso())
                finally:
                    conn.close()
        except (sqlite3.Error, OSError) as exc:
            raise failure(path, exc) from None
