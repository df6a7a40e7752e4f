"""The measurements behind the disk, storage, bandwidth and reachability proofs of `portcullis prove`.

Each function starts its own labelled containers (and networks) in the sandbox and returns a measurement for
`checks.prove_judges`; the sandbox removes everything when the run ends, on Ctrl-C and SIGTERM too.
"""

from __future__ import annotations

import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from portcullis.collect.host_limits import http_get, missing_shaping_tools, tc_in_netns
from portcullis.collect.sandbox import RunResult, Sandbox, SandboxError

MIB = 1 << 20
# The throttled transfer lasts about this long: long enough to average out bursts, short enough for a test.
TRANSFER_SECONDS = 1.0
DD_BLOCK = 64 << 10
WEB_PORT = 8080
# A one-file web server: the page proves which container answered.
WEB_SERVER = f"mkdir -p /w && echo PORTCULLIS-PONG > /w/index.html && exec httpd -f -p {WEB_PORT} -h /w"
# Receives `count` connections and answers each with the byte count once the sender has finished.
RECEIVER = r"""
import socket, sys
server = socket.create_server(("0.0.0.0", 5001))
server.settimeout(60)
for _ in range(int(sys.argv[1])):
    connection, _ = server.accept()
    connection.settimeout(30)
    received = 0
    while chunk := connection.recv(1 << 16):
        received += len(chunk)
    connection.sendall(str(received).encode())
    connection.close()
"""
# The sender times the whole transfer: from connect until the receiver confirms it has every byte, so data
# queued in buffers (or a receiver slow to wake) cannot inflate the rate.
SENDER = r"""
import socket, sys, time
with socket.create_connection((sys.argv[1], 5001), timeout=30) as connection:
    began = time.monotonic()
    connection.sendall(b"x" * int(sys.argv[2]))
    connection.shutdown(socket.SHUT_WR)
    confirmed = connection.recv(64).decode()
    print("SENT", confirmed, time.monotonic() - began)
"""


@dataclass(frozen=True)
class EngineView:
    """What the proofs need to know about the engine's host, read once before the experiments."""

    local: bool = False  # the engine runs on this machine, so host-side steps (tc, the external address) apply
    storage_driver: str = ""
    data_root_device: str | None = None
    device_reason: str = "the engine's data root was not examined"
    external_address: str | None = None
    live_restore: bool = False


def _transfer_bytes(rate: int) -> int:
    """Bytes for a transfer of about TRANSFER_SECONDS at `rate` bytes/s, whole dd blocks, 1-64 MiB."""
    wanted = min(max(int(rate * TRANSFER_SECONDS), MIB), 64 * MIB)
    return wanted - wanted % DD_BLOCK


def _dd(run: RunResult) -> dict[str, Any]:
    return {"exit_code": run.exit_code, "output": run.output[-1000:], "timed_out": run.timed_out}


def measure_device_write(box: Sandbox, image: str, device: str, rate: int | None, cap: int) -> dict[str, Any]:
    """An O_DIRECT writer (page cache bypassed, so cgroup v1 throttling sees it) under `rate`, or none."""
    blocks = _transfer_bytes(cap) // DD_BLOCK
    script = f"dd if=/dev/zero of=/tmp/portcullis-probe bs={DD_BLOCK} count={blocks} oflag=direct 2>&1"
    options: dict[str, Any] = {"device_write_bps": [{"Path": device, "Rate": rate}]} if rate else {}
    return _dd(box.run(image, ["sh", "-c", script], timeout=60, **options))


def measure_device_read(box: Sandbox, image: str, device: str, rate: int | None, cap: int) -> dict[str, Any]:
    """Write a file unthrottled, then read it back with O_DIRECT under `rate` (or none); dd reports the read."""
    blocks = _transfer_bytes(cap) // DD_BLOCK
    script = (
        f"dd if=/dev/zero of=/tmp/portcullis-probe bs={DD_BLOCK} count={blocks} oflag=direct 2>/dev/null && "
        f"dd if=/tmp/portcullis-probe of=/dev/null bs={DD_BLOCK} iflag=direct 2>&1"
    )
    options: dict[str, Any] = {"device_read_bps": [{"Path": device, "Rate": rate}]} if rate else {}
    return _dd(box.run(image, ["sh", "-c", script], timeout=60, **options))


def measure_storage_quota(box: Sandbox, image: str, size: int) -> dict[str, Any]:
    """Write past a `--storage-opt size=` quota; an engine whose driver refuses the option says why."""
    attempt = size + 16 * MIB
    script = f"head -c {attempt} /dev/zero > /portcullis-probe; echo STATUS $?; wc -c < /portcullis-probe"
    try:
        run = box.run(image, ["sh", "-c", script], timeout=60, storage_opt={"size": str(size)})
    except SandboxError as exc:
        return {"refused": str(exc)}
    return {"size": size, "attempted": attempt, "run": _dd(run)}


def _address(box: Sandbox, container_id: str, network: str | None = None) -> str:
    settings = box.conn.api.inspect_container(container_id)["NetworkSettings"]
    if network is None:
        return str(settings.get("IPAddress") or "")
    return str(((settings.get("Networks") or {}).get(network) or {}).get("IPAddress") or "")


