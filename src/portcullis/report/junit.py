"""JUnit XML for CI test dashboards: a testsuite per CIS section, a testcase per (rule, target).

A rule can report several outcomes for one target (one per mount, say); they become one testcase whose
status is the most telling of them: fail, then error, then manual, skip, not_applicable, pass.
fail → <failure>; error → <error>; manual, skip, not_applicable and suppressed findings → <skipped>.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from portcullis.model.findings import Finding, Report, Status
from portcullis.report.sections import section_key, section_title

# XML 1.0 cannot carry most control characters, even escaped; a hostile container name must not break the file.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

STATUS_PRECEDENCE = (Status.FAIL, Status.ERROR, Status.MANUAL, Status.SKIP, Status.NOT_APPLICABLE, Status.PASS)


def render(report: Report) -> str:
    root = ET.Element("testsuites", name=f"portcullis {report.command}: {report.subject}")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    sections: dict[str, list[Finding]] = {}
    for finding in report.findings:
        sections.setdefault(section_key(finding), []).append(finding)
    for key, section_findings in sections.items():
        suite = _suite(key, section_findings, report)
        root.append(suite)
        for name in totals:
            totals[name] += int(suite.get(name, "0"))
    for name, value in totals.items():
        root.set(name, str(value))
    for element in root.iter():
        element.attrib = {k: _xml_text(v) for k, v in element.attrib.items()}
        if element.text:
            element.text = _xml_text(element.text)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _suite(key: str, findings: list[Finding], report: Report) -> ET.Element:
    suite = ET.Element("testsuite", name=section_title(key, findings[0].cis), timestamp=report.started_at.isoformat())
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    cases: dict[tuple[str, str, str], list[Finding]] = {}
    for finding in findings:
        cases.setdefault((finding.rule_id, finding.target.kind.value, finding.target.name), []).append(finding)
    for (rule_id, kind, name), group in cases.items():
        outcome = _testcase(rule_id, f"{kind} {name}", group)
        counts["tests"] += 1
        for child, counter in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
            if outcome.find(child) is not None:
                counts[counter] += 1
        suite.append(outcome)
    for counter, value in counts.items():
        suite.set(counter, str(value))
    return suite


def _testcase(rule_id: str, target: str, group: list[Finding]) -> ET.Element:
    first = group[0]
    case = ET.Element("testcase", classname=rule_id, name=f"{rule_id} {first.title} [{target}]")
    active = [f for f in group if not f.suppressed_by]
    if not active:  # every outcome was suppressed by the ignore file: reported, never a failure
        reasons = "; ".join(sorted({f.suppressed_by or "" for f in group}))
        ET.SubElement(case, "skipped", message=f"suppressed: {reasons}")
        return case
    status = next(s for s in STATUS_PRECEDENCE if any(f.status is s for f in active))
    chosen = [f for f in active if f.status is status]
    message = "; ".join(f.message for f in chosen)
    if status is Status.FAIL:
        failure = ET.SubElement(case, "failure", message=message, type=first.severity.value)
        failure.text = _details(chosen)
    elif status is Status.ERROR:
        ET.SubElement(case, "error", message=message, type="check-error")
    elif status is not Status.PASS:
        ET.SubElement(case, "skipped", message=f"{status.value}: {message}")
    return case


def _details(findings: list[Finding]) -> str:
    lines = []
    for finding in findings:
        lines.append(finding.message)
        if finding.location:
            where = finding.location.path + (f":{finding.location.line}" if finding.location.line else "")
            lines.append(f"  at {where}")
        if finding.evidence:
            lines.append("  evidence: " + json.dumps(finding.evidence, sort_keys=True, default=str))
    if findings[0].remediation:
        lines.append(f"remediation: {findings[0].remediation}")
    return "\n".join(lines)


def _xml_text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)
