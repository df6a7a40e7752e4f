"""SARIF 2.1.0: valid against the official schema, alerts only for failures, stable fingerprints."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from report_samples import (
    DAEMON,
    EVIL,
    IMAGE,
    WEB,
    finding,
    make_image_report,
    make_report,
    mixed_findings,
    vuln,
    vuln_findings,
)

from portcullis.checks.registry import get_rule
from portcullis.model.findings import Location, Report, Severity, Status, Target, TargetKind
from portcullis.model.fingerprint import fingerprint
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


def test_every_result_has_a_physical_location(mixed_report: Report) -> None:
    results = {r["ruleId"]: r for r in rendered(mixed_report)["runs"][0]["results"]}
    physical = results["DKR-DF-001"]["locations"][0]["physicalLocation"]
    assert physical == {"artifactLocation": {"uri": "app/Dockerfile"}, "region": {"startLine": 7}}
    container = results["CIS-5.5"]["locations"][0]
    assert container["physicalLocation"] == {"artifactLocation": {"uri": "docker://localhost/containers/web"}}
    assert container["logicalLocations"][0] == {
        "name": "web",
        "fullyQualifiedName": "container/web",
        "kind": "resource",
    }
    daemon = results["CIS-2.2"]["locations"][0]
    assert daemon["physicalLocation"]["artifactLocation"]["uri"] == "docker://localhost/daemon"
    assert daemon["logicalLocations"][0]["fullyQualifiedName"] == "daemon/unix:///var/run/docker.sock"
    hostile = results["CIS-5.6"]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert hostile == "docker://localhost/containers/%3Cscript%3Ealert%28%27x%27%29%3C%2Fscript%3E"


def test_host_files_and_engine_objects_have_uris() -> None:
    report = make_report(
        [
            finding("CIS-3.5", Status.FAIL, Severity.HIGH, Target(kind=TargetKind.FILE, name="/etc/docker"), "0755"),
            finding("CIS-5.30", Status.FAIL, Severity.MEDIUM, Target(kind=TargetKind.NETWORK, name="bridge"), "x"),
            finding("CIS-4.1", Status.FAIL, Severity.HIGH, Target(kind=TargetKind.IMAGE, name="alpine:3.19"), "root"),
            finding("CIS-1.1.1", Status.FAIL, Severity.LOW, Target(kind=TargetKind.HOST, name="host1"), "x"),
            finding("CIS-7.1", Status.FAIL, Severity.LOW, Target(kind=TargetKind.SWARM, name="swarm"), "x"),
        ]
    ).model_copy(update={"subject": "tcp://10.0.0.5:2376"})
    uris = [
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in rendered(report)["runs"][0]["results"]
    ]
    assert uris == [
        "file:///etc/docker",
        "docker://10.0.0.5:2376/networks/bridge",
        "docker://10.0.0.5:2376/images/alpine:3.19",
        "docker://10.0.0.5:2376/host",
        "docker://10.0.0.5:2376/swarm",
    ]


def test_engine_authority_from_the_subject() -> None:
    assert sarif.engine_authority("unix:///var/run/docker.sock") == "localhost"
    assert sarif.engine_authority("npipe:////./pipe/docker_engine") == "localhost"
    assert sarif.engine_authority("ssh://admin@build.example:2222") == "build.example:2222"
    assert sarif.engine_authority("https://docker.example") == "docker.example"
    assert sarif.engine_authority("alpine:3.19") == "localhost"  # an image command's subject


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


def prints_by_key(report: Report) -> dict[tuple[str, str], str]:
    """(ruleId, message) -> fingerprint of every result."""
    return {
        (r["ruleId"], r["message"]["text"]): r["partialFingerprints"][sarif.FINGERPRINT_KEY]
        for r in rendered(report)["runs"][0]["results"]
    }


def test_findings_sharing_rule_and_target_are_told_apart_without_their_order(mixed_report: Report) -> None:
    forward = prints_by_key(mixed_report)
    backward = prints_by_key(make_report(list(reversed(mixed_findings()))))
    assert forward == backward
    mounts = [p for (rule, _), p in forward.items() if rule == "CIS-5.6"]
    assert len(set(mounts)) == 2
    expected = hashlib.sha256(
        "\x1f".join(["CIS-5.6", "container", EVIL.name, "second mount /etc"]).encode()
    ).hexdigest()
    assert forward[("CIS-5.6", f"container {EVIL.name}: second mount /etc")] == expected


def test_one_new_finding_leaves_every_other_fingerprint_unchanged(mixed_report: Report) -> None:
    first = prints_by_key(make_image_report(mixed_findings() + vuln_findings()))
    newcomer = vuln(
        "CVE-2022-0001", "openssl", "3.0.11-1~deb12u2", cvss=("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N",)
    )
    extra_mount = finding("CIS-5.6", Status.FAIL, Severity.HIGH, EVIL, "third mount /var")
    later = [newcomer, extra_mount, *mixed_findings(), *vuln_findings()]  # first in the report: shifts every position
    second = prints_by_key(make_image_report(later))
    assert len(second) == len(first) + 2
    assert {key: second[key] for key in first} == first
    assert len(set(second.values())) == len(second)


def test_a_lone_finding_keeps_its_fingerprint_when_its_message_changes(mixed_report: Report) -> None:
    web = mixed_findings()[3]
    assert (web.rule_id, web.target.name) == ("CIS-5.5", "web")
    expected = hashlib.sha256("\x1f".join(["CIS-5.5", "container", "web"]).encode()).hexdigest()
    assert prints_by_key(mixed_report)[("CIS-5.5", "container web: the container is privileged")] == expected
    reworded = mixed_findings()
    reworded[3] = web.model_copy(update={"message": "privileged since 3 days"})
    assert prints_by_key(make_report(reworded))[("CIS-5.5", "container web: privileged since 3 days")] == expected


def test_vulnerability_fingerprint_is_rule_target_package_version_and_path() -> None:
    one = vuln("CVE-2023-1234", "openssl", "3.0.11-1~deb12u2")
    expected = hashlib.sha256(
        "\x1f".join(
            ["CVE-2023-1234", "image", IMAGE.name, "openssl", "3.0.11-1~deb12u2", "var/lib/dpkg/status"]
        ).encode()
    ).hexdigest()
    assert fingerprint(one) == expected
    # a fix published upstream changes the message and evidence, not the alert
    fixed_later = one.model_copy(update={"message": "now fixed upstream", "evidence": {}})
    assert fingerprint(fixed_later) == expected
    assert fingerprint(vuln("CVE-2023-1234", "openssl", "3.0.13-1~deb12u1")) != expected


def test_each_vulnerability_is_its_own_rule() -> None:
    document = rendered(make_image_report(vuln_findings()))
    run = document["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert list(rules) == ["CVE-2023-1234", "CVE-2024-0002", "GHSA-aaaa-bbbb-cccc"]
    openssl = rules["CVE-2023-1234"]
    assert openssl["shortDescription"]["text"] == "openssl: buffer overread"
    assert openssl["fullDescription"]["text"] == (
        "CVE-2023-1234: openssl: buffer overread. Affected here: openssl, libssl3."
    )
    assert openssl["help"]["text"].splitlines()[:2] == [
        "openssl 3.0.11-1~deb12u2: fixed in 3.0.15-1~deb12u1",
        "libssl3 3.0.11-1~deb12u2: fixed in 3.0.15-1~deb12u1",
    ]
    assert "| openssl | 3.0.11-1~deb12u2 | 3.0.15-1~deb12u1 | 3 |" in openssl["help"]["markdown"]
    assert openssl["helpUri"] == "https://nvd.nist.gov/vuln/detail/CVE-2023-1234"
    assert openssl["properties"]["security-severity"] == "9.8"  # its own CVSS score
    assert openssl["defaultConfiguration"]["level"] == "error"
    zlib = rules["CVE-2024-0002"]
    assert zlib["shortDescription"]["text"] == "CVE-2024-0002 in zlib1g"
    assert zlib["properties"]["security-severity"] == "3.0"  # no CVSS: the fallback of its severity (low)
    assert zlib["help"]["text"].splitlines()[0] == "zlib1g 1:1.2.13.dfsg-1: no fixed version yet"
    ghsa = rules["GHSA-aaaa-bbbb-cccc"]
    assert ghsa["helpUri"] == "https://github.com/advisories/GHSA-aaaa-bbbb-cccc"
    assert ghsa["properties"]["security-severity"] == "5.5"  # no rating at all: assumed medium
    assert [(r["ruleId"], r["ruleIndex"], r["level"]) for r in run["results"]] == [
        ("CVE-2023-1234", 0, "error"),
        ("CVE-2023-1234", 0, "error"),
        ("CVE-2024-0002", 1, "note"),
        ("GHSA-aaaa-bbbb-cccc", 2, "warning"),
    ]
    assert "DKR-VULN" not in rules


def test_vulnerability_location_is_the_file_in_its_layer() -> None:
    result = rendered(make_image_report(vuln_findings()))["runs"][0]["results"][0]
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "docker://localhost/images/portcullis-test%2Fvulnlab:layered/layers/3/var/lib/dpkg/status"
    assert result["properties"]["vulnerability"]["fixed_version"] == "3.0.15-1~deb12u1"
    assert result["properties"]["portcullisRule"] == "DKR-VULN"
    no_file = finding("DKR-IMG-001", Status.FAIL, Severity.HIGH, IMAGE, "a secret in layer 2")
    image_uri = rendered(make_image_report([no_file]))["runs"][0]["results"][0]["locations"][0]
    assert image_uri["physicalLocation"]["artifactLocation"]["uri"] == (
        "docker://localhost/images/portcullis-test%2Fvulnlab:layered"
    )
    with_path = no_file.model_copy(update={"location": Location(path="/app/.env")})
    path_uri = rendered(make_image_report([with_path]))["runs"][0]["results"][0]["locations"][0]
    assert path_uri["physicalLocation"]["artifactLocation"]["uri"] == (
        "docker://localhost/images/portcullis-test%2Fvulnlab:layered/rootfs/app/.env"
    )


def github_ingestion_problems(document: dict[str, Any]) -> list[str]:
    """GitHub code scanning's documented requirements and hard limits for an uploaded SARIF file (docs.github.com,
    "SARIF support for code scanning" and "SARIF results exceed limits"): at most 20 runs per file, 25,000 results
    and 25,000 rules per run, 1,000 locations per result and 20 tags per rule; every result names a rule the driver
    describes, has a message and a location with an artifact URI; `security-severity` is a number from 0.0 to 10.0."""
    problems = []
    if len(document["runs"]) > 20:
        problems.append("more than 20 runs")
    for run in document["runs"]:
        rules = run["tool"]["driver"]["rules"]
        if len(run["results"]) > 25_000:
            problems.append(f"{len(run['results'])} results")
        if len(rules) > 25_000:
            problems.append(f"{len(rules)} rules")
        if len({r["id"] for r in rules}) != len(rules):
            problems.append("duplicate rule ids")
        for rule in rules:
            tags = rule.get("properties", {}).get("tags", [])
            if len(tags) > 20:
                problems.append(f"{rule['id']}: {len(tags)} tags")
            score = rule.get("properties", {}).get("security-severity")
            if score is not None and (
                not isinstance(score, str) or not re.fullmatch(r"\d+(\.\d+)?", score) or not 0 <= float(score) <= 10
            ):
                problems.append(f"{rule['id']}: security-severity {score!r}")
        for result in run["results"]:
            index = result.get("ruleIndex")
            if index is None or rules[index]["id"] != result["ruleId"]:
                problems.append(f"{result['ruleId']}: ruleIndex {index} does not name it")
            if not result.get("message", {}).get("text"):
                problems.append(f"{result['ruleId']}: no message")
            locations = result.get("locations", [])
            if not 1 <= len(locations) <= 1_000:
                problems.append(f"{result['ruleId']}: {len(locations)} locations")
            for location in locations:
                if not location.get("physicalLocation", {}).get("artifactLocation", {}).get("uri"):
                    problems.append(f"{result['ruleId']}: a location without an artifact URI")
            if not result.get("partialFingerprints"):
                problems.append(f"{result['ruleId']}: no fingerprint")
    return problems


def test_github_accepts_every_kind_of_report(
    mixed_report: Report, baseline_audit: Report, validator: jsonschema.protocols.Validator
) -> None:
    image = make_image_report(vuln_findings() + mixed_findings())
    for report in (mixed_report, baseline_audit, image):
        document = rendered(report)
        validator.validate(document)
        assert github_ingestion_problems(document) == []
    assert len(rendered(image)["runs"][0]["results"]) == 10


def test_too_many_results_keep_the_most_severe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sarif, "MAX_RESULTS_PER_RUN", 3)
    report = make_image_report([*vuln_findings(), finding("CIS-5.5", Status.FAIL, Severity.CRITICAL, WEB, "x")])
    run = rendered(report)["runs"][0]
    assert [r["ruleId"] for r in run["results"]] == ["CVE-2023-1234", "CVE-2023-1234", "CIS-5.5"]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["CIS-5.5", "CVE-2023-1234"]
    note = run["invocations"][0]["toolExecutionNotifications"][-1]
    assert note["message"]["text"].startswith("2 least severe failure(s) left out")


def test_a_real_limit_sized_report_stays_within_limits() -> None:
    template = vuln("CVE-2024-00000", "pkg", "1.0", fixed="1.1")
    assert template.vulnerability is not None
    findings = []
    for n in range(25_010):
        severity = (Severity.LOW, Severity.HIGH)[n % 2]
        detail = template.vulnerability.model_copy(
            update={"advisory_id": f"CVE-2024-{n:05d}", "package": f"pkg{n % 700}", "severity": severity}
        )
        findings.append(template.model_copy(update={"vulnerability": detail, "severity": severity}))
    run = rendered(make_image_report(findings))["runs"][0]
    assert len(run["results"]) == 25_000
    assert len(run["tool"]["driver"]["rules"]) == 25_000
    assert [r["level"] for r in run["results"][:4]] == ["note", "error", "note", "error"]  # report order kept
    assert sum(r["level"] == "error" for r in run["results"]) == 12_505  # every high one kept
