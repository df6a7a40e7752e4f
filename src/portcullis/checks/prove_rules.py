"""The `portcullis prove` rules, registered from `checks.prove_judges.PROVE_RULES` (their one declaration).

Each check judges one recorded measurement; the experiments that record them live in `proofs.prove`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from portcullis.checks.prove_judges import PROVE_RULES, judge
from portcullis.checks.registry import CheckResult, Outcome, register_table
from portcullis.model.findings import Status


def _check_for(rule_id: str) -> Callable[[dict[str, Any]], CheckResult]:
    def check(measurement: dict[str, Any]) -> CheckResult:
        status, message = judge(rule_id, measurement)
        return Outcome(status, message, measurement)

    check.__name__ = "prove_" + rule_id.replace("-", "_").lower()
    return check


# Every proof can hold, break, lack its setting, or fail to run.
_STATUSES = (Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.SKIP)

register_table(PROVE_RULES, _check_for, lambda rule_id: _STATUSES, "prove")
