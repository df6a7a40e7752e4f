"""`portcullis prove` on the real engine: verdicts for a hardened container, and clean-up on signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from tests.runtime.conftest import Containers, docker

from portcullis.pipelines.errors import SubjectError, UsageError
from portcullis.proofs.prove import PolicyOptions, ProofImages, prove_report

pytestmark = pytest.mark.engine

HARDENED = ["--memory", "64m", "--memory-swap", "64m", "--pids-limit", "40", "--cpus", "0.5", "--read-only",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]  # fmt: skip


def managed_containers() -> list[str]:
    return docker("ps", "-aq", "--filter", "label=portcullis.purpose=prove").stdout.split()


def prove(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "portcullis", "prove", *args, "-f", "json"], capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def verdicts(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert result.returncode == 0, result.stderr
    return {f["rule_id"]: f["status"] for f in json.loads(result.stdout)["findings"]}


def test_hardened_container_limits_hold(containers: Containers) -> None:
    name = containers.run(HARDENED)
    found = verdicts(prove(name))
    cpu = found.pop("DKR-PRV-003")
    assert cpu in ("pass", "skip")  # skip only when the host is too busy to show throttling (the reason says so)
    assert found == {
        "DKR-PRV-001": "pass",
        "DKR-PRV-002": "pass",
        "DKR-PRV-004": "pass",
        "DKR-PRV-005": "pass",
        "DKR-PRV-006": "pass",
        "DKR-PRV-007": "pass",
        "DKR-PRV-008": "not_applicable",
        # disk caps and quota are not set; the network and daemon-death proofs are opt-in
        **{f"DKR-PRV-{n:03d}": "not_applicable" for n in range(9, 17)},
    }
    assert managed_containers() == []


def test_unconfined_container_has_nothing_to_prove(containers: Containers) -> None:
    name = containers.run(["--security-opt", "seccomp=unconfined"])
    found = verdicts(prove(name))
    assert set(found.values()) == {"not_applicable"}
    assert managed_containers() == []


def test_sys_admin_breaks_the_seccomp_proof(containers: Containers) -> None:
    name = containers.run(["--cap-add", "SYS_ADMIN"])
    result = prove(name)
    findings = {f["rule_id"]: f for f in json.loads(result.stdout)["findings"]}
    assert findings["DKR-PRV-006"]["status"] == "fail"
    assert findings["DKR-PRV-006"]["evidence"]["probes"]["unshare(CLONE_NEWUSER)"] == "ok"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_run_removes_every_experiment_container(signum: int) -> None:
    process = subprocess.Popen([sys.executable, "-m", "portcullis", "prove", "--memory", "64m", "--pids-limit", "40",
                                "--read-only", "--no-new-privileges"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not managed_containers():
            assert time.monotonic() < deadline, "no experiment container appeared"
            assert process.poll() is None, process.communicate()
            time.sleep(0.2)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert "Traceback" not in stderr
    assert managed_containers() == []


def test_unknown_container_is_one_line_error() -> None:
    result = prove("pc-prove-does-not-exist")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0


def test_the_flow_answers_with_typed_errors_before_any_experiment() -> None:
    images = ProofImages()
    with pytest.raises(SubjectError, match=r"^no Docker engine answers at unix:///nonexistent\.sock: "):
        prove_report(None, PolicyOptions(), images, host="unix:///nonexistent.sock")
    with pytest.raises(SubjectError, match=r"^cannot inspect container 'pc-prove-does-not-exist': "):
        prove_report("pc-prove-does-not-exist", PolicyOptions(), images)
    with pytest.raises(UsageError, match=r"^--memory 'lots' is not a size \(examples: 64m, 1g\)$"):
        prove_report(None, PolicyOptions(memory="lots"), images)
    assert managed_containers() == []
