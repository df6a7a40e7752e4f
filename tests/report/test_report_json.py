"""JSON: vulnerability findings carry a typed detail beside the evidence, and `portcullis schema` describes it."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from report_samples import make_image_report, vuln_findings
from typer.testing import CliRunner

from portcullis.cli.main import app, register
from portcullis.model.findings import Report
from portcullis.report import json_report


def printed_schema() -> dict[str, Any]:
    register(["schema"])  # the entry point registers only the command it is asked for
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    schema: dict[str, Any] = json.loads(result.stdout)
    return schema


def test_the_schema_types_the_vulnerability_fields() -> None:
    schema = printed_schema()
    assert schema == json_report.schema()
    defs = schema["$defs"]
    assert defs["Finding"]["properties"]["vulnerability"]["anyOf"] == [
        {"$ref": "#/$defs/VulnerabilityDetail"},
        {"type": "null"},
    ]
    detail = defs["VulnerabilityDetail"]
    props = detail["properties"]
    assert set(detail["required"]) == {
        "advisory_id",
        "package",
        "installed_version",
        "fix_state",
        "ecosystem",
        "purl",
        "severity",
        "severity_source",
        "vendor_status",
    }
    assert props["advisory_id"]["type"] == "string"
    assert props["installed_version"]["type"] == "string"
    assert props["fixed_version"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert props["severity"]["$ref"] == "#/$defs/Severity"
    assert props["fix_state"]["$ref"] == "#/$defs/FixState"
    assert defs["FixState"]["enum"] == ["fixed", "not_fixed", "will_not_fix", "not_affected", "undetermined"]
    assert props["cvss_score"]["anyOf"][0] == {"maximum": 10.0, "minimum": 0.0, "type": "number"}
    assert props["cvss_vector"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert props["vendor_status"]["$ref"] == "#/$defs/VendorStatus"
    assert set(defs["VendorStatus"]["properties"]) == {
        "source",
        "release",
        "status",
        "urgency",
        "nodsa",
        "nodsa_reason",
    }
    assert props["layer"]["anyOf"] == [{"$ref": "#/$defs/LayerRef"}, {"type": "null"}]
    assert set(defs["LayerRef"]["properties"]) == {"index", "diff_id", "created_by"}
    assert defs["Finding"]["properties"]["evidence"]["type"] == "object"  # kept for compatibility


def test_a_vulnerability_finding_in_json() -> None:
    document = json.loads(json_report.render(make_image_report(vuln_findings())))
    jsonschema.validate(document, json_report.schema())
    first = document["findings"][0]
    assert first["rule_id"] == "DKR-VULN"
    assert first["vulnerability"] == {
        "advisory_id": "CVE-2023-1234",
        "aliases": [],
        "summary": "openssl: buffer overread",
        "package": "openssl",
        "installed_version": "3.0.11-1~deb12u2",
        "fixed_version": "3.0.15-1~deb12u1",
        "fix_state": "fixed",
        "ecosystem": "debian",
        "purl": "pkg:deb/debian/openssl@3.0.11-1~deb12u2?distro=debian-12",
        "source_package": None,
        "severity": "critical",
        "severity_source": "cvss",
        "vendor_severity": "",
        "cvss": [{"vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "score": 9.8}],
        "cvss_score": 9.8,
        "cvss_vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "vendor_status": {
            "source": "debian-tracker",
            "release": "bookworm",
            "status": "resolved",
            "urgency": "",
            "nodsa": "",
            "nodsa_reason": "",
        },
        "layer": {"index": 3, "diff_id": "sha256:" + "e" * 64, "created_by": "RUN apt-get install -y openssl"},
        "path": "var/lib/dpkg/status",
    }
    # the evidence bag is as it was
    assert first["evidence"]["advisory_id"] == "CVE-2023-1234"
    assert first["evidence"]["package"]["version"] == "3.0.11-1~deb12u2"
    assert first["evidence"]["layer"]["index"] == 3
    zlib = document["findings"][2]["vulnerability"]
    assert (zlib["fixed_version"], zlib["fix_state"], zlib["severity"], zlib["severity_source"]) == (
        None,
        "not_fixed",
        "low",
        "vendor",
    )
    assert (zlib["cvss_score"], zlib["cvss_vector"], zlib["vendor_severity"]) == (None, None, "low")


def test_json_reads_back_into_the_model() -> None:
    report = make_image_report(vuln_findings())
    again = Report.model_validate_json(json_report.render(report))
    assert again.findings == report.findings


def test_other_findings_have_no_vulnerability(mixed_report: Report) -> None:
    document = json.loads(json_report.render(mixed_report))
    assert {f["vulnerability"] for f in document["findings"]} == {None}
