"""The decoded match fields the database stores: OSV events pre-sorted at build time must give exactly the verdicts
the JSON evaluation gives, unsortable rows must still be reported, packed rows must unpack to what was packed and
come back in matching order, and files of older schemas (1, 3) must be migrated in place."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import sqlite3
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vulndata import BOOKWORM

from portcullis.model.vuln import Ecosystem, Package
from portcullis.vuln import scan
from portcullis.vuln.bundle import BUNDLE_FORMAT, MANIFEST, import_bundle
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
    pack,
    rebuild,
    unpack,
)
from portcullis.vuln.location import DB_FILENAME
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
    return CandidateRow("ADV-1", "osv:x", "[]", "", "[]", "", *columns, "1", json.dumps(data))


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
    row = CandidateRow("ADV-1", "osv:x", text, "", text, *[""] * 11)
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
    bad_data = {"k": "osv", "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0-?-x"}]}]}
    good = {"k": "osv", "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0"}]}]}
    path = tmp_path / "vuln.db"
    with rebuild(path) as db:
        db.replace_source(
            SourceInfo("osv:PyPI", "test", now_iso()),
            [
                Advisory("PYSEC-BAD", affected=[AffectedRow("pypi", "", "demo", bad_data)]),
                Advisory("PYSEC-GOOD", affected=[AffectedRow("pypi", "", "demo", good)]),
            ],
        )
    demo = Package(ecosystem=Ecosystem.PYPI, name="demo", version="2.0", purl="pkg:pypi/demo@2.0")
    with VulnDB.open(path) as db:
        bad_row, good_row = db.candidates("pypi", ["demo"], [""])["demo"]
        assert (bad_row.advisory_id, bad_row.events) == ("PYSEC-BAD", UNSORTED_EVENTS)
        assert good_row.advisory_id == "PYSEC-GOOD" and good_row.data_json == ""  # JSON read for unsortable rows only
        assert bad_row.data["ranges"] == bad_data["ranges"]
        result = match_packages([demo], db, None)
    assert [(m.advisory_id, m.fixed_version) for m in result.matches] == [("PYSEC-GOOD", "3.0")]
    [problem] = result.problems
    assert problem.startswith("demo 2.0 vs PYSEC-BAD:") and "does not parse" in problem


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.text(max_size=6), min_size=1, max_size=4), min_size=1, max_size=4))
def test_pack_round_trip(rows: list[list[str]]) -> None:
    """Any text, separators and escape character included, comes back unchanged."""
    assert unpack(pack(rows)) == rows


def test_rows_of_several_feeds_and_releases_come_in_matching_order(tmp_path: Path) -> None:
    """Vendor feeds first, then by advisory id, across every packed row of a package."""

    def feed(ids: list[str], release: str) -> list[Advisory]:
        return [Advisory(i, affected=[AffectedRow("debian", release, "zlib", {"k": "osv", "ranges": []})]) for i in ids]

    path = tmp_path / "vuln.db"
    with rebuild(path) as db:
        db.replace_source(SourceInfo("osv:Debian", "test", now_iso()), feed(["DSA-2", "CVE-1", "DLA-9"], "12"))
        db.replace_source(SourceInfo("debian-tracker", "test", now_iso()), feed(["CVE-3", "CVE-1"], "bookworm"))
        db.replace_source(SourceInfo("alpine-secdb:x", "test", now_iso()), feed(["CVE-2"], "12"))
    with VulnDB.open(path) as db:
        rows = db.candidates("debian", ["zlib"], ["12", "bookworm"])["zlib"]
    assert [(r.source, r.advisory_id, r.release) for r in rows] == [
        ("debian-tracker", "CVE-1", "bookworm"),
        ("alpine-secdb:x", "CVE-2", "12"),
        ("debian-tracker", "CVE-3", "bookworm"),
        ("osv:Debian", "CVE-1", "12"),
        ("osv:Debian", "DLA-9", "12"),
        ("osv:Debian", "DSA-2", "12"),
    ]


def _stored_rows(path: Path) -> list[tuple[str, ...]]:
    """Every affected row a current-schema file holds: key, feed, CandidateRow fields and JSON."""
    conn = sqlite3.connect(path)
    try:
        return sorted(
            (eco, pkg, rel, source, *fields[:-1], data)
            for eco, pkg, rel, source, rows, datas in conn.execute(
                "SELECT ecosystem, package, release, source, rows, data FROM affected"
            )
            for fields, (data,) in zip(unpack(rows), unpack(datas), strict=True)
        )
    finally:
        conn.close()


def _full_json(row: CandidateRow, data: str) -> str:
    """The row JSON as schema 1 kept it: with the explicit versions."""
    full = json.loads(data)
    if row.kind == "osv":
        full["versions"] = row.versions.strip("\n").split("\n") if row.versions else []
    return json.dumps(full)


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


# schema 3: one row per affected row, its match fields decoded into columns
_V3_AFFECTED = """
CREATE TABLE affected(ecosystem TEXT NOT NULL, package TEXT NOT NULL, release TEXT NOT NULL,
    advisory INTEGER NOT NULL REFERENCES advisories(rowid), seq INTEGER NOT NULL, kind TEXT NOT NULL,
    status TEXT NOT NULL, fixed TEXT NOT NULL, urgency TEXT NOT NULL, nodsa TEXT NOT NULL, nodsa_reason TEXT NOT NULL,
    events TEXT NOT NULL, versions TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (ecosystem, package, release, advisory, seq)) WITHOUT ROWID;
