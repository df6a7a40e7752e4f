"""The audit of a real rootless Docker engine (dockerd-rootless.sh as an unprivileged user).

docker-bench-security cannot audit rootless Docker (its issue #565); here the engine's own socket,
owner and processes are found: 2.1 passes from the engine's rootless mode, 3.15 accepts the socket
owned by the daemon's user, and 5.7 reads a container's processes through its pid namespace (rootless
Docker on cgroup v1 gives containers no cgroup of their own).

The fixture creates a throw-away user with subordinate id ranges and opens /dev/net/tun to it (slirp4netns
needs it); it restores both afterwards.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cli_audit import audit_report

pytestmark = pytest.mark.engine

USER = "pcrootless"
ROOTLESS_SCRIPT = Path("/usr/share/docker.io/contrib/dockerd-rootless.sh")
TUN = Path("/dev/net/tun")
BUSYBOX = "portcullis-test/busybox:1"


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "the rootless fixture needs root to create its user"
    for tool in ("rootlesskit", "slirp4netns", "newuidmap", "useradd"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (make podman)"
    if not ROOTLESS_SCRIPT.exists() or not TUN.exists():
        return "dockerd-rootless.sh or /dev/net/tun is missing"
    return None


@pytest.fixture(scope="module")
def rootless_socket() -> Iterator[str]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    try:
        pwd.getpwnam(USER)
        pytest.skip(f"user {USER} already exists; not touching it")
    except KeyError:
        pass
    home = Path(tempfile.mkdtemp(prefix="pc-rootless-home-"))
    runtime = Path(tempfile.mkdtemp(prefix="pc-rootless-run-"))
    saved_ids = {p: p.read_text() for p in (Path("/etc/subuid"), Path("/etc/subgid"))}
    saved_tun_mode = TUN.stat().st_mode & 0o777
    daemon: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(["useradd", "-d", str(home), "-s", "/bin/sh", USER], check=True, capture_output=True)
        for path, text in saved_ids.items():
            path.write_text(text + f"{USER}:300000:65536\n")
        uid = pwd.getpwnam(USER).pw_uid
        os.chown(home, uid, uid)
        os.chown(runtime, uid, uid)
        TUN.chmod(0o666)
        env = {
            "HOME": str(home),
            "XDG_RUNTIME_DIR": str(runtime),
            "PATH": f"{ROOTLESS_SCRIPT.parent}:/usr/sbin:/usr/bin:/sbin:/bin",
        }
        daemon = subprocess.Popen(
            [
                "setpriv",
                f"--reuid={uid}",
                f"--regid={uid}",
                "--init-groups",
                str(ROOTLESS_SCRIPT),
                "--storage-driver=vfs",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        socket = runtime / "docker.sock"
        host = f"unix://{socket}"
        deadline = time.monotonic() + 60
        while subprocess.run(["docker", "-H", host, "version"], capture_output=True).returncode != 0:
            if time.monotonic() > deadline or daemon.poll() is not None:
                pytest.skip("rootless dockerd did not start on this machine")
            time.sleep(0.5)
        image = subprocess.run(["docker", "save", BUSYBOX], capture_output=True, check=True).stdout
        subprocess.run(["docker", "-H", host, "load", "-q"], input=image, capture_output=True, check=True)
        subprocess.run(
            [
                "docker",
                "-H",
                host,
                "run",
                "-d",
                "--name",
                "pc-rootless",
                "--cap-add",
                "NET_ADMIN",
                BUSYBOX,
                "sleep",
                "600",
            ],
            capture_output=True,
            check=True,
        )
        yield host
    finally:
        if daemon is not None:
            os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
        subprocess.run(["pkill", "-9", "-u", USER], capture_output=True, check=False)
        time.sleep(1)
        subprocess.run(["userdel", USER], capture_output=True, check=False)
        for path, text in saved_ids.items():
            path.write_text(text)
        TUN.chmod(saved_tun_mode)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)


def test_audit_of_a_rootless_engine(rootless_socket: str) -> None:
    report = audit_report(rootless_socket)
    findings = report["findings"]
    status = {(f["rule_id"], f["target"]["name"]): f for f in findings}
    socket_path = rootless_socket.removeprefix("unix://")
    assert status[("CIS-2.1", rootless_socket)]["status"] == "pass"
    assert status[("CIS-3.15", socket_path)]["status"] == "pass"
    assert status[("CIS-3.16", socket_path)]["status"] == "pass"  # mode 1660: the sticky bit grants nothing
    assert status[("CIS-5.4", "pc-rootless")]["status"] == "fail"
    assert status[("CIS-5.7", "pc-rootless")]["status"] == "pass"
    # The rootless dockerd itself was found (its command line and owner), not the main engine's.
    assert not [p for p in report["problems"] if p["fact"] == "dockerd command line"]
