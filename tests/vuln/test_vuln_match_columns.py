"""The decoded match columns of database schema 2: OSV events pre-sorted at build time must give exactly the verdicts
the JSON evaluation gives, unsortable rows must still be reported, and a schema 1 file must be migrated in place."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from vulndata import BOOKWORM, TRACKER_JSON, build_db

from portcullis.model.vuln import Ecosystem, Package
from portcullis.vuln import scan
from portcullis.vuln.db import (
    SCHEMA_VERSION,
    UNSORTED_EVENTS,
    Advisory,
    AffectedRow,
    CandidateRow,
    SourceInfo,
    VulnDB,
    decode_events,
    encode_events,
    match_columns,
    now_iso,
    rebuild,
)
from portcullis.vuln.match import _verdict, match_packages, osv_verdict
from portcullis.vuln.versions import sort_keys

VERSIONS = st.builds(lambda a, b, c: f"{a}.{b}.{c}", st.integers(0, 3), st.integers(0, 3), st.integers(0, 3))
EVENT = st.one_of(
    st.builds(lambda v: {"introduced": v}, st.one_of(st.just("0"), VERSIONS)),
    st.builds(lambda v: {"fixed": v}, VERSIONS),
    st.builds(lambda v: {"last_affected": v}, VERSIONS),
)
RANGE = st.builds(
    lambda kind, events: {"type": kind, "events": events},
    st.sampled_from(["ECOSYSTEM", "SEMVER"]),
    st.lists(EVENT, min_size=1, max_size=5),
)


def _candidate(ecosystem: str, data: dict[str, object]) -> CandidateRow:
    columns = match_columns(AffectedRow(ecosystem, "", "pkg", data))
    return CandidateRow("ADV-1", "osv:x", "[]", "", "", "[]", "", "pkg", *columns, json.dumps(data))


@settings(max_examples=300, deadline=None)
@given(
    ecosystem=st.sampled_from([Ecosystem.PYPI, Ecosystem.NPM]),
    ranges=st.lists(RANGE, max_size=3),
    listed=st.lists(VERSIONS, max_size=3),
    installed=VERSIONS,
)
def test_presorted_events_agree_with_json_evaluation(
    ecosystem: Ecosystem, ranges: list[dict[str, object]], listed: list[str], installed: str
) -> None:
    data: dict[str, object] = {"k": "osv", "ranges": ranges, "versions": listed}
    reference = osv_verdict(ecosystem, installed, "", data)
    fast = _verdict(ecosystem, sort_keys(ecosystem), installed, _candidate(ecosystem.value, data))
    assert fast == reference  # both None when not affected


@settings(max_examples=500, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=4), st.sampled_from([None, (",", ":")]))
def test_candidate_lists_decode_as_json(items: list[str], separators: tuple[str, str] | None) -> None:
    """Aliases and CVSS vectors skip the JSON parser when nothing is escaped; the result must be json.loads'."""
    text = json.dumps(items, separators=separators)
    row = CandidateRow("ADV-1", "osv:x", text, "", "", text, "", "pkg", *[""] * 9)
    assert row.aliases == json.loads(text) and row.cvss == json.loads(text)


def test_event_encoding_round_trip() -> None:
    data = {"ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": "2.0"}, {"introduced": "0"}, {"fixed": "1.5"}]}]}
    encoded = encode_events("pypi", data)
    assert decode_events(encoded) == [("ECOSYSTEM", ["i0", "f1.5", "f2.0"])]  # sorted by PEP 440 order
    assert encode_events("pypi", {"ranges": []}) == "" and decode_events("") == []
    unparsable = {"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "not a version!"}]}]}
    assert encode_events("pypi", unparsable) == UNSORTED_EVENTS


def test_unsortable_row_is_still_evaluated_and_reported(tmp_path: Path) -> None:
    """A feed version that does not parse cannot be pre-sorted; matching falls back to the JSON and says why."""
    bad = {"k": "osv", "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0-?-x"}]}]}
    good = {"k": "osv", "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0"}]}]}
    path = tmp_path / "vuln.db"
    with rebuild(path) as db:
        db.replace_source(
            SourceInfo("osv:PyPI", "test", now_iso()),
            [
                Advisory("PYSEC-BAD", affected=[AffectedRow("pypi", "", "demo", bad)]),
                Advisory("PYSEC-GOOD", affected=[AffectedRow("pypi", "", "demo", good)]),
            ],
        )
    demo = Package(ecosystem=Ecosystem.PYPI, name="demo", version="2.0", purl="pkg:pypi/demo@2.0")
    with VulnDB.open(path) as db:
        stored = dict(
            db.conn.execute("SELECT v.id, a.events FROM affected a JOIN advisories v ON v.rowid = a.advisory")
        )
        assert stored["PYSEC-BAD"] == UNSORTED_EVENTS
        rows = db.candidates("pypi", ["demo"], [""])["demo"]
        assert [len(row) for row in rows] == [len(CandidateRow._fields)] * 2  # the SELECT fills every field
        result = match_packages([demo], db, None)
    assert [(m.advisory_id, m.fixed_version) for m in result.matches] == [("PYSEC-GOOD", "3.0")]
    [problem] = result.problems
    assert problem.startswith("demo 2.0 vs PYSEC-BAD:") and "does not parse" in problem


