"""An image judged on its own (`portcullis image`) gets the same findings as the same image seen through an engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_rule_fixtures import HERE, load_fixture

from portcullis.checks.registry import IMAGE_RULE_MODULES, all_rules
from portcullis.checks.runner import run_image_rules, run_rules
from portcullis.model.facts import Facts, HostFacts
from portcullis.model.findings import TargetKind

IMAGE_RULES = [r for r in all_rules(IMAGE_RULE_MODULES) if r.scope is TargetKind.IMAGE]
IMAGE_FIXTURES = sorted(p for r in IMAGE_RULES for p in (HERE / r.id).glob("*.json"))


@pytest.mark.parametrize("path", IMAGE_FIXTURES, ids=[f"{p.parent.name}/{p.stem}" for p in IMAGE_FIXTURES])
def test_an_image_alone_is_judged_like_the_same_image_on_an_engine(path: Path) -> None:
    facts, _ = load_fixture(path)
    assert isinstance(facts, Facts)
    # An image read on its own carries no auditing environment: compare with an engine whose host is unknown too.
    through_engine = facts.model_copy(update={"host": HostFacts()})
    for image in facts.images:
        alone = run_image_rules(IMAGE_RULES, image, facts.collected_at, facts.eol_tables)
        on_engine = run_rules(IMAGE_RULES, through_engine.model_copy(update={"images": [image]}))
        assert [f.model_dump() for f in alone] == [f.model_dump() for f in on_engine]
