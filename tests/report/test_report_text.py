"""Text: fits 80 and 120 columns, lists what needs attention, vulnerabilities as a table, colour only when asked for."""

from __future__ import annotations

import io
import os
import re

import pytest
from report_samples import HOSTILE, WEB, finding, make_report, mixed_findings, vuln_findings

from portcullis.model.findings import Report, Severity, Status
from portcullis.report import text

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def full_report() -> Report:
    long = finding("CIS-5.10", Status.FAIL, Severity.MEDIUM, WEB, "no memory limit; " * 20)
    findings = mixed_findings()
    findings.insert(-1, long)  # in the CIS 5 section, before the Dockerfile finding
    return make_report([*findings, *vuln_findings()])


def lines_of(report: Report, width: int, **options: bool) -> list[str]:
    return text.render(report, width, colour=False, **options).splitlines()


@pytest.mark.parametrize("width", [80, 120])
def test_no_line_is_wider_than_the_terminal(full_report: Report, width: int) -> None:
    for show_all in (False, True):
        lines = lines_of(full_report, width, show_all=show_all)
        assert max(len(line) for line in lines) <= width
        assert all(line == line.rstrip() for line in lines)
    coloured = text.render(full_report, width, colour=True)
    assert max(len(ANSI.sub("", line)) for line in coloured.splitlines()) <= width


def test_80_columns_put_the_message_under_the_target(full_report: Report) -> None:
    lines = lines_of(full_report, 80)
    at = lines.index("FAIL    critical  CIS-5.5   web")
    assert lines[at + 1] == "                            the container is privileged"
    assert "status  severity  rule      target / message" in lines
    assert f"FAIL    high      CIS-5.6   {HOSTILE}" in lines
    assert "FAIL    low       DKR-DF-001  app/Dockerfile:7" in lines
    at = lines.index("FAIL    medium    CIS-5.10  web")
    assert lines[at + 1] == "                            no memory limit; no memory limit; no memory limit;"


def test_120_columns_give_the_message_its_own_column(full_report: Report) -> None:
    lines = lines_of(full_report, 120)
    assert "FAIL    critical  CIS-5.5   web                          the container is privileged" in lines
    assert "MANUAL  low       CIS-2.3  unix:///var/run/docker.sock  judge the log level" in lines


def test_vulnerabilities_are_a_table_most_severe_first(full_report: Report) -> None:
    lines = lines_of(full_report, 80)
    at = lines.index("Vulnerabilities in portcullis-test/vulnlab:layered: 4")
    assert lines[at + 1 : at + 6] == [
        "package installed         fixed in          advisory            severity layer",
        "libssl3 3.0.11-1~deb12u2  3.0.15-1~deb12u1  CVE-2023-1234       critical     3",
        "openssl 3.0.11-1~deb12u2  3.0.15-1~deb12u1  CVE-2023-1234       critical     3",
        "curl    7.88.1-10+deb12u5 7.88.1-10+deb12u6 GHSA-aaaa-bbbb-cccc medium       3",
        "zlib1g  1:1.2.13.dfsg-1   no fix yet        CVE-2024-0002       low          3",
    ]
    wide = lines_of(full_report, 120)
    at = wide.index("Vulnerabilities in portcullis-test/vulnlab:layered: 4")
    assert wide[at + 1] == "package  installed          fixed in           advisory             severity  layer"
    assert wide[at + 4] == "curl     7.88.1-10+deb12u5  7.88.1-10+deb12u6  GHSA-aaaa-bbbb-cccc  medium        3"


def test_by_default_only_what_needs_attention_is_listed(full_report: Report) -> None:
    lines = lines_of(full_report, 120)
    statuses = {
        line.split()[0]
        for line in lines
        if line[:6].strip() in {"PASS", "FAIL", "MANUAL", "SKIP", "N/A", "ERROR", "IGNORED"}
    }
    assert statuses == {"FAIL", "MANUAL", "SKIP", "ERROR"}
    assert lines[-5:] == [
        "Summary: 16 findings: 1 pass, 10 fail, 1 manual, 1 skip, 1 n/a, 1 error",
        "1 suppressed by ignore rules",
        "Failures by severity: 3 critical, 2 high, 3 medium, 2 low",
        "3 passed, not applicable or suppressed finding(s) not listed (-a lists them)",
        "note: auditctl rules not collected: auditctl is not installed",
    ]


def test_show_all_lists_every_finding(full_report: Report) -> None:
    lines = lines_of(full_report, 120, show_all=True)
    assert f"PASS     critical  CIS-5.5   {HOSTILE}  not privileged" in lines
    assert "N/A      low       CIS-5.7   web                          no ports" in lines
    assert "IGNORED  low       CIS-5.9   web                          accepted" in lines
    assert not any("not listed" in line for line in lines)


def test_colour_only_when_asked(full_report: Report) -> None:
    assert "\x1b[" in text.render(full_report, 80, colour=True)
    assert "\x1b[" not in text.render(full_report, 80, colour=False)


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return 99


def test_colour_follows_the_tty_and_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("PORTCULLIS_COLOR", raising=False)
    assert text.use_colour(FakeTty()) is True
    assert text.use_colour(io.StringIO()) is False  # piped
    monkeypatch.setenv("NO_COLOR", "")
    assert text.use_colour(FakeTty()) is False
    monkeypatch.setenv("PORTCULLIS_COLOR", "always")
    assert text.use_colour(FakeTty()) is False  # NO_COLOR wins
    monkeypatch.delenv("NO_COLOR")
    assert text.use_colour(io.StringIO()) is True
    monkeypatch.setenv("PORTCULLIS_COLOR", "never")
    assert text.use_colour(FakeTty()) is False


def test_width_is_columns_then_the_tty_then_80(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(os, "get_terminal_size", lambda fd: os.terminal_size((132, 40)))
    assert text.terminal_width(FakeTty()) == 132
    assert text.terminal_width(io.StringIO()) == 80
    monkeypatch.setenv("COLUMNS", "100")
    assert text.terminal_width(io.StringIO()) == 100
    assert text.terminal_width(FakeTty()) == 100


def test_default_render_off_a_tty_is_80_columns_without_colour(
    full_report: Report, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("PORTCULLIS_COLOR", raising=False)
    rendered = text.render(full_report)  # stdout is captured by pytest: not a TTY
    assert rendered == text.render(full_report, 80, colour=False)


def test_markup_in_names_and_messages_is_printed_as_is() -> None:
    hostile = finding("CIS-5.5", Status.FAIL, Severity.HIGH, WEB, "[/red] [bold]loud[/bold] [link=x]y")
    for width in (80, 120):
        assert "[/red] [bold]loud[/bold] [link=x]y" in text.render(make_report([hostile]), width, colour=True)
