"""Gates that cannot judge must not pass: selectors that match nothing and ignore-file entries that match nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from clirun import Recorded, run_cli

DOCKERFILE = Path(__file__).parents[1] / "lint" / "DKR-DF-001" / "failure" / "no-user.Dockerfile"


def rule_ids(run_json: dict[str, object]) -> set[str]:
    findings = run_json["findings"]
    assert isinstance(findings, list)
    return {f["rule_id"] for f in findings}


@pytest.mark.engine
@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--select", "CIS-99", "portcullis: error: --select 'CIS-99' matches no rule `audit` runs"),
        ("--select", "CIS-5.55", "portcullis: error: --select 'CIS-5.55' matches no rule `audit` runs; did you mean"),
        ("--skip", "CIS5.5", "portcullis: error: --skip 'CIS5.5' matches no rule `audit` runs; did you mean CIS-5.5?"),
        ("--select", "CIS-5.5,CIS-5.x", "portcullis: error: --select 'CIS-5.x' matches no rule `audit` runs"),
    ],
)
def test_audit_selector_matching_nothing_is_an_error(recorded: Recorded, flag: str, value: str, expected: str) -> None:
    run = run_cli("audit", "--facts-in", str(recorded.facts), flag, value, "--fail-on", "high")
    assert run.code == 1
    assert run.one_error_line().startswith(expected)
    assert run.stdout == ""


@pytest.mark.engine
def test_audit_comma_separated_select_and_skip(recorded: Recorded) -> None:
    run = run_cli("audit", "--facts-in", str(recorded.facts), "-f", "json", "--select", "CIS-5.5,CIS-5.4")
    assert run.code == 0, run.stderr
    assert rule_ids(run.json()) == {"CIS-5.4", "CIS-5.5"}
    run = run_cli(
        "audit", "--facts-in", str(recorded.facts), "-f", "json", "--select", "CIS-5", "--skip", "CIS-5.5,CIS-5.4"
    )
    assert run.code == 0, run.stderr
    ids = rule_ids(run.json())
    assert "CIS-5.6" in ids
    assert not ids & {"CIS-5.4", "CIS-5.5"}


def test_lint_selector_of_another_command_is_an_error() -> None:
    run = run_cli("lint", str(DOCKERFILE), "--select", "CIS-5.5")
    assert run.code == 1
    assert run.one_error_line() == "portcullis: error: --select 'CIS-5.5' matches no rule `lint` runs"


def test_lint_misspelt_skip_names_the_close_match() -> None:
    run = run_cli("lint", str(DOCKERFILE), "--skip", "dkr-df-0001")
    assert run.code == 1
    assert run.one_error_line().endswith("; did you mean DKR-DF-001?")


def test_lint_comma_separated_select() -> None:
    run = run_cli("lint", str(DOCKERFILE), "--format", "json", "--select", "DKR-DF-001,DKR-DF-002")
    assert run.code == 0, run.stderr
    assert rule_ids(run.json()) <= {"DKR-DF-001", "DKR-DF-002"}
    assert "DKR-DF-001" in rule_ids(run.json())


@pytest.mark.engine
def test_audit_ignore_entry_matching_nothing_warns_and_fails_under_strict(recorded: Recorded, tmp_path: Path) -> None:
    (tmp_path / ".portcullisignore.yaml").write_text(
        "ignore:\n  - {id: CIS-5, reason: the lab runs anything}\n  - {id: CIS-5.55, reason: a misspelt id}\n"
    )
    run = run_cli("audit", "--facts-in", str(recorded.facts), "-f", "json", cwd=tmp_path)
    assert run.code == 0, run.stderr
    assert (
        "portcullis: warning: .portcullisignore.yaml entry 2 (id CIS-5.55) matched nothing" in run.stderr.splitlines()
    )
    assert "entry 1" not in run.stderr
    strict = run_cli("audit", "--facts-in", str(recorded.facts), "--strict", cwd=tmp_path)
    assert strict.code == 1
    assert strict.one_error_line() == (
        "portcullis: error: .portcullisignore.yaml entry 2 (id CIS-5.55) matched nothing (--strict)"
    )
    assert strict.stdout == ""


def test_lint_takes_the_ignore_file_and_strict(tmp_path: Path) -> None:
    ignore = tmp_path / "accepted.yaml"
    ignore.write_text("ignore:\n  - {id: DKR-DF-001, reason: the base image sets the user}\n")
    run = run_cli("lint", str(DOCKERFILE), "--format", "json", "--ignore-file", str(ignore), "--strict")
    assert run.code == 0, run.stderr
    [accepted] = [f for f in run.json()["findings"] if f["rule_id"] == "DKR-DF-001"]
    assert accepted["suppressed_by"] == f"{ignore}#1: the base image sets the user"
    ignore.write_text("ignore:\n  - {id: DKR-DF-001, target: other.Dockerfile, reason: r}\n")
    run = run_cli("lint", str(DOCKERFILE), "--ignore-file", str(ignore), "--strict")
    assert run.code == 1
    assert run.one_error_line() == f"portcullis: error: {ignore} entry 1 (id DKR-DF-001) matched nothing (--strict)"


@pytest.mark.engine
def test_image_selector_matching_nothing_fails_before_the_image_is_read() -> None:
    run = run_cli("image", "engine:portcullis-test/vulnlab:layered", "--no-vulns", "--select", "CIS-4.1,CIS-5.5")
    assert run.code == 1
    assert run.one_error_line() == "portcullis: error: --select 'CIS-5.5' matches no rule `image` runs"


def test_rules_with_an_unknown_prefix_is_one_error_line() -> None:
    run = run_cli("rules", "CIS-99")
    assert run.code == 1
    assert (
        run.one_error_line()
        == "portcullis: error: no rule has the id or prefix 'CIS-99'; `portcullis rules` lists them"
    )


def test_audit_selector_is_checked_before_the_engine_is_reached(tmp_path: Path) -> None:
    run = run_cli("audit", "-H", f"unix://{tmp_path / 'no-engine.sock'}", "--select", "CIS-99")
    assert run.code == 1
    assert run.one_error_line().startswith("portcullis: error: --select 'CIS-99' matches no rule `audit` runs")
