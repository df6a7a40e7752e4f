"""SARIF 2.1.0: valid against the official schema, alerts only for failures, stable fingerprints."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from report_samples import DAEMON, WEB, finding, make_report, mixed_findings

from portcullis.checks.registry import get_rule
from portcullis.model.findings import Report, Severity, Status
from portcullis.report import sarif

SCHEMA_PATH = Path(__file__).resolve().parents[2] / ".." / "shared" / "schemas" / "sarif-schema-2.1.0.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    if not SCHEMA_PATH.is_file():
        pytest.skip(f"the SARIF schema is not at {SCHEMA_PATH}")
    schema = json.loads(SCHEMA_PATH.read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def rendered(report: Report) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(sarif.render(report))
    return document


def test_mixed_report_is_valid_sarif(mixed_report: Report, validator: jsonschema.protocols.Validator) -> None:
    validator.validate(rendered(mixed_report))


def test_a_whole_audit_is_valid_sarif(baseline_audit: Report, validator: jsonschema.protocols.Validator) -> None:
    document = rendered(baseline_audit)
    validator.validate(document)
    rule_ids = [r["id"] for r in document["runs"][0]["tool"]["driver"]["rules"]]
    assert len(rule_ids) == len(set(rule_ids)) == len({f.rule_id for f in baseline_audit.findings})


def test_only_failures_become_results_with_levels_by_severity(mixed_report: Report) -> None:
    results = rendered(mixed_report)["runs"][0]["results"]
    got = sorted((r["ruleId"], r["level"]) for r in results)
    assert got == [
        ("CIS-2.2", "warning"),
        ("CIS-5.5", "error"),
        ("CIS-5.6", "error"),
        ("CIS-5.6", "error"),
        ("CIS-5.9", "note"),
        ("DKR-DF-001", "note"),
    ]
    assert all(r["kind"] == "fail" for r in results)


def test_rule_descriptors_come_from_the_declarations(mixed_report: Report) -> None:
    driver = rendered(mixed_report)["runs"][0]["tool"]["driver"]
    assert driver["name"] == "portcullis"
    assert driver["version"] == "0.1.0"
    assert driver["informationUri"].startswith("https://")
    by_id = {r["id"]: r for r in driver["rules"]}
    declared = get_rule("CIS-5.5")
    assert declared is not None
    descriptor = by_id["CIS-5.5"]
    assert descriptor["name"] == "ContainersDoNotRunPrivileged"
    assert descriptor["shortDescription"]["text"] == declared.title
    assert descriptor["fullDescription"]["text"] == declared.rationale
    assert descriptor["help"]["text"] == declared.remediation
    assert descriptor["helpUri"].endswith("/docs/rules/CIS-5.5.md")
    assert descriptor["properties"]["security-severity"] == "9.5"
    assert {"cis:5.5", "level:1", "CIS-Docker-1.8.0", "security"} <= set(descriptor["properties"]["tags"])
    assert by_id["CIS-2.3"]["properties"]["security-severity"] == Severity.LOW.security_severity
    # results point at their descriptor
    for result in rendered(mixed_report)["runs"][0]["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]


def test_descriptors_come_from_the_report_not_the_catalogue(mixed_report: Report) -> None:
    """The renderer reads `Report.rules`: a report without them describes every rule from its findings."""
    bare = mixed_report.model_copy(update={"rules": []})
    descriptor = {r["id"]: r for r in rendered(bare)["runs"][0]["tool"]["driver"]["rules"]}["CIS-5.5"]
    assert descriptor["shortDescription"]["text"] == "title of CIS-5.5"
    assert "fullDescription" not in descriptor


def test_a_rule_outside_the_catalogue_is_described_from_its_finding() -> None:
    report = make_report([finding("XYZ-OWN-001", Status.FAIL, Severity.HIGH, WEB, "bad")])
    descriptor = rendered(report)["runs"][0]["tool"]["driver"]["rules"][0]
    assert descriptor["id"] == "XYZ-OWN-001"
    assert descriptor["shortDescription"]["text"] == "title of XYZ-OWN-001"
    assert descriptor["properties"]["security-severity"] == "8.0"


def test_locations_physical_when_known_else_the_target(mixed_report: Report) -> None:
    results = {r["ruleId"]: r for r in rendered(mixed_report)["runs"][0]["results"]}
    physical = results["DKR-DF-001"]["locations"][0]["physicalLocation"]
    assert physical == {"artifactLocation": {"uri": "app/Dockerfile"}, "region": {"startLine": 7}}
    logical = results["CIS-5.5"]["locations"][0]["logicalLocations"][0]
    assert logical == {"name": "web", "fullyQualifiedName": "container/web", "kind": "resource"}
    daemon = results["CIS-2.2"]["locations"][0]["logicalLocations"][0]
    assert daemon["fullyQualifiedName"] == "daemon/unix:///var/run/docker.sock"


def test_absolute_paths_become_file_uris() -> None:
    from portcullis.model.findings import Location

    report = make_report(
        [finding("CIS-3.1", Status.FAIL, Severity.LOW, DAEMON, "x", location=Location(path="/etc/docker/a b.json"))]
    )
    location = rendered(report)["runs"][0]["results"][0]["locations"][0]
    assert location["physicalLocation"]["artifactLocation"]["uri"] == "file:///etc/docker/a%20b.json"


def test_fingerprints_are_stable_across_runs_and_distinct_per_target() -> None:
    first = make_report(mixed_findings(), started_at=datetime(2026, 1, 1, tzinfo=UTC))
    later = mixed_findings()
    later[3] = later[3].model_copy(update={"target": WEB.model_copy(update={"id": "c" * 64}), "evidence": {"n": 2}})
    second = make_report(later, started_at=datetime(2026, 3, 1, tzinfo=UTC))

    def prints(report: Report) -> list[str]:
        return [r["partialFingerprints"][sarif.FINGERPRINT_KEY] for r in rendered(report)["runs"][0]["results"]]

    assert prints(first) == prints(second)
    assert len(set(prints(first))) == len(prints(first)), "two findings of CIS-5.6 on one target are told apart"


def test_suppressed_failures_stay_with_a_suppression(mixed_report: Report) -> None:
    results = {r["ruleId"]: r for r in rendered(mixed_report)["runs"][0]["results"]}
    assert results["CIS-5.9"]["suppressions"] == [{"kind": "external", "justification": "ignore#1: legacy host"}]
    assert "suppressions" not in results["CIS-5.5"]


def test_errors_and_problems_are_notifications(mixed_report: Report) -> None:
    invocation = rendered(mixed_report)["runs"][0]["invocations"][0]
    notes = invocation["toolExecutionNotifications"]
    assert [n["level"] for n in notes] == ["error", "warning"]
    assert notes[0]["associatedRule"]["id"] == "CIS-5.8"
    assert "KeyError" in notes[0]["message"]["text"]
    assert notes[1]["message"]["text"] == "auditctl rules not collected: auditctl is not installed"


def test_automation_id_names_command_subject_and_run(mixed_report: Report) -> None:
    automation = rendered(mixed_report)["runs"][0]["automationDetails"]["id"]
    assert automation == "portcullis/audit/unix-var-run-docker.sock/20260102T030405Z"


def test_findings_sharing_rule_and_target_are_numbered(mixed_report: Report) -> None:
    prints = [
        r["partialFingerprints"][sarif.FINGERPRINT_KEY]
        for r in rendered(mixed_report)["runs"][0]["results"]
        if r["ruleId"] == "CIS-5.6"
    ]
    base = sarif.fingerprint(mixed_report.findings[5])
    assert prints == [f"{base}:1", f"{base}:2"]
