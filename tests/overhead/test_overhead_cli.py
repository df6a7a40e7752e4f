"""Bad input to `portcullis overhead` is one clear line and exit 1, before any container starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from portcullis.pipelines.errors import UsageError
from portcullis.proofs.overhead import OverheadError, Plan, overhead_report

KNOWN_RUNTIMES = "known: runc, runsc, vm, vm-tcg"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portcullis", "overhead", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--plot", "chart.png"], "portcullis: error: --plot chart.png: only SVG charts are drawn"),
        (["--native-dir", "/nonexistent/dir"], "portcullis: error: --native-dir /nonexistent/dir is not a directory"),
        (["--repetitions", "0"], "portcullis: error:"),
        (["--host", "tcp://127.0.0.1:1"], "portcullis: error: "),
        (["--runtime", "runc,kata"], f"portcullis: error: --runtime: unknown runtime 'kata' ({KNOWN_RUNTIMES})"),
        (["--runtime", ","], f"portcullis: error: --runtime: no runtime named ({KNOWN_RUNTIMES})"),
        (["--runtime", "runsc", "--host", "tcp://127.0.0.1:1"], "portcullis: error: no Docker engine answers at"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(args: list[str], message: str) -> None:
    done = run(*args)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), done.stderr


def test_the_flow_answers_with_typed_errors() -> None:
    with pytest.raises(UsageError, match=r"^--native-dir /nonexistent/dir is not a directory$"):
        overhead_report(Plan.fast(), native_dir=Path("/nonexistent/dir"))
    with pytest.raises(OverheadError, match=r"^no Docker engine answers at tcp://127\.0\.0\.1:1: "):
        overhead_report(Plan.fast(), host="tcp://127.0.0.1:1")


def test_the_numbers_given_replace_the_plans_own() -> None:
    assert Plan.chosen(quick=True) == Plan.fast()
    chosen = Plan.chosen(quick=False, repetitions=3, time_limit=9.0)
    assert (chosen.repetitions, chosen.time_limit, chosen.rtt_samples) == (3, 9.0, Plan.standard().rtt_samples)