"""


def _downgrade(current: Path, old: Path, version: str) -> None:
    """Write a schema 1 or 3 file holding the same sources, advisories and affected rows as `current`."""
    conn = sqlite3.connect(old)
    schema = _V1_SCHEMA if version == "1" else _V1_SCHEMA.split("CREATE TABLE affected")[0] + _V3_AFFECTED
    conn.executescript(schema)
    conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (version,))
    conn.execute("ATTACH DATABASE ? AS new", (str(current),))
    conn.execute("INSERT INTO sources SELECT * FROM new.sources")
    conn.execute(
        "INSERT INTO advisories(rowid, id, source, aliases, summary, severity, cvss, modified)"
        " SELECT rowid, id, source, aliases, summary, severity, cvss, modified FROM new.advisories"
    )
    conn.commit()
    conn.execute("DETACH DATABASE new")
    seq: dict[tuple[str, ...], int] = {}
    for eco, pkg, rel, _source, *fields, data in _stored_rows(current):
        row = CandidateRow._make([*fields, ""])
        if version == "1":
            conn.execute(
                "INSERT INTO affected VALUES (?, ?, ?, ?, ?)", (int(row.advisory), eco, rel, pkg, _full_json(row, data))
            )
        else:
            n = seq[(eco, pkg, rel, row.advisory)] = seq.get((eco, pkg, rel, row.advisory), -1) + 1
            conn.execute(
                "INSERT INTO affected VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (eco, pkg, rel, int(row.advisory), n, *row[6:14], data),
            )
    conn.commit()
    conn.close()


@pytest.mark.parametrize("version", ["1", "3"])
def test_older_database_is_migrated_by_the_next_update(full_db_path: Path, tmp_path: Path, version: str) -> None:
    current = tmp_path / "current.db"
    shutil.copy(full_db_path, current)
    old = tmp_path / "old.db"
    _downgrade(current, old, version)
    curl = Package(ecosystem=Ecosystem.DEBIAN, name="curl", version="7.88.1-10+deb12u5", purl="pkg:deb/debian/curl")
    requests = Package(ecosystem=Ecosystem.PYPI, name="requests", version="2.25.1", purl="pkg:pypi/requests@2.25.1")
    with VulnDB.open(current) as db:
        expected = [f.model_dump() for f in scan([curl], db, BOOKWORM) + scan([requests], db, None)]
    assert len(expected) >= 3  # curl 7.88.1-10+deb12u5 has several advisories in the shared Debian data
    with rebuild(old):  # what `db update` / `db import` do first; nothing else changes in this block
        pass
    with VulnDB.open(old) as db:
        assert db.meta("schema_version") == SCHEMA_VERSION
        assert [f.model_dump() for f in scan([curl], db, BOOKWORM) + scan([requests], db, None)] == expected
    migrated = _stored_rows(old)
    assert migrated == _stored_rows(current) and len(migrated) > 10_000
    assert {row[4 + CandidateRow._fields.index("kind")] for row in migrated} == {"tracker", "osv", "secdb"}


def test_bundle_of_an_older_schema_is_upgraded_on_import(full_db_path: Path, tmp_path: Path) -> None:
    """An air-gapped host importing a bundle that an earlier release exported gets a working current database."""
    current = tmp_path / "current.db"
    shutil.copy(full_db_path, current)
    old = tmp_path / DB_FILENAME
    _downgrade(current, old, "3")
    with contextlib.closing(sqlite3.connect(old)) as conn:
        conn.execute("INSERT INTO meta VALUES ('updated_at', '2026-01-02T03:04:05+00:00')")
        conn.commit()
    data = old.read_bytes()
    manifest = json.dumps(
        {
            "format": BUNDLE_FORMAT,
            "schema_version": "3",
            "files": {DB_FILENAME: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}},
        }
    ).encode()
    bundle = tmp_path / "old-bundle.tar.gz"
    with tarfile.open(bundle, "w:gz") as tar:
        tar.add(old, arcname=DB_FILENAME)
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    target = tmp_path / "imported" / DB_FILENAME
    import_bundle(bundle, target)
    curl = Package(ecosystem=Ecosystem.DEBIAN, name="curl", version="7.88.1-10+deb12u5", purl="pkg:deb/debian/curl")
    with VulnDB.open(current) as db:
        expected = [f.model_dump() for f in scan([curl], db, BOOKWORM)]
    with VulnDB.open(target) as db:
        assert db.meta("schema_version") == SCHEMA_VERSION
        assert db.meta("updated_at") == "2026-01-02T03:04:05+00:00"  # the bundle's age, not the import's
        assert [f.model_dump() for f in scan([curl], db, BOOKWORM)] == expected
    assert len(expected) >= 3  # curl 7.88.1-10+deb12u5 has several advisories in the shared Debian data
