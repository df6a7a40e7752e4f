"""`portcullis audit --host H -f json` as a user runs it, for tests that audit an engine other than the main one."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def audit_report(host: str) -> dict[str, Any]:
    """The JSON report; the audit must succeed and no check may have raised."""
    result = subprocess.run(
        [sys.executable, "-m", "portcullis", "audit", "--host", host, "-f", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert [f["rule_id"] for f in report["findings"] if f["status"] == "error"] == []
    return report
