"""The store on both backends: a report round trip, fingerprints shared with SARIF, runs by id, latest and
previous, diffs, baselines, and a store from a newer portcullis refused in one line."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
import typer

from portcullis.cli.common import History, keep_run
from portcullis.model.findings import Finding, Location, Report, Severity, Status, Summary, Target, TargetKind, ToolInfo
from portcullis.model.fingerprint import report_fingerprints
from portcullis.pipelines.errors import HistoryError
from portcullis.pipelines.history import IN_BASELINE, apply_baseline, diff_runs, load_baseline, save_run
from portcullis.report.sarif import FINGERPRINT_KEY, to_sarif
from portcullis.store import SCHEMA_VERSION, StoreError, open_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from clirun import run_cli


def finding(rule: str, target: str, status: Status = Status.FAIL, message: str = "bad") -> Finding:
    return Finding(
        rule_id=rule,
        title=rule,
        cis=None,
        status=status,
        severity=Severity.HIGH,
        target=Target(kind=TargetKind.CONTAINER, name=target),
        location=Location(path="/etc/x", line=3) if rule == "R-FILE" else None,
        message=message,
    )


def report(subject: str, *findings: Finding) -> Report:
    items = list(findings)
    return Report(
        command="audit", tool=ToolInfo(version="9.9"), subject=subject, findings=items, summary=Summary.of(items)
    )


FIRST = report(
    "unix:///a.sock",
    finding("R-MOUNT", "web", message="mount /etc"),
    finding("R-MOUNT", "web", message="mount /root"),  # one rule, one target, two failures: told apart by message
    finding("R-FILE", "db"),
    finding("R-PASS", "web", Status.PASS),
)


def test_a_report_comes_back_whole_with_the_fingerprints_sarif_gives(store_url: str) -> None:
    store = open_store(store_url)
    run_id = store.save(FIRST)
    assert store.report(run_id) == FIRST
    run = store.run(run_id)
    assert (run.command, run.subject, run.tool_version, run.counts) == (
        "audit",
        "unix:///a.sock",
        "9.9",
        {"fail": 3, "pass": 1},
    )
    assert run.started_at == FIRST.started_at.isoformat()
    kept = store.findings(run_id)
    assert [f.fingerprint for f in kept] == report_fingerprints(FIRST.findings)
    sarif_prints = [r["partialFingerprints"][FINGERPRINT_KEY] for r in to_sarif(FIRST)["runs"][0]["results"]]
    assert [f.fingerprint for f in kept if f.status == "fail"] == sarif_prints
    assert len(set(sarif_prints)) == 3
    store.close()
    reopened = open_store(store_url)  # a second open migrates nothing and finds the run
    assert [r.id for r in reopened.runs()] == [run_id]
    reopened.close()


def test_diff_by_latest_and_previous_finds_new_fixed_and_unchanged(store_url: str) -> None:
    later = report(
        "unix:///a.sock",
        finding("R-MOUNT", "web", message="mount /etc"),
        finding("R-MOUNT", "web", message="mount /root"),
        finding("R-NEW", "cache"),
    )
    save_run(FIRST, store_url)
    save_run(report("unix:///other.sock", finding("R-OTHER", "x")), store_url)
    save_run(later, store_url)
    change = diff_runs(store_url, "previous", "latest", subject="unix:///a.sock")
    assert (change.before.subject, change.after.subject) == ("unix:///a.sock", "unix:///a.sock")
    assert [f.rule_id for f in change.new] == ["R-NEW"]
    assert [f.rule_id for f in change.fixed] == ["R-FILE"]
    assert sorted(f.message for f in change.unchanged) == ["mount /etc", "mount /root"]
    with pytest.raises(HistoryError, match="no previous one"):
        diff_runs(store_url, "previous", "latest", subject="unix:///other.sock")
    with pytest.raises(HistoryError, match="has no run 99"):
        diff_runs(store_url, "1", "99")


def test_a_baseline_from_a_run_or_a_file_quiets_only_the_failures_it_had(store_url: str, tmp_path: Path) -> None:
    run_id = save_run(FIRST, store_url)
    saved = tmp_path / "first.json"
    saved.write_text(FIRST.model_dump_json())
    now = report("s", finding("R-FILE", "db"), finding("R-NEW", "cache"))
    for ref in (str(run_id), str(saved)):
        marked = apply_baseline(now, load_baseline(ref, store_url))
        assert [(f.rule_id, f.suppressed_by) for f in marked.findings] == [("R-FILE", IN_BASELINE), ("R-NEW", None)]
        assert [f.rule_id for f in marked.failures_at_or_above(Severity.LOW)] == ["R-NEW"]


def test_a_store_from_a_newer_portcullis_is_refused_in_one_line(store_url: str) -> None:
    open_store(store_url).close()
    if store_url.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(store_url, autocommit=True) as db:
            db.execute("INSERT INTO schema_version (version) VALUES (%s)", (SCHEMA_VERSION + 1,))
    else:
        import sqlite3

        with sqlite3.connect(store_url) as db:
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}, newer than"):
        open_store(store_url)
    line = run_cli("history", "--store", store_url).one_error_line()
    assert "upgrade portcullis" in line


def test_the_sqlite_store_is_its_owners_alone(tmp_path: Path) -> None:
    path = tmp_path / "new" / "history.sqlite3"
    open_store(str(path)).close()
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_history_and_diff_commands_print_runs_and_changes(tmp_path: Path) -> None:
    where = str(tmp_path / "h.sqlite3")
    save_run(FIRST, where)
    save_run(report("unix:///a.sock", finding("R-FILE", "db"), finding("R-NEW", "cache")), where)
    listed = run_cli("history", "--store", where, "-f", "json")
    assert listed.code == 0, listed.stderr
    assert [(r["id"], r["counts"]) for r in listed.json()] == [(2, {"fail": 2}), (1, {"fail": 3, "pass": 1})]
    text = run_cli("history", "--store", where)
    assert "3 fail, 1 pass" in text.stdout
    change = run_cli("diff", "previous", "latest", "--store", where, "-f", "json").json()
    assert [f["rule_id"] for f in change["new"]] == ["R-NEW"]
    assert sorted(f["message"] for f in change["fixed"]) == ["mount /etc", "mount /root"]
    assert "1 new, 2 fixed, 1 unchanged" in run_cli("diff", "1", "2", "--store", where).stdout


@pytest.mark.parametrize(
    ("content", "words"), [(None, "No such file"), ("{}", "not a portcullis JSON report"), ("[1", "not a portcullis")]
)
def test_a_baseline_that_cannot_be_read_is_one_error_line(tmp_path: Path, content: str | None, words: str) -> None:
    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_text(content)
    for command in (["audit"], ["image", "alpine:3.20"]):
        line = run_cli(*command, "--baseline", str(path), "--store", str(tmp_path / "h.sqlite3")).one_error_line()
        assert words in line


def test_an_unwritable_default_store_warns_and_a_named_one_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a data dir under a file cannot be made, even by root
    monkeypatch.delenv("PORTCULLIS_STORE")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker))
    keep_run(FIRST, History(store=None, save=True, baseline=None))
    assert capsys.readouterr().err.startswith("portcullis: warning: run not stored: cannot open store")
    with pytest.raises(typer.Exit) as stopped:
        keep_run(FIRST, History(store=str(blocker / "h.sqlite3"), save=True, baseline=None))
    assert stopped.value.exit_code == 1
    assert capsys.readouterr().err.startswith("portcullis: error: run not stored: cannot open store")
