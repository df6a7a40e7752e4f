"""Hostile input and faults (issue 13): each ends as one clear line and exit 1, bounded in time and memory, with
the database untouched. Inputs are crafted here; bombs run in a child under a memory limit (`bounded`)."""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from vuln_feed_server import FeedServer, start
from vulndata import NPM_DIR, PYPI_DIR, TRACKER_JSON

from portcullis.vuln.bundle import BUNDLE_FORMAT
from portcullis.vuln.db import VulnDB, rebuild
from portcullis.vuln.sources import FeedError, load_path
from portcullis.vuln.sources.osv import parse_zip
from support.bounded import run_bounded

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
    """512 MiB for an OSV zip, spooled to an anonymous temporary file: the memory stays small."""
    feeds.serve("/osv/npm/all.zip", bytes(1 << 20), endless=True)
    result = run_bounded(
        "db", "update", "--db", str(npm_db), "--only", "osv:npm", "--url", f"osv:npm={feeds.url('/osv/npm/all.zip')}"
    )
    assert "over the 536870912-byte limit for this feed" in result.one_error_line()
    assert result.seconds < 30 and result.peak_rss_mb < 200, result


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


def bundle_of(path: Path, db_bytes: bytes, manifest: object, manifest_size: int | None = None) -> Path:
    """A gzip tar as `db export` writes it: vuln.db, then manifest.json (of `manifest_size` zero bytes if given)."""
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        info = tarfile.TarInfo("vuln.db")
        info.size = len(db_bytes)
        tar.addfile(info, io.BytesIO(db_bytes))
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = manifest_size or len(data)
        tar.addfile(info, ZeroFile(manifest_size) if manifest_size else io.BytesIO(data))
    return path


