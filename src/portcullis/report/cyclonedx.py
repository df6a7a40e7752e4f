"""CycloneDX 1.6 JSON: the image's packages as components and, when findings are given, its vulnerabilities.

Built with cyclonedx-python-lib. Each component carries its purl, its declared licence (an SPDX expression; none
when unknown), the file that proved it and the layer that
introduced it (as `portcullis:*` properties). Each advisory becomes one vulnerability whose `affects` lists every
affected component; ratings hold the vendor's own severity word and each published CVSS vector with its score.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.impact_analysis import ImpactAnalysisAffectedStatus
from cyclonedx.model.license import LicenseAcknowledgement, LicenseExpression
from cyclonedx.model.tool import ToolRepository
from cyclonedx.model.vulnerability import (
    BomTarget,
    BomTargetVersionRange,
    Vulnerability,
    VulnerabilityRating,
    VulnerabilityReference,
    VulnerabilityScoreSource,
    VulnerabilitySeverity,
    VulnerabilitySource,
)
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from portcullis import __version__
from portcullis.model.findings import Finding, Status
from portcullis.model.licences import UNKNOWN
from portcullis.model.vuln import VULN_RULE_ID, OsRelease, Package

_SEVERITY = {
    "critical": VulnerabilitySeverity.CRITICAL,
    "high": VulnerabilitySeverity.HIGH,
    "medium": VulnerabilitySeverity.MEDIUM,
    "low": VulnerabilitySeverity.LOW,
    "info": VulnerabilitySeverity.INFO,
}


def _cvss_method(vector: str) -> VulnerabilityScoreSource:
    if vector.startswith("CVSS:4"):
        return VulnerabilityScoreSource.CVSS_V4
    if vector.startswith("CVSS:3.1"):
        return VulnerabilityScoreSource.CVSS_V3_1
    if vector.startswith("CVSS:3"):
        return VulnerabilityScoreSource.CVSS_V3
    return VulnerabilityScoreSource.CVSS_V2


def _properties(values: dict[str, Any]) -> list[Property]:
    return [Property(name=f"portcullis:{k}", value=str(v)) for k, v in values.items() if v not in (None, "")]


def component_for(package: Package, ref: str) -> Component:
    layer = package.layer
    return Component(
        type=ComponentType.LIBRARY,
        name=package.name,
        version=package.version,
        purl=PackageURL.from_string(package.purl),
        bom_ref=ref,
        licenses=[]
        if package.license == UNKNOWN
        else [LicenseExpression(package.license, acknowledgement=LicenseAcknowledgement.DECLARED)],
        properties=_properties(
            {
                "package:ecosystem": package.ecosystem.value,
                "package:location": package.location,
                "package:source_name": package.source_name,
                "package:source_version": package.source_version,
                "layer:index": layer.index if layer else None,
                "layer:diff_id": layer.diff_id if layer else None,
                "layer:created_by": layer.created_by if layer else None,
            }
        ),
    )


def _refs(packages: Sequence[Package]) -> list[str]:
    """One bom-ref per package: its purl, made unique with the proving file when the same purl appears twice."""
    refs, seen = [], set()
    for package in packages:
        ref = package.purl if package.purl not in seen else f"{package.purl}#{package.location}"
        n = 2
        while ref in seen:
            ref, n = f"{package.purl}#{package.location}#{n}", n + 1
        seen.add(ref)
        refs.append(ref)
    return refs


def _ratings(evidence: dict[str, Any]) -> list[VulnerabilityRating]:
    severity = evidence.get("severity") or {}
    vendor = evidence.get("vendor") or {}
    ratings = []
    if severity.get("vendor"):
        ratings.append(
            VulnerabilityRating(
                source=VulnerabilitySource(name=str(vendor.get("source") or "vendor")),
                severity=_SEVERITY.get(str(severity.get("level")), VulnerabilitySeverity.UNKNOWN),
                method=VulnerabilityScoreSource.OTHER,
                justification=f"vendor rating {severity['vendor']!r}",
            )
        )
    for scored in severity.get("cvss") or []:
        vector, score = str(scored.get("vector") or ""), scored.get("score")
        ratings.append(
            VulnerabilityRating(
                score=Decimal(str(score)) if score is not None else None,
                method=_cvss_method(vector),
                vector=vector or None,
            )
        )
    if not ratings:
        ratings.append(
            VulnerabilityRating(
                severity=_SEVERITY.get(str(severity.get("level")), VulnerabilitySeverity.UNKNOWN),
                method=VulnerabilityScoreSource.OTHER,
                justification="no vendor rating or CVSS vector; severity assumed",
            )
        )
    return ratings


def vulnerabilities_for(findings: Sequence[Finding], ref_by_purl: dict[str, str]) -> list[Vulnerability]:
    """One vulnerability per advisory id from the DKR-VULN findings that are not suppressed."""
    grouped: dict[str, list[Finding]] = {}
    for finding in findings:
        if (
            finding.rule_id == VULN_RULE_ID
            and finding.status in (Status.FAIL, Status.MANUAL)
            and not finding.suppressed_by
        ):
            grouped.setdefault(str(finding.evidence["advisory_id"]), []).append(finding)
    result = []
    for advisory_id, group in sorted(grouped.items()):
        first = group[0].evidence
        vendor = first.get("vendor") or {}
        affects = []
        for finding in group:
            package = finding.evidence["package"]
            ref = ref_by_purl.get(str(package["purl"]))
            if ref is None:
                continue  # the finding names a package the SBOM does not hold; an affects entry must point inside
            status = ImpactAnalysisAffectedStatus.UNKNOWN if finding.status is Status.MANUAL else None
            affects.append(
                BomTarget(
                    ref=ref,
                    versions=[
                        BomTargetVersionRange(
                            version=str(package["version"]), status=status or ImpactAnalysisAffectedStatus.AFFECTED
                        )
                    ],
                )
            )
        fixed = first.get("fixed_version")
        result.append(
            Vulnerability(
                id=advisory_id,
                source=VulnerabilitySource(name=str(vendor.get("source") or "")) if vendor.get("source") else None,
                references=[
                    VulnerabilityReference(id=alias, source=VulnerabilitySource(name=alias.split("-")[0]))
                    for alias in first.get("aliases") or []
                ],
                ratings=_ratings(first),
                description=group[0].message,
                recommendation=group[0].remediation or None,
                affects=affects,
                properties=_properties(
                    {
                        "fix_state": first.get("fix_state"),
                        "fixed_version": fixed,
                        "vendor:status": vendor.get("status"),
                        "vendor:release": vendor.get("release"),
                        "vendor:urgency": vendor.get("urgency"),
                        "vendor:nodsa_reason": vendor.get("nodsa_reason") or ("no-dsa" if vendor.get("nodsa") else ""),
                    }
                ),
            )
        )
    return result


def render_cyclonedx(
    packages: Sequence[Package],
    findings: Sequence[Finding] | None = None,
    *,
    subject: str,
    os_release: OsRelease | None = None,
    timestamp: datetime | None = None,
    serial: UUID | None = None,
) -> str:
    """A CycloneDX 1.6 JSON document for one image (`subject`, e.g. its reference)."""
    root = Component(type=ComponentType.CONTAINER, name=subject, bom_ref=f"image:{subject}")
    metadata = BomMetaData(
        tools=ToolRepository(
            components=[Component(type=ComponentType.APPLICATION, name="portcullis", version=__version__)]
        ),
        component=root,
        timestamp=timestamp,
    )
    bom = Bom(serial_number=serial or uuid4(), metadata=metadata)
    refs = _refs(packages)
    components = [component_for(p, ref) for p, ref in zip(packages, refs, strict=True)]
    if os_release is not None:
        components.append(
            Component(
                type=ComponentType.OPERATING_SYSTEM,
                name=os_release.id,
                version=os_release.version_id or None,
                bom_ref=f"os:{os_release.id}-{os_release.version_id}",
            )
        )
    for component in components:
        bom.components.add(component)
    bom.register_dependency(root, components)
    ref_by_purl: dict[str, str] = {}
    for package, ref in zip(packages, refs, strict=True):
        ref_by_purl.setdefault(package.purl, ref)
    for vulnerability in vulnerabilities_for(findings or [], ref_by_purl):
        bom.vulnerabilities.add(vulnerability)
    return JsonV1Dot6(bom).output_as_string(indent=2)
