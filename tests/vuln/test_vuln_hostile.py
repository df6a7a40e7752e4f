"""Hostile input and faults (issue 13): each ends as one clear line and exit 1, bounded in time and memory, with
the database untouched. Inputs are crafted here; bombs run in a child under a memory limit (`bounded`)."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from bounded import run_bounded
from vuln_feed_server import FeedServer, start
from vulndata import NPM_DIR

from portcullis.vuln.sources import FeedError, load_path
from portcullis.vuln.sources.osv import parse_zip

RECORD = {
    "id": "GHSA-test-0001",
    "modified": "2024-01-01T00:00:00Z",
    "affected": [{"package": {"name": "lodash", "ecosystem": "npm"}, "versions": ["4.17.0"]}],
}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def npm_db(tmp_path: Path) -> Path:
    db = tmp_path / "vuln.db"
    assert run_bounded("db", "import", str(NPM_DIR), "--db", str(db)).code == 0
    return db


def zip_of_zeros(path: Path, members: int, member_bytes: int) -> Path:
    """Members of zeros written in chunks: a megabyte of archive per gigabyte of content, built in constant memory."""
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for n in range(members):
            with archive.open(f"bomb-{n}.json", "w", force_zip64=True) as member:
                for _ in range(member_bytes // len(chunk)):
                    member.write(chunk)
    return path


@pytest.mark.parametrize(
    ("members", "member_bytes", "message"),
    [
        (1, 1 << 30, "would expand to 1073741824 bytes"),  # one 1 GiB member from a 1 MB archive
        (12, 8 << 20, "would expand to 100663296 bytes"),  # each member fine, together 96 MiB from 100 KB
        (1, 20 << 20, "over the 16777216-byte limit for a record"),  # within the archive's allowance
    ],
)
def test_zip_bomb_is_refused_before_it_expands(
    npm_db: Path, tmp_path: Path, members: int, member_bytes: int, message: str
) -> None:
    bomb = zip_of_zeros(tmp_path / "bomb.zip", members, member_bytes)
    assert bomb.stat().st_size < 2 << 20
    before = digest(npm_db)
    result = run_bounded("db", "import", str(bomb), "--db", str(npm_db), timeout=30)
    assert message in result.one_error_line()
    assert result.seconds < 10 and result.peak_rss_mb < 200, result
    assert digest(npm_db) == before


def test_zip_member_lying_about_its_size_stops_at_the_declared_size(tmp_path: Path) -> None:
    """The caps trust the declared sizes because zipfile stops there: a member declaring 100 bytes but holding
    100 MB is cut at 100 and fails its CRC, never read further."""
    path = tmp_path / "liar.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("liar.json", b" " * (100 << 20))
    data = bytearray(path.read_bytes())
    real = (100 << 20).to_bytes(4, "little")
    lie = (100).to_bytes(4, "little")
    assert data.count(real) == 2  # the local header and the central directory entry
    data = data.replace(real, lie)
    with pytest.raises(FeedError, match=r"liar\.json fails its check"):
        parse_zip(bytes(data), "liar.zip", default_source=None)


def osv_zip(path: Path, records: list[dict]) -> Path:  # type: ignore[type-arg]
    with zipfile.ZipFile(path, "w") as archive:
        for n, record in enumerate(records):
            archive.writestr(f"r{n}.json", json.dumps(record))
    return path


WRONG_TYPES = [
    ("ranges", 5, "'ranges' is not a list but int"),
    ("ranges", [{"type": "ECOSYSTEM", "events": 7}], "'ranges' events is not a list but int"),
    ("ranges", [{"type": "SEMVER", "events": ["introduced"]}], "'ranges' events must be objects"),
    ("versions", 3, "'versions' is not a list but int"),
    ("versions", {"1.0": True}, "'versions' is not a list but dict"),
    ("severity", "HIGH", "affected[] 'severity' is not a list but str"),
]


@pytest.mark.parametrize(("field", "value", "message"), WRONG_TYPES)
def test_wrong_typed_osv_fields_are_one_clear_line(tmp_path: Path, field: str, value: object, message: str) -> None:
    record = json.loads(json.dumps(RECORD))
    record["affected"][0][field] = value
    with pytest.raises(FeedError, match=re.escape(message)):
        load_path(osv_zip(tmp_path / "bad.zip", [record]))


def test_wrong_typed_osv_record_through_the_cli(npm_db: Path, tmp_path: Path) -> None:
    record = {**RECORD, "aliases": 12, "database_specific": "x"}
    before = digest(npm_db)
    result = run_bounded("db", "import", str(osv_zip(tmp_path / "bad.zip", [record])), "--db", str(npm_db))
    assert "GHSA-test-0001: 'aliases' is not a list but int" in result.one_error_line()
    assert digest(npm_db) == before


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # nine levels of ten aliases each: a billion strings once anything walks the document
        (
            (
                "id: X\nversions: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
                + "".join(f"l{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]\n" for n in range(1, 10))
            ).encode(),
            "YAML aliases",
        ),
        (b"- " * 100_000 + b"x\n", "nested more than 64 levels"),  # crashed the C composer (a segfault)
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"id": ' + b"1" * 5000 + b"}", "not a usable JSON document"),
        (b"\xff\xfe", "not UTF-8 text"),
    ],
)
def test_hostile_documents_are_one_clear_line(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "feed.yaml"
    path.write_bytes(data)
    result = run_bounded("db", "import", str(path), "--db", str(tmp_path / "vuln.db"), timeout=30)
    assert message in result.one_error_line()
    assert result.seconds < 10 and result.peak_rss_mb < 200, result
    assert not (tmp_path / "vuln.db").exists()


@pytest.fixture()
def feeds() -> Iterator[FeedServer]:
    server = FeedServer()
    httpd = start(server)
    yield server
    httpd.shutdown()
    httpd.server_close()


def test_endless_feed_is_cut_at_its_cap(npm_db: Path, feeds: FeedServer) -> None:
    feeds.serve("/alpine/", b"<a href=" * 8192, endless=True)  # the index page is capped at 1 MiB
    before = digest(npm_db)
    result = run_bounded(
        "db", "update", "--db", str(npm_db), "--only", "alpine", "--url", f"alpine={feeds.url('/alpine/')}"
    )
    assert "over the 1048576-byte limit for this feed (an endless response?)" in result.one_error_line()
    assert result.seconds < 10 and result.peak_rss_mb < 200, result
    assert digest(npm_db) == before


def test_endless_osv_zip_is_cut_at_its_cap(npm_db: Path, feeds: FeedServer) -> None:
    """512 MiB for an OSV zip: the child's memory limit (1 GiB) holds it, and the refusal comes first."""
    feeds.serve("/osv/npm/all.zip", bytes(1 << 20), endless=True)
    result = run_bounded(
        "db", "update", "--db", str(npm_db), "--only", "osv:npm", "--url", f"osv:npm={feeds.url('/osv/npm/all.zip')}"
    )
    assert "over the 536870912-byte limit for this feed" in result.one_error_line()
    assert result.seconds < 30 and result.peak_rss_mb < 700, result


def test_dripping_feed_meets_the_deadline(npm_db: Path, feeds: FeedServer) -> None:
    feeds.serve("/debian/json", b'{"curl": {}}' * 100, drip=0.2)  # 240 s to send in full
    before = digest(npm_db)
    result = run_bounded(
        "db",
        "update",
        "--db",
        str(npm_db),
        "--only",
        "debian",
        "--url",
        f"debian={feeds.url('/debian/json')}",
        "--timeout",
        "2",
    )
    assert "not complete after 2 s" in result.one_error_line()
    assert result.seconds < 6, result
    assert digest(npm_db) == before
