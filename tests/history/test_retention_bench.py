"""A smoke run of benchmarks/retention_bench.py at a small size: it runs, and what it says it removed is right."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.postgres import INITDB

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "retention_bench.py"


@pytest.mark.skipif(not Path(INITDB).exists(), reason="PostgreSQL is not installed (scripts/programs.tsv)")
def test_the_retention_benchmark_runs_small(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--engines", "3", "--runs-per", "4", "--findings", "10", "--entries", "50",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, env=os.environ.copy(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "retention.json").read_text())
    assert [s["backend"].split()[0] for s in result["stores"]] == ["sqlite", "postgresql"]
    for store in result["stores"]:
        assert (store["findings_before"], store["runs_removed"], store["findings_removed"]) == (120, 9, 90)
        assert (store["findings_left"], store["runs_left"]) == (30, 3)
    assert result["cache"]["entries"] == 50 and result["cache"]["trim_removed_bytes"] >= result["cache"]["bytes"] / 2
    assert "| postgresql 15 | 120 | 9 | 90 |" in (tmp_path / "retention.md").read_text()
