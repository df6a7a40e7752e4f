"""SARIF 2.1.0 for code-scanning dashboards (GitHub, GitLab, Azure DevOps).

One run. The driver's rules are the rule descriptions the report carries (`Report.rules`). Only `fail` findings
become results: a result is an alert, and `pass`, `skip`, `not_applicable` and `manual` are not alerts (manual
checks would sit open forever on a dashboard; they are in the JSON, HTML and JUnit reports).
Suppressed failures stay in, marked with a SARIF suppression, so dashboards show them as dismissed.
`error` findings and collection problems are tool notifications, not results.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import PurePosixPath
from typing import Any

from portcullis.model.findings import Finding, Report, RuleInfo, Severity, Status
from portcullis.report import PROJECT_URL, RULE_DOCS_URL

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
FINGERPRINT_KEY = "portcullisFinding/v1"

LEVEL_BY_SEVERITY = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}


def render(report: Report) -> str:
    return json.dumps(to_sarif(report), indent=2, ensure_ascii=False) + "\n"


def to_sarif(report: Report) -> dict[str, Any]:
    declared = {r.id: r for r in report.rules}
    rule_ids = list(dict.fromkeys(f.rule_id for f in report.findings))
    descriptors = [_descriptor(rule_id, declared.get(rule_id), report) for rule_id in rule_ids]
    index = {rule_id: position for position, rule_id in enumerate(rule_ids)}
    failures = [f for f in report.findings if f.status is Status.FAIL]
    results = [_result(f, index[f.rule_id], p) for f, p in zip(failures, _fingerprints(failures), strict=True)]
    notifications = [_error_notification(f, index[f.rule_id]) for f in report.findings if f.status is Status.ERROR]
    notifications += [
        {"level": "warning", "message": {"text": f"{p.fact} not collected: {p.reason}"}} for p in report.problems
    ]
    driver: dict[str, Any] = {
        "name": report.tool.name,
        "version": report.tool.version,
        "semanticVersion": report.tool.version,
        "informationUri": PROJECT_URL,
        "rules": descriptors,
    }
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {"driver": driver},
                "automationDetails": {"id": automation_id(report)},
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "startTimeUtc": report.started_at.isoformat().replace("+00:00", "Z"),
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": results,
                "properties": {"subject": report.subject, "benchmark": report.tool.benchmark},
            }
        ],
    }


def automation_id(report: Report) -> str:
    """`category/run`: the category (command and subject) keeps uploads of different engines apart."""
    subject = re.sub(r"[^A-Za-z0-9_.-]+", "-", report.subject).strip("-") or "local"
    return f"portcullis/{report.command}/{subject}/{report.started_at.strftime('%Y%m%dT%H%M%SZ')}"


def rule_name(title: str) -> str:
    """A SARIF rule name is an identifier: 'Containers do not run privileged' → 'ContainersDoNotRunPrivileged'."""
    return "".join(word[:1].upper() + word[1:] for word in re.findall(r"[A-Za-z0-9]+", title))


def _descriptor(rule_id: str, rule: RuleInfo | None, report: Report) -> dict[str, Any]:
    if rule is None:  # a finding of a rule the report does not describe: describe it from the finding
        sample = next(f for f in report.findings if f.rule_id == rule_id)
        return {
            "id": rule_id,
            "name": rule_name(sample.title),
            "shortDescription": {"text": sample.title},
            "defaultConfiguration": {"level": LEVEL_BY_SEVERITY[sample.severity]},
            "properties": {"tags": ["security"], "security-severity": sample.severity.security_severity},
        }
    tags = ["security", f"scope:{rule.scope.value}"]
    if rule.cis:
        tags += [f"CIS-Docker-{rule.cis.version}", f"cis:{rule.cis.control}", f"level:{rule.cis.level}"]
    help_markdown = rule.remediation
    if rule.impact:
        help_markdown += f"\n\n**Impact of the fix:** {rule.impact}"
    return {
        "id": rule.id,
        "name": rule_name(rule.title),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.rationale},
        "help": {"text": rule.remediation, "markdown": help_markdown},
        "helpUri": RULE_DOCS_URL.format(rule_id=rule.id),
        "defaultConfiguration": {"level": LEVEL_BY_SEVERITY[rule.severity]},
        "properties": {
            "tags": tags,
            "security-severity": rule.severity.security_severity,
        },
    }


def fingerprint(finding: Finding) -> str:
    """Stable across runs: rule, target kind and name, and location; never the run time or a container id."""
    parts = [finding.rule_id, finding.target.kind.value, finding.target.name]
    if finding.location:
        parts += [finding.location.path, str(finding.location.line or "")]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _fingerprints(failures: list[Finding]) -> list[str]:
    """`hash:n`, n counting findings with the same hash (two bad mounts of one container), as GitHub does for lines."""
    seen: dict[str, int] = {}
    prints = []
    for finding in failures:
        base = fingerprint(finding)
        seen[base] = seen.get(base, 0) + 1
        prints.append(f"{base}:{seen[base]}")
    return prints


def _location(finding: Finding) -> dict[str, Any]:
    if finding.location:
        path = PurePosixPath(finding.location.path)
        uri = path.as_uri() if path.is_absolute() else path.as_posix()
        physical: dict[str, Any] = {"artifactLocation": {"uri": uri}}
        if finding.location.line:
            physical["region"] = {"startLine": finding.location.line}
        return {"physicalLocation": physical}
    target = finding.target
    return {
        "logicalLocations": [
            {
                "name": target.name,
                "fullyQualifiedName": f"{target.kind.value}/{target.name}",
                "kind": "resource",
            }
        ]
    }


def _result(finding: Finding, rule_index: int, finding_print: str) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "kind": "fail",
        "level": LEVEL_BY_SEVERITY[finding.severity],
        "message": {"text": f"{finding.target.kind.value} {finding.target.name}: {finding.message}"},
        "locations": [_location(finding)],
        "partialFingerprints": {FINGERPRINT_KEY: finding_print},
        "properties": {
            "severity": finding.severity.value,
            "target": finding.target.model_dump(mode="json"),
            "evidence": finding.evidence,
        },
    }
    if finding.suppressed_by:
        result["suppressions"] = [{"kind": "external", "justification": finding.suppressed_by}]
    return result


def _error_notification(finding: Finding, rule_index: int) -> dict[str, Any]:
    return {
        "level": "error",
        "message": {
            "text": f"{finding.rule_id} on {finding.target.kind.value} {finding.target.name}: {finding.message}"
        },
        "associatedRule": {"id": finding.rule_id, "index": rule_index},
    }
