"""A finding's stable identity across runs: SARIF's `portcullisFinding/v2`, the store's key, the baseline's."""

from __future__ import annotations

import hashlib
from collections import Counter

from portcullis.model.findings import Finding, Status
from portcullis.model.vuln import VULN_RULE_ID


def advisory_rule_id(finding: Finding) -> str:
    """A finding's rule as dashboards see it: its rule id, or for a vulnerability the advisory id (CVE-…, GHSA-…)."""
    detail = finding.vulnerability if finding.rule_id == VULN_RULE_ID else None
    return detail.advisory_id if detail else finding.rule_id


def _is_advisory(finding: Finding) -> bool:
    return finding.rule_id == VULN_RULE_ID and finding.vulnerability is not None


def fingerprint(finding: Finding, *, by_message: bool = False) -> str:
    """Stable across runs, and never from a finding's position in the report: rule (the advisory for a vulnerability),
    target kind and name, then package, installed version and path for a vulnerability, or file and line for any other
    finding. `by_message` adds the message, for a rule with several findings on one target (two bad mounts of one
    container); otherwise the message stays out, so a count or a date in it does not open a new alert. Never the
    run time, a container id or the evidence."""
    parts = [advisory_rule_id(finding), finding.target.kind.value, finding.target.name]
    if finding.engine is not None:  # one report of several engines: the same container name on two is two alerts
        parts.append(finding.engine)
    detail = finding.vulnerability
    if _is_advisory(finding) and detail is not None:
        parts += [detail.package, detail.installed_version, detail.path or ""]
    else:
        if finding.location:
            parts += [finding.location.path, str(finding.location.line or "")]
        if by_message:
            parts.append(finding.message)
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _place(finding: Finding) -> tuple[str, ...]:
    where = (finding.location.path, str(finding.location.line)) if finding.location else ()
    return (finding.rule_id, finding.engine or "", finding.target.kind.value, finding.target.name, *where)


def fingerprints(failures: list[Finding]) -> list[str]:
    """Each failure's fingerprint; the message tells apart the findings of one rule on one target and place."""
    shared = Counter(_place(f) for f in failures if not _is_advisory(f))
    return [fingerprint(f, by_message=not _is_advisory(f) and shared[_place(f)] > 1) for f in failures]


def report_fingerprints(findings: list[Finding]) -> list[str]:
    """Every finding's fingerprint, in order. Failures are told apart among failures only, so a failure's print is
    the one its SARIF result carries whatever else the report holds; the other findings among themselves."""
    failed = [f for f in findings if f.status is Status.FAIL]
    rest = [f for f in findings if f.status is not Status.FAIL]
    prints = iter(fingerprints(failed)), iter(fingerprints(rest))
    return [next(prints[f.status is not Status.FAIL]) for f in findings]
