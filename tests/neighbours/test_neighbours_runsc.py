"""`portcullis neighbours --runtime runsc` on this host, tiny: victim and aggressor run as gVisor sandboxes on a
private dockerd (the victim sees gVisor's kernel), the Docker limits reach them (the tc bucket holds the victim's
TCP throughput), the disk victim is n/a with its reason, and the private dockerd is gone afterwards, also after
SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import docker
import docker.errors
import pytest
import requests

from portcullis.collect.engine import connect
from portcullis.collect.private_dockerd import BRIDGE_ADDRESS, TrialDaemon
from portcullis.collect.sandbox import sandbox
from portcullis.model.neighbours import Aggressor, LimitsMode, NeighboursReport, Victim
from portcullis.proofs.neighbours import (
    RUNSC_DISK,
    DockerLauncher,
    InstanceSpec,
    Plan,
    default_cpuset,
    docker_limits,
    runsc_launcher,
)

pytestmark = pytest.mark.engine
IMAGES = ("portcullis-test/python:bookworm", "portcullis-test/busybox:1")
GVISOR_KERNEL = "4.4.0"  # what gVisor's uname answers, whatever the host runs


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    if shutil.which("runsc") is None:
        pytest.fail("runsc is missing: run `bash scripts/install-programs.sh test`")
    try:
        engine = docker.from_env(timeout=120)
        engine.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine answers (run `make engine`): {exc}")
    for image in IMAGES:
        try:
            engine.images.get(image)
        except docker.errors.ImageNotFound:
            pytest.fail(f"{image} is missing: run `make test-images`")
    return engine


def children_named(parent: int, name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or (entry / "comm").read_text().strip() != name:
                continue
            # The parent pid is the 4th field of stat, after the ")" that ends the command name.
            if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == parent:
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def data_root(pid: int) -> Path:
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    return Path(next(arg for arg in argv if arg.startswith("--data-root=")).partition("=")[2]).parent


def private_dockerd_of(process: subprocess.Popen[str]) -> tuple[int, Path]:
    """The private dockerd the run started (its child) and that daemon's own directory."""
    deadline = time.monotonic() + 120
    while not (daemons := children_named(process.pid, "dockerd")):
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "no private dockerd within 120 s"
        time.sleep(0.2)
    return daemons[0], data_root(daemons[0])


def runsc_running(private: docker.DockerClient) -> bool:
    try:
        return any(c.attrs["HostConfig"]["Runtime"] == "runsc" for c in private.containers.list())
    except (docker.errors.DockerException, requests.exceptions.ConnectionError):
        return False  # the private dockerd is found as a process before its socket answers


def gone(pid: int, root: Path) -> bool:
    return not Path(f"/proc/{pid}").exists() and not root.exists()


def mine(client: docker.DockerClient, pid: int) -> list[str]:
    owner = f"portcullis.owner={socket.gethostname()}:{pid}"
    return [c.name for c in client.containers.list(all=True, filters={"label": owner})]


