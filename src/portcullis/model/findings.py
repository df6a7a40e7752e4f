"""The report model: one shape for every command (audit, image, lint, inside, prove, harden)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from portcullis.model.layers import LayerRef
from portcullis.model.neighbours import NeighboursReport
from portcullis.model.vuln import Ecosystem, FixState, VendorStatus


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    MANUAL = "manual"  # a person must judge; the evidence is attached
    SKIP = "skip"  # cannot be determined here; the reason is given
    NOT_APPLICABLE = "not_applicable"
    ERROR = "error"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    @property
    def security_severity(self) -> str:
        """The numeric score GitHub code scanning maps back to a severity band."""
        return _SECURITY_SEVERITY[self]


_SEVERITY_RANK = {
    Severity.INFO: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}
_SECURITY_SEVERITY = {
    Severity.INFO: "0.0",
    Severity.LOW: "3.0",
    Severity.MEDIUM: "5.5",
    Severity.HIGH: "8.0",
    Severity.CRITICAL: "9.5",
}


class TargetKind(StrEnum):
    HOST = "host"
    DAEMON = "daemon"
    FILE = "file"
    CONTAINER = "container"
    IMAGE = "image"
    NETWORK = "network"
    SWARM = "swarm"
    DOCKERFILE = "dockerfile"
    COMPOSE = "compose"


class Target(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: TargetKind
    name: str
    id: str | None = None


class CisRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: str
    control: str
    level: int


class Location(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    line: int | None = None


class RuleInfo(BaseModel):
    """A rule as reports describe it (SARIF rule descriptors, rule pages): renderers read this, never the rule code."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    severity: Severity
    scope: TargetKind
    cis: CisRef | None = None
    rationale: str
    remediation: str
    impact: str = ""
    references: list[str] = Field(default_factory=list)
    statuses: list[Status] = Field(default_factory=list)
    commands: list[str] = Field(default_factory=list)
    defined_at: Location | None = Field(default=None, description="the source file (under the package root) and line")


class CvssScore(BaseModel):
    """One CVSS vector published with an advisory, and its base score (None when the vector does not parse)."""

    model_config = ConfigDict(frozen=True)

    vector: str
    score: float | None = Field(default=None, ge=0.0, le=10.0)


class VulnerabilityDetail(BaseModel):
    """What a vulnerability finding (rule DKR-VULN) is about, typed: the same facts as its `evidence`, for consumers
    that read a schema rather than a bag."""

    model_config = ConfigDict(frozen=True)

    advisory_id: str = Field(description="CVE-…, GHSA-…, DSA-…: the id the advisory was published under")
    aliases: list[str] = Field(default_factory=list, description="other ids of the same advisory")
    summary: str = Field("", description="the advisory's one-line summary, when the source gives one")
    package: str = Field(description="the installed (binary) package name")
    installed_version: str
    fixed_version: str | None = Field(None, description="the first fixed version for this release, when one exists")
    fix_state: FixState
    ecosystem: Ecosystem
    purl: str
    source_package: str | None = Field(None, description="the source package the advisory names, when not the same")
    severity: Severity = Field(description="the finding's severity, as rated below")
    severity_source: str = Field(description="vendor, cvss or assumed: what the severity was taken from")
    vendor_severity: str = Field("", description="the vendor's own severity word (tracker urgency, GHSA severity)")
    cvss: list[CvssScore] = Field(default_factory=list)
    cvss_score: float | None = Field(None, ge=0.0, le=10.0, description="the highest CVSS base score published")
    cvss_vector: str | None = Field(None, description="the vector that scored cvss_score")
    vendor_status: VendorStatus = Field(description="the vendor's own words for this advisory in this release")
    layer: LayerRef | None = Field(None, description="the image layer that added the vulnerable package version")
    path: str | None = Field(None, description="the file in the image that proved the package")


class Finding(BaseModel):
    rule_id: str
    title: str
    cis: CisRef | None
    status: Status
    severity: Severity
    target: Target
    location: Location | None = None
    message: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    remediation: str = ""
    suppressed_by: str | None = None
    engine: str | None = Field(
        default=None, description="the engine this finding is about, when one run audited several (None: one engine)"
    )
    vulnerability: VulnerabilityDetail | None = Field(
        default=None, description="set on vulnerability findings (DKR-VULN): the advisory and package, typed"
    )


class Summary(BaseModel):
    total: int = 0
    by_status: dict[Status, int] = Field(default_factory=dict)
    failed_by_severity: dict[Severity, int] = Field(default_factory=dict)
    suppressed: int = 0

    @classmethod
    def of(cls, findings: list[Finding]) -> Summary:
        summary = cls(total=len(findings))
        for finding in findings:
            if finding.suppressed_by:
                summary.suppressed += 1
                continue
            summary.by_status[finding.status] = summary.by_status.get(finding.status, 0) + 1
            if finding.status is Status.FAIL:
                sev = finding.severity
                summary.failed_by_severity[sev] = summary.failed_by_severity.get(sev, 0) + 1
        return summary


class ToolInfo(BaseModel):
    name: str = "portcullis"
    version: str
    benchmark: str | None = None


class CollectionProblem(BaseModel):
    """A fact that could not be gathered, and why; rules that need it skip."""

    fact: str
    reason: str


class DatabaseSource(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(description="debian-tracker, osv:PyPI, alpine-secdb:v3.19/main")
    fetched_at: str = Field(description="when this source's content was obtained (ISO 8601, UTC)")


class DatabaseInfo(BaseModel):
    """The vulnerability database a report was judged against, so a verdict can be traced to its data."""

    model_config = ConfigDict(frozen=True)

    path: str
    schema_version: str
    built_at: str | None = Field(None, description="when the database file was last written (ISO 8601, UTC)")
    sources: list[DatabaseSource] = Field(default_factory=list)


class Report(BaseModel):
    schema_version: str = "1"
    command: str
    tool: ToolInfo
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    subject: str = Field(description="what was examined: an engine endpoint, an image, a file")
    findings: list[Finding]
    summary: Summary
    problems: list[CollectionProblem] = Field(default_factory=list)
    rules: list[RuleInfo] = Field(default_factory=list, description="the rules behind the findings, described once")
    database: DatabaseInfo | None = Field(None, description="the vulnerability database used, when one was")
    isolation: NeighboursReport | None = Field(
        None, description="a noisy-neighbour matrix measured on this host (`portcullis neighbours`), when attached"
    )

    def failures_at_or_above(self, threshold: Severity) -> list[Finding]:
        return [
            f
            for f in self.findings
            if f.status is Status.FAIL and not f.suppressed_by and f.severity.rank >= threshold.rank
        ]
