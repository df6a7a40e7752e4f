"""A report with one finding of every kind a renderer must handle, and an audit of the recorded baseline facts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from portcullis.checks.registry import describe
from portcullis.model.facts import Facts
from portcullis.model.findings import (
    CisRef,
    CollectionProblem,
    Finding,
    Location,
    Report,
    Severity,
    Status,
    Summary,
    Target,
    TargetKind,
    ToolInfo,
)
from portcullis.model.layers import LayerRef
from portcullis.model.vuln import Ecosystem, FixState, Match, Package, VendorStatus
from portcullis.pipelines.audit import audit_report
from portcullis.vuln.findings import to_finding

RULES_DIR = Path(__file__).parents[1] / "rules"
HOSTILE = "<script>alert('x')</script>"


def cis(control: str, level: int = 1) -> CisRef:
    return CisRef(version="1.8.0", control=control, level=level)


def finding(rule_id: str, status: Status, severity: Severity, target: Target, message: str, **extra: object) -> Finding:
    control = rule_id.removeprefix("CIS-") if rule_id.startswith("CIS-") else None
    return Finding(
        rule_id=rule_id,
        title=f"title of {rule_id}",
        cis=cis(control) if control else None,
        status=status,
        severity=severity,
        target=target,
        message=message,
        **extra,  # type: ignore[arg-type]
    )


WEB = Target(kind=TargetKind.CONTAINER, name="web", id="a" * 64)
EVIL = Target(kind=TargetKind.CONTAINER, name=HOSTILE, id="b" * 64)
DAEMON = Target(kind=TargetKind.DAEMON, name="unix:///var/run/docker.sock")
HOST = Target(kind=TargetKind.HOST, name="host1")
DOCKERFILE = Target(kind=TargetKind.DOCKERFILE, name="Dockerfile")
IMAGE = Target(kind=TargetKind.IMAGE, name="portcullis-test/vulnlab:layered", id="sha256:" + "d" * 64)
LAYER_3 = LayerRef(index=3, diff_id="sha256:" + "e" * 64, created_by="RUN apt-get install -y openssl")
CVSS_98 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # base score 9.8


def vuln(
    advisory: str,
    package: str,
    version: str,
    *,
    fixed: str | None = "3.0.15-1~deb12u1",
    urgency: str = "",
    cvss: tuple[str, ...] = (),
    summary: str = "",
) -> Finding:
    """A DKR-VULN finding as the matcher makes it, for a Debian package added by layer 3."""
    pkg = Package(
        ecosystem=Ecosystem.DEBIAN,
        name=package,
        version=version,
        purl=f"pkg:deb/debian/{package}@{version}?distro=debian-12",
        location="var/lib/dpkg/status",
        layer=LAYER_3,
    )
    match = Match(
        advisory_id=advisory,
        summary=summary,
        package=pkg,
        fix_state=FixState.FIXED if fixed else FixState.NOT_FIXED,
        fixed_version=fixed,
        vendor=VendorStatus(source="debian-tracker", release="bookworm", status="resolved" if fixed else "open"),
        vendor_severity=urgency,
        cvss=list(cvss),
    )
    return to_finding(match, IMAGE)


def vuln_findings() -> list[Finding]:
    return [
        vuln("CVE-2023-1234", "openssl", "3.0.11-1~deb12u2", cvss=(CVSS_98,), summary="openssl: buffer overread"),
        vuln("CVE-2023-1234", "libssl3", "3.0.11-1~deb12u2", cvss=(CVSS_98,), summary="openssl: buffer overread"),
        vuln("CVE-2024-0002", "zlib1g", "1:1.2.13.dfsg-1", fixed=None, urgency="low"),
        vuln("GHSA-aaaa-bbbb-cccc", "curl", "7.88.1-10+deb12u5", fixed="7.88.1-10+deb12u6"),
    ]


def make_image_report(findings: list[Finding]) -> Report:
    return Report(
        command="image",
        tool=ToolInfo(version="0.1.0"),
        started_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        subject=IMAGE.name,
        findings=findings,
        summary=Summary.of(findings),
        rules=describe(findings),
    )


def make_report(findings: list[Finding], started_at: datetime | None = None) -> Report:
    return Report(
        command="audit",
        tool=ToolInfo(version="0.1.0", benchmark="CIS Docker Benchmark 1.8.0"),
        started_at=started_at or datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        subject="unix:///var/run/docker.sock",
        findings=findings,
        summary=Summary.of(findings),
        problems=[CollectionProblem(fact="auditctl rules", reason="auditctl is not installed")],
        rules=describe(findings),  # as `emit` does before rendering
    )


def mixed_findings() -> list[Finding]:
    return [
        finding("CIS-2.2", Status.FAIL, Severity.MEDIUM, DAEMON, "icc is on", evidence={"icc": True}),
        finding("CIS-2.3", Status.MANUAL, Severity.LOW, DAEMON, "judge the log level"),
        finding("CIS-1.1.3", Status.SKIP, Severity.LOW, HOST, "auditctl missing"),
        finding("CIS-5.5", Status.FAIL, Severity.CRITICAL, WEB, "the container is privileged", remediation="drop it"),
        finding("CIS-5.5", Status.PASS, Severity.CRITICAL, EVIL, "not privileged"),
        finding("CIS-5.6", Status.FAIL, Severity.HIGH, EVIL, f"mounts {HOSTILE}", evidence={"path": HOSTILE}),
        finding("CIS-5.6", Status.FAIL, Severity.HIGH, EVIL, "second mount /etc"),
        finding("CIS-5.7", Status.NOT_APPLICABLE, Severity.LOW, WEB, "no ports"),
        finding("CIS-5.8", Status.ERROR, Severity.MEDIUM, WEB, "the check raised KeyError: 'x'"),
        finding("CIS-5.9", Status.FAIL, Severity.LOW, WEB, "accepted", suppressed_by="ignore#1: legacy host"),
        finding(
            "DKR-DF-001",
            Status.FAIL,
            Severity.LOW,
            DOCKERFILE,
            "ADD used for a local file",
            location=Location(path="app/Dockerfile", line=7),
        ),
    ]


@pytest.fixture
def mixed_report() -> Report:
    return make_report(mixed_findings())


@pytest.fixture(scope="session")
def baseline_audit() -> Report:
    """Every audit rule over the recorded baseline facts (an engine with nothing configured)."""
    raw = json.loads((RULES_DIR / "baseline.json").read_text())
    facts = Facts.model_validate({k: v for k, v in raw.items() if not k.startswith("_")})
    report = audit_report(facts, [], [], None)
    return report.model_copy(update={"rules": describe(report.findings)})  # as `emit` does before rendering
