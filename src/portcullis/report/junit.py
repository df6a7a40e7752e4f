"""JUnit XML for CI test dashboards: a testsuite per CIS section (or rule family), a testcase per finding.

Test views list test names, so a name says what was checked on what: `CIS-5.5 web: Containers do not run privileged`,
`DKR-DF-001 app/Dockerfile:7: …`, and for a vulnerability `CVE-2023-1234 openssl 3.0.11-1~deb12u2` (the suite
is `Vulnerabilities in <image>`). When a rule reports several findings on one target (one per mount), each is a
testcase and the message tells them apart. fail → <failure> (message, evidence and remediation); error → <error>;
manual, skip, not_applicable and suppressed findings → <skipped> with the reason; pass → a plain testcase.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter

from portcullis.model.findings import Finding, Report, Status
from portcullis.report.sections import section_key, section_title

# XML 1.0 cannot carry most control characters, even escaped; a hostile container name must not break the file.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def render(report: Report) -> str:
    root = ET.Element("testsuites", name=f"portcullis {report.command}: {report.subject}")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    sections: dict[str, list[Finding]] = {}
    for finding in report.findings:
        sections.setdefault(_suite_name(finding), []).append(finding)
    for name, section_findings in sections.items():
        suite = _suite(name, section_findings, report)
        root.append(suite)
        for counter in totals:
            totals[counter] += int(suite.get(counter, "0"))
    for counter, value in totals.items():
        root.set(counter, str(value))
    for element in root.iter():
        element.attrib = {k: _xml_text(v) for k, v in element.attrib.items()}
        if element.text:
            element.text = _xml_text(element.text)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _suite_name(finding: Finding) -> str:
    if finding.vulnerability is not None:
        return f"Vulnerabilities in {finding.target.name}"
    return section_title(section_key(finding), finding.cis)


def _suite(name: str, findings: list[Finding], report: Report) -> ET.Element:
    suite = ET.Element("testsuite", name=name, timestamp=report.started_at.isoformat())
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    shared = Counter(_case_name(f) for f in findings)
    for finding in findings:
        name = _case_name(finding)
        if shared[name] > 1:  # several findings of one rule on one target: the message tells them apart
            name = f"{name} ({finding.message})"
        outcome = _testcase(finding, name)
        counts["tests"] += 1
        for child, counter in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
            if outcome.find(child) is not None:
                counts[counter] += 1
        suite.append(outcome)
    for counter, value in counts.items():
        suite.set(counter, str(value))
    return suite


def _case_name(finding: Finding) -> str:
    """`CIS-5.5 web: Containers do not run privileged`; `CVE-2023-1234 openssl 3.0.11`."""
    detail = finding.vulnerability
    if detail is not None:
        return f"{detail.advisory_id} {detail.package} {detail.installed_version}"
    where = finding.target.name
    if finding.location:
        where = finding.location.path + (f":{finding.location.line}" if finding.location.line else "")
    if finding.engine is not None:
        where = f"{finding.engine}: {where}"
    return f"{finding.rule_id} {where}: {finding.title}"


def _testcase(finding: Finding, name: str) -> ET.Element:
    case = ET.Element("testcase", classname=finding.rule_id, name=name)
    if finding.suppressed_by:  # accepted by the ignore file: reported, never a failure
        ET.SubElement(case, "skipped", message=f"suppressed: {finding.suppressed_by}")
        return case
    status = finding.status
    if status is Status.FAIL:
        failure = ET.SubElement(case, "failure", message=finding.message, type=finding.severity.value)
        failure.text = _details(finding)
    elif status is Status.ERROR:
        error = ET.SubElement(case, "error", message=finding.message, type="check-error")
        error.text = _details(finding)
    elif status is not Status.PASS:
        ET.SubElement(case, "skipped", message=f"{status.value}: {finding.message}")
    return case


def _details(finding: Finding) -> str:
    lines = [finding.message, f"target: {finding.target.kind.value} {finding.target.name}"]
    if finding.engine is not None:
        lines.append(f"engine: {finding.engine}")
    if finding.location:
        where = finding.location.path + (f":{finding.location.line}" if finding.location.line else "")
        lines.append(f"at: {where}")
    detail = finding.vulnerability
    if detail is not None:
        cvss = f" (CVSS {detail.cvss_score:.1f} {detail.cvss_vector})" if detail.cvss_score is not None else ""
        lines += [
            f"package: {detail.package} {detail.installed_version}",
            f"fixed in: {detail.fixed_version or 'no fixed version yet'}",
            f"severity: {detail.severity.value} from {detail.severity_source}{cvss}",
        ]
        if detail.layer:
            lines.append(f"layer: {detail.layer.index} {detail.layer.created_by}".rstrip())
    elif finding.evidence:
        lines.append("evidence: " + json.dumps(finding.evidence, sort_keys=True, default=str))
    if finding.remediation:
        lines.append(f"remediation: {finding.remediation}")
    return "\n".join(lines)


def _xml_text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)