@pytest.mark.timeout(240)
def test_runsc_rows_are_measured_in_gvisor_and_the_daemon_goes(client: docker.DockerClient) -> None:
    run = subprocess.Popen(
        [sys.executable, "-m", "portcullis", "neighbours", "--runtime", "runsc", "--aggressor", "cpu",
         "--victim", "cpu,tcp-throughput,disk", "--limits", "docker", "--repeat", "2", "--seconds", "1",
         "--cpuset-cpus", default_cpuset(), "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    daemon, root = private_dockerd_of(run)
    stdout, stderr = run.communicate(timeout=200)
    assert run.returncode == 0, stderr
    assert gone(daemon, root) and mine(client, run.pid) == []
    report = NeighboursReport.model_validate(json.loads(stdout))
    assert f"runsc: the victim saw kernel {GVISOR_KERNEL}" in report.notes
    cells = {item.victim: item for item in report.cells}
    assert {(c.runtime, c.limits, c.aggressor) for c in report.cells} == {("runsc", LimitsMode.docker, Aggressor.cpu)}
    cpu = cells[Victim.cpu]
    assert len(cpu.alone) == len(cpu.beside) == 2 and cpu.degradation_percent is not None
    # LCG iterations per second of a python loop, even under gVisor's ptrace platform.
    assert all(1e5 < value < 1e9 for value in cpu.alone + cpu.beside), cpu
    # Streamed from the sandbox to this host through the host kernel's stack (tc shapes the other direction).
    throughput = cells[Victim.tcp_throughput]
    assert len(throughput.alone) == 2 and all(value > 1.0 for value in throughput.alone), throughput
    disk = cells[Victim.disk]
    assert disk.degradation_percent is None and disk.alone == [] and disk.note == RUNSC_DISK


@pytest.mark.timeout(180)
def test_the_tc_limit_lands_on_the_sandbox_veth(client: docker.DockerClient) -> None:
    """Found independently of the launcher's own lookup: the one veth on the private dockerd's bridge."""
    plan = Plan(runtimes=("runsc",), aggressors=(Aggressor.cpu,), victims=(Victim.cpu,), cpuset=default_cpuset())
    limits = docker_limits(plan.cpuset, None)
    conn = connect(timeout=180)
    try:
        with sandbox(conn, "neighbours") as box, runsc_launcher(box, plan, lambda message: None) as launcher:
            assert isinstance(launcher, DockerLauncher)
            spec = InstanceSpec("victim", IMAGES[1], ["sleep", "60"], plan.cpuset, limits, victim=True)
            launcher.start(spec)
            bridge = launcher.box.conn.api.inspect_network("bridge")["Options"]["com.docker.network.bridge.name"]
            (veth,) = (entry.name for entry in Path(f"/sys/class/net/{bridge}/brif").iterdir())
            shown = subprocess.run(["tc", "qdisc", "show", "dev", veth], capture_output=True, text=True, check=True)
            assert "tbf" in shown.stdout and "rate 100Mbit" in shown.stdout, shown.stdout
    finally:
        conn.close()
    assert not Path(f"/sys/class/net/{bridge}").exists()  # the private dockerd's bridge went with it


@pytest.mark.timeout(240)
def test_sigterm_removes_the_sandboxes_and_the_private_dockerd(client: docker.DockerClient) -> None:
    run = subprocess.Popen(
        [sys.executable, "-m", "portcullis", "neighbours", "--runtime", "runsc", "--aggressor", "cpu",
         "--victim", "cpu", "--limits", "none", "--repeat", "1", "--seconds", "20"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        daemon, root = private_dockerd_of(run)
        private = docker.DockerClient(base_url=f"unix://{root / 'docker.sock'}", timeout=30)
        try:
            deadline = time.monotonic() + 150
            # The victim measures alone for 20 s once its agent answers: stop it while its sandbox runs.
            while not runsc_running(private):
                assert run.poll() is None, run.stderr.read() if run.stderr else ""
                assert time.monotonic() < deadline, "no runsc victim within 150 s"
                time.sleep(0.5)
        finally:
            private.close()
        time.sleep(2)
        run.send_signal(signal.SIGTERM)
        assert run.stderr is not None
        rest = run.stderr.read()
        assert run.wait(timeout=120) == 130, rest
    finally:
        if run.poll() is None:
            run.kill()
    assert "interrupted; every neighbour instance was removed" in rest
    assert gone(daemon, root) and mine(client, run.pid) == []


@pytest.mark.timeout(120)
def test_the_private_bridge_avoids_a_subnet_a_stale_bridge_still_routes() -> None:
    """A bridge left by a killed run on the /24 this process would pick made the sandboxes unreachable."""
    stale = f"pcs{os.getpid() % 100000}"
    subnet = BRIDGE_ADDRESS.format(n=os.getpid() % 250 + 1)
    subprocess.run(["ip", "link", "add", stale, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", subnet, "dev", stale], check=True)
        daemon = TrialDaemon({})
        try:
            daemon.start()
            shown = subprocess.run(["ip", "-o", "-4", "addr", "show", "dev", daemon.bridge], capture_output=True,
                                   text=True, check=True).stdout  # fmt: skip
            assert "inet 10.213." in shown and f"inet {subnet} " not in shown, shown
        finally:
            daemon.stop()
    finally:
        subprocess.run(["ip", "link", "del", stale], check=False)
