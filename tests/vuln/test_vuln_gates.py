"""Gates that cannot judge must not pass: `portcullis image --fail-on` with no database or a stale one is a tool
error; without a gate the report is still written, with a warning. Every report names the database it used.
The one ignore file accepts vulnerabilities too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from vulndata import TRACKER_JSON, build_db

from portcullis.vuln.db import rebuild

pytestmark = pytest.mark.engine

IMAGE = "engine:portcullis-test/vulnlab:layered"
NO_DATABASE = (
    "portcullis: error: no vulnerability database: run `portcullis db update` or `db import FILE`, or pass --no-vulns"
)


def portcullis(*args: str, db: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "portcullis", "image", IMAGE, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PORTCULLIS_DB": str(db), "PATH": "/usr/bin:/bin", "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
        check=False,
        cwd=cwd,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.fixture(scope="module")
def fresh_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_db(tmp_path_factory.mktemp("fresh") / "vuln.db", TRACKER_JSON)


@pytest.fixture(scope="module")
def stale_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = build_db(tmp_path_factory.mktemp("stale") / "vuln.db", TRACKER_JSON)
    month_ago = (datetime.now(UTC) - timedelta(days=30)).isoformat(timespec="seconds")
    with rebuild(path) as db:
        for source in db.sources():
            db.touch_source(source.name, month_ago)
    return path


def test_no_database_under_a_gate_is_one_error_line(tmp_path: Path) -> None:
    done = portcullis("--fail-on", "high", db=tmp_path / "absent.db")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [NO_DATABASE]  # before the image is read: no progress line either
    assert done.stdout == ""


def test_no_database_with_no_vulns_is_no_error(tmp_path: Path) -> None:
    done = portcullis("--fail-on", "high", "--no-vulns", "-f", "json", db=tmp_path / "absent.db")
    assert done.returncode in (0, 2), done.stderr
    assert "error" not in done.stderr
    assert json.loads(done.stdout)["database"] is None


def test_no_database_without_a_gate_reports_and_warns(tmp_path: Path) -> None:
    done = portcullis("-f", "json", db=tmp_path / "absent.db")
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("portcullis: warning: ")]
    assert len(warnings) == 1 and "no vulnerability database" in warnings[0]
    report = json.loads(done.stdout)
    assert report["database"] is None
    assert any(p["fact"] == "vulnerabilities" for p in report["problems"])


def test_stale_database_under_a_gate_is_one_error_line(stale_db: Path) -> None:
    done = portcullis("--fail-on", "critical", db=stale_db)
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith(f"portcullis: error: vulnerability database {stale_db} is 30 days old (source ")
    assert line.endswith("older than --db-max-age 7: run `portcullis db update`")


def test_stale_database_is_accepted_within_a_longer_max_age_or_with_none(stale_db: Path) -> None:
    for max_age in ("31", "0"):
        done = portcullis("--fail-on", "critical", "--db-max-age", max_age, "-f", "json", db=stale_db)
        assert done.returncode in (0, 2), done.stderr
        assert "warning" not in done.stderr and "error" not in done.stderr
    assert portcullis("--fail-on", "critical", "--db-max-age", "29", db=stale_db).returncode == 1


def test_stale_database_without_a_gate_reports_and_warns(stale_db: Path) -> None:
    done = portcullis("-f", "json", db=stale_db)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("portcullis: warning: ")]
    assert len(warnings) == 1 and "is 30 days old" in warnings[0]
    report = json.loads(done.stdout)
    assert [f for f in report["findings"] if f["rule_id"] == "DKR-VULN"]  # still judged, with the old data


def test_every_report_records_the_database(fresh_db: Path) -> None:
    from portcullis.vuln.db import VulnDB

    with VulnDB.open(fresh_db) as db:
        sources = {s.name: s.fetched_at for s in db.sources()}
        built = db.meta("updated_at")
    report = json.loads(portcullis("-f", "json", db=fresh_db).stdout)
    database = report["database"]
    assert database["path"] == str(fresh_db)
    assert database["schema_version"] == "4"
    assert database["built_at"] == built
    assert {s["name"]: s["fetched_at"] for s in database["sources"]} == sources

    sarif = json.loads(portcullis("-f", "sarif", db=fresh_db).stdout)
    assert sarif["runs"][0]["properties"]["database"] == database

    text = portcullis("-f", "text", "-o", "/dev/stdout", db=fresh_db).stdout
    name, fetched = next(iter(sources.items()))
    # one line, wrapped at the file's 80 columns
    assert f"Vulnerability database: schema 4, built {built}; sources: {name} {fetched}" in " ".join(text.split())


IGNORE = """\
ignore:
  - id: CVE-2023-38545
    package: libcurl4
    reason: the library is only used by the build's curl, which never follows SOCKS5 proxies
  - id: CVE-2099-0001
    reason: an advisory this image no longer has
"""


def vulns(report: dict[str, object]) -> dict[tuple[str, str], str | None]:
    findings = report["findings"]
    assert isinstance(findings, list)
    return {
        (f["evidence"]["advisory_id"], f["evidence"]["package"]["name"]): f["suppressed_by"]
        for f in findings
        if f["rule_id"] == "DKR-VULN"
    }


def test_the_ignore_file_accepts_vulnerabilities_and_names_entries_that_match_nothing(
    fresh_db: Path, tmp_path: Path
) -> None:
    (tmp_path / ".portcullisignore.yaml").write_text(IGNORE)
    done = portcullis("-f", "json", db=fresh_db, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    found = vulns(json.loads(done.stdout))
    assert found[("CVE-2023-38545", "libcurl4")] == (
        ".portcullisignore.yaml#1: the library is only used by the build's curl, which never follows SOCKS5 proxies"
    )
    assert found[("CVE-2023-38545", "curl")] is None  # the entry names another package
    assert "portcullis: warning: .portcullisignore.yaml entry 2 (id CVE-2099-0001) matched nothing" in (
        done.stderr.splitlines()
    )

    strict = portcullis("-f", "json", "--strict", db=fresh_db, cwd=tmp_path)
    assert strict.returncode == 1
    assert strict.stdout == ""
    assert strict.stderr.splitlines()[-1] == (
        "portcullis: error: .portcullisignore.yaml entry 2 (id CVE-2099-0001) matched nothing (--strict)"
    )


def test_the_old_vuln_ignore_flag_still_works_with_a_deprecation_warning(fresh_db: Path, tmp_path: Path) -> None:
    old = tmp_path / "vuln-ignore.yaml"
    old.write_text(IGNORE.split("  - id: CVE-2099")[0])
    done = portcullis("-f", "json", "--vuln-ignore", str(old), db=fresh_db, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert vulns(json.loads(done.stdout))[("CVE-2023-38545", "libcurl4")] == (
        f"{old}#1: the library is only used by the build's curl, which never follows SOCKS5 proxies"
    )
    deprecations = [line for line in done.stderr.splitlines() if "deprecated" in line]
    assert deprecations == [
        "portcullis: warning: --vuln-ignore is deprecated: move its entries to .portcullisignore.yaml"
    ]
