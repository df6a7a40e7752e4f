"""A private second dockerd: its own socket, data root and bridge, taken down again with everything it ran.

`harden` tries a daemon.json on it, `proofs.runtimes` runs gVisor containers on it (a runtime the main engine
may lack), and the tests and benchmarks use it for their second engine.

The trial daemon never shares state with the main engine: its own socket, data root, exec root, pid file,
containerd namespaces and its own bridge. Two rules keep a shared host safe: never `--bridge none` (dockerd
would delete docker0 for every other user) and always `--iptables=false` (a trial must not touch the firewall).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

from portcullis.collect import CollectionError


class PrivateDockerdError(CollectionError):
    """The private dockerd cannot run or refused its configuration: one clear line."""


START_TIMEOUT = 60.0
# What a container start runs below containerd (runsc names its re-executed processes runsc-gofer/-sandbox).
RUNTIME_PROGRAMS = {b"containerd-shim-runc-v2", b"runc", b"runsc", b"runsc-gofer", b"runsc-sandbox"}
STOP_TIMEOUT = 30.0
# A private /24 for the trial bridge, outside Docker's default pools (172.17-31/16 and 192.168/16 are taken first).
BRIDGE_ADDRESS = "10.213.{n}.1/24"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


def _networks_in_use() -> set[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The IPv4 networks of this host's interfaces."""
    listing = subprocess.run(["ip", "-o", "-4", "addr", "show"], check=True, capture_output=True, text=True, timeout=30)
    words = [line.split() for line in listing.stdout.splitlines()]
    return {ipaddress.ip_interface(line[line.index("inet") + 1]).network for line in words if "inet" in line}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _mounts_below(path: Path) -> list[str]:
    prefix = str(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as table:
        points = [line.split()[4].replace("\\040", " ") for line in table]
    return sorted((p for p in points if p == prefix or p.startswith(prefix + "/")), key=len, reverse=True)


def missing_requirement() -> str | None:
    """Why a second dockerd cannot run here, or None."""
    if os.geteuid() != 0:
        return "a second dockerd needs root"
    for tool in ("dockerd", "ip"):
        if shutil.which(tool) is None:
            return f"a second dockerd needs `{tool}`, which is not installed"
    return None


@dataclass
class TrialDaemon:
    config: dict[str, Any]
    # The bridge's address; by default a free /24 from BRIDGE_ADDRESS. Many containers need a wider one.
    bridge_address: str = ""
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pc-harden-", dir="/tmp")))
    process: subprocess.Popen[bytes] | None = None
    bridge: str = ""
    # Its own containerd, outside dockerd, as on hosts where containerd is a service of its own: then killing
    # dockerd leaves containerd and the container shims running (dockerd's child containerd would die with it).
    separate_containerd: bool = False
    containerd: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.root / 'docker.sock'}"

    @property
    def log_path(self) -> Path:
        return self.root / "dockerd.log"

    def argv(self) -> list[str]:
        # containerd namespaces allow [A-Za-z0-9] runs joined by . _ -; mkdtemp names may end in "_".
        namespace = "portcullis-" + "".join(ch for ch in self.root.name if ch.isalnum())
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
            f"--containerd-namespace={namespace}",
            f"--containerd-plugins-namespace={namespace}-plugins",
            *([f"--containerd={self.containerd_socket}"] if self.separate_containerd else []),
        ]

    @property
    def containerd_socket(self) -> Path:
        return self.root / "containerd" / "containerd.sock"

    def _start_containerd(self) -> None:
        home = self.root / "containerd"
        home.mkdir(parents=True, exist_ok=True)
        # No CRI plugin (it would listen on a TCP port) and no debug or metrics listeners.
        config = (
            f'version = 2\nroot = "{home / "root"}"\nstate = "{home / "state"}"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.containerd_socket}"\n'
            f'[ttrpc]\n  address = "{self.containerd_socket}.ttrpc"\n'
            '[debug]\n  address = ""\n[metrics]\n  address = ""\n'
        )
        (home / "config.toml").write_text(config, encoding="utf-8")
        with open(home / "containerd.log", "ab") as log:
            self.containerd = subprocess.Popen(
                ["containerd", "--config", str(home / "config.toml")],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while not self.containerd_socket.exists():
            if self.containerd.poll() is not None or time.monotonic() > deadline:
                raise PrivateDockerdError(f"the trial containerd did not start; see {home / 'containerd.log'}")
            time.sleep(0.1)

    def start(self) -> None:
        missing = missing_requirement()
        if missing:
            raise PrivateDockerdError(missing)
        # With userns-remap the remapped root must be able to traverse down to its own data directory.
        self.root.chmod(0o711)
        (self.root / "daemon.json").write_text(json.dumps(self.config, indent=1), encoding="utf-8")
        if not self.bridge:  # started again with a new configuration: the same bridge serves, none is left behind
            self._create_bridge()
        if self.separate_containerd:
            self._start_containerd()
        self._launch()

    def kill_dockerd(self) -> None:
        """SIGKILL this trial's dockerd alone, as a crash would: its containerd and containers are left be."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)
        # The dead daemon's socket file stays behind; the restart's readiness check must wait for the new one.
        (self.root / "docker.sock").unlink(missing_ok=True)

    def restart_dockerd(self) -> None:
        """Start this trial's dockerd again on the same data, exec root and bridge."""
        self._launch()

    def _launch(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PrivateDockerdError(f"the trial dockerd refused the proposal: {self.log_tail()}")
            if (self.root / "docker.sock").exists():
                try:  # the client asks for the API version as it is made: a daemon still starting may not answer
                    client = docker.DockerClient(base_url=self.host, timeout=5)
                except docker.errors.DockerException:
                    time.sleep(0.2)
                    continue
                try:
                    client.ping()
                    return
                except docker.errors.DockerException:
                    pass
                finally:
                    client.close()
            time.sleep(0.2)
        raise PrivateDockerdError(f"the trial dockerd did not answer within {START_TIMEOUT:.0f} s: {self.log_tail()}")

    def _create_bridge(self) -> None:
        # The pid keeps concurrent trials apart; the name stays within the 15-character interface limit. The /24
        # must be free too: a bridge left by a killed run keeps its route, and a second bridge on the same subnet
        # would lose its containers' traffic to it.
        taken = _networks_in_use()
        for attempt in range(250):
            name = f"pch{(os.getpid() + attempt) % 100000}"
            address = self.bridge_address or BRIDGE_ADDRESS.format(n=(os.getpid() + attempt) % 250 + 1)
            if not Path(f"/sys/class/net/{name}").exists() and (
                self.bridge_address or ipaddress.ip_interface(address).network not in taken
            ):
                break
        else:
            raise PrivateDockerdError("no free name and subnet for the trial bridge")
        _ip("link", "add", name, "type", "bridge")
        self.bridge = name
        _ip("addr", "add", address, "dev", name)
        _ip("link", "set", name, "up")

    def log_tail(self, lines: int = 6) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return "(no log)"
        return " | ".join(line.strip() for line in text)

    def client(self, timeout: int = 120) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host, timeout=timeout)

    def stop(self) -> None:
        """Stop dockerd, its containers (live-restore keeps them otherwise), its containerd, bridge and files."""
        if self.process is not None and self.process.poll() is None:
            with suppress(docker.errors.DockerException):
                client = self.client(timeout=30)
                try:
                    for container in client.containers.list(all=True):
                        with suppress(docker.errors.NotFound):
                            container.remove(force=True, v=True)
                finally:
                    client.close()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._stop_containerd()
        self._kill_stragglers()
        if self.containerd is not None and self.containerd.poll() is None:
            self.containerd.terminate()
            try:
                self.containerd.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.containerd.kill()
                self.containerd.wait(timeout=10)
        if self.bridge:
            with suppress(subprocess.CalledProcessError):
                _ip("link", "del", self.bridge)
            self.bridge = ""
        if self.root.exists():
            for mountpoint in _mounts_below(self.root):
                subprocess.run(["umount", "-l", mountpoint], capture_output=True, timeout=30, check=False)
            if _mounts_below(self.root):
                raise PrivateDockerdError(
                    f"mounts remain under {self.root}; left it in place rather than delete through them"
                )
            shutil.rmtree(self.root, ignore_errors=True)

    def _kill_stragglers(self) -> None:
        """Kill what outlived its daemon: a container whose start failed, or whose removal a crash cut short, can
        leave its containerd shim (and its container) and, under runsc, the sandbox and gofer processes running.
        Only those programs, and only when their command line names this daemon's own (mkdtemp) root: a client of
        the daemon (a test's subprocess) is never touched."""
        marker = str(self.root).encode() + b"/"
        stragglers, shims, parents = [], set(), {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            program = os.path.basename(argv[0])
            if program in RUNTIME_PROGRAMS and any(marker in arg for arg in argv):
                stragglers.append(int(entry.name))
                if program == b"containerd-shim-runc-v2":
                    shims.add(int(entry.name))
        # A container's init first: its pid namespace (and every process in it) ends with it.
        for pid in [p for p, parent in parents.items() if parent in shims] + stragglers:
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def _stop_containerd(self) -> None:
        try:
            pid = int((self.root / "exec" / "containerd" / "containerd.pid").read_text().strip())
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


@contextmanager
def trial_daemon(config: dict[str, Any]) -> Iterator[TrialDaemon]:
    daemon = TrialDaemon(config)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()


def copy_image(name: str, source: Any, target: docker.DockerClient) -> None:
    """`docker save | docker load` from the main engine: no registry is needed."""
    try:
        data = b"".join(source.get_image(name))
    except docker.errors.ImageNotFound:
        raise PrivateDockerdError(f"image {name} is not in the engine") from None
    target.images.load(data)
