"""Turning matches into report findings.

Every vulnerability finding carries the fixed rule id DKR-VULN (one rule: "no known vulnerability in an installed
package"); the advisory id is in the title, in `evidence.advisory_id` and in the typed `vulnerability` detail, so
the rule catalogue stays finite while ignore rules and VEX work on advisory ids and aliases. (SARIF makes each
advisory its own rule; that is the renderer's business.)
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from portcullis.model.findings import (
    CvssScore,
    Finding,
    Location,
    Status,
    Target,
    TargetKind,
    VulnerabilityDetail,
)
from portcullis.model.vuln import VULN_RULE_ID, VULN_UNDECIDED_RULE_ID, FixState, Match, VendorStatus
from portcullis.vuln.severity import Rating, rate

_STATE_WORDS = {
    FixState.FIXED: "fixed in {fixed}",
    FixState.NOT_FIXED: "no fix in this release yet",
    FixState.WONT_FIX: "the vendor does not plan a fix for this release",
    FixState.UNDETERMINED: "the vendor has not determined whether this release is affected",
}


def _vendor_words(match: Match) -> str:
    v = match.vendor
    words = [w for w in (v.status, v.nodsa_reason or ("no-dsa" if v.nodsa else ""), v.urgency) if w]
    return f"{v.source}: {', '.join(words)}" if words else v.source


@lru_cache(maxsize=4096)
def _rating(vendor_severity: str, cvss: tuple[str, ...]) -> Rating:
    """A rating depends only on these two, scoring CVSS vectors is slow, and a scan sees few distinct pairs."""
    return rate(vendor_severity, list(cvss))


@lru_cache(maxsize=4096)
def _vendor_fields(vendor: VendorStatus) -> dict[str, str]:
    return vendor.model_dump()  # VendorStatus is frozen and matching shares its instances


def to_finding(match: Match, target: Target) -> Finding:
    pkg = match.package
    rating = _rating(match.vendor_severity, tuple(match.cvss))
    severity = rating.evidence()
    severity["cvss"] = [dict(scored) for scored in rating.cvss]  # the cached rating is shared: copy what it holds
    state = _STATE_WORDS[match.fix_state].format(fixed=match.fixed_version)
    evidence: dict[str, Any] = {
        "advisory_id": match.advisory_id,
        "aliases": match.aliases,
        "package": {
            "name": pkg.name,
            "version": pkg.version,
            "purl": pkg.purl,
            "ecosystem": pkg.ecosystem.value,
            "source_name": pkg.source_name or None,
            "source_version": pkg.source_version or None,
        },
        "fixed_version": match.fixed_version,
        "fix_state": match.fix_state.value,
        "vendor": dict(_vendor_fields(match.vendor)),
        "severity": severity,
        "layer": pkg.layer.model_dump() if pkg.layer else None,
    }
    scores = [CvssScore(vector=str(s["vector"]), score=s["score"]) for s in rating.cvss]
    best = max((s for s in scores if s.score is not None), key=lambda s: s.score or 0.0, default=None)
    detail = VulnerabilityDetail(
        advisory_id=match.advisory_id,
        aliases=list(match.aliases),
        summary=match.summary,
        package=pkg.name,
        installed_version=pkg.version,
        fixed_version=match.fixed_version,
        fix_state=match.fix_state,
        ecosystem=pkg.ecosystem,
        purl=pkg.purl,
        source_package=pkg.source_name or None,
        severity=rating.level,
        severity_source=rating.origin,
        vendor_severity=match.vendor_severity,
        cvss=scores,
        cvss_score=best.score if best else None,
        cvss_vector=best.vector if best else None,
        vendor_status=match.vendor,
        layer=pkg.layer,
        path=pkg.location or None,
    )
    if match.fix_state is FixState.FIXED:
        remediation = f"Upgrade {pkg.name} to {match.fixed_version} or later."
    else:
        remediation = f"No fixed version of {pkg.name} is available; assess exposure, or suppress with a reason."
    return Finding(
        rule_id=VULN_RULE_ID,
        title=f"{match.advisory_id} in {pkg.name} {pkg.version}",
        cis=None,
        status=Status.MANUAL if match.fix_state is FixState.UNDETERMINED else Status.FAIL,
        severity=rating.level,
        target=target,
        location=Location(path=pkg.location) if pkg.location else None,
        message=f"{pkg.name} {pkg.version} is affected by {match.advisory_id} ({state}; {_vendor_words(match)})",
        evidence=evidence,
        remediation=remediation,
        vulnerability=detail,
    )


def problem_finding(problem: str, target: Target) -> Finding:
    from portcullis.model.findings import Severity

    return Finding(
        rule_id=VULN_UNDECIDED_RULE_ID,
        title="Package could not be matched",
        cis=None,
        status=Status.ERROR,
        severity=Severity.INFO,
        target=target,
        message=problem,
    )


def default_target() -> Target:
    return Target(kind=TargetKind.IMAGE, name="image")
