"""Engines reached as the docker CLI reaches them, over TLS: a private dockerd on 127.0.0.1:<port> with --tlsverify
and certificates made here (a CA, a server certificate for 127.0.0.1, a client certificate), audited through the CLI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.tls_engine import TLSDaemon

pytestmark = pytest.mark.engine


def _audit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "REQUESTS_CA", "CURL_CA"))}
    return subprocess.run(
        [sys.executable, "-m", "portcullis", "audit", "-f", "json", "--select", "CIS-2.1", *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _one_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("portcullis: error: "), result.stderr
    return lines[0]


def _tcp(daemon: TLSDaemon) -> str:
    return f"tcp://127.0.0.1:{daemon.port}"


def test_flags_reach_the_tls_engine(daemon: TLSDaemon, certs: Path) -> None:
    result = _audit(
        "-H",
        _tcp(daemon),
        "--tlsverify",
        "--tlscacert",
        str(certs / "ca.pem"),
        "--tlscert",
        str(certs / "client.pem"),
        "--tlskey",
        str(certs / "client-key.pem"),
    )
    assert result.returncode == 0, result.stderr
    assert f"collecting facts from {_tcp(daemon)}" in result.stderr


def test_environment_reaches_it_and_requests_ca_bundle_does_not_replace_the_engine_ca(
    daemon: TLSDaemon, certs: Path
) -> None:
    env = {
        "DOCKER_HOST": _tcp(daemon),
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": str(certs / "cert-path"),
        "REQUESTS_CA_BUNDLE": str(certs / "other-ca.pem"),
        "CURL_CA_BUNDLE": str(certs / "other-ca.pem"),
    }
    result = _audit(env=env)
    assert result.returncode == 0, result.stderr


def test_default_cert_files_come_from_the_docker_config_directory(daemon: TLSDaemon, certs: Path) -> None:
    env = {"DOCKER_CONFIG": str(certs / "cert-path"), "DOCKER_TLS_VERIFY": "1"}
    assert _audit("-H", _tcp(daemon), env=env).returncode == 0


def test_a_context_with_tls_material(daemon: TLSDaemon, certs: Path, tmp_path: Path) -> None:
    config = tmp_path / "docker-config"
    tls = f"ca={certs / 'ca.pem'},cert={certs / 'client.pem'},key={certs / 'client-key.pem'}"
    subprocess.run(
        ["docker", "context", "create", "pc-tls", "--docker", f"host={_tcp(daemon)},{tls}"],
        env={**os.environ, "DOCKER_CONFIG": str(config)},
        check=True,
        capture_output=True,
        timeout=60,
    )
    result = _audit(env={"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "pc-tls"})
    assert result.returncode == 0, result.stderr
    assert f"collecting facts from {_tcp(daemon)}" in result.stderr


def test_without_tls_one_line_says_so(daemon: TLSDaemon) -> None:
    assert "speaks only TLS: pass --tlsverify" in _one_error(_audit("-H", _tcp(daemon)))


def test_a_wrong_ca_is_refused(daemon: TLSDaemon, certs: Path) -> None:
    line = _one_error(
        _audit(
            "-H",
            _tcp(daemon),
            "--tlscacert",
            str(certs / "other-ca.pem"),
            "--tlscert",
            str(certs / "client.pem"),
            "--tlskey",
            str(certs / "client-key.pem"),
        )
    )
    assert f"TLS with the Docker engine at {_tcp(daemon)} failed (certificate verify failed)" in line


def test_no_client_certificate_is_refused(daemon: TLSDaemon, certs: Path) -> None:
    line = _one_error(_audit("-H", _tcp(daemon), "--tlsverify", "--tlscacert", str(certs / "ca.pem")))
    assert "TLS with the Docker engine" in line and ("bad certificate" in line or "certificate required" in line)


def test_a_missing_ca_file_is_one_line(daemon: TLSDaemon, tmp_path: Path) -> None:
    line = _one_error(_audit("-H", _tcp(daemon), env={"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path)}))
    assert f"{tmp_path / 'ca.pem'} is not a file" in line


def test_an_unknown_context_is_one_line_not_the_local_socket(tmp_path: Path) -> None:
    line = _one_error(_audit(env={"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "pc-nowhere"}))
    assert "Docker context 'pc-nowhere' does not exist" in line
