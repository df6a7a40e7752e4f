"""Bad input to `portcullis overhead` is one clear line and exit 1, before any container starts."""

from __future__ import annotations

import subprocess
import sys

import pytest


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
    ],
)
def test_bad_input_is_one_line_and_exit_1(args: list[str], message: str) -> None:
    done = run(*args)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), done.stderr
