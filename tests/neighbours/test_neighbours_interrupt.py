"""Ctrl-C or SIGTERM while a fork storm runs beside the victim: exit 130 and no instance of the run left."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import docker
import docker.errors
import pytest

pytestmark = pytest.mark.engine


@pytest.mark.timeout(300)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_fork_storm_is_removed(signum: signal.Signals) -> None:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine answers (run `make engine`): {exc}")
    process = subprocess.Popen(
        [sys.executable, "-m", "portcullis", "neighbours", "--aggressor", "fork", "--victim", "cpu", "--limits", "none",
         "--repeat", "1", "--seconds", "8"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    mine = {"label": f"portcullis.owner={socket.gethostname()}:{process.pid}"}
    try:
        assert process.stderr is not None
        # The victim alone takes 8 s; the fork storm starts after it, so wait for two running instances.
        deadline = time.monotonic() + 240
        while len(client.containers.list(filters=mine)) < 2:
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "no fork storm beside the victim within 240 s"
            time.sleep(0.5)
        storm = next(c for c in client.containers.list(filters=mine) if "sleep 86400" in " ".join(c.attrs["Args"]))
        assert storm.attrs["HostConfig"]["PidsLimit"] == 2000
        time.sleep(2)
        process.send_signal(signum)
        rest = process.stderr.read()
        assert process.wait(timeout=120) == 130, rest
    finally:
        if process.poll() is None:
            process.kill()
    assert "interrupted; every neighbour instance was removed" in rest
    assert client.containers.list(all=True, filters=mine) == []
