"""`portcullis overhead --runtime runc,runsc,vm` on this host, with tiny workloads: each runtime is measured
in the runtime it names (gVisor proves itself by the kernel it reports) or is a row that says why it cannot
run, and nothing it started is left behind."""

from __future__ import annotations

import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import docker.errors
import pytest

from portcullis.collect.engine import connect
from portcullis.collect.private_dockerd import TrialDaemon
from portcullis.collect.sandbox import OWNER_LABEL, run_owner
from portcullis.proofs import runtimes
from portcullis.proofs.overhead import OverheadError, Plan
from portcullis.proofs.overhead_results import Workload
from portcullis.proofs.runtime_compare import runtimes_report
from portcullis.proofs.runtime_results import RuntimesReport, render_markdown, render_plot, render_text
from portcullis.proofs.runtimes import Runtime, RuntimeUnavailable, kvm_problem, start

pytestmark = pytest.mark.engine
PYTHON_IMAGE = "portcullis-test/python:bookworm"
BUSYBOX_IMAGE = "portcullis-test/busybox:1"  # quick to copy; these containers never get to run python
TINY = Plan(
    quick=True, repetitions=2, cpu_iterations=50_000, memory_mib=4, memory_rounds=2, disk_mib=2, rtt_samples=50,
    stream_mib=2, time_limit=60.0,
)  # fmt: skip
GVISOR_KERNEL = "4.4.0"  # what gVisor's uname answers, whatever the host runs
# A VM is reached only through its port forward (tests/overhead/test_vm.py measures one); containers on every path.
PATHS = {"vm": ("published-port",)}
CONTAINER_PATHS = ("host-network", "bridge-ip", "published-port")


def vm_reason() -> str:
    """Why the KVM row is not measured here; these tests run the vm row only where it cannot boot."""
    reason = kvm_problem()
    if reason is None:
        pytest.skip("this host has hardware KVM: the vm row would be a measurement (tests/overhead/test_vm.py)")
    return reason


def leftovers(client: docker.DockerClient) -> tuple[list[str], list[str]]:
    """This test process's runtime containers and scratch volumes (by the owner label): not another suite's."""
    ours = f"{OWNER_LABEL}={run_owner()}"
    containers = client.containers.list(all=True, filters={"label": ["portcullis.purpose=runtimes", ours]})
    volumes = client.volumes.list(filters={"label": ["portcullis.purpose=overhead", ours]})
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


def trial_bridges() -> set[str]:
    return {path.name for path in Path("/sys/class/net").glob("pch*")}


@pytest.fixture(scope="module")
def report(client: docker.DockerClient) -> RuntimesReport:
    before, bridges = leftovers(client), trial_bridges()
    measured = runtimes_report(TINY, [Runtime.runc, Runtime.runsc, Runtime.vm], image=PYTHON_IMAGE)
    assert leftovers(client) == before == ([], [])
    # the private dockerd's bridge goes with the daemon (a killed run elsewhere may have left others: not ours)
    assert trial_bridges() == bridges
    return measured


@pytest.mark.timeout(300)
def test_each_runtime_is_measured_or_says_why(report: RuntimesReport) -> None:
    rows = {row.runtime: row for row in report.runtimes}
    assert list(rows) == ["runc", "runsc", "vm"]
    assert rows["runc"].measured and rows["runc"].python and rows["runc"].python.kernel == platform.release()
    if shutil.which("runsc") is None:
        assert rows["runsc"].reason == "runsc is not installed (Debian package runsc)"
    else:
        assert rows["runsc"].measured, rows["runsc"].reason
        assert rows["runsc"].how and rows["runsc"].how.startswith("runsc version")
        # the agent really ran under gVisor's kernel, not the host's
        assert rows["runsc"].python and rows["runsc"].python.kernel == GVISOR_KERNEL != platform.release()
    assert not rows["vm"].measured and rows["vm"].reason == vm_reason()
    assert any(f"vm was not measured: {vm_reason()}" == note for note in report.notes)


@pytest.mark.timeout(300)
def test_every_measured_runtime_runs_every_workload(report: RuntimesReport) -> None:
    measured = [row.runtime for row in report.runtimes if row.measured]
    environments: dict[Workload, set[str]] = {}
    for item in report.measurements:
        environments.setdefault(item.workload, set()).add(item.environment)
        assert len(item.runs) == report.settings.completed_repetitions == 2
        assert all(value > 0 for value in item.runs), item
    assert environments[Workload.cpu] == {"native", *measured}
    assert environments[Workload.disk] == {"native"} | {
        f"{rt} {where}" for rt in measured for where in ("layer", "volume")
    }
    paths = {"native-loopback"} | {f"{rt} {path}" for rt in measured for path in PATHS.get(rt, CONTAINER_PATHS)}
    assert environments[Workload.tcp_rtt] == environments[Workload.tcp_throughput] == paths
    assert {c.environment for c in report.comparisons} == {m.environment for m in report.measurements} - {
        "native",
        "native-loopback",
    }


