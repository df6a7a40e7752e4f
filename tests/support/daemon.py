"""A second, private dockerd next to the main engine, for tests and benchmarks.

It gets its own socket, data root, exec root, pid file, containerd namespaces and its own bridge, so
it never touches the main engine's state. Two rules keep the shared machine safe:
never ``--bridge none`` (dockerd would delete docker0 for everyone) and always ``--iptables=false``
(no test may change the host firewall).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


class DaemonUnavailable(Exception):
    """This machine cannot run a second dockerd (not root, no dockerd or ip binary)."""


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30)


def _mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path` (deepest first), from this process's mount table."""
    prefix = str(path)
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as table:
        for line in table:
            mountpoint = line.split()[4].replace("\\040", " ")
            if mountpoint == prefix or mountpoint.startswith(prefix + "/"):
                found.append(mountpoint)
    return sorted(found, key=len, reverse=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class SecondDaemon:
    """One private dockerd. `start()` waits until it answers; `stop()` undoes everything `start()` did."""

    config: dict[str, Any]
    bridge: str = "pc-br0"
    bridge_address: str = "172.30.99.1/24"
    extra_args: list[str] = field(default_factory=list)
    root: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    created_bridge: bool = False

    @property
    def socket_path(self) -> Path:
        assert self.root is not None, "the daemon was not started"
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def log_path(self) -> Path:
        assert self.root is not None, "the daemon was not started"
        return self.root / "dockerd.log"

    @property
    def namespace(self) -> str:
        assert self.root is not None, "the daemon was not started"
        # containerd namespaces allow [A-Za-z0-9] runs joined by . _ -; mkdtemp names may end in "_".
        return "portcullis-" + "".join(ch for ch in self.root.name if ch.isalnum())

    def argv(self) -> list[str]:
        assert self.root is not None, "the daemon was not started"
        return [
            "dockerd",
            "-H",
            self.host,
            f"--data-root={self.root / 'data'}",
            f"--exec-root={self.root / 'exec'}",
            f"--pidfile={self.root / 'dockerd.pid'}",
            f"--config-file={self.root / 'daemon.json'}",
            "--iptables=false",
            "--ip-masq=false",
            "--storage-driver=vfs",
            f"--bridge={self.bridge}",
            f"--containerd-namespace={self.namespace}",
            f"--containerd-plugins-namespace={self.namespace}-plugins",
            *self.extra_args,
        ]

    def start(self) -> None:
        if os.geteuid() != 0:
            raise DaemonUnavailable("a second dockerd needs root")
        for tool in ("dockerd", "ip"):
            if shutil.which(tool) is None:
                raise DaemonUnavailable(f"{tool} is not installed")
        # Short path: the socket path must stay under the 108-byte sun_path limit.
        self.root = Path(tempfile.mkdtemp(prefix="pc-dockerd-", dir="/tmp"))
        # mkdtemp gives 0700; a userns-remapped daemon needs its remapped root to traverse the path.
        self.root.chmod(0o711)
        (self.root / "daemon.json").write_text(json.dumps(self.config, indent=1), encoding="utf-8")
        try:
            self._create_bridge()
            with open(self.log_path, "wb") as log:
                self.process = subprocess.Popen(
                    self.argv(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
                )
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _create_bridge(self) -> None:
        if Path(f"/sys/class/net/{self.bridge}").exists():
            raise RuntimeError(
                f"bridge {self.bridge} already exists (left over by a crashed run? `ip link del {self.bridge}`)"
            )
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        self.created_bridge = True
        _run("ip", "addr", "add", self.bridge_address, "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dockerd exited with {self.process.returncode}: {self.log_tail()}")
            if self.socket_path.exists():
                try:
                    client = docker.DockerClient(base_url=self.host, timeout=5)
                    try:
                        client.ping()
                        return
                    finally:
                        client.close()
                except docker.errors.DockerException:
                    pass
            time.sleep(0.2)
        raise TimeoutError(f"dockerd did not answer within {START_TIMEOUT:.0f} s: {self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def client(self, timeout: int = 60) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host, timeout=timeout)

    def load_image(self, name: str, source: docker.DockerClient) -> None:
        """Copy an image from another engine (`docker save | docker load`), since no registry is reachable."""
        data = b"".join(source.api.get_image(name))
        with closing(self.client()) as target:
            target.images.load(data)

    def remove_all_containers(self) -> None:
        """Live-restore keeps containers running after dockerd exits, so they go first."""
        with closing(self.client()) as client:
            for container in client.containers.list(all=True):
                with suppress(docker.errors.NotFound):
                    container.remove(force=True, v=True)

    def stop(self) -> None:
        """SIGTERM and wait; then its containerd, the bridge and the temp dirs. Safe to call twice."""
        if self.process is not None and self.process.poll() is None:
            try:
                self.remove_all_containers()
            except Exception as exc:  # keep stopping: a left-over daemon is worse than a lost container
                print(f"second dockerd: could not remove its containers: {exc}")
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.root is not None:
            self._stop_own_containerd()
        if self.created_bridge:
            with suppress(subprocess.CalledProcessError):
                _run("ip", "link", "del", self.bridge)
            self.created_bridge = False
        if self.root is not None and self.root.exists():
            self._remove_root()

    def _stop_own_containerd(self) -> None:
        """The containerd this dockerd started for itself (its pid file lives in our exec root)."""
        assert self.root is not None
        pidfile = self.root / "exec" / "containerd" / "containerd.pid"
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        if not _alive(pid):
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)

    def _remove_root(self) -> None:
        assert self.root is not None
        for mountpoint in _mounts_under(self.root):
            subprocess.run(["umount", "-l", mountpoint], capture_output=True, timeout=30, check=False)
        left = _mounts_under(self.root)
        if left:
            # Never rm -rf through a mount: it could reach files outside the temp dir.
            raise RuntimeError(f"mounts remain under {self.root}, not deleting it: {left}")
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def second_daemon(config: dict[str, Any], **options: Any) -> Iterator[SecondDaemon]:
    daemon = SecondDaemon(config=config, **options)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()
