"""Benchmarks as data: loading, choosing, and resolving a rule's control claims against another release."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from portcullis.checks.registry import ControlClaim, all_rules, control_claims, get_rule
from portcullis.data.benchmark import Benchmark, UnknownBenchmark, load_benchmark, parse_benchmark
from portcullis.model.findings import CisRef
from portcullis.report.sections import section_title


def control(control_id: str, level: int) -> dict[str, Any]:
    return {
        "id": control_id,
        "section": control_id.split(".")[0],
        "level": level,
        "profile": f"Level {level} - Docker - Linux",
        "assessment": "Manual",
        "title": f"control {control_id}",
    }


@pytest.fixture
def later() -> Benchmark:
    """A made-up later release: 5.1 kept, 5.5 gone (renumbered to 5.6 at level 2)."""
    return parse_benchmark(
        {
            "id": "cis-docker-9.0.0",
            "name": "CIS Docker Benchmark",
            "version": "9.0.0",
            "sections": {"5": "Runtime"},
            "controls": [control("5.1", 1), control("5.6", 2)],
        }
    )


def test_the_newest_benchmark_is_the_default() -> None:
    assert load_benchmark() == load_benchmark("cis-docker-1.8.0")


def test_an_unknown_benchmark_names_the_available_ones() -> None:
    with pytest.raises(UnknownBenchmark, match=r"unknown benchmark 'cis-docker-0\.1'; available: cis-docker-1\.8\.0"):
        load_benchmark("cis-docker-0.1")


def test_a_control_kept_by_number_carries_over_with_the_new_level(later: Benchmark) -> None:
    resolved = {r.id: r for r in all_rules(benchmark=later)}
    assert resolved["CIS-5.1"].cis == CisRef(version="9.0.0", control="5.1", level=1)
    assert "CIS-5.5" not in resolved, "a control the release lacks takes its rule out of that audit"
    assert {r.id for r in all_rules() if not r.claims} <= set(resolved), "our own rules run under every benchmark"


def test_a_rule_can_name_its_control_per_benchmark(later: Benchmark) -> None:
    privileged = get_rule("CIS-5.5")
    assert privileged is not None
    moved = dataclasses.replace(
        privileged, claims=control_claims({"cis-docker-1.8.0": "CIS-5.5", "cis-docker-9.0.0": "CIS-5.6"})
    )
    found = moved.control_in(later)
    assert found is not None and (found.id, found.level) == ("5.6", 2)
    in_1_8 = moved.control_in(load_benchmark("cis-docker-1.8.0"))
    assert in_1_8 is not None and in_1_8.id == "5.5"


def test_a_claim_naming_the_benchmark_wins_over_a_general_one(later: Benchmark) -> None:
    privileged = get_rule("CIS-5.5")
    assert privileged is not None
    both = dataclasses.replace(
        privileged, claims=(ControlClaim("CIS-5.1"), ControlClaim("CIS-5.6", "cis-docker-9.0.0"))
    )
    assert getattr(both.control_in(later), "id", None) == "5.6"
    assert getattr(both.control_in(load_benchmark("cis-docker-1.8.0")), "id", None) == "5.1"


def test_section_titles_come_from_the_findings_benchmark() -> None:
    assert section_title("5", CisRef(version="1.8.0", control="5.5", level=1)) == "CIS 5 Container runtime"
    assert section_title("5", CisRef(version="0.0.1", control="5.5", level=1)) == "5"
    assert section_title("DKR-IMG", None) == "DKR-IMG"
