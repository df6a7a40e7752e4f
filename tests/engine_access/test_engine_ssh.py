"""ssh:// engines through the system ssh client: a private sshd on 127.0.0.1 with keys made here, whose "remote"
docker CLI (`docker system dial-stdio`) reaches this machine's engine."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(
        not (Path("/usr/sbin/sshd").exists() and shutil.which("ssh") and shutil.which("docker") and os.geteuid() == 0),
        reason="needs root, sshd (openssh-server), ssh and the docker CLI",
    ),
]


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=60)


@pytest.fixture(scope="module")
def ssh_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """An sshd on a free port and an ssh wrapper first on PATH that points the real client at this test's config
    (ssh reads ~/.ssh of the passwd entry, not $HOME, so a config file is the only way in)."""
    work = tmp_path_factory.mktemp("ssh")
    _keygen(work / "host_key")
    _keygen(work / "client_key")
    (work / "authorized_keys").write_bytes((work / "client_key.pub").read_bytes())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (work / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {work / 'host_key'}\nPidFile {work / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {work / 'authorized_keys'}\nStrictModes no\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n",
        encoding="utf-8",
    )
    host_key = (work / "host_key.pub").read_text().split()
    (work / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n", encoding="utf-8")
    (work / "ssh_config").write_text(
        f"Host 127.0.0.1\n  IdentityFile {work / 'client_key'}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {work / 'known_hosts'}\n  StrictHostKeyChecking yes\n",
        encoding="utf-8",
    )
    bin_dir = work / "bin"
    bin_dir.mkdir()
    real_ssh = shutil.which("ssh")
    (bin_dir / "ssh").write_text(f'#!/bin/sh\nexec {real_ssh} -F {work / "ssh_config"} "$@"\n', encoding="utf-8")
    (bin_dir / "ssh").chmod(0o755)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    with (work / "sshd.log").open("wb") as log:
        sshd = subprocess.Popen(
            ["/usr/sbin/sshd", "-D", "-e", "-f", str(work / "sshd_config")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert sshd.poll() is None, (work / "sshd.log").read_text()
            time.sleep(0.1)
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "SSH_AUTH_SOCK"))}
        yield {**clean, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PC_SSH_PORT": str(port)}
    finally:
        sshd.terminate()
        sshd.wait(timeout=10)


def _audit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portcullis", "audit", "-f", "json", "--select", "CIS-2.1", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_an_ssh_host_is_audited_through_the_system_ssh(ssh_env: dict[str, str]) -> None:
    url = f"ssh://root@127.0.0.1:{ssh_env['PC_SSH_PORT']}"
    result = _audit(ssh_env, "-H", url)
    assert result.returncode == 0, result.stderr
    assert f"collecting facts from {url}" in result.stderr
    result = _audit({**ssh_env, "DOCKER_HOST": url})
    assert result.returncode == 0, result.stderr


def test_a_refused_login_is_one_line_with_ssh_s_reason(ssh_env: dict[str, str]) -> None:
    result = _audit(ssh_env, "-H", f"ssh://nobody@127.0.0.1:{ssh_env['PC_SSH_PORT']}")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "over ssh: " in lines[0] and "Permission denied" in lines[0], result.stderr
