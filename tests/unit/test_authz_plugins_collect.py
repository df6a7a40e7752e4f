"""The audit's probe of authorization plugins (CIS-2.13 evidence) against real sockets it creates."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from socketserver import UnixStreamServer

import pytest

from portcullis.collect.authz_plugins import SOCKETS_DIR, activate, configured_plugins, probe_plugins
from portcullis.model.facts import DaemonConfig


def test_configured_plugins_come_from_the_command_line_docker_opts_and_daemon_json() -> None:
    daemon = DaemonConfig(
        dockerd_cmdline=["dockerd", "--authorization-plugin=a", "--authorization-plugin", "b"],
        daemon_json={"authorization-plugins": ["b", "c"]},
    )
    assert configured_plugins(daemon) == ["a", "b", "c"]
    assert configured_plugins(DaemonConfig(docker_opts=["--authorization-plugin=d"])) == ["d"]
    assert configured_plugins(DaemonConfig(dockerd_cmdline=["dockerd"])) == []


class _VolumePlugin(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """quiet"""

    def do_POST(self) -> None:
        body = b'{"Implements": ["VolumeDriver"]}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def names() -> Iterator[tuple[str, str]]:
    """A stale socket file (nothing listens) and a socket answering as a volume plugin, where dockerd looks."""
    SOCKETS_DIR.mkdir(parents=True, exist_ok=True)
    stale, volume = f"pc-unit-stale-{os.getpid()}", f"pc-unit-volume-{os.getpid()}"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(SOCKETS_DIR / f"{stale}.sock"))
    dead.close()
    server = UnixStreamServer(str(SOCKETS_DIR / f"{volume}.sock"), _VolumePlugin)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield stale, volume
    finally:
        server.shutdown()
        server.server_close()
        for name in (stale, volume):
            (SOCKETS_DIR / f"{name}.sock").unlink(missing_ok=True)


def test_each_plugin_is_probed_where_dockerd_looks(names: tuple[str, str]) -> None:
    stale, volume = names
    missing = f"pc-unit-missing-{os.getpid()}"
    managed = [{"Name": "vendor/authz:latest", "Id": "77aa", "Enabled": False}]
    probes = {p.name: p for p in probe_plugins([stale, volume, missing, "vendor/authz"], managed)}
    assert probes[stale].kind == "socket" and probes[stale].answered is False
    assert "Connection refused" in probes[stale].error
    assert probes[volume].answered is True and probes[volume].implements == ["VolumeDriver"]
    assert probes[missing].kind == "missing" and probes[missing].answered is False
    assert probes["vendor/authz"].kind == "managed" and probes["vendor/authz"].enabled is False


def test_an_address_that_is_neither_unix_nor_tcp_is_not_asked(tmp_path: Path) -> None:
    assert activate("npipe:////./pipe/x") == (False, [], "'npipe:////./pipe/x' is not a unix:// or tcp:// address")
    answered, _, error = activate(f"unix://{tmp_path}/absent.sock", timeout=0.5)
    assert not answered and "No such file" in error
