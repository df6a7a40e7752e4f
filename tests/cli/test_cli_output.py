"""What the CLI prints where: the report on stdout (or --output), progress on stderr, every format."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from clirun import Recorded, run_cli, verdicts
from junitparser import JUnitXml

pytestmark = pytest.mark.engine


def test_json_on_stdout_is_the_whole_document_and_names_the_planted_container(recorded: Recorded) -> None:
    report = recorded.report  # stdout of a live `audit --format json` parsed as JSON
    assert report["command"] == "audit"
    privileged = [
        f
        for f in report["findings"]
        if f["rule_id"] == "CIS-5.5" and f["target"]["name"] == recorded.planted.privileged
    ]
    assert [(f["status"], f["severity"]) for f in privileged] == [("fail", "critical")]
    plain = [
        f for f in report["findings"] if f["rule_id"] == "CIS-5.5" and f["target"]["name"] == recorded.planted.plain
    ]
    assert [f["status"] for f in plain] == ["pass"]


def test_the_printed_schema_validates_a_real_audit_report(recorded: Recorded) -> None:
    run = run_cli("schema")
    assert run.code == 0
    schema = json.loads(run.stdout)
    validator = jsonschema.validators.validator_for(schema)(schema)
    validator.validate(recorded.report)
    broken = dict(recorded.report, findings=[dict(recorded.report["findings"][0], status="maybe")])
    assert not validator.is_valid(broken), "the schema must reject an unknown status"


def test_replaying_saved_facts_gives_the_same_verdicts(recorded: Recorded) -> None:
    replay = run_cli("audit", "--facts-in", str(recorded.facts), "--format", "json")
    assert replay.code == 0, replay.stderr
    assert "collecting facts" not in replay.stderr, "a replay never touches the engine"
    assert verdicts(replay.json()) == verdicts(recorded.report)
    assert len(verdicts(recorded.report)) > 100


def test_output_file_leaves_stdout_empty(recorded: Recorded, tmp_path: Path) -> None:
    target = tmp_path / "audit.sarif"
    run = run_cli("audit", "--facts-in", str(recorded.facts), "-f", "sarif", "-o", str(target))
    assert run.code == 0
    assert run.stdout == ""
    assert f"report written to {target}" in run.stderr
    document = json.loads(target.read_text())
    assert document["version"] == "2.1.0"
    failed = [r for r in document["runs"][0]["results"] if r["ruleId"] == "CIS-5.5"]
    names = [r["locations"][0]["logicalLocations"][0]["name"] for r in failed]
    assert recorded.planted.privileged in names
    assert recorded.planted.plain not in names


def test_junit_and_html_and_text_formats(recorded: Recorded, tmp_path: Path) -> None:
    junit = run_cli("audit", "--facts-in", str(recorded.facts), "--format", "junit")
    assert junit.code == 0
    path = tmp_path / "audit.xml"
    path.write_text(junit.stdout)
    xml = JUnitXml.fromfile(str(path))
    failing_keys = {
        (f["rule_id"], f["target"]["kind"], f["target"]["name"])
        for f in recorded.report["findings"]
        if f["status"] == "fail" and not f["suppressed_by"]
    }
    assert xml.failures == len(failing_keys)

    page = run_cli("audit", "--facts-in", str(recorded.facts), "--format", "html")
    assert page.code == 0
    assert page.stdout.startswith("<!DOCTYPE html>")
    assert recorded.planted.privileged in page.stdout

    text = run_cli("audit", "--facts-in", str(recorded.facts), "--select", "CIS-5.5")
    assert text.code == 0
    assert recorded.planted.privileged[:20] in text.stdout
    assert "Summary:" in text.stdout


def test_a_hostile_name_in_saved_facts_is_escaped_in_html(recorded: Recorded, tmp_path: Path) -> None:
    facts = json.loads(recorded.facts.read_text())
    container = next(c for c in facts["containers"] if c["Name"].lstrip("/") == recorded.planted.privileged)
    container["Name"] = "/<script>alert(1)</script>"
    hostile = tmp_path / "facts.json"
    hostile.write_text(json.dumps(facts))
    page = run_cli("audit", "--facts-in", str(hostile), "--format", "html", "--select", "CIS-5.5")
    assert page.code == 0, page.stderr
    assert "<script>alert(1)</script>" not in page.stdout
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.stdout
