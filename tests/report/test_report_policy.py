"""The ignore file: parsing, one-line errors, expiry, matching by id prefix and target glob."""

from __future__ import annotations

from datetime import date

import pytest
from report_samples import WEB, finding, make_report, mixed_findings

from portcullis.model.findings import Severity, Status
from portcullis.pipelines.policy import PolicyError, parse_policy

TODAY = date(2026, 6, 15)


def policy(text: str):  # type: ignore[no-untyped-def]
    return parse_policy(text, ".portcullisignore.yaml", TODAY)


def test_suppressed_findings_keep_status_and_are_counted_apart() -> None:
    report = make_report([f.model_copy(update={"suppressed_by": None}) for f in mixed_findings()])
    result = policy(
        """
ignore:
  - id: CIS-5.6
    target: "<script>*"
    reason: the lab container mounts /etc on purpose
  - id: cis-2
    reason: daemon settings are owned by the platform team
"""
    ).apply(report)
    suppressed = [(f.rule_id, f.status, f.suppressed_by) for f in result.findings if f.suppressed_by]
    assert suppressed == [
        ("CIS-2.2", Status.FAIL, ".portcullisignore.yaml#2: daemon settings are owned by the platform team"),
        ("CIS-2.3", Status.MANUAL, ".portcullisignore.yaml#2: daemon settings are owned by the platform team"),
        ("CIS-5.6", Status.FAIL, ".portcullisignore.yaml#1: the lab container mounts /etc on purpose"),
        ("CIS-5.6", Status.FAIL, ".portcullisignore.yaml#1: the lab container mounts /etc on purpose"),
    ]
    assert len(result.findings) == len(report.findings), "never dropped"
    assert result.summary.suppressed == 4
    assert result.summary.by_status[Status.FAIL] == 3  # 5.5 web, 5.9 web, DKR-DF-001 stay counted
    assert result.summary.failed_by_severity == {Severity.CRITICAL: 1, Severity.LOW: 2}
    assert [f.rule_id for f in result.failures_at_or_above(Severity.HIGH)] == ["CIS-5.5"]


def test_prefix_stops_at_a_boundary_and_glob_is_on_the_target_name() -> None:
    report = make_report(mixed_findings())
    entries = "ignore:\n  - {id: CIS-5.5, target: 'we?', reason: r}\n  - {id: CIS-5.1, reason: r}\n"
    result = policy(entries).apply(report)
    assert [(f.rule_id, f.target.name, f.suppressed_by) for f in result.findings if f.suppressed_by] == [
        ("CIS-5.5", "web", ".portcullisignore.yaml#1: r"),  # not CIS-5.5 on the other container
        ("CIS-5.9", "web", "ignore#1: legacy host"),  # suppressed before: kept as it was
    ]


def test_a_prefix_matches_whole_components_only() -> None:
    report = make_report(
        [
            finding("CIS-5.1", Status.FAIL, Severity.LOW, WEB, "a"),
            finding("CIS-5.10", Status.FAIL, Severity.LOW, WEB, "b"),
            finding("CIS-1.1.3", Status.FAIL, Severity.LOW, WEB, "c"),
        ]
    )
    result = policy("ignore:\n  - {id: CIS-5.1, reason: r}\n  - {id: CIS-1.1, reason: r}\n").apply(report)
    assert [f.rule_id for f in result.findings if f.suppressed_by] == ["CIS-5.1", "CIS-1.1.3"]


def test_expired_entries_no_longer_apply() -> None:
    parsed = policy(
        "ignore:\n"
        "  - {id: CIS-5.5, reason: r, expires: 2026-06-14}\n"
        "  - {id: CIS-5.6, reason: r, expires: '2026-06-15'}\n"
    )
    assert [(e.number, e.entry.id) for e in parsed.expired] == [(1, "CIS-5.5")]
    assert [(e.number, e.entry.id) for e in parsed.active] == [(2, "CIS-5.6")]
    result = parsed.apply(make_report(mixed_findings()))
    assert {f.rule_id for f in result.findings if f.suppressed_by and f.suppressed_by.startswith(".")} == {"CIS-5.6"}


def test_an_empty_file_suppresses_nothing() -> None:
    assert policy("").active == []
    assert policy("ignore: []\n").active == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ignore:\n  - id: CIS-5.5\n", "entry 1, field `reason` is required"),
        (
            "ignore:\n  - {id: CIS-5.5, reason: '  '}\n",
            "entry 1, field `reason` String should have at least 1 character",
        ),
        (
            "ignore:\n  - {id: CIS-5.5, reason: r, expires: soon}\n",
            "entry 1, field `expires` Input should be a valid date",
        ),
        ("ignore:\n  - {id: CIS-5.5, reason: r, paths: [x]}\n", "entry 1, field `paths` is not a known field"),
        ("ignores: []\n", "top level, field `ignores` is not known"),
        ("ignore: CIS-5.5\n", "top level, field `ignore` Input should be a valid list"),
        ("- id: CIS-5.5\n", "must be a mapping with an `ignore:` list"),
        ("ignore:\n  - {id: CIS-5.5, reason: r\n", "is not valid YAML at line 3"),
    ],
)
def test_malformed_files_give_one_clear_line(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        policy(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("ignore file .portcullisignore.yaml")
