"""The VM runtimes on this host: `vm-tcg` really boots Debian's kernel under QEMU and the agent answers from inside
it; `vm` (KVM) is a row with this host's reason; a boot that does not come up fails with the console's tail; and
nothing (QEMU, its files, the export container) outlives the run, on Ctrl-C and SIGTERM too."""

from __future__ import annotations

import platform
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import docker.errors
import pytest

from portcullis.collect.engine import connect
from portcullis.proofs.overhead import Plan
from portcullis.proofs.overhead_results import Workload
from portcullis.proofs.runtime_compare import runtimes_report
from portcullis.proofs.runtimes import TCG_NOTE, Runtime, RuntimeUnavailable, kvm_problem, start
from portcullis.proofs.vm import Accel, VmUnavailable, boot, guest_kernel, module_files

pytestmark = pytest.mark.engine
PYTHON_IMAGE = "portcullis-test/python:bookworm"
TINY = Plan(
    quick=True, repetitions=2, cpu_iterations=20_000, memory_mib=4, memory_rounds=2, disk_mib=2, rtt_samples=50,
    stream_mib=2, time_limit=60.0,
)  # fmt: skip
WORK_PREFIX = b"/portcullis-vm-"  # every temporary file of a VM lives in a directory named so


def qemu_processes() -> dict[int, bytes]:
    """Running QEMU processes and their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "qemu-system-x86":
                found[int(entry.name)] = (entry / "cmdline").read_bytes()
        except OSError:
            continue
    return found


def work_dirs() -> list[Path]:
    return sorted(Path("/tmp").glob("portcullis-vm-*"))


def export_containers(client: docker.DockerClient) -> list[str]:
    return [c.name for c in client.containers.list(all=True, filters={"label": "portcullis.purpose=vm"})]


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    try:
        engine = docker.from_env(timeout=120)
        engine.ping()
        engine.images.get(PYTHON_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"{PYTHON_IMAGE} is missing: run `make test-images`")
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine answers (run `make engine`): {exc}")
    if kvm_problem() == "qemu-system-x86_64 is not installed (Debian package qemu-system-x86)":
        pytest.fail("qemu-system-x86_64 is missing: run `make programs`")
    assert qemu_processes() == {} and work_dirs() == [], "a VM of an earlier run is still here"
    return engine


def test_guest_modules_load_after_what_they_need(client: docker.DockerClient) -> None:
    names = [path.name for path in module_files(guest_kernel(lambda message: None))]
    assert {"virtio_net.ko", "virtio_blk.ko", "ext4.ko", "jbd2.ko", "mbcache.ko"} <= set(names)
    assert names.index("jbd2.ko") < names.index("ext4.ko") and names.index("mbcache.ko") < names.index("ext4.ko")
    assert names.index("net_failover.ko") < names.index("virtio_net.ko")
    assert len(names) == len(set(names))


@pytest.mark.timeout(240)
def test_vm_tcg_runs_every_workload_inside_the_guest(client: docker.DockerClient) -> None:
    report = runtimes_report(TINY, [Runtime.vm_tcg], image=PYTHON_IMAGE)
    [row] = report.runtimes
    assert row.runtime == "vm-tcg" and row.measured, row.reason
    assert row.how and "-accel tcg (TCG software emulation, not KVM)" in row.how
    # the agent answered from the guest: it saw Debian's packaged kernel, not the kernel this host runs
    guest = guest_kernel(lambda message: None).version
    assert row.python and row.python.kernel == guest != platform.release()
    environments: dict[Workload, set[str]] = {}
    for item in report.measurements:
        environments.setdefault(item.workload, set()).add(item.environment)
        assert len(item.runs) == 2 and all(value > 0 for value in item.runs), item
    assert environments[Workload.cpu] == environments[Workload.memory] == {"native", "vm-tcg"}
    assert environments[Workload.disk] == {"native", "vm-tcg layer", "vm-tcg volume"}
    assert environments[Workload.tcp_rtt] == {"native-loopback", "vm-tcg published-port"}
    assert TCG_NOTE in report.notes
    assert any(
        note.startswith("vm-tcg: 'layer' is the guest's root, an initramfs held in the guest's RAM")
        for note in report.notes
    )
    assert qemu_processes() == {} and work_dirs() == [] and export_containers(client) == []


def test_kvm_on_this_host_is_a_row_with_the_reason(client: docker.DockerClient) -> None:
    if not Path("/sys/module/kvm_pvm").exists() or Path("/sys/module/kvm_intel").exists():
        pytest.skip("this host's /dev/kvm is not kvm_pvm")
    reason = kvm_problem()
    assert reason and reason.startswith("/dev/kvm here is kvm_pvm, not hardware KVM")
    conn = connect()
    try:
        attempt = start(Runtime.vm, conn, PYTHON_IMAGE)
        with pytest.raises(RuntimeUnavailable) as caught, attempt:
            pass
    finally:
        conn.close()
    assert str(caught.value) == reason
    assert qemu_processes() == {} and work_dirs() == []


@pytest.mark.timeout(180)
def test_a_boot_that_does_not_answer_in_time_shows_the_console_and_leaves_nothing(client: docker.DockerClient) -> None:
    conn = connect(timeout=180)
    try:
        attempt = boot(conn, PYTHON_IMAGE, Accel.tcg, boot_timeout=10.0)
        with pytest.raises(VmUnavailable) as caught, attempt:
            pass
    finally:
        conn.close()
    message = str(caught.value)
    assert message.startswith("the agent in the VM did not answer within 10 s; console: ")
    assert re.search(r"\[ *\d+\.\d+\] ", message), message  # the guest kernel's own lines, as far as it got
    assert qemu_processes() == {} and work_dirs() == [] and export_containers(client) == []


@pytest.mark.timeout(240)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_while_the_vm_boots_stops_qemu_and_its_files(client: docker.DockerClient, signum: int) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "portcullis", "overhead", "--runtime", "vm-tcg", "--image", PYTHON_IMAGE],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 180
        while not (running := qemu_processes()):
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "no QEMU within 180 s"
            time.sleep(0.2)
        time.sleep(2)  # into the guest's boot
        [(pid, cmdline)] = running.items()
        assert WORK_PREFIX in cmdline
        process.send_signal(signum)
        rest = process.stderr.read()
        assert process.wait(timeout=120) == 130, rest
    finally:
        if process.poll() is None:
            process.kill()
    assert not Path(f"/proc/{pid}").exists()
    assert qemu_processes() == {} and work_dirs() == [] and export_containers(client) == []
