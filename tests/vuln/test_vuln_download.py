"""The real downloader end to end against a local HTTP server serving real data; the CLI around it."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from vuln_feed_server import FeedServer, osv_zip, start, yaml_records
from vulndata import NPM_DIR, PYPI_DIR, SECDB_DIR, TRACKER_JSON

from portcullis.vuln.db import VulnDB
from portcullis.vuln.download import FeedSpec, update
from portcullis.vuln.sources import FeedError


@pytest.fixture(scope="module")
def payloads() -> dict[str, bytes]:
    npm = [json.loads(p.read_text()) for p in sorted(NPM_DIR.glob("*.json"))]
    pages = {
        "/debian/json": TRACKER_JSON.read_bytes(),
        "/osv/PyPI/all.zip": osv_zip(yaml_records(PYPI_DIR)),
        "/osv/npm/all.zip": osv_zip(npm),
        "/alpine/": b'<html><a href="../">../</a><a href="v3.10/">v3.10/</a><a href="v3.11/">v3.11/</a></html>',
    }
    for branch in ("v3.10", "v3.11"):
        for repo in ("main", "community"):
            [doc] = [d for d in yaml_records(SECDB_DIR / branch) if d["reponame"] == repo]
            pages[f"/alpine/{branch}/{repo}.json"] = json.dumps(doc).encode()
    return pages


@pytest.fixture()
def server(payloads: dict[str, bytes]) -> Iterator[FeedServer]:
    feeds = FeedServer()
    for path, body in payloads.items():
        feeds.serve(path, body)
    httpd = start(feeds)
    yield feeds
    httpd.shutdown()
    httpd.server_close()


def specs(feeds: FeedServer) -> list[FeedSpec]:
    return [
        FeedSpec("debian", feeds.url("/debian/json"), "debian-tracker"),
        FeedSpec("osv:PyPI", feeds.url("/osv/PyPI/all.zip"), "osv"),
        FeedSpec("osv:npm", feeds.url("/osv/npm/all.zip"), "osv"),
        FeedSpec("alpine", feeds.url("/alpine/"), "alpine-index"),
    ]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_full_update_then_conditional_304(server: FeedServer, tmp_path: Path) -> None:
    path = tmp_path / "vuln.db"
    first = update(path, specs(server))
    counts = {info.name: info.advisories for info in first.updated}
    assert counts["debian-tracker"] == 12
    assert counts["osv:PyPI"] == 2651  # 2,662 records minus 10 withdrawn minus 1 with no matchable range (GIT only)
    assert counts["osv:npm"] == 2
    assert counts["alpine-secdb:v3.11/main"] == 1213
    assert set(counts) >= {"alpine-secdb:v3.10/main", "alpine-secdb:v3.10/community", "alpine-secdb:v3.11/community"}
    with VulnDB.open(path) as db:
        tracker = db.source("debian-tracker")
        assert tracker is not None and tracker.etag == server.files["/debian/json"].etag
        assert tracker.sha256 == hashlib.sha256(server.files["/debian/json"].body).hexdigest()

    server.requests.clear()
    second = update(path, specs(server))
    assert second.updated == []
    assert sorted(second.not_modified) == sorted(counts)
    conditional = {p: h.get("If-None-Match") for p, h in server.requests if p != "/alpine/"}
    assert conditional["/debian/json"] == server.files["/debian/json"].etag
    assert all(conditional.values()), conditional
    with VulnDB.open(path) as db:
        assert {s.name: s.advisories for s in db.sources()} == counts


@pytest.mark.parametrize(
    ("path", "change", "message"),
    [
        ("/debian/json", {"truncate_to": 5000}, "truncated download"),
        ("/osv/PyPI/all.zip", {"truncate_to": 200_000}, "truncated download"),
        ("/osv/npm/all.zip", {"corrupt": True}, "zip"),
        ("/debian/json", {"body": b'{"curl": ["not", "a", "cve", "map"]}'}, "unexpected shape"),
        ("/debian/json", {"body": b"<html>maintenance</html>"}, "not a JSON/YAML object"),
        ("/alpine/v3.11/main.json", {"body": b'{"distroversion": "v3.11", "packages": {"x": 1}}'}, "unexpected shape"),
        ("/osv/npm/all.zip", {"status": 500}, "HTTP 500"),
    ],
)
def test_bad_download_leaves_the_old_database_untouched(
    server: FeedServer,
    tmp_path: Path,
    path: str,
    change: dict,
    message: str,  # type: ignore[type-arg]
) -> None:
    db_path = tmp_path / "vuln.db"
    update(db_path, specs(server))
    before = digest(db_path)
    served = server.files[path]
    body = change.get("body", served.body)
    if change.get("corrupt"):
        middle = len(body) // 2
        body = body[:middle] + bytes(b ^ 0xFF for b in body[middle : middle + 64]) + body[middle + 64 :]
    # a new ETag, as upstream would send for new content, so the conditional request does not answer 304
    server.serve(path, body, etag='"changed"', truncate_to=change.get("truncate_to"), status=change.get("status", 200))
    with pytest.raises(FeedError, match=message):
        update(db_path, specs(server))
    assert digest(db_path) == before
    with VulnDB.open(db_path) as db:
        assert db.source("debian-tracker") is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == [".vuln.db.lock", "vuln.db"]  # no working copy left


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "portcullis", *args], capture_output=True, text=True, timeout=120)


def test_cli_update_status_export_import(server: FeedServer, tmp_path: Path) -> None:
    db_path = tmp_path / "vuln.db"
    ok = run(
        "db",
        "update",
        "--db",
        str(db_path),
        "--only",
        "debian",
        "--only",
        "osv:npm",
        "--url",
        f"debian={server.url('/debian/json')}",
        "--url",
        f"osv:npm={server.url('/osv/npm/all.zip')}",
    )
    assert ok.returncode == 0, ok.stderr
    assert "updated debian-tracker: 12 advisories" in ok.stderr

    status = run("db", "status", "--db", str(db_path))
    assert status.returncode == 0
    lines = {line.split()[0]: line.split() for line in status.stdout.splitlines()[2:]}
    assert lines["debian-tracker"][3] == "12" and lines["osv:npm"][3] == "2"
    assert "warning" not in status.stderr
    conn = sqlite3.connect(db_path)  # age the tracker by ten days to see the staleness warning
    conn.execute("UPDATE sources SET fetched_at = '2000-01-01T00:00:00+00:00' WHERE name = 'debian-tracker'")
    conn.commit()
    conn.close()
    stale = run("db", "status", "--db", str(db_path))
    assert "warning: 1 source(s) older than 3 days: debian-tracker" in stale.stderr

    bundle = tmp_path / "bundle.tar.gz"
    assert run("db", "export", str(bundle), "--db", str(db_path)).returncode == 0
    with tarfile.open(bundle) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    with tarfile.open(bundle) as tar:
        packed = tar.extractfile("vuln.db").read()  # type: ignore[union-attr]
    assert manifest["files"]["vuln.db"]["sha256"] == hashlib.sha256(packed).hexdigest()
    other = tmp_path / "airgap" / "vuln.db"
    imported = run("db", "import", str(bundle), "--db", str(other))
    assert imported.returncode == 0, imported.stderr
    with VulnDB.open(other) as db:
        assert {s.name for s in db.sources()} == {"debian-tracker", "osv:npm"}

    failing = run("db", "update", "--db", str(db_path), "--only", "debian", "--url", "debian=http://127.0.0.1:9/none")
    assert failing.returncode == 1
    assert failing.stderr.count("\n") == 1 and "update failed, the existing database is unchanged" in failing.stderr


def test_tampered_bundle_is_rejected(tmp_path: Path) -> None:
    db_path = tmp_path / "vuln.db"
    assert run("db", "import", str(NPM_DIR), "--db", str(db_path)).returncode == 0
    bundle = tmp_path / "bundle.tar.gz"
    assert run("db", "export", str(bundle), "--db", str(db_path)).returncode == 0
    with tarfile.open(bundle) as tar:
        manifest = tar.extractfile("manifest.json").read()  # type: ignore[union-attr]
        data = bytearray(tar.extractfile("vuln.db").read())  # type: ignore[union-attr]
    data[-100] ^= 0x01  # one flipped bit inside the database file
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(tampered, "w:gz") as tar:
        for name, content in (("vuln.db", bytes(data)), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            import io

            tar.addfile(info, io.BytesIO(content))
    target = tmp_path / "target.db"
    assert run("db", "import", str(TRACKER_JSON), "--db", str(target)).returncode == 0
    before = digest(target)
    result = run("db", "import", str(tampered), "--db", str(target))
    assert result.returncode == 1
    assert "does not match the manifest checksum" in result.stderr
    assert digest(target) == before


def test_import_of_unknown_shape_is_one_clear_line(tmp_path: Path) -> None:
    bogus = tmp_path / "feed.json"
    bogus.write_text('{"hello": "world"}')
    result = run("db", "import", str(bogus), "--db", str(tmp_path / "vuln.db"))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "portcullis: error: import failed, the existing database is unchanged: "
        "not a Debian tracker JSON, OSV record or Alpine secdb document"
    )
    assert not (tmp_path / "vuln.db").exists()
