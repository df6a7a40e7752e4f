"""CIS-2.8 on live endpoints: private dockerds that also listen on 127.0.0.1 TCP, probed by a real audit.

Four daemons, each with its own data root, exec root, socket and bridge (support.tls_engine.TLSDaemon):
- plain: `-H tcp://127.0.0.1:PORT` and no TLS;
- TLS without client verification: `--tls --tlsverify=false --tlscert --tlskey`;
- `--tlsverify` with the CA and certificates made in conftest (the `daemon` fixture);
- `--tls --tlscacert --tlscert --tlskey` with --tlsverify left out, which this dockerd (20.10) still enforces:
  the configuration reads as "tlsverify missing", the measurement says otherwise, and the measurement decides.
The audit reaches each daemon through its unix socket, finds the TCP endpoint in its command line and among the
sockets the process holds, and asks it GET /_ping (and GET /version where /_ping answered) with no credentials.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from portcullis.collect.api_probe import probe_local_daemon
from portcullis.collect.audit import collect_facts
from portcullis.collect.daemon import collect_daemon_config
from portcullis.collect.engine import TLSFlags, connect
from portcullis.collect.host import collect_host
from portcullis.harden.trial_daemon import missing_requirement
from portcullis.model.facts import LISTENER_SOURCE, ApiProbe, BindScope, Facts, ProbeOutcome
from portcullis.model.findings import Finding, Status
from portcullis.pipelines.audit import audit_report
from support.tls_engine import TLSDaemon

pytestmark = pytest.mark.engine


def _start(config: dict[str, object], flags: list[str] | None = None) -> Iterator[TLSDaemon]:
    missing = missing_requirement()
    if missing:
        pytest.skip(missing)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    running = TLSDaemon(config, port=port, flags=flags or [])
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def plain() -> Iterator[TLSDaemon]:
    yield from _start({"debug": True})  # debug: dockerd logs every request it serves ("Calling GET /_ping")


@pytest.fixture(scope="module")
def tls_unverified(certs: Path) -> Iterator[TLSDaemon]:
    flags = [
        "--tls",
        "--tlsverify=false",
        "--tlscert",
        str(certs / "server.pem"),
        "--tlskey",
        str(certs / "server-key.pem"),
    ]
    yield from _start({}, flags)


@pytest.fixture(scope="module")
def tls_implicit(certs: Path) -> Iterator[TLSDaemon]:
    names = ("--tlscacert", "ca.pem", "--tlscert", "server.pem", "--tlskey", "server-key.pem")
    flags = ["--tls"] + [str(certs / n) if n.endswith(".pem") else n for n in names]
    yield from _start({}, flags)


def _audit(daemon: TLSDaemon) -> tuple[Facts, Finding]:
    conn = connect(daemon.host)
    try:
        facts = collect_facts(conn)
    finally:
        conn.close()
    return facts, _verdict(facts)


def _verdict(facts: Facts) -> Finding:
    (finding,) = audit_report(facts, ["CIS-2.8"], [], None).findings
    return finding


def _the_probe(facts: Facts, daemon: TLSDaemon) -> ApiProbe:
    assert facts.api_probes is not None
    (probe,) = facts.api_probes  # one TCP endpoint: named by -H and held by the process, merged
    assert probe.address == f"127.0.0.1:{daemon.port}"
    assert probe.bind is BindScope.LOOPBACK
    assert probe.sources == ["dockerd -H", LISTENER_SOURCE]
    return probe


def test_plain_http_is_a_critical_failure_with_the_version_it_reported(plain: TLSDaemon) -> None:
    facts, finding = _audit(plain)
    probe = _the_probe(facts, plain)
    assert probe.outcome is ProbeOutcome.PLAIN_HTTP
    assert probe.server_version == facts.engine.version.version  # what /version said over TCP is this daemon
    assert probe.api_version == facts.engine.version.api_version
    assert probe.certificate is None
    assert finding.status is Status.FAIL and finding.severity.value == "critical"
    assert f"127.0.0.1:{plain.port} answered GET /_ping in plain HTTP" in finding.message
    assert "loopback only" in finding.message
    assert f"Docker {facts.engine.version.version}" in finding.message


def test_the_probe_sends_only_get_ping_and_get_version(plain: TLSDaemon) -> None:
    daemon_config = collect_daemon_config(plain.host, True, [])
    host = collect_host(daemon_config, str(plain.root / "data"), [])
    before = plain.log_path.read_text(errors="replace")
    probes = probe_local_daemon(daemon_config, host)
    after = plain.log_path.read_text(errors="replace")[len(before) :]
    calls = [line.split('msg="Calling ', 1)[1].split('"', 1)[0] for line in after.splitlines() if "Calling " in line]
    assert calls == ["GET /_ping", "GET /version"]
    assert [p.outcome for p in probes] == [ProbeOutcome.PLAIN_HTTP]


def test_tls_without_client_verification_is_a_failure(tls_unverified: TLSDaemon) -> None:
    facts, finding = _audit(tls_unverified)
    probe = _the_probe(facts, tls_unverified)
    assert probe.outcome is ProbeOutcome.TLS_WITHOUT_CLIENT_CERT
    assert probe.tls_version in ("TLSv1.2", "TLSv1.3")
    assert probe.certificate is not None
    assert probe.certificate.subject == "CN=server"
    assert probe.certificate.issuer == "CN=ca"
    assert probe.server_version == facts.engine.version.version
    assert finding.status is Status.FAIL
    assert "over TLS to a client that showed no certificate" in finding.message


def test_tlsverify_refuses_a_client_without_a_certificate(daemon: TLSDaemon) -> None:
    facts, finding = _audit(daemon)
    probe = _the_probe(facts, daemon)
    assert probe.outcome is ProbeOutcome.CLIENT_CERT_REQUIRED
    assert "CERTIFICATE" in probe.detail.upper()
    assert probe.server_version is None  # nothing was answered, so no version is known
    assert probe.certificate is not None and probe.certificate.subject == "CN=server"
    assert finding.status is Status.PASS, finding.message
    assert f"127.0.0.1:{daemon.port} refused a client without a certificate" in finding.message


def test_tls_without_the_tlsverify_flag_is_judged_by_what_it_does(tls_implicit: TLSDaemon) -> None:
    facts, finding = _audit(tls_implicit)
    probe = _the_probe(facts, tls_implicit)
    assert probe.outcome is ProbeOutcome.CLIENT_CERT_REQUIRED
    assert finding.status is Status.PASS, finding.message
    assert "the configuration leaves tlsverify to dockerd" in finding.message


def test_a_remote_engine_is_probed_at_its_audited_address(plain: TLSDaemon, daemon: TLSDaemon, certs: Path) -> None:
    conn = connect(f"tcp://127.0.0.1:{plain.port}")
    try:
        facts = collect_facts(conn)
    finally:
        conn.close()
    assert facts.api_probes is not None
    assert [(p.bind, p.outcome, p.sources) for p in facts.api_probes] == [
        (BindScope.REMOTE, ProbeOutcome.PLAIN_HTTP, ["audited endpoint"])
    ]
    assert _verdict(facts).status is Status.FAIL

    # The verified daemon, audited with its client certificate: the probe itself shows none and is refused.
    client = TLSFlags(verify=True, ca=certs / "ca.pem", cert=certs / "client.pem", key=certs / "client-key.pem")
    conn = connect(f"tcp://127.0.0.1:{daemon.port}", tls_flags=client)
    try:
        facts = collect_facts(conn)
    finally:
        conn.close()
    assert facts.api_probes is not None
    assert [p.outcome for p in facts.api_probes] == [ProbeOutcome.CLIENT_CERT_REQUIRED]
    finding = _verdict(facts)
    assert finding.status is Status.PASS, finding.message


def test_the_cli_records_the_probe_and_a_replay_gives_the_same_verdict(plain: TLSDaemon, tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    facts_file = tmp_path / "facts.json"
    base = [sys.executable, "-m", "portcullis", "audit", "-f", "json", "--select", "CIS-2.8", "--fail-on", "critical"]
    live = subprocess.run(
        [*base, "-H", plain.host, "--facts-out", str(facts_file)],
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert live.returncode == 2, live.stderr  # a critical finding over --fail-on
    replay = subprocess.run(
        [*base, "--facts-in", str(facts_file)], env=clean, capture_output=True, text=True, timeout=300
    )
    assert replay.returncode == 2, replay.stderr
    first, again = (json.loads(r.stdout)["findings"] for r in (live, replay))
    assert [(f["status"], f["message"], f["evidence"]) for f in first] == [
        (f["status"], f["message"], f["evidence"]) for f in again
    ]
    assert first[0]["evidence"]["api_probes"][0]["outcome"] == "plain_http"
    recorded = json.loads(facts_file.read_text())["api_probes"]
    assert recorded[0]["address"] == f"127.0.0.1:{plain.port}"
