"""The API probe's pure parts (addresses, targets, HTTP answers, certificates) and its behaviour on sockets that are
not the Docker API: a refused port, a web server that is not Docker, a server that never answers.

The Docker cases themselves (plain, TLS without client verification, --tlsverify) run against private dockerds in
tests/engine_access/test_api_probe_live.py.
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from portcullis.collect.api_probe import (
    MAX_ANSWER,
    _Prober,
    dockerd_listeners,
    find_targets,
    parse_answer,
    parse_tcp_host,
    probe_endpoint,
    probe_local_daemon,
)
from portcullis.collect.certificate import CertificateError, read_certificate
from portcullis.collect.daemon import service_exec_start
from portcullis.model.facts import (
    LISTENER_SOURCE,
    BindScope,
    DaemonConfig,
    HostFacts,
    ProbeOutcome,
    SystemdUnit,
)


@pytest.mark.parametrize(
    ("value", "tls", "expected"),
    [
        ("tcp://0.0.0.0:2375", False, ("0.0.0.0", 2375)),
        ("tcp://127.0.0.1:2376/", True, ("127.0.0.1", 2376)),
        ("tcp://:4243", False, ("localhost", 4243)),  # dockerd's DefaultHTTPHost
        ("tcp://", False, ("localhost", 2375)),
        ("tcp://", True, ("localhost", 2376)),
        ("tcp://10.1.2.3", True, ("10.1.2.3", 2376)),
        ("0.0.0.0:2375", False, ("0.0.0.0", 2375)),  # a bare host:port is TCP
        (":2375", False, ("localhost", 2375)),
        ("tcp://[::]:2375", False, ("::", 2375)),
        ("tcp://[::1]", True, ("::1", 2376)),
        ("unix:///var/run/docker.sock", False, None),
        ("fd://", False, None),
        ("ssh://user@host", False, None),
        ("tcp://host:notaport", False, None),
        ("tcp://host:70000", False, None),
        ("tcp://::1:2375", False, None),  # unbracketed IPv6 with a port: dockerd refuses it too
    ],
)
def test_parse_tcp_host(value: str, tls: bool, expected: tuple[str, int] | None) -> None:
    assert parse_tcp_host(value, tls) == expected


def test_targets_merge_every_source_of_one_endpoint() -> None:
    daemon = DaemonConfig(
        dockerd_cmdline=["dockerd", "-H", "fd://", "-H", "tcp://0.0.0.0:2375", "--host=tcp://localhost:2380"],
        daemon_json={"hosts": ["tcp://0.0.0.0:2375", "unix:///run/d.sock", 7]},
        docker_opts=["-H", "tcp://10.9.8.7:2375"],
    )
    host = HostFacts(
        tls_files={},
        systemd_units={
            "docker.socket": SystemdUnit(name="docker.socket", listen_streams=["/run/docker.sock", "2377"]),
        },
    )
    exec_start = ["/usr/bin/dockerd", "-H", "fd://", "-H", "tcp://127.0.0.1:2380"]
    targets = find_targets(daemon, host, [("0.0.0.0", 2375), ("::", 2377)], exec_start)
    seen = {(t.host, t.port): (t.bind, t.sources) for t in targets}
    assert seen == {
        ("0.0.0.0", 2375): (BindScope.ALL, ["dockerd -H", "daemon.json hosts", LISTENER_SOURCE]),
        ("127.0.0.1", 2380): (BindScope.LOOPBACK, ["dockerd -H", "docker.service ExecStart"]),  # localhost = 127.0.0.1
        ("10.9.8.7", 2375): (BindScope.ADDRESS, ["DOCKER_OPTS"]),
        ("::", 2377): (BindScope.ALL, ["docker.socket ListenStream", LISTENER_SOURCE]),  # a bare port: every address
    }


def test_default_port_follows_tls() -> None:
    daemon = DaemonConfig(dockerd_cmdline=["dockerd", "-H", "tcp://"])
    tls_on = find_targets(daemon, HostFacts(tls_files={"tlscert": "/c.pem"}), [], None)
    tls_off = find_targets(daemon, HostFacts(tls_files={}), [], None)
    assert [(t.host, t.port) for t in tls_on] == [("127.0.0.1", 2376)]
    assert [(t.host, t.port) for t in tls_off] == [("127.0.0.1", 2375)]


def test_an_address_not_on_this_host_is_never_contacted() -> None:
    # Addresses only read from configuration (a host name, another machine's IP) are recorded, not probed.
    daemon = DaemonConfig(dockerd_cmdline=["dockerd", "-H", "tcp://192.0.2.10:2375", "-H", "tcp://docker.example:2376"])
    probes = probe_local_daemon(daemon, HostFacts(tls_files={}, tcp_listeners=[]))
    assert [(p.address, p.outcome) for p in probes] == [
        ("192.0.2.10:2375", ProbeOutcome.NOT_PROBED),
        ("docker.example:2376", ProbeOutcome.NOT_PROBED),
    ]
    assert "no socket listens on 192.0.2.10:2375" in probes[0].detail
    assert "host name" in probes[1].detail
    assert all(p.connect_to == "" for p in probes)


def test_exec_start_is_read_from_the_unit_and_its_drop_ins(tmp_path: Path) -> None:
    system = tmp_path / "lib"
    override = tmp_path / "etc"
    system.mkdir()
    (override / "docker.service.d").mkdir(parents=True)
    (system / "docker.service").write_text("[Service]\nExecStart=/usr/bin/dockerd -H fd://\n")
    (override / "docker.service.d" / "tcp.conf").write_text(
        "[Service]\nExecStart=\nExecStart=-/usr/bin/dockerd -H fd:// -H 'tcp://0.0.0.0:2376' --tlsverify\n"
    )
    assert service_exec_start((str(override), str(system))) == [
        "/usr/bin/dockerd",
        "-H",
        "fd://",
        "-H",
        "tcp://0.0.0.0:2376",
        "--tlsverify",
    ]
    assert service_exec_start((str(tmp_path / "none"),)) is None


def test_parse_answer_reads_length_and_chunked_bodies() -> None:
    ping = parse_answer(b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOKtrailing")
    assert ping is not None and ping.from_docker and ping.body == b"OK"
    chunked = parse_answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nOK\r\n0\r\n\r\n")
    assert chunked is not None and chunked.body == b"OK" and chunked.from_docker
    https_only = parse_answer(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
    assert https_only is not None and not https_only.from_docker and https_only.status_line == "HTTP 400 Bad Request"
    assert parse_answer(b"\x15\x03\x01\x00\x02\x02\x46") is None  # a TLS alert is not HTTP
    assert parse_answer(b"HTTP/1.1 200 OK\r\nContent-Le") is None  # cut before the end of the headers


# --- certificates ------------------------------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> str:
    return subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=60).stdout


@pytest.mark.parametrize(
    "subject",
    ["/CN=server", "/C=DE/O=Example, Inc./OU=Ops+Dev/CN=docker.example", "/CN=naïve \\/ slash/emailAddress=a@b.c"],
)
def test_certificate_fields_agree_with_openssl(tmp_path: Path, subject: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3", "-utf8", "-subj", subject,
        "-keyout", "key.pem", "-out", "cert.pem", cwd=tmp_path,
    )  # fmt: skip
    _openssl("x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der", cwd=tmp_path)
    read = read_certificate((tmp_path / "cert.der").read_bytes())
    names = ("-nameopt", "RFC2253,-esc_msb")
    assert (
        read.subject
        == _openssl("x509", "-in", "cert.pem", "-noout", "-subject", *names, cwd=tmp_path)[len("subject=") :].strip()
    )
    assert read.issuer == read.subject  # self-signed
    end = _openssl("x509", "-in", "cert.pem", "-noout", "-enddate", "-dateopt", "iso_8601", cwd=tmp_path)
    assert read.not_after.replace("T", " ").replace("+00:00", "Z") == end.split("=", 1)[1].strip()
    fingerprint = _openssl("x509", "-in", "cert.pem", "-noout", "-fingerprint", "-sha256", cwd=tmp_path)
    assert read.sha256 == fingerprint.split("=", 1)[1].strip().replace(":", "").lower()


@pytest.mark.parametrize("data", [b"", b"\x30", b"\x30\x03\x02\x01\x01", b"\x04\x00", b"\x30\x84\xff\xff\xff\xff"])
def test_what_is_not_a_certificate_is_refused(data: bytes) -> None:
    with pytest.raises(CertificateError):
        read_certificate(data)


# --- real sockets that are not the Docker API --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_closed_port_is_refused() -> None:
    port = _free_port()
    probe = probe_endpoint("127.0.0.1", port, f"127.0.0.1:{port}", BindScope.LOOPBACK, ["dockerd -H"])
    assert probe.outcome is ProbeOutcome.REFUSED
    assert probe.elapsed_ms < 1000


class _NotDocker(http.server.BaseHTTPRequestHandler):
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _NotDocker.paths.append(self.path)
        body = b"not here"
        self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def web_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotDocker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_a_web_server_that_is_not_docker_gives_no_api_answer(web_server: int) -> None:
    _NotDocker.paths = []
    probe = probe_endpoint("127.0.0.1", web_server, f"127.0.0.1:{web_server}", BindScope.LOOPBACK, ["x"])
    assert probe.outcome is ProbeOutcome.NO_API_ANSWER
    assert "plain HTTP: HTTP 404" in probe.detail
    assert _NotDocker.paths == ["/_ping"]  # only ever GET /_ping; /version follows a Docker answer alone


def test_a_silent_listener_is_bounded_in_time() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        probe = probe_endpoint("127.0.0.1", port, f"127.0.0.1:{port}", BindScope.LOOPBACK, ["x"])
    assert probe.outcome is ProbeOutcome.NO_API_ANSWER
    # plain: the answer timeout; TLS: the handshake gets nothing back within the connect timeout
    assert probe.elapsed_ms < 8000


def test_an_endless_answer_is_cut() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        def flood() -> None:
            connection, _ = server.accept()
            with connection:
                connection.recv(4096)
                head = b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\n\r\n"
                try:
                    connection.sendall(head)
                    for _ in range(64):
                        connection.sendall(b"x" * 16384)
                except OSError:
                    pass

        thread = threading.Thread(target=flood, daemon=True)
        thread.start()
        raw = _Prober("127.0.0.1", port).plain_get("/_ping")
        thread.join(timeout=10)
    assert len(raw) == MAX_ANSWER


def test_listeners_held_by_this_process_are_found() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        held = dockerd_listeners(os.getpid())
    assert held is not None and ("127.0.0.1", port) in held
