"""Many engines in one `portcullis audit`: the main engine, a private dockerd on a unix socket, a private dockerd on
TCP with TLS (named in --engines with its own certificates), and an address where nothing answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portcullis.harden.trial_daemon import TrialDaemon, missing_requirement
from support.tls_engine import TLSDaemon

pytestmark = pytest.mark.engine

MAIN = "unix:///var/run/docker.sock"
NOWHERE = "tcp://127.0.0.1:1"  # port 1: nothing listens, the connection is refused at once
# Daemon-level controls only: the main engine's containers come and go with other people's tests.
SELECT = "CIS-2"


@pytest.fixture(scope="module")
def plain() -> Iterator[TrialDaemon]:
    missing = missing_requirement()
    if missing:
        pytest.skip(missing)
    # live-restore and no-new-privileges on: this engine's CIS-2 verdicts differ from the main engine's defaults.
    running = TrialDaemon({"live-restore": True, "no-new-privileges": True, "userland-proxy": False})
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def engines_file(daemon: TLSDaemon, certs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("engines") / "engines.yaml"
    path.write_text(
        f"""- name: secure
  host: tcp://127.0.0.1:{daemon.port}
  tlsverify: true
  tlscacert: {certs / "ca.pem"}
  tlscert: {certs / "client.pem"}
  tlskey: {certs / "client-key.pem"}
""",
        encoding="utf-8",
    )
    return path


def _audit(*args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "REQUESTS_CA", "CURL_CA"))}
    return subprocess.run(
        [sys.executable, "-m", "portcullis", "audit", "-f", "json", "--select", SELECT, *args],
        env=clean,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _verdicts(findings: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return sorted((f["rule_id"], f["status"], f["target"]["kind"], f["target"]["name"]) for f in findings)


@pytest.fixture(scope="module")
def together(plain: TrialDaemon, engines_file: Path) -> subprocess.CompletedProcess[str]:
    return _audit("-H", f"{MAIN},{plain.host}", "-H", NOWHERE, "--engines", str(engines_file))


def test_each_engine_judged_as_when_audited_alone(
    together: subprocess.CompletedProcess[str], plain: TrialDaemon, daemon: TLSDaemon, certs: Path
) -> None:
    assert together.returncode == 0, together.stderr
    report = json.loads(together.stdout)
    by_engine: dict[str, list[dict[str, Any]]] = {}
    for finding in report["findings"]:
        by_engine.setdefault(finding["engine"], []).append(finding)
    assert set(by_engine) == {MAIN, plain.host, NOWHERE, "secure"}
    tls_args = ["--tlsverify", "--tlscacert", str(certs / "ca.pem"), "--tlscert", str(certs / "client.pem")]
    alone_args = {
        MAIN: ["-H", MAIN],
        plain.host: ["-H", plain.host],
        "secure": ["-H", f"tcp://127.0.0.1:{daemon.port}", *tls_args, "--tlskey", str(certs / "client-key.pem")],
    }
    alone: dict[str, list[tuple[str, str, str, str]]] = {}
    for name, args in alone_args.items():
        single = _audit(*args)
        assert single.returncode == 0, single.stderr
        findings = json.loads(single.stdout)["findings"]
        assert findings and all(f["engine"] is None for f in findings)  # one engine: the report as before
        alone[name] = _verdicts(findings)
        assert _verdicts(by_engine[name]) == alone[name], name
    assert alone[MAIN] != alone[plain.host]  # the engines were told apart, not one audited three times


def test_unreachable_engine_is_one_error_finding(together: subprocess.CompletedProcess[str]) -> None:
    report = json.loads(together.stdout)
    nowhere = [f for f in report["findings"] if f["engine"] == NOWHERE]
    assert len(nowhere) == 1
    assert nowhere[0]["rule_id"] == "DKR-ENGINE-UNREACHABLE"
    assert nowhere[0]["status"] == "error"
    assert "no Docker engine answers at tcp://127.0.0.1:1" in nowhere[0]["message"]
    assert report["summary"]["by_status"]["error"] == 1


def test_exit_codes(plain: TrialDaemon, engines_file: Path) -> None:
    # A gate with an unreachable engine cannot be trusted: 1; without a gate the report is all there is: 0.
    assert _audit("-H", f"{plain.host},{NOWHERE}", "--fail-on", "info").returncode == 1
    assert _audit("-H", f"{plain.host},{NOWHERE}").returncode == 0
    reachable = _audit("-H", plain.host, "--engines", str(engines_file), "--fail-on", "info")
    failures = [f for f in json.loads(reachable.stdout)["findings"] if f["status"] == "fail"]
    assert failures  # the trial engines leave CIS-2 controls unmet (no userns-remap, no authorization plugin)
    assert reachable.returncode == 2, reachable.stderr


def test_sarif_keeps_the_engines_apart(plain: TrialDaemon, engines_file: Path) -> None:
    result = _audit("-H", f"{MAIN},{plain.host}", "-f", "sarif")
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)["runs"][0]["results"]
    engines = {r["properties"]["engine"] for r in results}
    assert engines == {MAIN, plain.host}
    uris = {
        r["properties"]["engine"]: r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results
    }
    assert len(set(uris.values())) == 2
