"""SARIF 2.1.0 for code-scanning dashboards (GitHub, GitLab, Azure DevOps).

One run. The driver's rules are the rule descriptions the report carries (`Report.rules`), plus one rule per
vulnerability advisory: a CVE is its own alert type on a dashboard, with its own description and severity, not one
`DKR-VULN` rule for all of them. Only `fail` findings become results: a result is an alert, and `pass`, `skip`,
`not_applicable` and `manual` are not alerts (manual checks would sit open forever on a dashboard; they are in the
JSON, HTML and JUnit reports). Suppressed failures stay in, marked with a SARIF suppression, so dashboards show them
as dismissed. `error` findings and collection problems are tool notifications, not results.

Every result has a physical location (GitHub needs one): the file for lint findings and host files; for engine
objects, which are not files, a `docker://` URI (see `object_uri`). The whole scheme is in docs/output-formats.md.
"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote, urlsplit

from portcullis.model.findings import Finding, Report, RuleInfo, Severity, Status, TargetKind, VulnerabilityDetail
from portcullis.model.fingerprint import advisory_rule_id, fingerprints
from portcullis.model.vuln import VULN_RULE_ID
from portcullis.report import PROJECT_URL, RULE_DOCS_URL

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
# v2: derived from rule, target, package, version and path (v1 numbered findings by their order in the report).
FINGERPRINT_KEY = "portcullisFinding/v2"

# GitHub code scanning rejects a SARIF file above these (docs: "SARIF results exceed hard limit").
MAX_RESULTS_PER_RUN = 25_000
MAX_RULES_PER_RUN = 25_000
MAX_TAGS_PER_RULE = 10  # the hard limit is 20; GitHub shows only the first 10

LEVEL_BY_SEVERITY = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}

_COLLECTION = {
    TargetKind.CONTAINER: "containers",
    TargetKind.IMAGE: "images",
    TargetKind.NETWORK: "networks",
}
_LOCAL_ENGINE = "localhost"


INDENTED_UP_TO = 2_000  # results; a bigger file is written compact (Python's indenting encoder is ~10x slower)


def render(report: Report) -> str:
    document = to_sarif(report)
    indent = 2 if len(document["runs"][0]["results"]) <= INDENTED_UP_TO else None
    return json.dumps(document, indent=indent, ensure_ascii=False) + "\n"


def to_sarif(report: Report) -> dict[str, Any]:
    declared = {r.id: r for r in report.rules}
    failures = [f for f in report.findings if f.status is Status.FAIL]
    catalogue_ids = list(dict.fromkeys(f.rule_id for f in report.findings if not _advisory(f)))
    kept, dropped = _within_limits(failures, MAX_RULES_PER_RUN - len(catalogue_ids))
    advisories: dict[str, list[Finding]] = {}
    for finding in kept:
        if (detail := _advisory(finding)) is not None:
            advisories.setdefault(detail.advisory_id, []).append(finding)
    descriptors = [_descriptor(rule_id, declared.get(rule_id), report) for rule_id in catalogue_ids]
    descriptors += [_advisory_descriptor(advisory_id, group) for advisory_id, group in advisories.items()]
    index = {descriptor["id"]: position for position, descriptor in enumerate(descriptors)}
    engine = engine_authority(report.subject)
    results = [
        _result(f, index[sarif_rule_id(f)], _engine_of(f, engine), p)
        for f, p in zip(kept, fingerprints(kept), strict=True)
    ]
    notifications = [_error_notification(f, index[f.rule_id]) for f in report.findings if f.status is Status.ERROR]
    notifications += [
        {"level": "warning", "message": {"text": f"{p.fact} not collected: {p.reason}"}} for p in report.problems
    ]
    if dropped:
        notifications.append(
            {
                "level": "warning",
                "message": {
                    "text": f"{dropped} least severe failure(s) left out: GitHub code scanning accepts at most "
                    f"{MAX_RESULTS_PER_RUN} results and {MAX_RULES_PER_RUN} rules per run; the JSON report has all"
                },
            }
        )
    driver: dict[str, Any] = {
        "name": report.tool.name,
        "version": report.tool.version,
        "semanticVersion": report.tool.version,
        "informationUri": PROJECT_URL,
        "rules": descriptors,
    }
    properties: dict[str, Any] = {"subject": report.subject, "benchmark": report.tool.benchmark}
    if report.database is not None:  # which advisory data the vulnerability results were matched against
        properties["database"] = report.database.model_dump(mode="json")
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
                "properties": properties,
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


def _advisory(finding: Finding) -> VulnerabilityDetail | None:
    return finding.vulnerability if finding.rule_id == VULN_RULE_ID else None


sarif_rule_id = advisory_rule_id  # the SARIF rule of a finding: its rule id, or a vulnerability's advisory id


def _within_limits(failures: list[Finding], advisory_budget: int) -> tuple[list[Finding], int]:
    """The failures GitHub will accept, most severe first when there are too many, in report order."""
    if len(failures) <= MAX_RESULTS_PER_RUN and len({sarif_rule_id(f) for f in failures}) <= MAX_RULES_PER_RUN:
        return failures, 0
    keep: set[int] = set()
    advisories: set[str] = set()
    for position in sorted(range(len(failures)), key=lambda i: -failures[i].severity.rank):
        if len(keep) == MAX_RESULTS_PER_RUN:
            break
        detail = _advisory(failures[position])
        if detail and detail.advisory_id not in advisories:
            if len(advisories) == advisory_budget:
                continue
            advisories.add(detail.advisory_id)
        keep.add(position)
    return [f for i, f in enumerate(failures) if i in keep], len(failures) - len(keep)


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
            "tags": tags[:MAX_TAGS_PER_RULE],
            "security-severity": rule.severity.security_severity,
        },
    }


def advisory_uri(advisory_id: str) -> str:
    if advisory_id.startswith("CVE-"):
        return f"https://nvd.nist.gov/vuln/detail/{advisory_id}"
    if advisory_id.startswith("GHSA-"):
        return f"https://github.com/advisories/{advisory_id}"
    return f"https://osv.dev/vulnerability/{quote(advisory_id, safe='')}"


def security_severity(details: list[VulnerabilityDetail]) -> str:
    """The highest CVSS base score published with the advisory; without one, the severity's number
    (`Severity.security_severity`: critical 9.5, high 8.0, medium 5.5, low 3.0, info 0.0)."""
    scores = [d.cvss_score for d in details if d.cvss_score is not None]
    if scores:
        return f"{max(scores):.1f}"
    return max((d.severity for d in details), key=lambda s: s.rank).security_severity


def _advisory_descriptor(advisory_id: str, findings: list[Finding]) -> dict[str, Any]:
    details = [d for f in findings if (d := _advisory(f)) is not None]
    first = details[0]
    worst = max((d.severity for d in details), key=lambda s: s.rank)
    packages = list(dict.fromkeys(d.package for d in details))
    short = first.summary or f"{advisory_id} in {', '.join(packages)}"
    full = f"{advisory_id}: {first.summary or 'a published vulnerability'}"
    if first.aliases:
        full += f" (also known as {', '.join(first.aliases)})"
    full += f". Affected here: {', '.join(packages)}."
    rows = []
    lines = []
    for detail in details:
        fixed = detail.fixed_version or "no fix yet"
        layer = str(detail.layer.index) if detail.layer else "?"
        rows.append(f"| {detail.package} | {detail.installed_version} | {fixed} | {layer} |")
        fixed_words = f"fixed in {detail.fixed_version}" if detail.fixed_version else "no fixed version yet"
        lines.append(f"{detail.package} {detail.installed_version}: {fixed_words}")
    fix = " ".join(dict.fromkeys(f.remediation for f in findings if f.remediation))
    markdown = "\n".join(
        [
            f"**{advisory_id}** ({worst.value})",
            "",
            "| package | installed | fixed in | layer |",
            "|---|---|---|---|",
            *rows,
            "",
            fix,
            "",
            f"[{advisory_id}]({advisory_uri(advisory_id)})",
        ]
    )
    properties: dict[str, Any] = {
        "tags": list(dict.fromkeys(["security", "vulnerability", VULN_RULE_ID, *(d.ecosystem.value for d in details)]))[
            :MAX_TAGS_PER_RULE
        ],
        "security-severity": security_severity(details),
    }
    vectors = [d.cvss_vector for d in details if d.cvss_vector]
    if vectors:
        properties["cvssVector"] = vectors[0]
    return {
        "id": advisory_id,
        "name": rule_name(advisory_id),
        "shortDescription": {"text": short},
        "fullDescription": {"text": full},
        "help": {"text": "\n".join([*lines, fix]), "markdown": markdown},
        "helpUri": advisory_uri(advisory_id),
        "defaultConfiguration": {"level": LEVEL_BY_SEVERITY[worst]},
        "properties": properties,
    }


def engine_authority(subject: str) -> str:
    """The engine part of an object URI: `host:port` of a remote endpoint (tcp://, ssh://, https://), else localhost."""
    parts = urlsplit(subject)
    if parts.scheme in ("tcp", "ssh", "http", "https") and parts.hostname:
        return parts.hostname + (f":{parts.port}" if parts.port else "")
    return _LOCAL_ENGINE


def _engine_of(finding: Finding, report_engine: str) -> str:
    """A finding's engine in its URIs: the report's, or, in a many-engine report, its own (a remote one's host:port,
    else its percent-encoded name, so that several local engines stay apart)."""
    if finding.engine is None:
        return report_engine
    authority = engine_authority(finding.engine)
    return quote(finding.engine, safe="") if authority == _LOCAL_ENGINE else authority


def object_uri(kind: TargetKind, name: str, engine: str = _LOCAL_ENGINE) -> str:
    """A stable URI for an engine object that is not a file: `docker://<engine>/containers/<name>`,
    `…/images/<ref>`, `…/networks/<name>`, `…/daemon`, `…/swarm`, `…/host`. A name is one percent-encoded segment."""
    collection = _COLLECTION.get(kind)
    if collection is None:
        return f"docker://{engine}/{kind.value}"
    return f"docker://{engine}/{collection}/{quote(name, safe=':@')}"


def _file_uri(path: str) -> str:
    posix = PurePosixPath(path)
    return posix.as_uri() if posix.is_absolute() else quote(posix.as_posix(), safe="/:@")


def artifact_uri(finding: Finding, engine: str = _LOCAL_ENGINE) -> str:
    """Where a finding is: its file, the host file a CIS rule names, the file inside an image (under the layer that
    added it), or the engine object."""
    target = finding.target
    if target.kind is TargetKind.IMAGE:
        image = object_uri(TargetKind.IMAGE, target.name, engine)
        detail = finding.vulnerability
        path = detail.path if detail and detail.path else finding.location.path if finding.location else None
        if path is None:
            return image
        layer = detail.layer if detail else None
        inside = quote(path.lstrip("/"), safe="/:@")
        return f"{image}/layers/{layer.index}/{inside}" if layer else f"{image}/rootfs/{inside}"
    if finding.location:
        return _file_uri(finding.location.path)
    if target.kind is TargetKind.FILE:
        return _file_uri(target.name)
    return object_uri(target.kind, target.name, engine)


def _location(finding: Finding, engine: str) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": artifact_uri(finding, engine)}}
    if finding.location and finding.location.line:
        physical["region"] = {"startLine": finding.location.line}
    target = finding.target
    return {
        "physicalLocation": physical,
        "logicalLocations": [
            {"name": target.name, "fullyQualifiedName": f"{target.kind.value}/{target.name}", "kind": "resource"}
        ],
    }


def _result(finding: Finding, rule_index: int, engine: str, finding_print: str) -> dict[str, Any]:
    properties: dict[str, Any] = {"severity": finding.severity.value, "target": finding.target.model_dump(mode="json")}
    if finding.vulnerability is not None:  # the typed detail says what the evidence says, once
        properties["portcullisRule"] = finding.rule_id
        properties["vulnerability"] = finding.vulnerability.model_dump(mode="json", exclude={"vendor_status"})
    else:
        properties["evidence"] = finding.evidence
    if finding.engine is not None:
        properties["engine"] = finding.engine
    result: dict[str, Any] = {
        "ruleId": sarif_rule_id(finding),
        "ruleIndex": rule_index,
        "kind": "fail",
        "level": LEVEL_BY_SEVERITY[finding.severity],
        "message": {
            "text": f"{_on_engine(finding)}{finding.target.kind.value} {finding.target.name}: {finding.message}"
        },
        "locations": [_location(finding, engine)],
        "partialFingerprints": {FINGERPRINT_KEY: finding_print},
        "properties": properties,
    }
    if finding.suppressed_by:
        result["suppressions"] = [{"kind": "external", "justification": finding.suppressed_by}]
    return result


def _on_engine(finding: Finding) -> str:
    return f"engine {finding.engine} " if finding.engine is not None else ""


def _error_notification(finding: Finding, rule_index: int) -> dict[str, Any]:
    return {
        "level": "error",
        "message": {
            "text": f"{finding.rule_id} on {_on_engine(finding)}{finding.target.kind.value} {finding.target.name}: "
            f"{finding.message}"
        },
        "associatedRule": {"id": finding.rule_id, "index": rule_index},
    }
