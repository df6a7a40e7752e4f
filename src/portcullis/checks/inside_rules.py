"""The `portcullis inside` rules, registered from the table the standard-library analyser keeps.

Their metadata lives once, in `runtime.inside.INSIDE_RULES`; each registered check judges a
signals snapshot (`collect.inside`) and returns the outcomes that belong to its id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from portcullis.checks.registry import CheckResult, Outcome, register_table
from portcullis.inside.analyse import INSIDE_RULES, analyse
from portcullis.model.findings import Severity, Status

# Every inside rule can be undecidable from one vantage point (host or inside), hence skip.
_STATUSES = {
    "DKR-IN-005": (Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.SKIP),
}


def _check_for(rule_id: str) -> Callable[[dict[str, Any]], CheckResult]:
    def check(signals: dict[str, Any]) -> CheckResult:
        return [
            Outcome(Status(found["status"]), found["message"], found["evidence"], severity=Severity(found["severity"]))
            for found in analyse(signals)
            if found["rule_id"] == rule_id
        ]

    check.__name__ = "inside_" + rule_id.replace("-", "_").lower()
    return check


register_table(
    INSIDE_RULES,
    _check_for,
    lambda rule_id: _STATUSES.get(rule_id, (Status.PASS, Status.FAIL, Status.SKIP)),
    "inside",
)