_V1_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sources(name TEXT PRIMARY KEY, origin TEXT NOT NULL, fetched_at TEXT NOT NULL,
    etag TEXT NOT NULL DEFAULT '', last_modified TEXT NOT NULL DEFAULT '', sha256 TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL DEFAULT 0, advisories INTEGER NOT NULL DEFAULT 0, affected INTEGER NOT NULL DEFAULT 0);
CREATE TABLE advisories(id TEXT NOT NULL, source TEXT NOT NULL REFERENCES sources(name), aliases TEXT NOT NULL,
    summary TEXT NOT NULL, severity TEXT NOT NULL, cvss TEXT NOT NULL, modified TEXT NOT NULL, UNIQUE(source, id));
CREATE TABLE affected(advisory INTEGER NOT NULL REFERENCES advisories(rowid), ecosystem TEXT NOT NULL,
    release TEXT NOT NULL, package TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX affected_lookup ON affected(ecosystem, package);
CREATE INDEX advisories_source ON advisories(source);
"""


def _downgrade_to_v1(current: Path, old: Path) -> None:
    """Write a schema 1 file (the layout part 1 shipped) holding the same rows as `current`."""
    conn = sqlite3.connect(old)
    conn.executescript(_V1_SCHEMA)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.execute("ATTACH DATABASE ? AS new", (str(current),))
    conn.execute("INSERT INTO sources SELECT * FROM new.sources")
    conn.execute(
        "INSERT INTO advisories(rowid, id, source, aliases, summary, severity, cvss, modified)"
        " SELECT rowid, id, source, aliases, summary, severity, cvss, modified FROM new.advisories"
    )
    conn.execute("INSERT INTO affected SELECT advisory, ecosystem, release, package, data FROM new.affected")
    conn.commit()
    conn.execute("DETACH DATABASE new")
    conn.close()


def test_schema_1_database_is_migrated_by_the_next_update(tmp_path: Path) -> None:
    current = build_db(tmp_path / "current.db", TRACKER_JSON)
    old = tmp_path / "old.db"
    _downgrade_to_v1(current, old)
    curl = Package(ecosystem=Ecosystem.DEBIAN, name="curl", version="7.88.1-10+deb12u5", purl="pkg:deb/debian/curl")
    with VulnDB.open(current) as db:
        expected = [(f.title, f.evidence["fixed_version"]) for f in scan([curl], db, BOOKWORM)]
    assert ("CVE-2024-2398 in curl 7.88.1-10+deb12u5", "7.88.1-10+deb12u6") in expected
    with rebuild(old):  # what `db update` / `db import` do first; nothing else changes in this block
        pass
    with VulnDB.open(old) as db:
        assert db.meta("schema_version") == SCHEMA_VERSION
        assert [(f.title, f.evidence["fixed_version"]) for f in scan([curl], db, BOOKWORM)] == expected
        counts = db.conn.execute("SELECT count(*), count(DISTINCT kind) FROM affected").fetchone()
    with VulnDB.open(current) as db:
        assert counts == db.conn.execute("SELECT count(*), count(DISTINCT kind) FROM affected").fetchone()
    assert json.loads(sqlite3.connect(old).execute("SELECT data FROM affected LIMIT 1").fetchone()[0])["k"] == "tracker"
