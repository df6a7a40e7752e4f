"""The workload agent, run natively exactly as `portcullis overhead` runs it (python3 -c SOURCE PORT ADDRESS)."""

from __future__ import annotations

import hashlib
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from portcullis.proofs.overhead import Agent, OverheadError, native_agent


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    with native_agent(sys.executable) as (running, process):
        running.wait_ready(20, lambda: process.poll() is None)
        yield running


def test_info_names_this_interpreter(agent: Agent) -> None:
    info = agent.call("info")
    assert info["executable"] == sys.executable
    assert info["executable_sha256"] == hashlib.sha256(Path(sys.executable).resolve().read_bytes()).hexdigest()
    assert info["implementation"] == "CPython"


def test_cpu_work_grows_with_the_iterations(agent: Agent) -> None:
    small = min(agent.call("cpu", 100_000)["seconds"] for _ in range(3))
    large = min(agent.call("cpu", 2_000_000)["seconds"] for _ in range(3))
    assert 0 < small < large
    timed = agent.call("cpu", 2_000_000)
    assert timed["wall_seconds"] >= timed["seconds"] * 0.9  # the CPU clock ticks coarsely; wall time covers it


def test_memory_reports_the_bytes_copied(agent: Agent) -> None:
    result = agent.call("memory", 4, 3)
    assert result["bytes"] == 4 * 3 * (1 << 20)
    assert result["seconds"] > 0


def test_disk_writes_then_removes_its_file(agent: Agent, tmp_path: Path) -> None:
    result = agent.call("disk", str(tmp_path), 2)
    assert result["bytes"] == 2 * (1 << 20)
    assert result["seconds"] > 0
    assert list(tmp_path.iterdir()) == []


def test_echo_round_trips_are_measured(agent: Agent) -> None:
    assert 0 < agent.median_rtt_us(50) < 100_000


def test_stream_is_counted_by_the_agent_before_it_is_timed(agent: Agent) -> None:
    assert 0.01 < agent.stream_gbit_s(8) < 1000
    with socket.create_connection((agent.host, agent.port), timeout=10) as conn:
        conn.sendall(b"sink\n")
        reader = conn.makefile("rb")
        assert reader.readline() == b"ready\n"
        conn.sendall(b"x" * 12345)
        conn.shutdown(socket.SHUT_WR)
        assert json.loads(reader.readline()) == {"bytes": 12345.0}


def test_bad_commands_are_errors_not_crashes(agent: Agent, tmp_path: Path) -> None:
    with pytest.raises(OverheadError, match="unknown command 'bogus'"):
        agent.call("bogus")
    with pytest.raises(OverheadError, match="FileNotFoundError"):
        agent.call("disk", str(tmp_path / "missing"), 1)
    assert agent.call("info")["implementation"] == "CPython"  # still serving
