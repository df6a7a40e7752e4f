"""The noisy-neighbour victim agent, and the two ends of the network flood; standard library only.

`portcullis neighbours` runs it with `python3 -c <this file> MODE ...` inside the instances (nothing is copied in):

    serve PORT            the victim: one command line per connection, answered with one JSON line
    sink PORT             the flood's receiver: accepts connections and discards what arrives
    flood HOST PORT       the flood's sender: writes zeros to HOST:PORT as fast as the path takes them

Victim commands (every workload runs for SECONDS of wall time: time spent waiting for a CPU, the memory bus or
the disk beside a neighbour is exactly what is measured):

    cpu SECONDS               -> {"rate": LCG iterations per second}
    membw SECONDS MIB         -> {"rate": GB copied per second between two MIB buffers}
    disk DIRECTORY SECONDS    -> {"rate": MiB written per second, O_DIRECT 1 MiB blocks}
    stream SECONDS            -> zeros are sent to the peer for SECONDS, then the connection closes
    echo                      -> "ready", then every byte received is sent back until the peer closes
    info                      -> {"python": version}

It must keep running on python3 >= 3.8 (whatever the image ships).
"""

from __future__ import annotations

import json
import mmap
import os
import platform
import socket
import sys
import time

CHUNK = 1 << 20
DISK_FILE_MIB = 64  # the disk victim rewrites one file of this size, so a long run does not fill the disk


def cpu(seconds: float) -> dict[str, float]:
    state, done = 1, 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(10_000):
            state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        done += 10_000
    return {"rate": done / (time.perf_counter() - start), "checksum": float(state)}


def membw(seconds: float, mib: int) -> dict[str, float]:
    source = bytearray(b"\xa5") * (mib * CHUNK)
    target = bytearray(len(source))
    target[:] = source  # fault every page in before timing
    copied = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        target[:] = source
        copied += len(source)
    return {"rate": copied / (time.perf_counter() - start) / 1e9}


def disk(directory: str, seconds: float) -> dict[str, float]:
    # O_DIRECT: on cgroup v1 only direct I/O is charged to the writer's blkio group, and the page cache would
    # otherwise measure memory, not the disk.
    path = os.path.join(directory, f"portcullis-neighbours-{os.getpid()}.bin")
    block = mmap.mmap(-1, CHUNK)  # page-aligned, as O_DIRECT wants
    block.write(b"\x5a" * CHUNK)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_DIRECT", 0), 0o600)
    written = 0
    start = time.perf_counter()
    deadline = start + seconds
    try:
        while time.perf_counter() < deadline:
            if written and written % (DISK_FILE_MIB * CHUNK) == 0:
                os.lseek(fd, 0, os.SEEK_SET)
            written += os.write(fd, block)
        os.fsync(fd)
    finally:
        os.close(fd)
        os.unlink(path)
    return {"rate": written / (time.perf_counter() - start) / CHUNK}


def stream(conn: socket.socket, seconds: float) -> None:
    block = b"\0" * (64 * 1024)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        conn.sendall(block)


def echo(conn: socket.socket) -> None:
    conn.sendall(b"ready\n")
    while True:
        data = conn.recv(64)
        if not data:
            return
        conn.sendall(data)


def read_line(conn: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(1)
        if not chunk:
            break
        data += chunk
    return data.decode("ascii", "replace").strip()


def answer(conn: socket.socket, words: list[str]) -> None:
    command, args = (words[0], words[1:]) if words else ("", [])
    try:
        if command == "cpu":
            result: object = cpu(float(args[0]))
        elif command == "membw":
            result = membw(float(args[0]), int(args[1]))
        elif command == "disk":
            result = disk(args[0], float(args[1]))
        elif command == "stream":
            stream(conn, float(args[0]))
            return
        elif command == "echo":
            echo(conn)
            return
        elif command == "info":
            result = {"python": platform.python_version(), "kernel": platform.release()}
        else:
            result = {"error": f"unknown command {command!r}"}
    except (IndexError, ValueError, OSError) as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
    conn.sendall((json.dumps(result) + "\n").encode())


def listener(port: int) -> socket.socket:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port))
    server.listen(4)
    return server


def serve(port: int) -> None:
    server = listener(port)
    while True:
        conn, _ = server.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            answer(conn, read_line(conn).split())
        except OSError:
            pass  # the driver went away mid-command; wait for the next one
        finally:
            conn.close()


def sink(port: int) -> None:
    server = listener(port)
    while True:
        conn, _ = server.accept()
        try:
            while conn.recv(1 << 16):
                pass
        except OSError:
            pass
        finally:
            conn.close()


def flood(host: str, port: int) -> None:
    block = b"\0" * (1 << 16)
    while True:  # the sink may not listen yet, or restart: keep trying until the instance is removed
        try:
            with socket.create_connection((host, port), timeout=5) as conn:
                while True:
                    conn.sendall(block)
        except OSError:
            time.sleep(0.1)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "serve":
        serve(int(sys.argv[2]))
    elif mode == "sink":
        sink(int(sys.argv[2]))
    elif mode == "flood":
        flood(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(f"unknown mode {mode!r}")
