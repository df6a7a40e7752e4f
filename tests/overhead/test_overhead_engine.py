"""`portcullis overhead --quick -f json` on the real engine: the document's structure, sane values, the
chart, and no experiment container or volume left behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import docker
import docker.errors
import pytest

from portcullis.proofs.overhead_results import OverheadReport, Workload

pytestmark = pytest.mark.engine
PYTHON_IMAGE = "portcullis-test/python:bookworm"
EXPECTED = {
    Workload.cpu: {"native", "container"},
    Workload.memory: {"native", "container"},
    Workload.disk: {"native", "container-layer", "container-volume"},
    Workload.tcp_rtt: {
        "native-loopback",
        "container-host-network",
        "container-bridge-ip",
        "container-published-port",
    },
}
EXPECTED[Workload.tcp_throughput] = EXPECTED[Workload.tcp_rtt]


def leftovers(client: docker.DockerClient) -> tuple[list[str], list[str]]:
    containers = client.containers.list(all=True, filters={"label": "portcullis.purpose=overhead"})
    volumes = client.volumes.list(filters={"label": "portcullis.purpose=overhead"})
    return [c.name for c in containers], [v.name for v in volumes]


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    try:
        engine = docker.from_env(timeout=120)
        engine.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine answers (run `make engine`): {exc}")
    try:
        engine.images.get(PYTHON_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"{PYTHON_IMAGE} is missing: run `make test-images`")
    return engine


@pytest.fixture(scope="module")
def quick_run(client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> tuple[OverheadReport, Path]:
    before = leftovers(client)
    chart = tmp_path_factory.mktemp("overhead") / "overhead.svg"
    done = subprocess.run(
        [sys.executable, "-m", "portcullis", "overhead", "--quick", "-f", "json", "--plot", str(chart)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert leftovers(client) == before == ([], [])
    return OverheadReport.model_validate(json.loads(done.stdout)), chart


@pytest.mark.timeout(300)
def test_quick_run_measures_every_workload_in_every_environment(quick_run: tuple[OverheadReport, Path]) -> None:
    report, _ = quick_run
    assert report.settings.quick
    assert report.settings.completed_repetitions >= 2
    found: dict[Workload, set[str]] = {}
    for item in report.measurements:
        found.setdefault(item.workload, set()).add(item.environment)
        assert len(item.runs) == report.settings.completed_repetitions
        assert all(value > 0 for value in item.runs), item
        assert item.summary.minimum <= item.summary.median <= item.summary.maximum
    assert found == EXPECTED
    assert {m.environment for m in report.measurements if m.baseline} == {"native", "native-loopback"}
    assert len(report.comparisons) == 10
    assert {m.runtime for m in report.measurements} == {"native", "runc"}


@pytest.mark.timeout(300)
def test_quick_run_values_are_sane(quick_run: tuple[OverheadReport, Path]) -> None:
    report, _ = quick_run
    median = {(m.workload, m.environment): m.summary.median for m in report.measurements}
    # docker-proxy adds two socket hops and a user-space relay: always slower than plain loopback.
    assert median[(Workload.tcp_rtt, "container-published-port")] > median[(Workload.tcp_rtt, "native-loopback")]
    assert 1 < median[(Workload.tcp_rtt, "native-loopback")] < 10_000  # µs
    assert 0.01 < median[(Workload.cpu, "native")] < 30  # seconds for 1M python iterations
    assert 0.1 < median[(Workload.memory, "container")] < 1000  # GB/s
    assert 0.01 < median[(Workload.tcp_throughput, "container-bridge-ip")] < 1000  # Gbit/s
    env = report.environment
    assert env.container_python is not None and env.container_python.implementation == "CPython"
    assert env.storage_driver
    info = docker.from_env().info()
    if env.dockerd_iptables is False:
        assert env.published_port_path == "docker-proxy"
        nat = next(c for c in report.claims if c.environment == "container-published-port")
        assert nat.verdict == "not comparable"
    assert env.storage_driver == info["Driver"]


@pytest.mark.timeout(300)
def test_quick_run_draws_a_chart(quick_run: tuple[OverheadReport, Path]) -> None:
    import xml.etree.ElementTree as ET

    _, chart = quick_run
    root = ET.parse(chart).getroot()
    bars = root.findall(".//{http://www.w3.org/2000/svg}rect[@class='bar']")
    assert len(bars) == 15
    # coloured by runtime: every native bar grey, every container bar the runc blue
    assert {(bar.get("data-series"), bar.get("fill")) for bar in bars} == {("native", "#7f7f7f"), ("runc", "#4c78a8")}
