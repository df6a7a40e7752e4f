"""The audit against Podman's Docker-compatible API socket: containers are judged, and the dockerd-only
controls say why they cannot be answered instead of borrowing the main engine's dockerd."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cli_audit import audit_report

pytestmark = pytest.mark.engine

BUSYBOX = "portcullis-test/busybox:1"


@pytest.fixture(scope="module")
def podman_socket() -> Iterator[str]:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (make podman)")
    root = Path(tempfile.mkdtemp(prefix="pc-podman-"))
    socket = root / "podman.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            assert time.monotonic() < deadline, "podman did not create its socket"
            time.sleep(0.2)
        saved = subprocess.run(["docker", "save", BUSYBOX], capture_output=True, check=True, timeout=120).stdout
        subprocess.run(["podman", "load", "-q"], input=saved, capture_output=True, check=True, timeout=120)
        subprocess.run(
            [
                "podman",
                "create",
                "--name",
                "pc-podman-sysadmin",
                "--label",
                "portcullis.test=1",
                "--cap-add",
                "SYS_ADMIN",
                BUSYBOX,
                "sleep",
                "300",
            ],
            capture_output=True,
            check=True,
        )
        yield f"unix://{socket}"
    finally:
        subprocess.run(["podman", "rm", "-f", "pc-podman-sysadmin"], capture_output=True, check=False)
        service.terminate()
        service.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def test_audit_of_the_podman_socket(podman_socket: str) -> None:
    report = audit_report(podman_socket)
    findings = report["findings"]
    caps = [f for f in findings if f["rule_id"] == "CIS-5.4" and f["target"]["name"] == "pc-podman-sysadmin"]
    assert [f["status"] for f in caps] == ["fail"]
    assert "SYS_ADMIN" in caps[0]["message"]
    # No dockerd serves this socket: dockerd-only settings are unknown, never taken from the main engine.
    by_id = {f["rule_id"]: f for f in findings if f["target"]["kind"] == "daemon"}
    assert by_id["CIS-2.4"]["status"] == "skip"
    assert by_id["CIS-2.1"]["status"] == "skip"
    assert any("no dockerd process serves" in p["reason"] for p in report["problems"])
