"""Every control of CIS Docker Benchmark 1.8.0 has exactly one rule, at the benchmark's level.

The control list is read from the shared catalogue (reference data; never copied into the project).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from portcullis.checks.registry import all_rules
from portcullis.model.findings import Status

CATALOGUE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "cis-docker-controls.tsv"
# Controls that are a human judgment by nature: they return `manual` with evidence, never pass/fail.
JUDGMENT_ONLY = {"1.2.1", "4.2", "4.3", "4.4", "4.12", "7.4", "7.6"}


def catalogue() -> dict[str, int]:
    if not CATALOGUE.exists():
        pytest.skip(f"{CATALOGUE} is not beside the checkout")
    with CATALOGUE.open(encoding="utf-8") as handle:
        return {row["id"]: int(row["level"]) for row in csv.DictReader(handle, delimiter="\t")}


def test_every_control_has_one_rule_at_its_level() -> None:
    controls = catalogue()
    assert len(controls) == 118
    rules = {r.cis.control: r for r in all_rules() if r.cis is not None}
    assert sorted(rules) == sorted(controls)
    assert {c: r.cis.level for c, r in rules.items() if r.cis} == controls
    assert all(r.id == f"CIS-{c}" for c, r in rules.items())


def test_only_judgment_controls_are_manual_only() -> None:
    """CIS's Automated/Manual label is not our status: everything else can reach a real pass or fail."""
    manual_only = {
        r.cis.control for r in all_rules() if r.cis and Status.PASS not in r.statuses and Status.FAIL not in r.statuses
    }
    assert manual_only <= JUDGMENT_ONLY
