"""Exit codes 0 / 2 / 1, the --fail-on gate, --exit-code, --select/--skip/--level, and the ignore file."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from clirun import Recorded, run_cli

from portcullis.checks.registry import all_rules

pytestmark = pytest.mark.engine

SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


def statuses_by_rule(report: dict[str, Any]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for finding in report["findings"]:
        found[finding["rule_id"]].add(finding["status"])
    return found


def replay(recorded: Recorded, *args: str, cwd: Path | None = None) -> Any:
    # --no-vulns: without a vulnerability database a gated audit fails closed on DKR-ENGINE (tests/vuln covers it)
    return run_cli("audit", "--facts-in", str(recorded.facts), "--format", "json", "--no-vulns", *args, cwd=cwd)


def test_failures_change_the_exit_code_only_through_fail_on(recorded: Recorded) -> None:
    assert replay(recorded).code == 0
    assert replay(recorded, "--fail-on", "none").code == 0
    gated = replay(recorded, "--fail-on", "critical")
    assert gated.code == 2
    assert "failure(s) at or above critical" in gated.stderr
    assert replay(recorded, "--fail-on", "critical", "--exit-code", "7").code == 7


def test_the_threshold_compares_severities(recorded: Recorded) -> None:
    low = sorted(
        {
            f["rule_id"]
            for f in recorded.report["findings"]
            if f["status"] == "fail" and f["severity"] == "low" and f["rule_id"].startswith("CIS-")
        }
    )
    assert low, "this host has low-severity failures (no auditd), so the gate can be measured"
    only_low = [arg for rule_id in low for arg in ("--select", rule_id)]
    assert replay(recorded, *only_low, "--fail-on", "medium").code == 0
    assert replay(recorded, *only_low, "--fail-on", "low").code == 2
    assert replay(recorded, *only_low, "--fail-on", "info").code == 2


def test_manual_skip_and_not_applicable_never_trip_the_gate(recorded: Recorded) -> None:
    quiet = sorted(
        rule_id
        for rule_id, statuses in statuses_by_rule(recorded.report).items()
        if statuses <= {"manual", "skip", "not_applicable"}
    )
    selected = [arg for rule_id in quiet for arg in ("--select", rule_id)]
    run = replay(recorded, *selected, "--fail-on", "info")
    assert run.code == 0, run.stderr
    seen = {f["status"] for f in run.json()["findings"]}
    assert {"manual", "not_applicable"} <= seen, seen
    assert seen <= {"manual", "skip", "not_applicable"}


def test_select_and_skip_by_id_and_prefix(recorded: Recorded) -> None:
    section5 = {r.id for r in all_rules() if r.id.startswith("CIS-5.") and "audit" in r.commands}
    run = replay(recorded, "--select", "CIS-5")
    assert {f["rule_id"] for f in run.json()["findings"]} == section5
    run = replay(recorded, "--select", "CIS-5", "--skip", "cis-5.5")
    assert {f["rule_id"] for f in run.json()["findings"]} == section5 - {"CIS-5.5"}
    run = replay(recorded, "--select", "cis-5.5")
    assert {f["rule_id"] for f in run.json()["findings"]} == {"CIS-5.5"}
    run = replay(recorded, "--select", "CIS-1.1")
    assert all(f["rule_id"].startswith("CIS-1.1.") for f in run.json()["findings"])


def test_level_1_keeps_level_1_only(recorded: Recorded) -> None:
    run = replay(recorded, "--level", "1")
    findings = run.json()["findings"]
    levels = {f["cis"]["level"] for f in findings if f["cis"]}
    assert levels == {1}
    assert any(f["cis"] and f["cis"]["level"] == 2 for f in recorded.report["findings"]), "the full audit has level 2"


def test_the_ignore_file_in_the_current_directory_suppresses_but_keeps(recorded: Recorded, tmp_path: Path) -> None:
    name = recorded.planted.privileged
    (tmp_path / ".portcullisignore.yaml").write_text(
        f"ignore:\n  - id: CIS-5.5\n    target: '{name[:-4]}*'\n    reason: a lab container, created only\n"
    )
    run = replay(recorded, "--select", "CIS-5.5", cwd=tmp_path)
    report = run.json()
    mine = [f for f in report["findings"] if f["target"]["name"] == name]
    assert [(f["status"], f["suppressed_by"]) for f in mine] == [
        ("fail", ".portcullisignore.yaml#1: a lab container, created only")
    ]
    assert report["summary"]["suppressed"] == 1
    assert "1 finding(s) suppressed by .portcullisignore.yaml" in run.stderr
    others_failing = [f for f in report["findings"] if f["status"] == "fail" and f["target"]["name"] != name]
    gate = replay(recorded, "--select", "CIS-5.5", "--fail-on", "critical", cwd=tmp_path)
    assert gate.code == (2 if others_failing else 0)


def test_suppressed_failures_never_count_toward_fail_on(recorded: Recorded, tmp_path: Path) -> None:
    ignore = tmp_path / "accepted.yaml"
    ignore.write_text("ignore:\n  - {id: CIS, reason: all accepted for this test}\n  - {id: DKR, reason: same}\n")
    run = replay(recorded, "--ignore-file", str(ignore), "--fail-on", "info")
    assert run.code == 0, run.stderr
    report = run.json()
    assert report["summary"]["suppressed"] == len(report["findings"])
    assert any(f["status"] == "fail" and f["suppressed_by"] for f in report["findings"])


def test_an_expired_entry_warns_and_no_longer_applies(recorded: Recorded, tmp_path: Path) -> None:
    ignore = tmp_path / "old.yaml"
    ignore.write_text("ignore:\n  - {id: CIS-5.5, reason: was fine once, expires: 2020-01-31}\n")
    run = replay(recorded, "--ignore-file", str(ignore), "--select", "CIS-5.5", "--fail-on", "critical")
    assert run.code == 2
    assert f"portcullis: warning: {ignore}#1 (CIS-5.5) expired on 2020-01-31; it no longer applies" in run.stderr
    assert all(f["suppressed_by"] is None for f in run.json()["findings"])
