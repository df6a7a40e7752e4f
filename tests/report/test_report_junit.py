"""JUnit XML, read back with junitparser: suites per section, one testcase per finding."""

from __future__ import annotations

from pathlib import Path

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase
from report_samples import HOSTILE, WEB, finding, make_image_report, make_report, vuln_findings

from portcullis.model.findings import Report, Severity, Status
from portcullis.report import junit


def parsed(report: Report, tmp_path: Path) -> JUnitXml:
    path = tmp_path / "report.xml"
    path.write_text(junit.render(report), encoding="utf-8")
    return JUnitXml.fromfile(str(path))


def cases(xml: JUnitXml) -> dict[str, TestCase]:
    return {case.name: case for suite in xml for case in suite}


def test_suites_per_section_and_counts(mixed_report: Report, tmp_path: Path) -> None:
    xml = parsed(mixed_report, tmp_path)
    suites = {suite.name: suite for suite in xml}
    assert list(suites) == [
        "CIS 2 Docker daemon configuration",
        "CIS 1 Host configuration",
        "CIS 5 Container runtime",
        "DKR-DF",
    ]
    runtime = suites["CIS 5 Container runtime"]
    # CIS-5.5 web (fail), 5.5 <script> (pass), 5.6 <script> twice (fail), 5.7 (n/a), 5.8 (error), 5.9 (suppressed)
    assert (runtime.tests, runtime.failures, runtime.errors, runtime.skipped) == (7, 3, 1, 2)
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (11, 5, 1, 4)


def test_testcase_names_read_as_rule_target_and_title(mixed_report: Report, tmp_path: Path) -> None:
    names = [case.name for suite in parsed(mixed_report, tmp_path) for case in suite]
    assert names == [
        "CIS-2.2 unix:///var/run/docker.sock: title of CIS-2.2",
        "CIS-2.3 unix:///var/run/docker.sock: title of CIS-2.3",
        "CIS-1.1.3 host1: title of CIS-1.1.3",
        "CIS-5.5 web: title of CIS-5.5",
        f"CIS-5.5 {HOSTILE}: title of CIS-5.5",
        f"CIS-5.6 {HOSTILE}: title of CIS-5.6 (mounts {HOSTILE})",
        f"CIS-5.6 {HOSTILE}: title of CIS-5.6 (second mount /etc)",
        "CIS-5.7 web: title of CIS-5.7",
        "CIS-5.8 web: title of CIS-5.8",
        "CIS-5.9 web: title of CIS-5.9",
        "DKR-DF-001 app/Dockerfile:7: title of DKR-DF-001",
    ]


def test_each_status_maps_to_its_junit_result(mixed_report: Report, tmp_path: Path) -> None:
    by_name = cases(parsed(mixed_report, tmp_path))

    def result_of(rule_id: str, target: str) -> list[object]:
        return list(by_name[f"{rule_id} {target}: title of {rule_id}"].result)

    [failure] = result_of("CIS-5.5", "web")
    assert isinstance(failure, Failure)
    assert failure.message == "the container is privileged"
    assert failure.type == "critical"
    assert (failure.text or "").splitlines() == [
        "the container is privileged",
        "target: container web",
        "remediation: drop it",
    ]
    assert result_of("CIS-5.5", HOSTILE) == []  # pass
    [manual] = result_of("CIS-2.3", "unix:///var/run/docker.sock")
    assert isinstance(manual, Skipped)
    assert manual.message == "manual: judge the log level"
    [skip] = result_of("CIS-1.1.3", "host1")
    assert isinstance(skip, Skipped)
    assert skip.message == "skip: auditctl missing"
    [na] = result_of("CIS-5.7", "web")
    assert isinstance(na, Skipped)
    assert na.message == "not_applicable: no ports"
    [error] = result_of("CIS-5.8", "web")
    assert isinstance(error, Error)
    assert error.message == "the check raised KeyError: 'x'"
    [suppressed] = result_of("CIS-5.9", "web")
    assert isinstance(suppressed, Skipped)
    assert suppressed.message == "suppressed: ignore#1: legacy host"
    [evidence] = list(by_name["CIS-2.2 unix:///var/run/docker.sock: title of CIS-2.2"].result)
    assert 'evidence: {"icc": true}' in (evidence.text or "").splitlines()
    [lint] = list(by_name["DKR-DF-001 app/Dockerfile:7: title of DKR-DF-001"].result)
    assert "at: app/Dockerfile:7" in (lint.text or "").splitlines()


