"""`portcullis neighbours --runtime vm-tcg` on this host: victim and aggressors are QEMU guests with their own
kernel, pinned to one core; a CPU hog in the neighbouring VM is felt, Docker's limits are n/a with the reason,
the disk victim writes to its own volume, and no QEMU, VM file or export container outlives the run, on Ctrl-C
too. `--runtime vm` (KVM) on a host without hardware KVM is a row with the reason, not a failure."""

from __future__ import annotations

import json
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import docker.errors
import pytest

from portcullis.model.neighbours import Aggressor, Cell, LimitsMode, NeighboursReport, Victim
from portcullis.proofs.neighbours import default_cpuset
from portcullis.proofs.runtimes import kvm_problem

pytestmark = pytest.mark.engine
IMAGES = ("portcullis-test/python:bookworm", "portcullis-test/busybox:1")


def qemu_pids() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "qemu-system-x86":
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def left_behind(client: docker.DockerClient) -> tuple[list[int], list[Path], list[str]]:
    exports = [c.name for c in client.containers.list(all=True, filters={"label": "portcullis.purpose=vm"})]
    return qemu_pids(), sorted(Path("/tmp").glob("portcullis-vm-*")), exports


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
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
    if left_behind(engine)[0]:
        pytest.fail("a QEMU is already running: these tests count every QEMU on the host")
    return engine


def neighbours(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "portcullis", "neighbours", "--repeat", "2", "--seconds", "1",
         "--cpuset-cpus", default_cpuset(), "--format", "json", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def vm_report(client: docker.DockerClient) -> NeighboursReport:
    run = neighbours("--runtime", "vm-tcg,vm", "--aggressor", "cpu,disk", "--victim", "cpu,disk")
    stdout, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stderr
    assert left_behind(client) == ([], [], [])
    return NeighboursReport.model_validate(json.loads(stdout))


def cells_of(report: NeighboursReport, runtime: str, limits: LimitsMode) -> dict[tuple[Aggressor, Victim], Cell]:
    return {(c.aggressor, c.victim): c for c in report.cells if c.runtime == runtime and c.limits is limits}


@pytest.mark.timeout(700)
def test_the_victim_runs_in_a_guest_kernel_and_a_neighbouring_cpu_hog_is_felt(vm_report: NeighboursReport) -> None:
    seen = [note for note in vm_report.notes if note.startswith("vm-tcg: the victim saw kernel ")]
    assert len(seen) == 1
    guest_kernel = seen[0].removeprefix("vm-tcg: the victim saw kernel ")
    assert guest_kernel != platform.release() and guest_kernel.endswith("-amd64"), guest_kernel
    free = cells_of(vm_report, "vm-tcg", LimitsMode.none)
    cpu = free[(Aggressor.cpu, Victim.cpu)]
    assert len(cpu.alone) == len(cpu.beside) == 2, cpu
    # Two vCPU threads on one host core: the victim VM keeps about half of its loop (less under other load).
    assert cpu.degradation_percent is not None and cpu.degradation_percent > 25.0, cpu
    disk = free[(Aggressor.disk, Victim.disk)]
    # O_DIRECT writes to the guest's own virtio-blk volume: a disk's rate, not the tens of GiB/s of RAM.
    assert all(0.5 < value < 5000 for value in disk.alone), disk
    claims = {claim.claim: claim for claim in vm_report.claims}
    vm_claim = claims["A VM isolates memory, fork, CPU, disk and network traffic completely (vm-tcg)"]
    assert vm_claim.verdict == "did not hold" and "cpu→cpu" in vm_claim.evidence
    assert vm_claim.evidence.startswith("under TCG software emulation, not KVM")


@pytest.mark.timeout(700)
def test_docker_limits_are_na_in_a_vm_and_kvm_says_why(vm_report: NeighboursReport) -> None:
    capped = cells_of(vm_report, "vm-tcg", LimitsMode.docker)
    assert capped and all(c.degradation_percent is None for c in capped.values())
    assert all("do not reach a QEMU guest" in c.note for c in capped.values())
    kvm = [c for c in vm_report.cells if c.runtime == "vm"]
    problem = kvm_problem()
    if problem is None:
        pytest.skip("this host has hardware KVM: the vm row is measured, not refused")
    assert len(kvm) == 8 and all(c.degradation_percent is None for c in kvm)
    assert all(c.note == f"vm cannot run here: {problem}" for c in kvm)
    assert f"vm did not run: {problem}" in vm_report.notes


@pytest.mark.timeout(400)
def test_ctrl_c_beside_a_vm_neighbour_stops_every_qemu(client: docker.DockerClient) -> None:
    process = neighbours("--runtime", "vm-tcg", "--aggressor", "cpu", "--victim", "cpu", "--limits", "none")
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 300
        while len(qemu_pids()) < 2:  # the victim VM and its neighbour
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "no VM neighbour beside the victim within 300 s"
            time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        rest = process.stderr.read()
        assert process.wait(timeout=120) == 130, rest
    finally:
        if process.poll() is None:
            process.kill()
    assert "interrupted" in rest and "Traceback" not in rest
    assert left_behind(client) == ([], [], [])
