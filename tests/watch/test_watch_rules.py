"""The rule sets `watch` judges with, and how --select/--skip/--level narrow them together (no engine)."""

from __future__ import annotations

import re

import pytest

from portcullis.model.findings import TargetKind
from portcullis.pipelines.audit import choose_benchmark
from portcullis.pipelines.errors import UsageError
from portcullis.pipelines.watch import watch_rules


def test_the_three_sets_hold_their_own_rules() -> None:
    rules = watch_rules([], [], None, choose_benchmark(None))
    container = {r.id for r in rules.container}
    assert {"CIS-5.4", "CIS-5.32", "DKR-RT-001"} <= container
    assert all(r.scope is TargetKind.CONTAINER and "audit" in r.commands for r in rules.container)
    assert {"CIS-4.1"} <= {r.id for r in rules.image}
    assert all(r.scope is TargetKind.IMAGE for r in rules.image)
    assert rules.inside and all(r.id.startswith("DKR-IN-") for r in rules.inside)
    assert not container & {r.id for r in rules.image}


def test_select_and_skip_narrow_every_set_at_once() -> None:
    rules = watch_rules(["CIS-5.4", "CIS-4.1", "DKR-IN-001"], [], None, choose_benchmark(None))
    assert [r.id for r in rules.container] == ["CIS-5.4"]
    assert [r.id for r in rules.image] == ["CIS-4.1"]
    assert [r.id for r in rules.inside] == ["DKR-IN-001"]
    skipped = watch_rules([], ["CIS-5", "DKR-IN"], None, choose_benchmark(None))
    assert all(not r.id.startswith("CIS-5") for r in skipped.container) and not skipped.inside
    assert {r.id for r in skipped.container} == {r.id for r in skipped.container if r.id.startswith("DKR-RT-")}


def test_a_selector_that_matches_nothing_is_refused() -> None:
    with pytest.raises(UsageError, match=re.escape("--select 'CIS-9.99' matches no rule `watch` runs")):
        watch_rules(["CIS-9.99"], [], None, choose_benchmark(None))
    with pytest.raises(UsageError, match="--skip"):
        watch_rules([], ["DKR-DF-001"], None, choose_benchmark(None))  # a lint rule: not one `watch` runs
