"""The `portcullis prove` rules, registered from `runtime.prove.PROVE_RULES` (their one declaration).

Each check judges one recorded measurement; the experiments that record them live in `runtime.prove`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from portcullis.checks.registry import CheckResult, Outcome, rule
from portcullis.model.findings import Severity, Status, TargetKind
from portcullis.runtime.prove import PROVE_RULES, judge


def _check_for(rule_id: str) -> Callable[[dict[str, Any]], CheckResult]:
    def check(measurement: dict[str, Any]) -> CheckResult:
        status, message = judge(rule_id, measurement)
        return Outcome(status, message, measurement)

    check.__name__ = "prove_" + rule_id.replace("-", "_").lower()
    return check


_STATUSES = {
    "DKR-PRV-003": (Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.SKIP),
}

for _rule_id, (_title, _severity, _rationale, _remediation) in PROVE_RULES.items():
    rule(
        id=_rule_id,
        title=_title,
        severity=Severity(_severity),
        scope=TargetKind.CONTAINER,
        rationale=_rationale,
        remediation=_remediation,
        statuses=_STATUSES.get(_rule_id, (Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.SKIP)),
        commands=("prove",),
    )(_check_for(_rule_id))
