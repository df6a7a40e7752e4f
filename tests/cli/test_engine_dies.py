"""Issue 13: an engine that dies part-way through `audit` (a response cut short, the socket gone) is one line naming
the engine and exit 1, never "internal error". The engine is a socket server that answers like dockerd until the
request the test picks, then drops the connection and stops listening."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

VERSION = {"ApiVersion": "1.43", "Version": "24.0.7", "MinAPIVersion": "1.12", "Os": "linux", "Arch": "amd64"}


class DyingEngine:
    def __init__(self, path: Path, dies_at: str) -> None:
        self.dies_at = dies_at
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(str(path))
        self.listener.listen(16)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # dead: later connections are refused
            threading.Thread(target=self.answer, args=(conn,), daemon=True).start()

    def answer(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as requests:
            while request := requests.readline():
                path = request.split()[1].decode().split("?")[0]
                length = 0
                while (header := requests.readline()) not in (b"\r\n", b""):
                    if header.lower().startswith(b"content-length:"):
                        length = int(header.split(b":")[1])
                requests.read(length)
                if self.dies_at in path:  # half an answer, then nothing more from this engine
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 900\r\n\r\n[{")
                    self.listener.close()
                    return
                body = (
                    b"OK"
                    if path.endswith("/_ping")
                    else json.dumps(VERSION if path.endswith("/version") else {}).encode()
                )
                head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                conn.sendall(head.encode() + body)


@pytest.mark.parametrize("dies_at", ["/info", "/containers/json", "/images/json", "/networks"])
def test_engine_dying_mid_audit_is_one_line(dies_at: str, tmp_path: Path) -> None:
    path = tmp_path / "engine.sock"
    DyingEngine(path, dies_at)
    out = subprocess.run([sys.executable, "-m", "portcullis", "audit", "-H", f"unix://{path}", "-f", "json"],
                         capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert out.stdout == ""
    last = out.stderr.splitlines()[-1]
    assert last.startswith(f"portcullis: error: the engine at unix://{path} stopped answering"), out.stderr
    assert "internal error" not in out.stderr and "Traceback" not in out.stderr