class ZeroFile(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def manifest_for(db_bytes: bytes, sources: list[object] | None = None) -> dict[str, object]:
    return {
        "format": BUNDLE_FORMAT,
        "files": {"vuln.db": {"sha256": hashlib.sha256(db_bytes).hexdigest(), "size": len(db_bytes)}},
        "sources": sources or [],
    }


def test_huge_bundle_manifest_is_refused_before_it_is_read(npm_db: Path, tmp_path: Path) -> None:
    db_bytes = npm_db.read_bytes()
    bundle = bundle_of(tmp_path / "b.tar.gz", db_bytes, {}, manifest_size=1 << 30)
    before = digest(npm_db)
    result = run_bounded("db", "import", str(bundle), "--db", str(npm_db), timeout=60)
    assert "manifest.json is 1073741824 bytes, over the 1048576-byte limit" in result.one_error_line()
    assert result.seconds < 20 and result.peak_rss_mb < 200, result
    assert digest(npm_db) == before


def test_corrupt_database_with_a_matching_checksum_is_refused(npm_db: Path, tmp_path: Path) -> None:
    good = npm_db.read_bytes()
    at = len(good) - 3 * 4096  # a page of the affected table overwritten; the header and meta pages are intact
    damaged = good[:at] + bytes(range(256)) * 16 + good[at + 4096 :]
    bundle = bundle_of(tmp_path / "b.tar.gz", damaged, manifest_for(damaged))
    before = digest(npm_db)
    result = run_bounded("db", "import", str(bundle), "--db", str(npm_db))
    assert "is damaged" in result.one_error_line()
    assert digest(npm_db) == before
    assert run_bounded("db", "status", "--db", str(npm_db)).code == 0


def test_bundle_without_sources_never_replaces_a_populated_database(npm_db: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty" / "vuln.db"
    with rebuild(empty):
        pass
    bundle = tmp_path / "empty.tar.gz"
    assert run_bounded("db", "export", str(bundle), "--db", str(empty)).code == 0
    before = digest(npm_db)
    result = run_bounded("db", "import", str(bundle), "--db", str(npm_db))
    assert "the bundle holds no sources" in result.one_error_line()
    assert digest(npm_db) == before
    assert run_bounded("db", "import", str(bundle), "--db", str(tmp_path / "new" / "vuln.db")).code == 0


@pytest.mark.parametrize(
    "manifest",
    [
        [],
        {"format": BUNDLE_FORMAT, "files": []},
        {"format": BUNDLE_FORMAT, "files": {"vuln.db": {"sha256": 1, "size": "12"}}, "sources": []},
        {"format": BUNDLE_FORMAT, "files": {"vuln.db": {"sha256": "x", "size": 12}}, "sources": {}},
        {"format": ["x"]},
    ],
)
def test_bundle_manifest_with_wrong_types_is_one_clear_line(npm_db: Path, tmp_path: Path, manifest: object) -> None:
    bundle = bundle_of(tmp_path / "b.tar.gz", npm_db.read_bytes(), manifest)
    before = digest(npm_db)
    result = run_bounded("db", "import", str(bundle), "--db", str(npm_db))
    assert "import failed, the existing database is unchanged" in result.one_error_line()
    assert digest(npm_db) == before


@pytest.mark.timeout(120)  # a writer that never says it waits would block the readline below
def test_two_imports_at_once_keep_both(tmp_path: Path) -> None:
    """The second writer waits for the first (and says so) instead of swapping in a copy lacking its change."""
    db = tmp_path / "vuln.db"
    lock = (tmp_path / ".vuln.db.lock").open("a")
    fcntl.flock(lock, fcntl.LOCK_EX)  # hold the writers' lock so both imports surely overlap
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "portcullis", "db", "import", str(source), "--db", str(db)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for source in (NPM_DIR, TRACKER_JSON)
    ]
    waiting = f"portcullis: waiting for another portcullis writing {db}"
    # release the lock only once both are blocked on it (a loaded machine can take seconds to start them)
    first_lines = [child.stderr.readline() for child in children if child.stderr is not None]
    lock.close()
    for child, first in zip(children, first_lines, strict=True):
        _, rest = child.communicate(timeout=60)
        assert child.returncode == 0, first + rest
        assert first.startswith(waiting), first + rest
    with VulnDB.open(db) as database:
        assert {s.name for s in database.sources()} == {"osv:npm", "debian-tracker"}


def test_work_files_of_a_killed_import_are_removed_by_the_next_writer(tmp_path: Path) -> None:
    db = tmp_path / "vuln.db"
    child = subprocess.Popen(
        [sys.executable, "-m", "portcullis", "db", "import", str(PYPI_DIR), "--db", str(db)], stderr=subprocess.PIPE
    )
    give_up = time.monotonic() + 60
    while not list(tmp_path.glob(f".vuln.db.{child.pid}.tmp")):  # the import is writing its work file
        assert time.monotonic() < give_up and child.poll() is None
        time.sleep(0.05)
    child.kill()
    child.wait()
    assert (tmp_path / f".vuln.db.{child.pid}.tmp").exists()
    live = tmp_path / f".vuln.db.{os.getpid()}.tmp"  # a writer still running: left alone
    live.write_bytes(b"x")
    assert run_bounded("db", "import", str(NPM_DIR), "--db", str(db)).code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".vuln.db.lock", live.name, "vuln.db"])


def candidate_rows(db_path: Path, package: str) -> list[tuple[str, ...]]:
    with VulnDB.open(db_path) as db:
        rows = db.candidates("pypi", [package], [""]).get(package, [])
        return sorted(row._replace(advisory="") for row in rows)  # rowids change when a source is rewritten


