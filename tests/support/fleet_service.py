"""A real `portcullis serve` (the console script, uvicorn, a real socket) started and stopped by tests; tokens are
issued straight into its store."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from portcullis.service.tokens import Role, issue
from portcullis.store import open_store

PORTCULLIS = Path(sys.executable).parent / "portcullis"
LISTENING = re.compile(r"listening on (https?://\S+), store")
MAX_BODY_MIB = 1  # small, so the bounded-body tests need not send much


@dataclass
class Service:
    url: str  # the API root, …/api/v1
    store: str
    process: subprocess.Popen[str]
    log: Path

    def token(self, name: str, role: Role) -> str:
        store = open_store(self.store)
        try:
            return issue(store, name, role)
        finally:
            store.close()

    def call(
        self, method: str, path: str, token: str | None = None, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = (headers or {}) | ({"Authorization": f"Bearer {token}"} if token else {})
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)


def start_server(store: str, log: Path, *args: str, env: dict[str, str] | None = None) -> Service:
    """`portcullis serve --bind 127.0.0.1:0 ARGS`, waited for until it says where it listens."""
    environment = {k: v for k, v in os.environ.items() if k != "PORTCULLIS_STORE"} | (env or {})
    with log.open("w") as sink:
        process = subprocess.Popen(  # program-list: skip (portcullis itself)
            [str(PORTCULLIS), "serve", "--bind", "127.0.0.1:0", "--store", store, *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            env=environment,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = LISTENING.search(log.read_text())
        if found and "Application startup complete" in log.read_text():
            return Service(found[1] + "/api/v1", store, process, log)
        if process.poll() is not None:
            raise AssertionError(f"portcullis serve exited {process.returncode}: {log.read_text()}")
        time.sleep(0.05)
    stop_server(process)
    raise AssertionError(f"portcullis serve did not start in 30 s: {log.read_text()}")


def stop_server(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
