"""`db update` refreshes the end-of-life tables from endoflife.date's API (a local server serving answers in the
API's v1 shape), bundles carry them, and the rules say which table judged."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from vuln_feed_server import FeedServer, start
from vulndata import DATA, TRACKER_JSON, build_db

from portcullis.checks.registry import get_rule
from portcullis.checks.runner import evaluate
from portcullis.data.eol import eol_status, table_for
from portcullis.model.facts import EolTables, Facts
from portcullis.model.vuln import OsRelease
from portcullis.pipelines.database import update_database
from portcullis.pipelines.errors import VulnerabilityInputError
from portcullis.vuln.bundle import BundleError, export_bundle, import_bundle
from portcullis.vuln.eol_refresh import MAX_PRODUCT_BYTES, OS_PRODUCTS, eol_path, load

ANSWERS = DATA / "endoflife"
PREFIX = "/api/v1/products/"
NOOP = lambda *_: None  # noqa: E731 - no progress output in tests
BASELINE = Path(__file__).parents[1] / "rules" / "baseline.json"


@pytest.fixture()
def server() -> Iterator[FeedServer]:
    feeds = FeedServer()
    for answer in ANSWERS.glob("*.json"):
        feeds.serve(PREFIX + answer.stem, answer.read_bytes())
    httpd = start(feeds)
    yield feeds
    httpd.shutdown()
    httpd.server_close()


def _baseline() -> Facts:
    """The rule fixtures' baseline facts: a local engine 20.10.24."""
    return Facts.model_validate({k: v for k, v in json.loads(BASELINE.read_text()).items() if k[0] != "_"})


def _refresh(server: FeedServer, db_path: Path) -> EolTables:
    result = update_database(db_path, ["eol"], [f"eol={server.url(PREFIX)}"], NOOP)
    assert result.eol_tables is not None and result.updated == []  # --only eol: no feed was fetched
    return result.eol_tables


def test_refresh_maps_the_api_onto_our_tables(server: FeedServer, tmp_path: Path) -> None:
    db_path = tmp_path / "vuln.db"
    tables = _refresh(server, db_path)
    assert load(db_path) == tables and eol_path(db_path) == tmp_path / "vuln.db.eol.json"
    assert set(tables.distributions) == set(OS_PRODUCTS.values())
    assert tables.distributions["debian"]["12"] == {
        "end": "2028-06-30",
        "name": "bookworm",
        "regular_end": "2026-06-10",
    }
    assert tables.distributions["ubuntu"]["24.04"]["paid_until"] == "2034-04-30"
    assert tables.origin == server.url(PREFIX) and tables.fetched_at.startswith(str(date.today().year))
    lines = {line["line"]: line for line in tables.engine_lines}
    assert lines["20.10"] == {"line": "20.10", "end_of_life": True, "since": "2023-12-10", "note": ""}
    assert lines["29"]["end_of_life"] is False
    assert sorted(path for path, _ in server.requests) == sorted(PREFIX + p.stem for p in ANSWERS.glob("*.json"))


