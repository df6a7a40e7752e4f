"""`portcullis audit --benchmark`: the newest benchmark by default, a named one on request, one error line otherwise."""

from __future__ import annotations

import json
from pathlib import Path

from clirun import run_cli

from portcullis.model.facts import FACTS_SCHEMA_VERSION

BASELINE = Path(__file__).resolve().parents[1] / "rules" / "baseline.json"


def baseline_facts(tmp_path: Path) -> Path:
    facts = tmp_path / "facts.json"
    raw = json.loads(BASELINE.read_text(encoding="utf-8"))
    snapshot = {k: v for k, v in raw.items() if not k.startswith("_")} | {"schema_version": FACTS_SCHEMA_VERSION}
    facts.write_text(json.dumps(snapshot), encoding="utf-8")
    return facts


def test_a_named_benchmark_is_the_one_reported(tmp_path: Path) -> None:
    facts = baseline_facts(tmp_path)
    default = run_cli("audit", "--facts-in", str(facts), "--format", "json")
    named = run_cli("audit", "--facts-in", str(facts), "--format", "json", "--benchmark", "cis-docker-1.8.0")
    assert default.code == named.code == 0
    assert named.json()["tool"]["benchmark"] == "CIS Docker Benchmark 1.8.0"
    assert named.json()["findings"] == default.json()["findings"]


def test_an_unknown_benchmark_is_one_error_line(tmp_path: Path) -> None:
    run = run_cli("audit", "--facts-in", str(baseline_facts(tmp_path)), "--benchmark", "cis-docker-9.9")
    assert run.code == 1
    assert run.one_error_line() == (
        "portcullis: error: unknown benchmark 'cis-docker-9.9'; available: cis-docker-1.8.0"
    )
    assert run.stdout == ""
