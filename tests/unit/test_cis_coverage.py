"""Every control of every benchmark we ship has exactly one rule, and the 1.8.0 data file matches the catalogue.

The controls come from the package's own data files, so this runs on every clone; the shared catalogue
(`../shared/reference/cis-docker-controls.tsv`, reference data never copied into the project) is a second
opinion when it sits beside the checkout.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

import portcullis
from portcullis.checks.registry import _RULES, all_rules
from portcullis.data.benchmark import Assessment, benchmark_ids, load_benchmark
from portcullis.model.findings import Status

CATALOGUE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "cis-docker-controls.tsv"
# Controls that are a human judgment by nature: they return `manual` with evidence, never pass/fail.
JUDGMENT_ONLY = {"1.2.1", "4.2", "4.3", "4.4", "4.12", "7.4", "7.6"}


def test_the_1_8_0_data_file_holds_all_118_controls() -> None:
    benchmark = load_benchmark("cis-docker-1.8.0")
    assert benchmark.label == "CIS Docker Benchmark 1.8.0"
    assert len(benchmark.controls) == 118
    assert Counter(c.section.split(".")[0] for c in benchmark.controls.values()) == {
        "1": 20,
        "2": 19,
        "3": 24,
        "4": 12,
        "5": 32,
        "6": 2,
        "7": 9,
    }
    for control in benchmark.controls.values():
        assert control.section in benchmark.sections, control.id
        assert control.id.startswith(control.section + "."), control.id
        assert control.profile == f"Level {control.level} - Docker - Linux", control.id
        assert control.title, control.id


@pytest.mark.parametrize("benchmark_id", benchmark_ids())
def test_every_control_has_exactly_one_rule(benchmark_id: str) -> None:
    benchmark = load_benchmark(benchmark_id)
    implemented = Counter(r.cis.control for r in all_rules(benchmark=benchmark) if r.cis is not None)
    assert sorted(implemented) == sorted(benchmark.controls)
    assert {control for control, rules in implemented.items() if rules > 1} == set()


def test_levels_come_from_the_benchmark() -> None:
    benchmark = load_benchmark("cis-docker-1.8.0")
    for found in all_rules(benchmark=benchmark):
        if found.cis is not None:
            assert found.cis.level == benchmark.controls[found.cis.control].level, found.id
            assert found.cis.version == "1.8.0"


def test_every_rule_claiming_a_control_implements_one_somewhere() -> None:
    """A claim no benchmark resolves (a typo such as CIS-5.55) would silently drop the rule from every audit."""
    resolved = {r.id for benchmark_id in benchmark_ids() for r in all_rules(benchmark=load_benchmark(benchmark_id))}
    assert {r.id for r in _RULES.values() if r.claims} <= resolved


def test_the_package_constant_names_the_newest_benchmark() -> None:
    """`portcullis image` and `--version` still read the constant; it must not drift from the data files."""
    assert load_benchmark().version == portcullis.CIS_BENCHMARK_VERSION


def test_the_data_file_agrees_with_the_shared_catalogue() -> None:
    if not CATALOGUE.exists():
        pytest.skip(f"{CATALOGUE} is not beside the checkout")
    with CATALOGUE.open(encoding="utf-8") as handle:
        rows = {row["id"]: row for row in csv.DictReader(handle, delimiter="\t")}
    controls = load_benchmark("cis-docker-1.8.0").controls
    assert sorted(controls) == sorted(rows)
    for control_id, row in rows.items():
        control = controls[control_id]
        assert control.level == int(row["level"]), control_id
        assert control.assessment is Assessment(row["assessment"]), control_id
        assert control.section == row["section"].split()[0], control_id


def test_only_judgment_controls_are_manual_only() -> None:
    """CIS's Automated/Manual label is not our status: everything else can reach a real pass or fail."""
    manual_only = {
        r.cis.control for r in all_rules() if r.cis and Status.PASS not in r.statuses and Status.FAIL not in r.statuses
    }
    assert manual_only <= JUDGMENT_ONLY