def measure_egress(box: Sandbox, image: str, rate_bits: int, shape: bool = True) -> dict[str, Any]:
    """Send the same amount from a sender container to a receiver twice: unshaped, then with a tbf qdisc of
    `rate_bits` on the sender's eth0 (its egress), applied from the host inside its network namespace only.

    With `shape=False` the second transfer runs without the qdisc (what an unshaped container does)."""
    missing = missing_shaping_tools()
    if missing:
        return {"error": missing}
    amount = _transfer_bytes(rate_bits // 8)
    receiver = box.start_detached(image, ["python3", "-c", RECEIVER, "2"])
    sender = box.start_detached(image, ["sleep", "120"])
    target = _address(box, receiver.container_id)
    if not sender.host_pid or not target:
        return {"error": "the sender's pid or the receiver's address could not be read"}
    send = ["python3", "-c", SENDER, target, str(amount)]
    unshaped = box.exec(sender.container_id, send)
    applied = ""
    if shape:
        burst = max(rate_bits // 8 // 50, 16 << 10)  # 20 ms of traffic, at least 16 KiB
        ok, said = tc_in_netns(
            sender.host_pid, "qdisc", "add", "dev", "eth0", "root", "tbf",
            "rate", f"{rate_bits}bit", "burst", str(burst), "latency", "400ms",
        )  # fmt: skip
        if not ok:
            return {"error": f"tc refused the qdisc: {said}"}
        applied = f"tbf rate {rate_bits}bit burst {burst} on the sender's eth0"
    try:
        shaped = box.exec(sender.container_id, send)
    finally:
        if shape:
            # The namespace (and its qdisc) goes with the container; removing it first keeps the proof tidy.
            with suppress(OSError):
                tc_in_netns(sender.host_pid, "qdisc", "del", "dev", "eth0", "root")
    return {
        "rate_bits": rate_bits,
        "bytes": amount,
        "qdisc": applied,
        "unshaped": {"exit_code": unshaped[0], "output": unshaped[1][-500:]},
        "shaped": {"exit_code": shaped[0], "output": shaped[1][-500:]},
    }


def _fetch_from(box: Sandbox, image: str, address: str, **host_options: Any) -> bool:
    """Whether a client container gets the server's page; it retries while the server may still be starting."""
    request = f'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 2 {address} {WEB_PORT}'
    answered = f"{request} 2>/dev/null | grep -q PORTCULLIS-PONG && echo PORTCULLIS-PONG && exit"
    script = f"for i in 1 2 3; do {answered}; sleep 0.5; done"
    return "PORTCULLIS-PONG" in box.run(image, ["sh", "-c", script], timeout=30, **host_options).output


def measure_cross_network(box: Sandbox, image: str) -> dict[str, Any]:
    """A web server on one user network; a client on that network (the control) and one on another."""
    home, other = box.create_network(), box.create_network()
    server = box.start_detached(image, ["sh", "-c", WEB_SERVER], network_mode=home)
    address = _address(box, server.container_id, home)
    return {
        "server_address": address,
        "same_network_reached": _fetch_from(box, image, address, network_mode=home),
        "other_network_reached": _fetch_from(box, image, address, network_mode=other),
    }


def measure_default_bridge(box: Sandbox, image: str) -> dict[str, Any]:
    """A web server and a client on the default bridge; the control fetches inside the server's own namespace."""
    server = box.start_detached(image, ["sh", "-c", WEB_SERVER])
    options = box.conn.api.inspect_network("bridge").get("Options") or {}
    return {
        "icc_option": options.get("com.docker.network.bridge.enable_icc", "true"),
        "control_reached": _fetch_from(box, image, "127.0.0.1", network_mode=f"container:{server.container_id}"),
        "neighbour_reached": _fetch_from(box, image, _address(box, server.container_id)),
    }


def measure_published_port(box: Sandbox, image: str, host_ip: str, external_address: str) -> dict[str, Any]:
    """Publish the web server's port on `host_ip` (a random host port) and request it on the external address."""
    server = box.start_detached(image, ["sh", "-c", WEB_SERVER], port_bindings={WEB_PORT: (host_ip,)})
    ports = box.conn.api.inspect_container(server.container_id)["NetworkSettings"]["Ports"] or {}
    bindings = ports.get(f"{WEB_PORT}/tcp") or []
    if not bindings:
        return {"error": "the engine published no host port"}
    port = int(bindings[0]["HostPort"])
    # The control: the port answers on the address it was published on (the server needs a moment to listen).
    local = "127.0.0.1" if host_ip in ("0.0.0.0", "") else host_ip
    control = None
    for _ in range(20):
        control = http_get(local, port, timeout=1)
        if control and "PORTCULLIS-PONG" in control:
            break
        time.sleep(0.25)
    external = http_get(external_address, port)
    return {
        "host_ip": host_ip,
        "host_port": port,
        "external_address": external_address,
        "control_answered": bool(control and "PORTCULLIS-PONG" in control),
        "external_answered": bool(external and "PORTCULLIS-PONG" in external),
    }
