"""The overhead workload agent: the same code runs natively and inside containers.

`portcullis overhead` starts it with `python3 -c <this file> PORT BIND_ADDRESS` (no file is copied into
the container, no `docker exec`) and drives it over TCP from the host. One command line per
connection, answered with one JSON line:

    cpu ITERATIONS            -> {"seconds": s, "wall_seconds": w}   fixed integer work (an LCG), CPU and wall time
    memory MIB ROUNDS         -> {"seconds": s, "wall_seconds": w, "bytes": n}   buffer-to-buffer copies (memcpy)
    disk DIRECTORY MIB        -> {"seconds": s, "bytes": n}   write + fsync of a new file, then unlink, wall time
    info                      -> {"python", "implementation", "executable", "executable_sha256", "kernel"}
    echo                      -> "ready", then every byte received is sent back until the peer closes
    sink                      -> "ready", then reads until the peer shuts its sending side; {"bytes": n}
    quit                      -> {"bye": true}, and the agent exits

Timings are taken inside the agent, so the control connection costs nothing. Standard library only,
and it must keep running on python3 >= 3.8 (whatever the image ships).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import sys
import time

CHUNK = 1 << 20


def cpu(iterations: int) -> dict[str, float]:
    # CPU time of this process: on a shared machine, waiting for a CPU is not overhead. Wall time too: a sandbox
    # or VM keeps its own CPU clock (gVisor's ticks coarsely), so comparing runtimes needs the clock they share.
    start, wall = time.process_time(), time.perf_counter()
    state = 1
    for _ in range(iterations):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
    elapsed, wall_elapsed = time.process_time() - start, time.perf_counter() - wall
    # Using the result keeps the loop honest even for a cleverer interpreter.
    return {"seconds": elapsed, "wall_seconds": wall_elapsed, "checksum": float(state)}


def memory(mib: int, rounds: int) -> dict[str, float]:
    source = bytearray(b"\xa5") * (mib * CHUNK)
    target = bytearray(len(source))
    target[:] = source  # fault every page in before timing
    start, wall = time.process_time(), time.perf_counter()
    for _ in range(rounds):
        target[:] = source
    elapsed, wall_elapsed = time.process_time() - start, time.perf_counter() - wall
    return {"seconds": elapsed, "wall_seconds": wall_elapsed, "bytes": float(len(source) * rounds)}


def disk(directory: str, mib: int) -> dict[str, float]:
    path = os.path.join(directory, f"portcullis-overhead-{os.getpid()}.bin")
    block = b"\x5a" * CHUNK
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(mib):
            os.write(fd, block)
        os.fsync(fd)
    finally:
        os.close(fd)
    elapsed = time.perf_counter() - start
    os.unlink(path)
    return {"seconds": elapsed, "bytes": float(mib * CHUNK)}


def info() -> dict[str, str]:
    digest = hashlib.sha256()
    with open(os.path.realpath(sys.executable), "rb") as binary:
        for block in iter(lambda: binary.read(CHUNK), b""):
            digest.update(block)
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "executable_sha256": digest.hexdigest(),  # same version is not always the same build
        "kernel": platform.release(),  # the kernel the agent sees: gVisor answers with its own
    }


def read_line(conn: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(1)
        if not chunk:
            break
        data += chunk
    return data.decode("ascii", "replace").strip()


def echo(conn: socket.socket) -> None:
    conn.sendall(b"ready\n")
    while True:
        data = conn.recv(64)
        if not data:
            return
        conn.sendall(data)


def sink(conn: socket.socket) -> dict[str, float]:
    """Count what the driver streams in; the driver times the transfer up to this answer."""
    conn.sendall(b"ready\n")
    received = 0
    while True:
        data = conn.recv(CHUNK)
        if not data:
            return {"bytes": float(received)}
        received += len(data)


def answer(conn: socket.socket, words: list[str]) -> bool:
    """Serve one command; False when the agent should exit."""
    command, args = (words[0], words[1:]) if words else ("", [])
    try:
        if command == "cpu":
            result: object = cpu(int(args[0]))
        elif command == "memory":
            result = memory(int(args[0]), int(args[1]))
        elif command == "disk":
            result = disk(args[0], int(args[1]))
        elif command == "info":
            result = info()
        elif command == "sink":
            result = sink(conn)
        elif command == "echo":
            echo(conn)
            return True
        elif command == "quit":
            result = {"bye": True}
        else:
            result = {"error": f"unknown command {command!r}"}
    except (IndexError, ValueError, OSError) as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
    conn.sendall((json.dumps(result) + "\n").encode())
    return command != "quit"


def serve(port: int, address: str) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, port))
    listener.listen(4)
    running = True
    while running:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            running = answer(conn, read_line(conn).split())
        except OSError:
            pass  # the driver went away mid-command; wait for the next one
        finally:
            conn.close()


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "0.0.0.0")
