"""Issue 13: `portcullis prove` interrupted at any moment, mid-create included, leaves no experiment container;
what a killed run (SIGKILL) left is swept by the next run."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest
from tests.runtime.conftest import BUSYBOX, LABEL, Containers, docker

pytestmark = pytest.mark.engine

ITERATIONS = 30
BUDGET = 420.0  # seconds for the whole loop: it stops early, not the machine, on a busy host
HARDENED = ["--memory", "64m", "--memory-swap", "64m", "--pids-limit", "40", "--read-only",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]  # fmt: skip


def prove_containers(process: subprocess.Popen[str]) -> list[str]:
    """The proof containers that run made, by the owner label (host:pid) the sandbox gives each: another suite's
    proofs on the same engine are not counted."""
    owner = f"portcullis.owner={socket.gethostname()}:{process.pid}"
    return docker(
        "ps", "-aq", "--filter", "label=portcullis.purpose=prove", "--filter", f"label={owner}"
    ).stdout.split()


def start(target: str) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-m", "portcullis", "prove", target, "-f", "json"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert process.stderr is not None
    process.stderr.readline()  # "proving the limits of …": the sandbox is about to send its first create
    return process


def test_signals_at_any_moment_leave_no_container(containers: Containers) -> None:
    target = containers.run(HARDENED)
    began = time.monotonic()
    leftovers: dict[int, list[str]] = {}
    runs = 0
    while runs < ITERATIONS and time.monotonic() - began < BUDGET:
        signum = (signal.SIGTERM, signal.SIGINT)[runs % 2]
        # the first create in flight, then across the experiments' creates, starts, waits and removals
        delay = (0.0, 0.01, 0.02, 0.04, 0.07, 0.1, 0.2, 0.5, 2.0, 5.0)[runs % 10]
        process = start(target)
        try:
            time.sleep(delay)
            process.send_signal(signum)
            _, stderr = process.communicate(timeout=90)
        finally:
            if process.poll() is None:
                process.kill()
        runs += 1
        # -SIGTERM, -SIGINT: the signal came before Python had installed its handlers, so nothing was created either
        assert process.returncode in (0, 130, -signal.SIGTERM, -signal.SIGINT), stderr
        assert "Traceback" not in stderr and "internal error" not in stderr
        left = prove_containers(process)
        if left:
            leftovers[runs] = left
            docker("rm", "-f", *left, check=False)
    took = time.monotonic() - began
    print(f"prove interrupted {runs} times in {took:.0f}s; runs leaving containers: {len(leftovers)}")
    assert runs >= 10
    assert leftovers == {}


def test_next_run_sweeps_a_killed_runs_containers(containers: Containers) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    owner = f"{socket.gethostname()}:{int(dead.stdout)}"  # a pid that has exited: a run killed with SIGKILL
    orphan = containers.run(
        ["--label", "portcullis.managed=true", "--label", f"portcullis.owner={owner}", "--label", LABEL],
        image=BUSYBOX,
    )
    process = start(containers.run(HARDENED))
    try:
        time.sleep(1)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
    assert docker("ps", "-aq", "--filter", f"name=^{orphan}$").stdout.split() == []
    assert prove_containers(process) == []
