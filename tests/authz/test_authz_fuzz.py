"""Malformed, oversized and bodiless requests sent straight to the plugin's socket: it never crashes, never allows."""

from __future__ import annotations

import base64
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

POLICY = "deny: [CIS-5.5, CIS-5.32]\nmax_body_kib: 64\n"
CREATE = "/v1.47/containers/create"


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=30)
        self.unix_path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.unix_path)


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    work = tmp_path_factory.mktemp("fuzz")
    (work / "policy.yaml").write_text(POLICY)
    sock = work / "p.sock"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    process = subprocess.Popen(
        [sys.executable, "-m", "portcullis", "authz", "--socket", str(sock), "--policy", str(work / "policy.yaml")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not sock.exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    yield sock
    assert process.poll() is None, "the plugin died during the fuzzing"
    process.terminate()
    process.wait(timeout=30)


def post(sock: Path, raw: bytes, path: str = "/AuthZPlugin.AuthZReq") -> dict[str, Any]:
    connection = UnixConnection(sock)
    try:
        connection.request("POST", path, body=raw, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200
        reply = json.loads(response.read())
        assert isinstance(reply, dict)
        return reply
    finally:
        connection.close()


def message(body: bytes | None, uri: str = CREATE, method: str = "POST") -> bytes:
    encoded = None if body is None else base64.b64encode(body).decode()
    return json.dumps({"RequestMethod": method, "RequestUri": uri, "RequestBody": encoded}).encode()


def test_a_plain_safe_create_is_allowed(plugin: Path) -> None:
    """The control: the cases below are denied for what they are, not because everything is."""
    assert post(plugin, message(b'{"Image": "busybox", "HostConfig": {}}'))["Allow"] is True
    assert post(plugin, message(None, "/v1.47/containers/json", "GET"))["Allow"] is True


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (message(None), "AUTHZ-BODY-MISSING"),
        (message(b""), "AUTHZ-BODY-MISSING"),
        (message(None, "//v1.47//containers/./create"), "AUTHZ-BODY-MISSING"),
        (message(None, "/containers/abc/exec"), "AUTHZ-BODY-MISSING"),
        (message(None, "/v1.47/containers/abc/update"), "AUTHZ-BODY-MISSING"),
        (message(b"{not json"), "AUTHZ-BODY-INVALID"),
        (message(b"[1, 2]"), "AUTHZ-BODY-INVALID"),
        (message(b"\xff\xfe{}"), "AUTHZ-BODY-INVALID"),
        (message(b'{"HostConfig": []}'), "AUTHZ-BODY-INVALID"),
        (message(b'{"HostConfig": {"Privileged": "very"}}'), "AUTHZ-BODY-INVALID"),
        (message(b'{"HostConfig": {"Binds": "/:/host"}}'), "AUTHZ-BODY-INVALID"),
        (message(b'{"HostConfig": {"Privileged": false, "Privileged": true}}'), "AUTHZ-BODY-INVALID"),
        (message(b'{"HostConfig": {"privileged": true}}'), "AUTHZ-FIELD"),
        (message(b'{"HostConfig": {"HostKernelAccess": true}}'), "AUTHZ-FIELD"),
        (message(b"[" * 100_000 + b"]" * 100_000), "AUTHZ-BODY-SIZE"),
        (message(b'{"Image": "' + b"a" * 70_000 + b'"}'), "AUTHZ-BODY-SIZE"),
        (b'{"RequestMethod": "POST", "RequestUri": "/containers/create", "RequestBody": "!!!"}', "AUTHZ-BODY-INVALID"),
        (b'{"RequestMethod": "POST", "RequestUri": "/containers/create", "RequestBody": 7}', "AUTHZ-BODY"),
        (b"not json at all", "AUTHZ-BODY-INVALID"),
        (b"[]", "AUTHZ-BODY-INVALID"),
        (b"{}", "AUTHZ-BODY-INVALID"),
        (b"x" * (2 * 1024 * 1024), "AUTHZ-BODY-SIZE"),
    ],
)
def test_malformed_requests_are_denied(plugin: Path, raw: bytes, reason: str) -> None:
    reply = post(plugin, raw)
    assert reply["Allow"] is False
    assert reason in reply["Msg"]


def test_random_bodies_never_pass(plugin: Path) -> None:
    """Mutations of a privileged create: each is denied, or still parses and is denied as privileged."""
    rng = random.Random(18)
    seed = b'{"Image": "busybox", "HostConfig": {"Privileged": true, "Binds": ["/var/run/docker.sock:/s"]}}'
    for _ in range(300):
        body = bytearray(seed)
        for _ in range(rng.randint(1, 6)):
            position = rng.randrange(len(body))
            body[position] = rng.randrange(256)
        reply = post(plugin, message(bytes(body)))
        if reply["Allow"]:
            decoded = json.loads(bytes(body))  # it may pass only if the mutation really removed both dangers
            host = decoded.get("HostConfig") or {}
            assert host.get("Privileged") is not True and "/var/run/docker.sock:/s" not in (host.get("Binds") or [])


def test_broken_connections_do_not_stop_the_plugin(plugin: Path) -> None:
    for payload in (b"POST /AuthZPlugin.AuthZReq HTTP/1.1\r\nContent-Length: 100\r\n\r\n{", b"\x00\x01garbage\r\n\r\n"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
            raw.connect(str(plugin))
            raw.sendall(payload)
    reply = post(plugin, message(b'{"HostConfig": {"Privileged": true}}'))
    assert reply["Allow"] is False and "CIS-5.5" in reply["Msg"]
