"""The registry's module lists stay complete: a rule declared elsewhere would silently drop out of a command."""

from __future__ import annotations

import importlib

from portcullis.checks.registry import _RULES, IMAGE_RULE_MODULES, RULE_MODULES, all_rules
from portcullis.model.findings import TargetKind


def test_every_registered_rule_comes_from_a_listed_module() -> None:
    for module in RULE_MODULES:
        importlib.import_module(module)
    stray = {r.id: r.check.__module__ for r in _RULES.values() if r.check.__module__ not in RULE_MODULES}
    assert stray == {}
    assert len(all_rules()) == len(_RULES)


def test_image_rule_modules_hold_every_image_rule() -> None:
    everything = {r.id for r in all_rules() if r.scope is TargetKind.IMAGE}
    from_image_modules = {r.id for r in all_rules(IMAGE_RULE_MODULES) if r.scope is TargetKind.IMAGE}
    assert everything == from_image_modules
    assert len(everything) >= 20  # CIS-4.x image controls and the DKR-IMG rules
