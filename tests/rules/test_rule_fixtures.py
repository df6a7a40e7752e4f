"""Every rule over its recorded-facts fixtures (tests/rules/<RULE-ID>/<status>-<case>.json).

A fixture holds a facts fragment deep-merged over baseline.json and the expected outcome:
``expect.status`` (required), and optionally ``expect.target`` (which finding to look at),
``expect.evidence`` (key/values that must appear) and ``expect.message`` (a substring).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from portcullis.checks.registry import all_rules, get_rule
from portcullis.checks.runner import evaluate, evaluate_on
from portcullis.model.facts import Facts
from portcullis.model.findings import Status, Target, TargetKind

HERE = Path(__file__).parent
BASELINE = json.loads((HERE / "baseline.json").read_text())
FIXTURES = sorted(p for p in HERE.glob("*/*.json"))
# Signals recorded by `collect.inside.collect_self` in real containers (see tests/runtime/signals/README.md).
SIGNALS = HERE.parent / "runtime" / "signals"


def deep_merge(base: Any, overlay: Any) -> Any:
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = deep_merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(overlay)


def load_fixture(path: Path) -> tuple[Facts | dict[str, Any], dict[str, Any]]:
    """Facts for audit rules; for `inside` rules, a recorded signals file plus overrides; for `prove`
    rules, a recorded measurement."""
    spec = json.loads(path.read_text())
    if "measurement" in spec:
        return spec["measurement"], spec["expect"]
    if "signals_file" in spec:
        recorded = json.loads((SIGNALS / spec["signals_file"]).read_text())
        return deep_merge(recorded, spec.get("signals", {})), spec["expect"]
    raw = deep_merge({k: v for k, v in BASELINE.items() if not k.startswith("_")}, spec.get("facts", {}))
    return Facts.model_validate(raw), spec["expect"]


def contains(actual: Any, expected: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and contains(actual[k], v) for k, v in expected.items())
    return bool(actual == expected)


@pytest.mark.parametrize("path", FIXTURES, ids=[f"{p.parent.name}/{p.stem}" for p in FIXTURES])
def test_fixture(path: Path) -> None:
    rule = get_rule(path.parent.name)
    assert rule is not None, f"no rule {path.parent.name}"
    facts, expect = load_fixture(path)
    assert path.stem.split("-")[0] == expect["status"] or path.stem.startswith(expect["status"].replace("_", "-")), (
        "the file name starts with the expected status"
    )
    if isinstance(facts, Facts):
        findings = evaluate(rule, facts)
    else:
        findings = evaluate_on(rule, facts, Target(kind=TargetKind.CONTAINER, name="recorded"))
    if "target" in expect:
        findings = [f for f in findings if f.target.name == expect["target"]]
    assert findings, "the rule produced no finding for the target"
    for finding in findings:
        assert finding.status == Status(expect["status"]), finding.message
        if "evidence" in expect:
            assert contains(finding.evidence, expect["evidence"]), finding.evidence
        if "message" in expect:
            assert expect["message"] in finding.message


def test_every_status_a_rule_declares_has_a_fixture() -> None:
    missing = []
    for rule in all_rules():
        if "lint" in rule.commands:
            continue  # file rules: real Dockerfile/compose cases, tests/lint/<RULE-ID>/ (test_lint_rules.py)
        for status in rule.statuses:
            prefix = status.value.replace("_", "-")
            if not list((HERE / rule.id).glob(f"{prefix}-*.json")):
                missing.append(f"{rule.id}:{status.value}")
    assert not missing, f"fixtures missing for {missing}"


def test_fixture_statuses_are_declared() -> None:
    for path in FIXTURES:
        rule = get_rule(path.parent.name)
        assert rule is not None
        expected = Status(json.loads(path.read_text())["expect"]["status"])
        assert expected in rule.statuses, f"{path}: {rule.id} does not declare {expected.value}"
