"""Host-side facts and actions the limit proofs need: the block device behind the engine's data root, the host's
external address, traffic shaping inside an experiment container's network namespace, and one HTTP request.

Everything here reads the local host; it is meaningful only when the engine runs on this machine.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

from portcullis.collect.host import read_text

SYS_BLOCK = Path("/sys/dev/block")
TC_TIMEOUT = 10


def block_device_of(path: str, mountinfo: str | None = None) -> tuple[str | None, str]:
    """(the whole-disk device under `path`, e.g. /dev/vda, or None; how it was found or why not)."""
    table = mountinfo if mountinfo is not None else read_text("/proc/self/mountinfo")
    if not table:
        return None, "/proc/self/mountinfo cannot be read"
    best: tuple[str, str] | None = None  # (mount point, major:minor) of the longest mount point above `path`
    for line in table.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = fields[4].replace("\\040", " ")
        above = path == point or path.startswith(point.rstrip("/") + "/")
        if above and (best is None or len(point) > len(best[0])):
            best = (point, fields[2])
    if best is None:
        return None, f"no mount holds {path}"
    point, numbers = best
    if numbers.startswith("0:"):
        return None, f"{path} is on {point}, a filesystem without a block device (device {numbers})"
    entry = SYS_BLOCK / numbers
    if not entry.exists():
        return None, f"{path} is on device {numbers}, which /sys/dev/block does not list"
    # A partition's throttle is set on its disk: blkio throttling needs the device with the request queue.
    resolved = entry.resolve()
    disk = resolved.parent if (resolved / "partition").exists() else resolved
    return f"/dev/{disk.name}", f"{path} is on {point}, device {numbers} ({disk.name})"


def external_ipv4() -> str | None:
    """The source address this host uses for its default route (no packet is sent), or None without a route."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only the routing decision is made
        address = str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


def missing_shaping_tools() -> str | None:
    for tool in ("nsenter", "tc"):
        if shutil.which(tool) is None:
            return f"shaping needs `{tool}`, which is not installed on this host"
    return None


def tc_in_netns(pid: int, *args: str) -> tuple[bool, str]:
    """Run `tc ARGS` in the network namespace of process `pid` (an experiment container's), never the host's."""
    argv = ["nsenter", f"--net=/proc/{pid}/ns/net", "tc", *args]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TC_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return done.returncode == 0, (done.stdout + done.stderr).strip()


def http_get(address: str, port: int, timeout: float = 3.0) -> str | None:
    """The body of `GET /` at address:port, or None when nothing answers within `timeout`."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as connection:
            connection.settimeout(timeout)
            connection.sendall(f"GET / HTTP/1.0\r\nHost: {address}\r\n\r\n".encode())
            chunks = []
            while chunk := connection.recv(4096):
                chunks.append(chunk)
    except OSError:
        return None
    _, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return body.decode(errors="replace")
