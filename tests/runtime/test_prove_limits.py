"""Issue 16 §3 on the real engine: disk rate caps, storage quota, egress shaping, reachability and dockerd's death,
each proven in labelled containers (and networks, and private dockerds) that are gone afterwards."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.runtime.conftest import Containers, docker

from portcullis.checks.prove_judges import judge
from portcullis.collect.engine import connect
from portcullis.collect.sandbox import Sandbox, sandbox
from portcullis.harden.trial_daemon import missing_requirement
from portcullis.model.findings import Status
from portcullis.pipelines.errors import UsageError
from portcullis.proofs import limits
from portcullis.proofs.prove import OptInProofs, PolicyOptions, ProofImages, engine_view, prove_report

pytestmark = pytest.mark.engine

PYTHON = "portcullis-test/python:bookworm"
BUSYBOX = "portcullis-test/busybox:1"
CAP = 4 << 20  # bytes/s: far below this VM's disk, long enough (2 s) to measure


def leftovers() -> tuple[list[str], list[str]]:
    containers = docker("ps", "-aq", "--filter", "label=portcullis.purpose=prove").stdout.split()
    networks = docker("network", "ls", "-q", "--filter", "label=portcullis.purpose=prove").stdout.split()
    return containers, networks


def prove(*args: str) -> dict[str, dict[str, Any]]:
    result = subprocess.run([sys.executable, "-m", "portcullis", "prove", *args, "-f", "json"], capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return {f["rule_id"]: f for f in json.loads(result.stdout)["findings"]}


@pytest.fixture
def box() -> Iterator[Sandbox]:
    conn = connect()
    try:
        with sandbox(conn, "prove") as made:
            yield made
    finally:
        conn.close()
    assert leftovers() == ([], [])


@pytest.fixture(scope="module")
def device() -> str:
    conn = connect()
    try:
        view = engine_view(conn.api.info(), conn.local)
    finally:
        conn.close()
    if view.data_root_device is None:
        pytest.skip(view.device_reason)
    return view.data_root_device


def test_explicit_policy_all_limits_in_one_run() -> None:
    found = prove("--device-write-bps", "4mb", "--device-read-bps", "4mb", "--storage-size", "32m", "--network",
                  "--publish-ip", "0.0.0.0", "--egress-rate", "8mbit", "--seccomp-unconfined")  # fmt: skip
    status = {rule_id: f["status"] for rule_id, f in found.items() if rule_id >= "DKR-PRV-009"}
    assert status == {
        "DKR-PRV-009": "pass",
        "DKR-PRV-010": "pass",
        "DKR-PRV-011": "not_applicable",  # vfs here: the reason names the driver
        "DKR-PRV-012": "pass",
        # With dockerd --iptables=false (this VM) nothing separates networks or neighbours: real findings.
        "DKR-PRV-013": "fail",
        "DKR-PRV-014": "fail",
        "DKR-PRV-015": "fail",
        "DKR-PRV-016": "not_applicable",  # not requested
    }
    assert found["DKR-PRV-009"]["evidence"]["measured_bps"] <= CAP * 1.2
    assert found["DKR-PRV-012"]["evidence"]["shaped_bits"] <= 8_000_000 * 1.2
    driver = docker("info", "--format", "{{.Driver}}").stdout.strip()
    assert f"storage driver {driver} does not support --storage-opt size" in found["DKR-PRV-011"]["message"]
    assert found["DKR-PRV-013"]["evidence"]["same_network_reached"] is True
    assert leftovers() == ([], [])


def test_container_policy_is_read_from_the_container(containers: Containers, device: str) -> None:
    name = containers.run(["--device-write-bps", f"{device}:4mb", "--security-opt", "seccomp=unconfined"])
    found = prove(name)
    assert found["DKR-PRV-009"]["status"] == "pass", found["DKR-PRV-009"]["message"]
    assert found["DKR-PRV-009"]["evidence"]["device"] == device
    assert found["DKR-PRV-010"]["status"] == "not_applicable"
    assert leftovers() == ([], [])


@pytest.mark.parametrize(
    ("rule_id", "measure"),
    [("DKR-PRV-009", limits.measure_device_write), ("DKR-PRV-010", limits.measure_device_read)],
)
def test_an_uncapped_transfer_fails_the_cap(box: Sandbox, device: str, rule_id: str, measure: Any) -> None:
    uncapped = measure(box, PYTHON, device, None, CAP)
    status, message = judge(rule_id, {"device": device, "rate": CAP, "run": uncapped, "control": uncapped})
    assert status == Status.FAIL, message


def test_without_the_qdisc_the_egress_is_not_shaped(box: Sandbox) -> None:
    measured = limits.measure_egress(box, PYTHON, 8_000_000, shape=False)
    status, message = judge("DKR-PRV-012", measured)
    assert status == Status.FAIL, message
    assert measured["shaped_bits"] > 8_000_000 * 1.2


def test_a_loopback_port_is_not_reachable_from_outside(box: Sandbox) -> None:
    address = engine_view(box.conn.api.info(), box.conn.local).external_address
    if address is None:
        pytest.skip("this host has no default route")
    status, message = judge("DKR-PRV-015", limits.measure_published_port(box, BUSYBOX, "127.0.0.1", address))
    assert status == Status.PASS, message


@pytest.mark.skipif(missing_requirement() is not None, reason=str(missing_requirement()))
def test_daemon_death_on_private_daemons() -> None:
    found = prove("--daemon-death", "--seccomp-unconfined")
    death = found["DKR-PRV-016"]
    trials = death["evidence"]["trials"]
    # live-restore off: the restarted dockerd stops the container; on: the same process keeps running.
    assert trials["off"]["alive_while_dockerd_dead"] is True
    assert trials["off"]["running_after_restart"] is False
    assert trials["on"]["running_after_restart"] is True
    assert trials["on"]["same_process"] is True
    engine_live_restore = docker("info", "--format", "{{.LiveRestoreEnabled}}").stdout.strip() == "true"
    assert death["status"] == ("pass" if engine_live_restore else "fail")
    # The same real trials, judged for an engine configured the other way round.
    flipped, _ = judge("DKR-PRV-016", {"engine_live_restore": not engine_live_restore, "trials": trials})
    assert flipped == (Status.FAIL if engine_live_restore else Status.PASS)
    assert docker("ps", "-aq", "--filter", "label=portcullis.purpose=prove-daemon-death").stdout.split() == []


def test_interrupt_during_network_proofs_removes_containers_and_networks() -> None:
    process = subprocess.Popen([sys.executable, "-m", "portcullis", "prove", "--network", "--seccomp-unconfined"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not leftovers()[1]:
            assert time.monotonic() < deadline, "no experiment network appeared"
            assert process.poll() is None, process.communicate()
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert "Traceback" not in stderr
    assert leftovers() == ([], [])


def _children(pid: int, name: str) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid), "-x", name], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


def _trial_processes(root: str) -> list[str]:
    listed = subprocess.run(["pgrep", "-af", root], capture_output=True, text=True).stdout.splitlines()
    return [line for line in listed if "pgrep" not in line]


@pytest.mark.skipif(missing_requirement() is not None, reason=str(missing_requirement()))
def test_interrupt_during_daemon_death_stops_the_private_daemon() -> None:
    process = subprocess.Popen([sys.executable, "-m", "portcullis", "prove", "--daemon-death", "--seccomp-unconfined"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    root = ""
    try:
        deadline = time.monotonic() + 120
        # The trial's root appears on its dockerd's command line; wait for the probe container's shim.
        while not root or not any("containerd-shim" in line for line in _trial_processes(root)):
            assert time.monotonic() < deadline, "the trial's container never started"
            assert process.poll() is None, process.communicate()
            for pid in _children(process.pid, "dockerd"):
                command = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
                root = next(a.split("=", 1)[1].rsplit("/", 1)[0] for a in command if a.startswith("--data-root="))
            time.sleep(0.2)
        time.sleep(1.5)  # into the kill and restart
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert _trial_processes(root) == []  # no dockerd, containerd or shim of the trial is left
    assert not Path(root).exists()


def test_bad_sizes_and_rates_are_one_line_errors() -> None:
    images = ProofImages()
    with pytest.raises(UsageError, match=r"^--device-write-bps 'fast' is not a size \(examples: 64m, 1g\)$"):
        prove_report(None, PolicyOptions(device_write_bps="fast"), images)
    with pytest.raises(UsageError, match=r"^--egress-rate 'quick' is not a rate \(examples: 8mbit, 500kbit\)$"):
        prove_report(None, PolicyOptions(), images, opt_in=OptInProofs(egress_rate="quick"))
    result = subprocess.run([sys.executable, "-m", "portcullis", "prove", "--storage-size", "big"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == "portcullis: error: --storage-size 'big' is not a size (examples: 64m, 1g)"
    assert leftovers() == ([], [])
