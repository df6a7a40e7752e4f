"""The 13 `inside` rules share one judgement of a signals snapshot instead of judging it 13 times."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import pytest

from portcullis.checks.registry import Rule, all_rules, select_rules
from portcullis.checks.runner import evaluate_on
from portcullis.inside import analyse as analyse_module
from portcullis.model.findings import Target, TargetKind

RECORDED = Path(__file__).resolve().parents[1] / "runtime" / "signals" / "near-privileged.inside.json"
TARGET = Target(kind=TargetKind.CONTAINER, name="recorded")


@pytest.fixture
def judge_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    calls: Counter[str] = Counter()

    def counted(judge: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
        @wraps(judge)
        def call(signals: dict[str, Any]) -> Any:
            calls[judge.__name__] += 1
            return judge(signals)

        return call

    monkeypatch.setattr(analyse_module, "CHECKS", tuple(counted(judge) for judge in analyse_module.CHECKS))
    return calls


def _inside_rules() -> list[Rule]:
    return list(select_rules(all_rules(), command="inside"))


def test_every_rule_reads_one_judgement_of_the_snapshot(judge_calls: Counter[str]) -> None:
    signals = json.loads(RECORDED.read_text())
    findings = [f for rule in _inside_rules() for f in evaluate_on(rule, signals, TARGET)]
    assert len({f.rule_id for f in findings}) == 13
    assert judge_calls == Counter({judge.__name__: 1 for judge in analyse_module.CHECKS})


def test_a_new_snapshot_is_judged_afresh(judge_calls: Counter[str]) -> None:
    signals = json.loads(RECORDED.read_text())
    rule = _inside_rules()[0]
    before = evaluate_on(rule, signals, TARGET)
    changed = dict(signals, caps=dict(signals["caps"], CapEff="0000000000000000"))
    after = evaluate_on(rule, changed, TARGET)
    assert sum(judge_calls.values()) == 2 * len(analyse_module.CHECKS)
    assert [f.status.value for f in before] == ["fail"]
    assert [f.status.value for f in after] == ["pass"]
