"""Turning matches into report findings.

Every vulnerability finding carries the fixed rule id DKR-VULN (one rule: "no known vulnerability in an installed
package"); the advisory id is in the title, in `evidence.advisory_id` and in the typed `vulnerability` detail, so
the rule catalogue stays finite while ignore rules and VEX work on advisory ids and aliases. (SARIF makes each
advisory its own rule; that is the renderer's business.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
from portcullis.model.vuln import VULN_RULE_ID, VULN_UNDECIDED_RULE_ID, FixState, Match, Package, VendorStatus
from portcullis.vuln.severity import Rating, rate

_STATE_WORDS = {
    FixState.FIXED: "fixed in {fixed}",
    FixState.NOT_FIXED: "no fix in this release yet",
    FixState.WONT_FIX: "the vendor does not plan a fix for this release",
    FixState.UNDETERMINED: "the vendor has not determined whether this release is affected",
}


def _vendor_words(v: VendorStatus) -> str:
    words = [w for w in (v.status, v.nodsa_reason or ("no-dsa" if v.nodsa else ""), v.urgency) if w]
    return f"{v.source}: {', '.join(words)}" if words else v.source


@lru_cache(maxsize=4096)
def _rating(vendor_severity: str, cvss: tuple[str, ...]) -> Rating:
    """A rating depends only on these two, scoring CVSS vectors is slow, and a scan sees few distinct pairs."""
    return rate(vendor_severity, list(cvss))


@lru_cache(maxsize=4096)
def _scores(vendor_severity: str, cvss: tuple[str, ...]) -> tuple[list[CvssScore], CvssScore | None]:
    """The rating's typed CVSS scores (frozen, so shared) and the best one."""
    scores = [CvssScore(vector=str(s["vector"]), score=s["score"]) for s in _rating(vendor_severity, cvss).cvss]
    return scores, max((s for s in scores if s.score is not None), key=lambda s: s.score or 0.0, default=None)


@lru_cache(maxsize=4096)
def _vendor_fields(vendor: VendorStatus) -> dict[str, str]:
    return vendor.model_dump()  # VendorStatus is frozen and matching shares its instances


# Finding(**fields) and VulnerabilityDetail(**fields) with the same validation, minus BaseModel.__init__'s wrapper
_new_finding: Callable[[dict[str, Any]], Finding] = Finding.__pydantic_validator__.validate_python
_new_detail: Callable[[dict[str, Any]], VulnerabilityDetail] = (
    VulnerabilityDetail.__pydantic_validator__.validate_python
)


@lru_cache(maxsize=65536)
def _location(path: str) -> Location:
    return Location(path=path)  # frozen: the findings of one file share it


@dataclass(frozen=True, slots=True)
class FindingParts:
    """A vulnerability finding less its target: what every image carrying the same package record shares. Built
    once per (package record, advisory) by a scanner; `finding` gives each image its own Finding and evidence."""

    fields: dict[str, Any]  # Finding's fields but target and evidence; its values are frozen models or immutable
    evidence: dict[str, Any]  # lists kept as tuples (`finding` makes them lists): parts live as long as the memo
    order: tuple[str, str, str]  # package name, package version, title: the order a scan reports findings in

    def finding(self, target: Target) -> Finding:
        ev = self.evidence
        severity = ev["severity"]
        evidence = {
            **ev,
            "aliases": list(ev["aliases"]),
            "package": dict(ev["package"]),
            "vendor": dict(ev["vendor"]),
            "severity": {**severity, "cvss": [dict(scored) for scored in severity["cvss"]]},
            "layer": dict(ev["layer"]) if ev["layer"] is not None else None,
        }
        return _new_finding({**self.fields, "target": target, "evidence": evidence})


def finding_parts(
    pkg: Package,
    advisory_id: str,
    aliases: Sequence[str],
    summary: str,
    fix_state: FixState,
    fixed_version: str | None,
    vendor: VendorStatus,
    vendor_severity: str,
    cvss: Sequence[str],
) -> FindingParts:
    """The parts of the finding for one advisory (a Match's fields) that applies to `pkg`."""
    vectors = tuple(cvss)
    rating = _rating(vendor_severity, vectors)
    severity = rating.evidence()
    severity["cvss"] = tuple(dict(scored) for scored in rating.cvss)  # the cached rating is shared: copy what it holds
    state = _STATE_WORDS[fix_state].format(fixed=fixed_version)
    evidence: dict[str, Any] = {
        "advisory_id": advisory_id,
        "aliases": tuple(aliases),
        "package": {
            "name": pkg.name,
            "version": pkg.version,
            "purl": pkg.purl,
            "ecosystem": pkg.ecosystem.value,
            "source_name": pkg.source_name or None,
            "source_version": pkg.source_version or None,
        },
        "fixed_version": fixed_version,
        "fix_state": fix_state.value,
        "vendor": _vendor_fields(vendor),
        "severity": severity,
        "layer": pkg.layer.model_dump() if pkg.layer else None,
    }
    scores, best = _scores(vendor_severity, vectors)
    detail = _new_detail(
        {
            "advisory_id": advisory_id,
            "aliases": aliases,
            "summary": summary,
            "package": pkg.name,
            "installed_version": pkg.version,
            "fixed_version": fixed_version,
            "fix_state": fix_state,
            "ecosystem": pkg.ecosystem,
            "purl": pkg.purl,
            "source_package": pkg.source_name or None,
            "severity": rating.level,
            "severity_source": rating.origin,
            "vendor_severity": vendor_severity,
            "cvss": scores,
            "cvss_score": best.score if best else None,
            "cvss_vector": best.vector if best else None,
            "vendor_status": vendor,
            "layer": pkg.layer,
            "path": pkg.location or None,
        }
    )
    if fix_state is FixState.FIXED:
        remediation = f"Upgrade {pkg.name} to {fixed_version} or later."
    else:
        remediation = f"No fixed version of {pkg.name} is available; assess exposure, or suppress with a reason."
    title = f"{advisory_id} in {pkg.name} {pkg.version}"
    fields = {
        "rule_id": VULN_RULE_ID,
        "title": title,
        "cis": None,
        "status": Status.MANUAL if fix_state is FixState.UNDETERMINED else Status.FAIL,
        "severity": rating.level,
        "location": _location(pkg.location) if pkg.location else None,
        "message": f"{pkg.name} {pkg.version} is affected by {advisory_id} ({state}; {_vendor_words(vendor)})",
        "remediation": remediation,
        "vulnerability": detail,
    }
    return FindingParts(fields, evidence, (pkg.name, pkg.version, title))


def to_finding(match: Match, target: Target) -> Finding:
    parts = finding_parts(
        match.package,
        match.advisory_id,
        match.aliases,
        match.summary,
        match.fix_state,
        match.fixed_version,
        match.vendor,
        match.vendor_severity,
        match.cvss,
    )
    return parts.finding(target)


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