def test_the_refreshed_table_judges_and_the_evidence_says_which(server: FeedServer, tmp_path: Path) -> None:
    tables = _refresh(server, tmp_path / "vuln.db")
    resolute = OsRelease(id="ubuntu", version_id="26.04", codename="resolute")
    frozen, frozen_label = table_for("ubuntu", None)
    assert eol_status(resolute, date(2026, 12, 3), frozen)[0] is None  # the built-in table does not know 26.04
    assert frozen_label == "built-in table, as of 2026-11-23"
    refreshed, label = table_for("ubuntu", tables)
    assert eol_status(resolute, date(2026, 12, 3), refreshed)[:2] == (False, date(2031, 5, 29))
    assert label == f"{server.url(PREFIX)}, fetched {tables.fetched_at}"

    facts = _baseline()
    rule = get_rule("CIS-1.2.2")
    assert rule is not None
    (built_in,) = evaluate(rule, facts)  # engine 20.10.24: end-of-life by either table
    (fresh,) = evaluate(rule, facts.model_copy(update={"eol_tables": tables}))
    assert built_in.status.value == fresh.status.value == "fail"
    assert built_in.evidence["data_as_of"] == "2026-11-23 (built-in table)"
    assert fresh.evidence["data_as_of"] == f"{tables.fetched_at} ({server.url(PREFIX)})"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<html>maintenance</html>", "not JSON"),
        (json.dumps({"result": {"name": "debian"}}).encode(), "no result.releases list"),
        (json.dumps({"result": {"releases": [{"name": "12", "isEol": "no"}]}}).encode(), "has no boolean isEol"),
        (
            json.dumps({"result": {"releases": [{"name": "12", "isEol": False, "eolFrom": "soon"}]}}).encode(),
            "not a date",
        ),
        (b"[" + b"0," * MAX_PRODUCT_BYTES + b"0]", "limit"),
    ],
    ids=["html", "no-releases", "isEol-not-bool", "bad-date", "oversized"],
)
def test_a_bad_answer_is_one_clear_error_and_the_old_tables_stay(
    server: FeedServer, tmp_path: Path, body: bytes, expected: str
) -> None:
    db_path = tmp_path / "vuln.db"
    _refresh(server, db_path)
    before = eol_path(db_path).read_bytes()
    server.serve(PREFIX + "debian", body)
    with pytest.raises(VulnerabilityInputError, match=expected) as raised:
        _refresh(server, db_path)
    assert "the previous ones are kept" in str(raised.value) and "\n" not in str(raised.value)
    assert eol_path(db_path).read_bytes() == before


def test_bundles_carry_the_tables_and_refuse_tampered_ones(server: FeedServer, tmp_path: Path) -> None:
    db_path = build_db(tmp_path / "vuln.db", TRACKER_JSON)
    tables = _refresh(server, db_path)
    bundle = tmp_path / "bundle.tar.gz"
    manifest = export_bundle(db_path, bundle)
    assert set(manifest["files"]) == {"vuln.db", "eol.json"}
    other = tmp_path / "airgap" / "vuln.db"
    other.parent.mkdir()
    import_bundle(bundle, other)
    assert load(other) == tables

    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(bundle) as source, tarfile.open(tampered, "w:gz") as target:
        for member in source.getmembers():
            data = source.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "eol.json":
                data = data.replace(b"2028-06-30", b"2099-06-30")  # same size, other dates
            member.size = len(data)
            target.addfile(member, io.BytesIO(data))
    with pytest.raises(BundleError, match=r"eol\.json does not match the manifest checksum"):
        import_bundle(tampered, tmp_path / "third.db")
    assert not eol_path(tmp_path / "third.db").exists()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portcullis", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_update_status_and_audit_name_the_refreshed_table(server: FeedServer, tmp_path: Path) -> None:
    db_path = build_db(tmp_path / "vuln.db", TRACKER_JSON)
    update = _cli("db", "update", "--db", str(db_path), "--only", "eol", "--url", f"eol={server.url(PREFIX)}")
    assert update.returncode == 0, update.stderr
    assert "end-of-life tables: 10 distributions, 12 engine release lines" in update.stderr
    status = _cli("db", "status", "--db", str(db_path))
    assert f"end-of-life tables: {eol_path(db_path)}: from {server.url(PREFIX)}, fetched" in status.stderr

    facts = tmp_path / "facts.json"
    facts.write_text(_baseline().to_json())
    audit = _cli(
        "audit", "--no-store", "--facts-in", str(facts), "--db", str(db_path), "--select", "CIS-1.2.2", "-f", "json"
    )
    (finding,) = json.loads(audit.stdout)["findings"]
    assert finding["evidence"]["data_as_of"].endswith(f"({server.url(PREFIX)})")

    server.serve(PREFIX + "alpine", b"{}")
    failed = _cli("db", "update", "--db", str(db_path), "--only", "eol", "--url", f"eol={server.url(PREFIX)}")
    assert failed.returncode == 1 and failed.stderr.count("\n") == 1
    assert "end-of-life tables were not refreshed (the previous ones are kept)" in failed.stderr
