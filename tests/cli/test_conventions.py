"""The conventions in users' fingers (issue 12 §3): -h, --version, -q, --timeout, --severity, --exit-code, -f as the
format everywhere, sbom format names, the config file and PORTCULLIS_<FLAG> variables, `rules DKR-VULN`."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import Recorded, run_cli

from portcullis.cli.conventions import parse_duration

DOCKERFILE = """FROM alpine:latest
RUN curl http://example.com/install.sh | sh
ADD http://example.com/y /y
USER root
"""
EVERY_COMMAND = [
    ["audit"], ["image"], ["sbom"], ["lint"], ["inside"], ["prove"], ["overhead"], ["neighbours"], ["rules"],
    ["schema"],
    ["db", "update"], ["db", "status"], ["harden", "container"],
]  # fmt: skip


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    return tmp_path


def severities(stdout: str) -> set[str]:
    return {f["severity"] for f in json.loads(stdout)["findings"]}


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=[" ".join(c) for c in EVERY_COMMAND])
def test_dash_h_is_help_on_every_command(command: list[str]) -> None:
    result = run_cli(*command, "-h")
    assert result.code == 0, result.stderr
    assert "Usage:" in result.stdout


def test_top_level_version_and_h() -> None:
    assert run_cli("--version").stdout.startswith("portcullis ")
    assert "Usage:" in run_cli("-h").stdout


def test_lint_dash_f_is_the_format(project: Path) -> None:
    result = run_cli("lint", "-f", "json", "Dockerfile", cwd=project)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["command"] == "lint"


def test_severity_reports_and_gates_only_those(project: Path) -> None:
    everything = run_cli("lint", "-f", "json", "Dockerfile", cwd=project)
    assert {"high", "medium", "low"} <= severities(everything.stdout)
    chosen = run_cli("lint", "-f", "json", "--severity", "HIGH,Critical", "Dockerfile", cwd=project)
    assert severities(chosen.stdout) == {"high"}
    # the high failures are out of the report, so they cannot trip a high gate
    assert run_cli("lint", "--severity", "low", "--fail-on", "high", "Dockerfile", cwd=project).code == 0
    assert run_cli("lint", "--severity", "low,high", "--fail-on", "high", "Dockerfile", cwd=project).code == 2


def test_unknown_severity_is_one_line(project: Path) -> None:
    result = run_cli("lint", "--severity", "HIGH,severe", "Dockerfile", cwd=project)
    assert result.code == 1
    assert "'severe' is not a severity" in result.one_error_line()


def test_exit_code_on_lint(project: Path) -> None:
    assert run_cli("lint", "--fail-on", "low", "--exit-code", "9", "Dockerfile", cwd=project).code == 9


def test_audit_severity_on_replayed_facts(recorded: Recorded) -> None:
    assert len({f["severity"] for f in recorded.report["findings"]}) > 1
    replay = run_cli("audit", "--facts-in", str(recorded.facts), "-f", "json", "--severity", "Critical")
    assert severities(replay.stdout) == {"critical"}  # CIS-5.5 on the planted privileged container


def test_inside_takes_severity_and_exit_code() -> None:
    # on this host (not in a container) the self-assessment fails at several severities
    assert run_cli("inside", "--no-probes", "-q", "--fail-on", "low", "--exit-code", "7").code == 7
    critical = run_cli("inside", "--no-probes", "-f", "json", "--severity", "CRITICAL")
    assert severities(critical.stdout) <= {"critical"}
    assert len(severities(run_cli("inside", "--no-probes", "-f", "json").stdout)) > 1


@pytest.mark.parametrize("command", ["audit", "image", "lint", "inside", "prove"])
def test_exit_code_and_severity_on_every_judging_command(command: str) -> None:
    help_text = run_cli(command, "-h", env={"COLUMNS": "200"}).stdout
    assert "--exit-code" in help_text
    if command != "prove":  # prove's findings are proofs of configured limits, one severity each
        assert "--severity" in help_text


def test_quiet_silences_notes_not_errors(project: Path) -> None:
    loud = run_cli("lint", "-o", "report.txt", "Dockerfile", cwd=project)
    assert "report written to" in loud.stderr
    quiet = run_cli("lint", "-q", "-o", "report.txt", "Dockerfile", cwd=project)
    assert quiet.code == 0
    assert quiet.stderr == ""
    assert "no-such-file" in run_cli("lint", "-q", "no-such-file", cwd=project).one_error_line()


def test_config_file_then_env_then_flag(project: Path) -> None:
    (project / "portcullis.yaml").write_text("fail-on: low\nlint:\n  format: json\n")
    from_file = run_cli("lint", "Dockerfile", cwd=project)
    assert from_file.code == 2  # fail-on low from the file
    assert json.loads(from_file.stdout)["command"] == "lint"
    from_env = run_cli("lint", "Dockerfile", cwd=project, env={"PORTCULLIS_FORMAT": "sarif"})
    assert "$schema" in json.loads(from_env.stdout)
    from_flag = run_cli("lint", "-f", "text", "Dockerfile", cwd=project, env={"PORTCULLIS_FORMAT": "sarif"})
    assert from_flag.stdout.startswith("Portcullis lint")


def test_env_list_and_second_spelling(project: Path) -> None:
    result = run_cli("lint", "-f", "json", "Dockerfile", cwd=project, env={"PORTCULLIS_SEVERITY": "medium"})
    assert severities(result.stdout) == {"medium"}
    assert "PORTCULLIS_IGNORE_UNFIXED" in run_cli("image", "-h", env={"COLUMNS": "300"}).stdout


def test_named_config_file_and_unknown_keys(project: Path) -> None:
    (project / "ci.yaml").write_text("lint:\n  severity: [critical]\n  format: json\n")
    assert severities(run_cli("lint", "--config", "ci.yaml", "Dockerfile", cwd=project).stdout) == set()
    (project / "docs.yaml").write_text("severity: HIGH,CRITICAL\nlint:\n  format: json\n")  # as docs/configuration.md
    assert severities(run_cli("lint", "--config", "docs.yaml", "Dockerfile", cwd=project).stdout) == {"high"}
    (project / "portcullis.yaml").write_text("fial-on: high\n")
    result = run_cli("lint", "Dockerfile", cwd=project)
    assert result.code == 1
    assert "unknown key 'fial-on'" in result.one_error_line()
    (project / "portcullis.yaml").write_text("lint:\n  benchmark: cis\n")  # an audit option, not lint's
    assert "lint: unknown key 'benchmark'" in run_cli("lint", "Dockerfile", cwd=project).one_error_line()


@pytest.mark.parametrize(("text", "seconds"), [("300", 300), ("300s", 300), ("5m", 300), ("1h", 3600), (" 2M ", 120)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


def test_a_bad_duration_is_one_line(project: Path) -> None:
    result = run_cli("lint", "--timeout", "5 minutes", "Dockerfile", cwd=project)
    assert result.code == 1
    assert "is not a duration" in result.one_error_line()


@pytest.fixture()
def silent_registry() -> Iterator[int]:
    """A TCP port that accepts connections and never answers: a registry that hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_timeout_stops_a_hanging_command_with_one_line(silent_registry: int) -> None:
    where = f"127.0.0.1:{silent_registry}"
    started = time.monotonic()
    result = run_cli(
        "image", f"registry:{where}/app:1", "--insecure-registry", where, "--no-vulns", "--timeout", "2s",
        env={"PORTCULLIS_DOWNLOAD_TIMEOUT": "120"},
    )  # fmt: skip
    assert time.monotonic() - started < 60
    assert result.code == 1
    assert "--timeout 2s expired" in result.one_error_line()