def test_importing_a_few_records_merges_unless_told_to_replace(tmp_path: Path) -> None:
    db = tmp_path / "vuln.db"
    assert run_bounded("db", "import", str(PYPI_DIR), "--db", str(db)).code == 0
    django = candidate_rows(db, "django")
    records = [
        {
            **RECORD,
            "id": f"PYSEC-TEST-{n}",
            "affected": [{"package": {"name": "x", "ecosystem": "PyPI"}, "versions": ["1"]}],
        }
        for n in range(2)
    ]
    with VulnDB.open(db) as database:
        [requests_adv] = [a for a in database.source_advisories("osv:PyPI") if a.id == "PYSEC-2014-13"]
    records.append({**RECORD, "id": "PYSEC-2014-13", "affected": records[0]["affected"]})
    three = osv_zip(tmp_path / "three.zip", records)

    merged = run_bounded("db", "import", str(three), "--db", str(db))
    assert merged.code == 0, merged.stderr
    assert "merged 3 advisories into osv:PyPI: 1 replaced by the same id, 2 new; 2653 in all" in merged.stderr
    assert candidate_rows(db, "django") == django  # the rest of the source read back and written again unchanged
    assert requests_adv.affected[0].package == "requests"
    assert all(row[0] != "PYSEC-2014-13" for row in candidate_rows(db, "requests"))  # the files' copy took its place
    with VulnDB.open(db) as database:
        source = database.source("osv:PyPI")
        assert source is not None and source.advisories == 2653 and source.origin.endswith(f" + {three}")
        assert [a.affected[0].package for a in database.source_advisories("osv:PyPI") if a.id == "PYSEC-2014-13"] == [
            "x"
        ]

    replaced = run_bounded("db", "import", str(three), "--db", str(db), "--replace")
    assert "replaced osv:PyPI: its 2653 advisories by the 3 in" in replaced.stderr
    with VulnDB.open(db) as database:
        assert [s.advisories for s in database.sources()] == [3]


def damage_table(db: Path, table: str) -> None:
    """Overwrite the root page of one table: the file header and the other tables stay readable."""
    conn = sqlite3.connect(db)
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    conn.close()
    with db.open("r+b") as handle:
        handle.seek((root - 1) * page_size)
        handle.write(bytes(range(256)) * (page_size // 256))


@pytest.mark.parametrize(
    "args",
    [
        ("db", "status"),
        ("db", "import", str(NPM_DIR)),
        ("db", "update", "--only", "debian", "--url", "debian=http://127.0.0.1:9/never-reached"),
        ("db", "export", "{tmp}/out.tar.gz"),
    ],
)
def test_damaged_database_is_one_clear_line(npm_db: Path, tmp_path: Path, args: tuple[str, ...]) -> None:
    damage_table(npm_db, "sources")
    before = digest(npm_db)
    result = run_bounded(*(a.format(tmp=tmp_path) for a in args), "--db", str(npm_db))
    assert "is damaged" in result.one_error_line()
    assert digest(npm_db) == before
    assert not (tmp_path / "out.tar.gz").exists()


def test_full_disk_is_one_clear_line(npm_db: Path) -> None:
    before = digest(npm_db)
    result = run_bounded("db", "import", str(PYPI_DIR), "--db", str(npm_db), file_size=1 << 20)  # 1 MiB per file
    line = result.one_error_line()  # RLIMIT_FSIZE fails SQLite's write (EFBIG), a full tmpfs its size check
    assert "cannot write the database beside" in line and "a full disk or a file size limit?" in line
    assert digest(npm_db) == before
    assert sorted(p.name for p in npm_db.parent.iterdir()) == [".vuln.db.lock", "vuln.db"]


def read_only(directory: Path, on: bool) -> bool:
    if os.geteuid() == 0:  # root writes whatever the mode says; an immutable directory (ext4 and most) stops it
        done = subprocess.run(["chattr", "+i" if on else "-i", str(directory)], capture_output=True, check=False)
        return done.returncode == 0
    directory.chmod(0o555 if on else 0o755)
    return True


def test_read_only_database_directory_is_one_clear_line(npm_db: Path) -> None:
    directory = npm_db.parent
    (directory / ".vuln.db.lock").unlink()
    if not read_only(directory, True):
        pytest.skip("cannot make a directory read-only here")
    try:
        result = run_bounded("db", "import", str(TRACKER_JSON), "--db", str(npm_db))
    finally:
        read_only(directory, False)
    assert f"cannot write beside {npm_db}" in result.one_error_line()
    assert sorted(p.name for p in directory.iterdir()) == ["vuln.db"]


def test_stdout_on_a_full_disk_is_one_clear_line(npm_db: Path) -> None:
    with open("/dev/full", "w") as full:
        result = run_bounded("db", "status", "--db", str(npm_db), stdout=full)
    assert result.one_error_line() == "portcullis: error: cannot write to standard output: No space left on device"
