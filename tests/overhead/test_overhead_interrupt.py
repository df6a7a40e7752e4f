"""Ctrl-C or SIGTERM in the middle of `portcullis overhead` leaves no container, volume or native agent behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import docker.errors
import pytest

pytestmark = pytest.mark.engine
AGENT_MARK = b"The overhead workload agent"  # the first words of the agent source, on its command line


def native_agents() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if AGENT_MARK in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.mark.timeout(300)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_run_cleans_up(signum: signal.Signals) -> None:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine answers (run `make engine`): {exc}")
    overhead = {"label": "portcullis.purpose=overhead"}
    assert client.containers.list(all=True, filters=overhead) == []
    process = subprocess.Popen(
        [sys.executable, "-m", "portcullis", "overhead", "--repetitions", "50", "--time-limit", "200"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        # Progress is silent when piped: wait for the measurement itself, both experiment containers running and
        # the volume there, then for the agents to take their first samples.
        deadline = time.monotonic() + 240
        while len(client.containers.list(filters=overhead)) < 2 or not client.volumes.list(filters=overhead):
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "overhead started no experiment containers within 240 s"
            time.sleep(0.5)
        time.sleep(3)
        assert len(client.containers.list(filters=overhead)) == 2
        assert len(client.volumes.list(filters=overhead)) == 1
        process.send_signal(signum)
        rest = process.stderr.read()
        assert process.wait(timeout=120) == 130, rest
    finally:
        if process.poll() is None:
            process.kill()
    assert "interrupted; every experiment container was removed" in rest
    assert client.containers.list(all=True, filters=overhead) == []
    assert client.volumes.list(filters=overhead) == []
    assert native_agents() == []