def test_sbom_accepts_syft_names_and_refuses_a_format_as_output(tmp_path: Path) -> None:
    result = run_cli("sbom", "--no-vulns", "-o", "cyclonedx-json", "dir:.", cwd=tmp_path)
    assert result.code == 1
    assert "format name" in result.one_error_line()
    assert not (tmp_path / "cyclonedx-json").exists()
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_text("ID=debian\nVERSION_ID=12\n")
    spdx = run_cli("sbom", "--no-vulns", "-f", "SPDX-JSON", f"dir:{tmp_path}")
    assert spdx.code == 0, spdx.stderr
    assert json.loads(spdx.stdout)["spdxVersion"] == "SPDX-2.3"


def test_report_output_named_like_a_format_is_refused(project: Path) -> None:
    result = run_cli("lint", "-o", "json", "Dockerfile", cwd=project)
    assert result.code == 1
    assert "format name" in result.one_error_line()
    assert not (project / "json").exists()


def test_rules_explains_the_findings_of_a_look_that_failed() -> None:
    for rule_id, words in (
        ("dkr-engine-unreachable", ("DKR-ENGINE-UNREACHABLE:", "--tlscacert", "exit code is 1")),
        ("DKR-IMAGE-UNREADABLE", ("DKR-IMAGE-UNREADABLE:", "--max-bytes", "image --all")),
        ("DKR-VULN-UNDECIDED", ("DKR-VULN-UNDECIDED: the package could not be matched",)),
    ):
        result = run_cli("rules", rule_id)
        assert result.code == 0, result.stderr
        for word in words:
            assert word in result.stdout, (rule_id, word)


def test_rules_explains_the_vulnerability_findings() -> None:
    result = run_cli("rules", "dkr-vuln")
    assert result.code == 0, result.stderr
    for words in ("DKR-VULN:", "CVSS base score", "--vuln-ignore", "--vex", "--ignore-unfixed", "manual"):
        assert words in result.stdout
