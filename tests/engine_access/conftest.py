"""Shared by the engine-access tests: a CA with server and client certificates made by openssl, and a private
dockerd on 127.0.0.1 that requires them."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from portcullis.harden.trial_daemon import missing_requirement
from support.tls_engine import TLSDaemon


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _make_ca(directory: Path, name: str) -> None:
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        f"/CN={name}",
        "-keyout",
        f"{name}-key.pem",
        "-out",
        f"{name}.pem",
        cwd=directory,
    )


def _issue(directory: Path, ca: str, name: str, extensions: str) -> None:
    (directory / f"{name}.ext").write_text(extensions + "\n", encoding="utf-8")
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        f"/CN={name}",
        "-keyout",
        f"{name}-key.pem",
        "-out",
        f"{name}.csr",
        cwd=directory,
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{ca}.pem",
        "-CAkey",
        f"{ca}-key.pem",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        f"{name}.ext",
        "-out",
        f"{name}.pem",
        cwd=directory,
    )


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tls")
    _make_ca(directory, "ca")
    _make_ca(directory, "other-ca")  # unrelated: the wrong --tlscacert and the REQUESTS_CA_BUNDLE decoy
    _issue(directory, "ca", "server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth")
    _issue(directory, "ca", "client", "extendedKeyUsage=clientAuth")
    # DOCKER_CERT_PATH's layout: ca.pem, cert.pem, key.pem
    cert_path = directory / "cert-path"
    cert_path.mkdir()
    (cert_path / "ca.pem").write_bytes((directory / "ca.pem").read_bytes())
    (cert_path / "cert.pem").write_bytes((directory / "client.pem").read_bytes())
    (cert_path / "key.pem").write_bytes((directory / "client-key.pem").read_bytes())
    return directory


@pytest.fixture(scope="module")
def daemon(certs: Path) -> Iterator[TLSDaemon]:
    missing = missing_requirement()
    if missing:
        pytest.skip(missing)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = {
        "tlsverify": True,
        "tlscacert": str(certs / "ca.pem"),
        "tlscert": str(certs / "server.pem"),
        "tlskey": str(certs / "server-key.pem"),
    }
    running = TLSDaemon(config, port=port)
    try:
        running.start()
        yield running
    finally:
        running.stop()
