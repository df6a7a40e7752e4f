"""`portcullis token` and `portcullis serve` as people run them: a token printed once and stored only hashed, a
revoked token refused by the running server, HTTPS with a certificate, the warning for plain HTTP off loopback, and
one-line errors for what cannot start."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from portcullis.service.tokens import Role
from portcullis.store import open_store
from support.fleet_service import PORTCULLIS, Service, start_server, stop_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from clirun import run_cli


def test_a_token_is_shown_once_kept_hashed_and_refused_once_revoked(service: Service) -> None:
    made = run_cli("token", "add", "cli-reader", "--role", "reader", "--store", service.store)
    assert made.code == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("pcs_") and len(token) > 50
    assert service.call("GET", "/engines", token).status_code == 200  # proven once: the server now remembers it

    listed = run_cli("token", "list", "--json", "--store", service.store)
    mine = [t for t in listed.json() if t["name"] == "cli-reader"]
    assert [(t["role"], t["revoked_at"]) for t in mine] == [("reader", None)]
    assert token not in listed.stdout and token.split("_")[2] not in listed.stdout
    store = open_store(service.store)
    try:
        kept = store.execute("SELECT digest, salt FROM tokens WHERE name = 'cli-reader'")
    finally:
        store.close()
    assert len(kept) == 1 and token.split("_")[2] not in "".join(kept[0])

    clash = run_cli("token", "add", "cli-reader", "--role", "agent", "--store", service.store)
    assert clash.code == 1 and "one name has one role" in clash.one_error_line()
    bad_name = run_cli("token", "add", "no/slash", "--role", "agent", "--store", service.store)
    assert bad_name.code == 1 and "is not a token name" in bad_name.one_error_line()

    revoked = run_cli("token", "revoke", "cli-reader", "--store", service.store)
    assert revoked.code == 0 and "revoked 1 token(s) of cli-reader" in revoked.stderr
    refused = service.call("GET", "/engines", token)
    assert refused.status_code == 401, "a revoked token must not outlive its revocation in the server's memory"
    again = run_cli("token", "revoke", "cli-reader", "--store", service.store)
    assert again.code == 1 and "no live token named cli-reader" in again.one_error_line()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=portcullis-test",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_https_with_a_certificate_and_nothing_in_clear(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    store = str(tmp_path / "store.sqlite3")
    service = start_server(store, tmp_path / "serve.log", "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        assert service.url.startswith("https://127.0.0.1:")
        reader = service.token("tls-reader", Role.READER)
        answer = requests.get(service.url + "/engines", headers={"Authorization": f"Bearer {reader}"}, verify=str(cert))
        assert (answer.status_code, answer.json()) == (200, [])
        with pytest.raises(requests.exceptions.SSLError):  # an unknown certificate is not trusted by default
            requests.get(service.url + "/engines", timeout=10)
        clear = service.url.replace("https://", "http://")
        with pytest.raises(requests.exceptions.ConnectionError):  # the TLS port speaks no plain HTTP
            requests.get(clear + "/engines", headers={"Authorization": f"Bearer {reader}"}, timeout=10)
        context = ssl.create_default_context(cafile=cert)
        host, port = service.url.split("//")[1].split("/")[0].split(":")
        with (
            socket.create_connection((host, int(port)), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        stop_server(service.process)
    assert "WARNING" not in service.log.read_text()


def test_plain_http_off_loopback_is_served_with_a_loud_warning(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    process = subprocess.Popen(  # program-list: skip (portcullis itself)
        [str(PORTCULLIS), "serve", "--bind", "0.0.0.0:0", "--store", str(tmp_path / "s")],
        stdout=subprocess.DEVNULL, stderr=log.open("w"), text=True,
    )  # fmt: skip
    try:
        for _ in range(300):
            if "listening on" in log.read_text():
                break
            assert process.poll() is None, log.read_text()
            time.sleep(0.1)
        text = log.read_text()
    finally:
        stop_server(process)
    assert "WARNING: plain HTTP on 0.0.0.0, which is not a loopback address" in text
    assert "listening on http://0.0.0.0:" in text


def test_what_cannot_start_is_one_line_and_exit_1(tmp_path: Path) -> None:
    store = ["--store", str(tmp_path / "s.sqlite3")]
    cert, key = _self_signed(tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        cases = {
            ("--bind", "8443"): "--bind '8443': give ADDR:PORT",
            ("--bind", "127.0.0.1:99999"): "give ADDR:PORT",
            ("--bind", f"127.0.0.1:{port}"): f"cannot listen on 127.0.0.1:{port}: Address already in use",
            ("--tls-cert", str(cert)): "--tls-cert and --tls-key go together",
            ("--tls-cert", str(key), "--tls-key", str(key)): f"--tls-cert {key} / --tls-key {key}:",
            ("--store", str(tmp_path)): "cannot open store",
        }
        for args, message in cases.items():
            result = run_cli("serve", *store, *args)
            assert result.code == 1, (args, result.stderr)
            assert message in result.one_error_line(), (args, result.stderr)