@pytest.mark.timeout(300)
def test_renderings_name_the_reason_and_colour_by_runtime(report: RuntimesReport) -> None:
    import xml.etree.ElementTree as ET

    assert f"vm: cannot run here — {vm_reason()}" in render_text(report)
    assert f"| vm | no | {vm_reason()} |" in render_markdown(report)
    root = ET.fromstring(render_plot(report))
    bars = root.findall(".//{http://www.w3.org/2000/svg}rect[@class='bar']")
    assert len(bars) == len(report.measurements)
    labels = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text") if t.get("class") == "y-label"]
    assert labels[:2] == ["time for the fixed CPU work, wall clock (s)", "memory copy bandwidth, wall clock (GB/s)"]
    colours = {bar.get("data-series"): bar.get("fill") for bar in bars}
    assert colours["native"] == "#7f7f7f" and colours["runc"] == "#4c78a8"
    assert len(set(colours.values())) == len(colours)
    assert "not runnable here: vm" in (root.find("{http://www.w3.org/2000/svg}text[@class='title']").text or "")


def test_a_host_without_the_programs_gets_a_reason_not_a_guess(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: neither runsc nor qemu is installed
    assert kvm_problem() == "qemu-system-x86_64 is not installed (Debian package qemu-system-x86)"
    conn = connect()
    try:
        runsc = start(Runtime.runsc, conn, PYTHON_IMAGE)
        with pytest.raises(RuntimeUnavailable, match=r"^runsc is not installed \(Debian package runsc\)$"), runsc:
            pass
        vm = start(Runtime.vm, conn, PYTHON_IMAGE)
        with pytest.raises(RuntimeUnavailable, match=r"^qemu-system-x86_64 is not installed"), vm:
            pass
    finally:
        conn.close()


@pytest.mark.timeout(120)
def test_only_unrunnable_runtimes_still_measure_native(client: docker.DockerClient) -> None:
    vm_reason()
    alone = runtimes_report(TINY, [Runtime.vm], image=PYTHON_IMAGE)
    assert [(row.runtime, row.measured) for row in alone.runtimes] == [("vm", False)]
    assert {m.runtime for m in alone.measurements} == {"native"}
    assert alone.comparisons == []


def processes_mentioning(marker: bytes) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.timeout(180)
def test_runsc_that_does_not_start_is_a_row_with_the_engines_reason_and_leaves_nothing(
    client: docker.DockerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("runsc") is None:
        pytest.skip("runsc is not installed")
    # gVisor's own network stack, as `--add-runtime runsc=/usr/bin/runsc` gives it: Debian's runsc 20221219 then
    # fails every start on a recent kernel after its sandbox is up, which left shims and sandboxes running.
    monkeypatch.setattr(runtimes, "RUNSC_ARGS", ["--platform=ptrace"])
    roots: list[Path] = []
    stop = TrialDaemon.stop

    def noting_the_root(daemon: TrialDaemon) -> None:
        roots.append(daemon.root)
        stop(daemon)

    monkeypatch.setattr(TrialDaemon, "stop", noting_the_root)
    conn = connect()
    try:
        attempt = start(Runtime.runsc, conn, BUSYBOX_IMAGE)  # busybox has no python: no agent would answer
        with pytest.raises((RuntimeUnavailable, OverheadError)) as caught, attempt:
            pass
    finally:
        conn.close()
    # every shim, sandbox and gofer of the failed starts went with the private dockerd
    assert len(roots) == 1 and not roots[0].exists()
    assert processes_mentioning(str(roots[0]).encode() + b"/") == []
    if isinstance(caught.value, OverheadError):
        pytest.skip(f"this runsc starts its own network stack here: {caught.value}")
    assert str(caught.value).startswith("runsc containers do not start here: ")
    assert "cannot run with network enabled in root network namespace" in str(caught.value)


def private_dockerd_of(parent: int) -> tuple[int, bytes] | None:
    """The private dockerd `parent` started: its pid and its root (the directory of its -H socket)."""
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or (entry / "comm").read_text().strip() != "dockerd":
                continue
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) != parent:
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        return int(entry.name), argv[argv.index(b"-H") + 1].removeprefix(b"unix://").rsplit(b"/", 1)[0]
    return None


@pytest.mark.timeout(240)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_while_the_private_dockerd_starts_removes_it(client: docker.DockerClient, signum: int) -> None:
    if shutil.which("runsc") is None:
        pytest.skip("runsc is not installed")
    process = subprocess.Popen(
        [sys.executable, "-m", "portcullis", "overhead", "--runtime", "runsc", "--image", PYTHON_IMAGE],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 120
        while (daemon := private_dockerd_of(process.pid)) is None:
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "no private dockerd within 120 s"
            time.sleep(0.2)
        time.sleep(2)  # into the image copy
        process.send_signal(signum)
        rest = process.stderr.read()
        assert process.wait(timeout=120) == 130, rest
    finally:
        if process.poll() is None:
            process.kill()
    pid, root = daemon
    assert not Path(f"/proc/{pid}").exists()
    assert not Path(root.decode()).exists()
    assert processes_mentioning(root + b"/") == []
    assert leftovers(client) == ([], [])