def test_several_findings_of_one_rule_on_one_target_are_several_testcases(mixed_report: Report, tmp_path: Path) -> None:
    by_name = cases(parsed(mixed_report, tmp_path))
    [first] = list(by_name[f"CIS-5.6 {HOSTILE}: title of CIS-5.6 (mounts {HOSTILE})"].result)
    [second] = list(by_name[f"CIS-5.6 {HOSTILE}: title of CIS-5.6 (second mount /etc)"].result)
    assert isinstance(first, Failure)
    assert isinstance(second, Failure)
    assert second.message == "second mount /etc"


def test_a_pass_and_a_failure_for_the_same_target_are_both_shown(tmp_path: Path) -> None:
    report = make_report(
        [
            finding("CIS-5.6", Status.PASS, Severity.HIGH, WEB, "/ is fine"),
            finding("CIS-5.6", Status.FAIL, Severity.HIGH, WEB, "/etc is mounted"),
        ]
    )
    by_name = cases(parsed(report, tmp_path))
    assert list(by_name["CIS-5.6 web: title of CIS-5.6 (/ is fine)"].result) == []
    [failure] = list(by_name["CIS-5.6 web: title of CIS-5.6 (/etc is mounted)"].result)
    assert isinstance(failure, Failure)
    assert failure.message == "/etc is mounted"


def test_one_testcase_per_vulnerability(tmp_path: Path) -> None:
    xml = parsed(make_image_report(vuln_findings()), tmp_path)
    [suite] = list(xml)
    assert suite.name == "Vulnerabilities in portcullis-test/vulnlab:layered"
    assert [case.name for case in suite] == [
        "CVE-2023-1234 openssl 3.0.11-1~deb12u2",
        "CVE-2023-1234 libssl3 3.0.11-1~deb12u2",
        "CVE-2024-0002 zlib1g 1:1.2.13.dfsg-1",
        "GHSA-aaaa-bbbb-cccc curl 7.88.1-10+deb12u5",
    ]
    assert (xml.tests, xml.failures) == (4, 4)
    [failure] = list(next(iter(suite)).result)
    assert isinstance(failure, Failure)
    assert failure.type == "critical"
    assert failure.message == (
        "openssl 3.0.11-1~deb12u2 is affected by CVE-2023-1234 (fixed in 3.0.15-1~deb12u1; debian-tracker: resolved)"
    )
    assert (failure.text or "").splitlines()[1:] == [
        "target: image portcullis-test/vulnlab:layered",
        "at: var/lib/dpkg/status",
        "package: openssl 3.0.11-1~deb12u2",
        "fixed in: 3.0.15-1~deb12u1",
        "severity: critical from cvss (CVSS 9.8 CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H)",
        "layer: 3 RUN apt-get install -y openssl",
        "remediation: Upgrade openssl to 3.0.15-1~deb12u1 or later.",
    ]


def test_control_characters_do_not_break_the_xml(tmp_path: Path) -> None:
    report = make_report([finding("CIS-5.5", Status.FAIL, Severity.CRITICAL, WEB, "bad\x00name\x1b[31m")])
    [case] = cases(parsed(report, tmp_path)).values()
    [failure] = list(case.result)
    assert failure.message == "bad\ufffdname\ufffd[31m"


def test_a_whole_audit_reads_back(baseline_audit: Report, tmp_path: Path) -> None:
    xml = parsed(baseline_audit, tmp_path)
    assert xml.tests == len(baseline_audit.findings)
    failing = [f for f in baseline_audit.findings if f.status is Status.FAIL and not f.suppressed_by]
    assert xml.failures == len(failing)
