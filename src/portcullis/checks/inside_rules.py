"""The `portcullis inside` rules, registered from the table the standard-library analyser keeps.

Their metadata lives once, in `inside.analyse.INSIDE_RULES`; each registered check reads the
outcomes that belong to its id from one judgement of the signals snapshot (`inside.signals`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from portcullis.checks.registry import CheckResult, Outcome, register_table
from portcullis.inside.analyse import INSIDE_RULES, Finding, analyse
from portcullis.model.findings import Severity, Status

# Every inside rule can be undecidable from one vantage point (host or inside), hence skip.
_STATUSES = {
    "DKR-IN-005": (Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.SKIP),
}

Signals = dict[str, Any]
# The snapshot judged last and its findings by rule id. The 13 rules of one run read the same snapshot
# one after the other, so it is judged once, not once per rule. Held by reference and matched by
# identity: a collected snapshot is never changed afterwards.
_last_judged: tuple[Signals, dict[str, list[Finding]]] | None = None


def findings_by_rule(signals: Signals) -> dict[str, list[Finding]]:
    global _last_judged
    last = _last_judged
    if last is None or last[0] is not signals:
        by_rule: dict[str, list[Finding]] = {rule_id: [] for rule_id in INSIDE_RULES}
        for found in analyse(signals):
            by_rule[found["rule_id"]].append(found)
        last = _last_judged = (signals, by_rule)
    return last[1]


def _check_for(rule_id: str) -> Callable[[Signals], CheckResult]:
    def check(signals: Signals) -> CheckResult:
        return [
            Outcome(Status(found["status"]), found["message"], found["evidence"], severity=Severity(found["severity"]))
            for found in findings_by_rule(signals)[rule_id]
        ]

    check.__name__ = "inside_" + rule_id.replace("-", "_").lower()
    return check


register_table(
    INSIDE_RULES,
    _check_for,
    lambda rule_id: _STATUSES.get(rule_id, (Status.PASS, Status.FAIL, Status.SKIP)),
    "inside",
)
