"""--only-fixed, --severity, ignore-file entries for advisories and VEX (OpenVEX, CycloneDX) over real findings."""

from __future__ import annotations

import json
from datetime import date

import pytest
from test_vuln_cases import status_file
from vulndata import BOOKWORM, SHARED

from portcullis.collect.inventory import parse_dpkg_status, parse_npm_lock
from portcullis.model.findings import Finding, Report, Severity, Summary, ToolInfo
from portcullis.pipelines.policy import PolicyError, parse_policy
from portcullis.vuln import scan
from portcullis.vuln.db import VulnDB
from portcullis.vuln.filters import (
    FilterInputError,
    apply_vex,
    load_vex,
    only_fixed,
    with_severity,
)


@pytest.fixture()
def findings(full_db: VulnDB) -> list[Finding]:
    text = "\n".join(
        [
            status_file("curl", "curl", "7.88.1-10+deb12u5"),
            status_file("libssl3", "openssl", "3.0.20-1~deb12u2"),
            status_file("coreutils", "coreutils", "9.1-1"),
        ]
    )
    packages = parse_dpkg_status(text, release=BOOKWORM).packages
    lock = (SHARED / "image-inventory" / "layered-opt-app-package-lock.json").read_text()
    packages += parse_npm_lock(lock, "opt/app/package-lock.json").packages
    return scan(packages, full_db, BOOKWORM)


def ids(findings: list[Finding], suppressed: bool = False) -> set[str]:
    return {f.evidence["advisory_id"] for f in findings if bool(f.suppressed_by) is suppressed}


def test_baseline(findings: list[Finding]) -> None:
    assert ids(findings) == {
        "CVE-2024-2398",
        "CVE-2025-0167",
        "CVE-2023-38545",
        "CVE-2024-5535",
        "CVE-2016-2781",
        "GHSA-p6mc-m468-83gw",
        "GHSA-xvch-5gv4-984h",
    }


def test_only_fixed(findings: list[Finding]) -> None:
    assert ids(only_fixed(findings)) == {"CVE-2024-2398", "GHSA-p6mc-m468-83gw", "GHSA-xvch-5gv4-984h"}


def test_severity(findings: list[Finding]) -> None:
    assert ids(with_severity(findings, {Severity.CRITICAL, Severity.HIGH})) == {
        "GHSA-p6mc-m468-83gw",
        "GHSA-xvch-5gv4-984h",
    }
    assert ids(with_severity(findings, {Severity.LOW})) == {"CVE-2016-2781"}  # tracker urgency low


IGNORE = """
ignore:
  - id: CVE-2021-44906          # an alias of GHSA-xvch-5gv4-984h
    reason: minimist only parses our own fixed argv
  - id: CVE-2024-5535
    reason: no TLS NPN/ALPN callbacks in use
    expires: 2020-01-01         # expired: must not apply
  - id: CVE-2025-0167
    reason: netrc is not used
    package: pkg:deb/debian/curl
"""


def test_ignore_file_entries_for_vulnerabilities(findings: list[Finding]) -> None:
    policy = parse_policy(IGNORE, ".portcullisignore.yaml", date(2025, 6, 1))
    report = Report(
        command="image", tool=ToolInfo(version="0"), subject="x", findings=findings, summary=Summary.of(findings)
    )
    out = policy.apply(report).findings
    assert ids(out, suppressed=True) == {"GHSA-xvch-5gv4-984h", "CVE-2025-0167"}
    [minimist] = [f for f in out if f.evidence["advisory_id"] == "GHSA-xvch-5gv4-984h"]
    assert minimist.suppressed_by == ".portcullisignore.yaml#1: minimist only parses our own fixed argv"
    assert Summary.of(out).suppressed == 2
    assert len(out) == len(findings)
    assert [e.number for e in policy.expired] == [2]
    assert policy.unmatched(report) == []


def test_ignore_file_entry_naming_another_package_or_advisory_matches_nothing(findings: list[Finding]) -> None:
    text = (
        "ignore:\n  - {id: CVE-2025-0167, package: openssl, reason: r}\n  - {id: cve-2021-44906, reason: r}\n"
        "  - {id: CVE-1999-0001, reason: r}\n  - {id: DKR-VULN, package: coreutils, reason: r}\n"
    )
    policy = parse_policy(text, "ignore.yaml", date(2025, 6, 1))
    report = Report(
        command="image", tool=ToolInfo(version="0"), subject="x", findings=findings, summary=Summary.of(findings)
    )
    assert [(e.number, e.entry.id) for e in policy.unmatched(report)] == [(1, "CVE-2025-0167"), (3, "CVE-1999-0001")]
    assert ids(policy.apply(report).findings, suppressed=True) == {"GHSA-xvch-5gv4-984h", "CVE-2016-2781"}


def test_ignore_entry_without_reason_is_refused() -> None:
    with pytest.raises(PolicyError, match="entry 1, field `reason` is required"):
        parse_policy("ignore:\n  - id: CVE-2024-2398\n", "ignore.yaml", date(2025, 6, 1))


def test_openvex_suppresses_with_justification(findings: list[Finding]) -> None:
    doc = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "statements": [
            {
                "vulnerability": {"name": "CVE-2020-8203"},
                "products": [{"@id": "pkg:oci/app", "subcomponents": [{"@id": "pkg:npm/lodash@4.17.15"}]}],
                "status": "not_affected",
                "justification": "vulnerable_code_not_in_execute_path",
            },
            {
                "vulnerability": {"name": "CVE-2024-2398"},
                "products": [{"@id": "pkg:deb/debian/curl"}],
                "status": "under_investigation",
            },
        ],
    }
    out = apply_vex(findings, load_vex(json.dumps(doc), "app.openvex.json"))
    assert ids(out, suppressed=True) == {"GHSA-p6mc-m468-83gw"}
    [lodash] = [f for f in out if f.suppressed_by]
    assert lodash.evidence["vex"]["justification"] == "vulnerable_code_not_in_execute_path"
    assert lodash.suppressed_by == "VEX not_affected (vulnerable_code_not_in_execute_path)"


def test_cyclonedx_vex(findings: list[Finding]) -> None:
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "components": [{"bom-ref": "curl-1", "purl": "pkg:deb/debian/curl@7.88.1-10%2Bdeb12u5?arch=amd64"}],
        "vulnerabilities": [
            {
                "id": "CVE-2024-2398",
                "analysis": {"state": "not_affected", "justification": "code_not_reachable"},
                "affects": [{"ref": "curl-1"}],
            },
            {
                "id": "CVE-2016-2781",
                "analysis": {"state": "exploitable"},
                "affects": [{"ref": "pkg:deb/debian/coreutils"}],
            },
        ],
    }
    out = apply_vex(findings, load_vex(json.dumps(doc), "bom.cdx.json"))
    suppressed = [(f.evidence["advisory_id"], f.evidence["package"]["name"]) for f in out if f.suppressed_by]
    assert suppressed == [("CVE-2024-2398", "curl")]


def test_vex_of_unknown_shape() -> None:
    with pytest.raises(FilterInputError, match="neither OpenVEX"):
        load_vex('{"hello": 1}', "x.json")
