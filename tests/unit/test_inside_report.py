"""The zipapp hand-builds its JSON report without pydantic; it must still be a `Report`, and the same one
`portcullis inside` builds through the rule registry from the same signals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from portcullis.inside.analyse import analyse
from portcullis.inside.main import build_report
from portcullis.model.findings import Report, Target, TargetKind
from portcullis.pipelines.inside import inside_report

RECORDED = sorted((Path(__file__).resolve().parents[1] / "runtime" / "signals").glob("*.inside.json"))
SUBJECT = "this container"


def zipapp_report(signals: dict[str, Any]) -> dict[str, Any]:
    """The report exactly as the zipapp prints it: built, then through JSON."""
    printed: dict[str, Any] = json.loads(json.dumps(build_report(analyse(signals), SUBJECT)))
    return printed


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in report.items() if key != "started_at"}


@pytest.mark.parametrize("path", RECORDED, ids=[p.name.removesuffix(".inside.json") for p in RECORDED])
def test_zipapp_report_is_the_report_model(path: Path) -> None:
    printed = zipapp_report(json.loads(path.read_text()))
    validated = Report.model_validate(printed)
    # Validation alone would drop unknown keys and fill missing ones: the round trip must give it back.
    assert _comparable(validated.model_dump(mode="json")) == _comparable(printed)


@pytest.mark.parametrize("path", RECORDED, ids=[p.name.removesuffix(".inside.json") for p in RECORDED])
def test_zipapp_report_equals_the_registry_report(path: Path) -> None:
    signals = json.loads(path.read_text())
    from_zipapp = Report.model_validate(zipapp_report(signals))
    from_registry = inside_report(signals, Target(kind=TargetKind.CONTAINER, name=SUBJECT))
    assert from_zipapp.findings == from_registry.findings
    assert from_zipapp.summary == from_registry.summary
    assert _comparable(from_zipapp.model_dump()) == _comparable(from_registry.model_dump())


def test_a_drifted_report_is_caught() -> None:
    printed = zipapp_report(json.loads(RECORDED[0].read_text()))
    printed["findings"][0]["fixed_in"] = "a key the model does not know"
    validated = Report.model_validate(printed)
    assert _comparable(validated.model_dump(mode="json")) != _comparable(printed)
