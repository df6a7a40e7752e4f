"""Bad input to `portcullis neighbours` is one clear line and exit 1, before any instance starts."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "portcullis", "neighbours", *args], capture_output=True, text=True,
                          timeout=120)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--aggressor", "cpu,bitcoin"], "--aggressor 'bitcoin': choose from cpu, membw, fork, disk, net"),
        (["--victim", "latency"], "--victim 'latency': choose from cpu, membw, disk, tcp-latency, tcp-throughput"),
        (["--limits", "strict"], "--limits 'strict': choose from none, docker"),
        (["--cpuset-cpus", "first"], "--cpuset-cpus 'first': give CPUs like 1 or 0-1 or 0,2, or 'none' not to pin"),
        (["--output", "/nonexistent-dir/heat.svg"], "--output /nonexistent-dir/heat.svg: the directory"),
    ],
)
def test_bad_input_is_one_line(args: list[str], message: str) -> None:
    done = run(*args)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"portcullis: error: {message}"), done.stderr


@pytest.mark.engine
def test_a_runtime_the_engine_lacks_is_one_line() -> None:
    done = run("--runtime", "kata", "--aggressor", "cpu", "--victim", "cpu")
    assert done.returncode == 1
    assert done.stderr.startswith("portcullis: error: --runtime kata: the engine has no such runtime (it has ")
    assert done.stderr.rstrip().endswith("and no launcher is registered for it")
    assert "runc" in done.stderr and "Traceback" not in done.stderr
