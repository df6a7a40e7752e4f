"""JUnit XML, read back with junitparser: suites per section, one testcase per (rule, target)."""

from __future__ import annotations

from pathlib import Path

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase
from report_samples import HOSTILE, WEB, finding, make_report

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
    # CIS-5.5 web, CIS-5.5 <script>, CIS-5.6 <script> (two findings, one case), 5.7, 5.8, 5.9
    assert (runtime.tests, runtime.failures, runtime.errors, runtime.skipped) == (6, 2, 1, 2)
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (10, 4, 1, 4)


def test_each_status_maps_to_its_junit_result(mixed_report: Report, tmp_path: Path) -> None:
    by_name = cases(parsed(mixed_report, tmp_path))

    def result_of(rule_id: str, target: str) -> list[object]:
        return list(by_name[f"{rule_id} title of {rule_id} [{target}]"].result)

    [failure] = result_of("CIS-5.5", "container web")
    assert isinstance(failure, Failure)
    assert failure.message == "the container is privileged"
    assert failure.type == "critical"
    assert "remediation: drop it" in (failure.text or "")
    assert result_of("CIS-5.5", f"container {HOSTILE}") == []  # pass
    [manual] = result_of("CIS-2.3", "daemon unix:///var/run/docker.sock")
    assert isinstance(manual, Skipped)
    assert manual.message == "manual: judge the log level"
    [na] = result_of("CIS-5.7", "container web")
    assert isinstance(na, Skipped)
    assert na.message == "not_applicable: no ports"
    [error] = result_of("CIS-5.8", "container web")
    assert isinstance(error, Error)
    assert "KeyError" in (error.message or "")
    [suppressed] = result_of("CIS-5.9", "container web")
    assert isinstance(suppressed, Skipped)
    assert suppressed.message == "suppressed: ignore#1: legacy host"


def test_several_outcomes_of_one_rule_on_one_target_are_one_testcase(mixed_report: Report, tmp_path: Path) -> None:
    by_name = cases(parsed(mixed_report, tmp_path))
    [failure] = list(by_name[f"CIS-5.6 title of CIS-5.6 [container {HOSTILE}]"].result)
    assert isinstance(failure, Failure)
    assert failure.message == f"mounts {HOSTILE}; second mount /etc"
    assert "at" not in (failure.text or "").split()  # no location on these findings


def test_a_failure_wins_over_a_pass_for_the_same_target(tmp_path: Path) -> None:
    report = make_report(
        [
            finding("CIS-5.6", Status.PASS, Severity.HIGH, WEB, "/ is fine"),
            finding("CIS-5.6", Status.FAIL, Severity.HIGH, WEB, "/etc is mounted"),
        ]
    )
    [case] = cases(parsed(report, tmp_path)).values()
    [failure] = list(case.result)
    assert isinstance(failure, Failure)
    assert failure.message == "/etc is mounted"


def test_control_characters_do_not_break_the_xml(tmp_path: Path) -> None:
    report = make_report([finding("CIS-5.5", Status.FAIL, Severity.CRITICAL, WEB, "bad\x00name\x1b[31m")])
    [case] = cases(parsed(report, tmp_path)).values()
    [failure] = list(case.result)
    assert failure.message == "bad\ufffdname\ufffd[31m"


def test_a_whole_audit_reads_back(baseline_audit: Report, tmp_path: Path) -> None:
    xml = parsed(baseline_audit, tmp_path)
    keys = {(f.rule_id, f.target.kind.value, f.target.name) for f in baseline_audit.findings}
    assert xml.tests == len(keys)
    failing = {
        (f.rule_id, f.target.kind.value, f.target.name) for f in baseline_audit.findings if f.status is Status.FAIL
    }
    assert xml.failures == len(failing)
