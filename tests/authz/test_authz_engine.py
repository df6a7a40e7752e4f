"""The plugin in front of a private dockerd started with --authorization-plugin: what `docker run` gets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from portcullis.checks.registry import get_rule
from portcullis.checks.runner import evaluate
from portcullis.collect.audit import collect_facts
from portcullis.collect.authz_plugins import activate
from portcullis.collect.engine import connect
from portcullis.harden.trial_daemon import TrialDaemon, copy_image, missing_requirement
from portcullis.model.findings import Status

pytestmark = pytest.mark.engine

BUSYBOX = "portcullis-test/busybox:1"
NON_ROOT = "portcullis-test/hardened:1"  # USER 65534:65534
PLUGIN_DIR = Path("/run/docker/plugins")
POLICY = """
deny: [CIS-5.4, CIS-5.5, CIS-5.6, CIS-5.10, CIS-5.16, CIS-5.17, CIS-5.18, CIS-5.22, CIS-5.23, CIS-5.32,
       DKR-RT-002, DKR-RT-003, DKR-AUTHZ-001]
log: [CIS-5.13, CIS-5.24, CIS-5.26, DKR-RT-004]
exemptions:
  - rules: [CIS-5.16]
    label: "portcullis.exempt=pid"
    reason: "the test's exempted debugging container"
"""


@dataclass
class Guarded:
    daemon: TrialDaemon
    policy: Path
    plugin: subprocess.Popen[bytes]
    socket: Path
    log: Path


def _start_plugin(socket: Path, policy: Path, log: Path, engine: Path | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    argv = [sys.executable, "-m", "portcullis", "authz", "--socket", str(socket), "--policy", str(policy)]
    with open(log, "ab") as out:
        plugin = subprocess.Popen(
            argv + (["--engine", str(engine)] if engine else []), stdout=out, stderr=subprocess.STDOUT, env=env
        )
    deadline = time.monotonic() + 30
    while not activate(f"unix://{socket}")[0]:  # a killed plugin leaves its socket file behind: wait for an answer
        assert plugin.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the plugin did not answer within 30 s"
        time.sleep(0.1)
    return plugin


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guarded]:
    missing = missing_requirement()
    if missing:
        pytest.skip(missing)
    work = tmp_path_factory.mktemp("authz")
    name = f"portcullis-test-{os.getpid()}"
    socket = PLUGIN_DIR / f"{name}.sock"
    policy = work / "policy.yaml"
    policy.write_text(POLICY)
    plugin = _start_plugin(socket, policy, work / "plugin.log")
    daemon = TrialDaemon({"authorization-plugins": [name]})
    try:
        daemon.start()
        with closing(docker.from_env()) as engine, closing(daemon.client()) as target:
            copy_image(BUSYBOX, engine.api, target)
            copy_image(NON_ROOT, engine.api, target)
        guarded = Guarded(daemon, policy, plugin, socket, work / "plugin.log")
        yield guarded
    finally:
        daemon.stop()
        for process in {plugin, guarded.plugin} if "guarded" in locals() else {plugin}:
            process.terminate()
            process.wait(timeout=30)
        socket.unlink(missing_ok=True)


def run(guarded: Guarded, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "-H", guarded.daemon.host, "run", "--rm", "--label", "portcullis.test=1", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


SAFE = ("--cap-drop", "NET_RAW")
LABELS = {"portcullis.test": "1"}


@pytest.mark.parametrize(
    ("flags", "rule_id"),
    [
        (("--privileged",), "CIS-5.5"),
        (("--cap-add", "SYS_ADMIN"), "CIS-5.4"),
        (("--pid", "host"), "CIS-5.16"),
        (("--network", "host"), "CIS-5.10"),
        (("--ipc", "host"), "CIS-5.17"),
        (("-v", "/var/run/docker.sock:/var/run/docker.sock"), "CIS-5.32"),
        (("-v", "/etc:/host-etc:ro"), "CIS-5.6"),
        (("--mount", "type=bind,source=/etc,target=/host-etc"), "CIS-5.6"),
        (("--security-opt", "seccomp=unconfined"), "CIS-5.22"),
        (("--device", "/dev/null:/dev/xnull"), "CIS-5.18"),
        (("--device-cgroup-rule", "c *:* rwm"), "CIS-5.18"),
        (("--network", "host", "--sysctl", "net.ipv4.ip_forward=1"), "DKR-RT-002"),
        (("--security-opt", "systempaths=unconfined"), "DKR-RT-003"),
        (("--cgroupns", "host"), "DKR-AUTHZ-001"),
    ],
)
def test_dangerous_run_is_refused_with_the_rule_id(guarded: Guarded, flags: tuple[str, ...], rule_id: str) -> None:
    result = run(guarded, *SAFE, *flags, BUSYBOX, "true")
    assert result.returncode != 0
    assert "authorization denied by plugin" in result.stderr
    assert rule_id in result.stderr, result.stderr


@pytest.mark.parametrize(
    "flags",
    [
        (),
        ("--read-only", "--security-opt", "no-new-privileges"),
        ("--user", "1000", "-v", "pc-authz-data:/data"),
        ("--label", "portcullis.exempt=pid", "--pid", "host"),
        ("--sysctl", "net.ipv4.ip_unprivileged_port_start=1024", "--cgroupns", "private"),
    ],
)
def test_safe_run_passes(guarded: Guarded, flags: tuple[str, ...]) -> None:
    result = run(guarded, *SAFE, *flags, BUSYBOX, "true")
    assert result.returncode == 0, result.stderr


def test_privileged_exec_is_judged(guarded: Guarded) -> None:
    with closing(guarded.daemon.client()) as client:
        container = client.containers.run(
            BUSYBOX, "sleep 300", detach=True, cap_drop=["NET_RAW"], labels={"portcullis.test": "1"}
        )
        try:
            with pytest.raises(docker.errors.APIError, match=r"CIS-5\.23"):
                container.exec_run("true", privileged=True)
            assert container.exec_run("true", user="1000").exit_code == 0
        finally:
            container.remove(force=True)


def test_a_broken_or_missing_policy_denies_and_a_fixed_one_recovers(guarded: Guarded) -> None:
    good = guarded.policy.read_text()
    try:
        guarded.policy.write_text("deny: [CIS-99]\n")
        result = run(guarded, *SAFE, BUSYBOX, "true")
        assert result.returncode != 0 and "AUTHZ-POLICY" in result.stderr, result.stderr
        guarded.policy.unlink()
        result = run(guarded, *SAFE, BUSYBOX, "true")
        assert result.returncode != 0 and "AUTHZ-POLICY" in result.stderr, result.stderr
    finally:
        guarded.policy.write_text(good)
    assert run(guarded, *SAFE, BUSYBOX, "true").returncode == 0


def test_the_plugin_refuses_to_start_without_a_policy(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "portcullis", "authz", "--socket", str(tmp_path / "p.sock"),
         "--policy", str(tmp_path / "absent.yaml")],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")},
    )  # fmt: skip
    assert result.returncode == 1
    assert "cannot be read" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "p.sock").exists()


def test_a_start_carrying_a_host_config_through_an_old_api_is_refused(guarded: Guarded) -> None:
    """dockerd 20.10 still applies a HostConfig sent with a start before API 1.24 (measured: the bind was made)."""
    with closing(guarded.daemon.client()) as client:
        container = client.containers.create(BUSYBOX, "true", cap_drop=["NET_RAW"], labels={"portcullis.test": "1"})
        try:
            url = f"{client.api.base_url}/v1.23/containers/{container.id}/start"
            body, headers = '{"Binds": ["/etc:/host-etc"]}', {"Content-Type": "application/json"}
            response = client.api.post(url, data=body, headers=headers)
            assert response.status_code == 403 and "CIS-5.6" in response.text, response.text
            container.reload()
            assert container.attrs["State"]["Status"] == "created" and not container.attrs["HostConfig"]["Binds"]
        finally:
            container.remove(force=True)


def cis_2_13(guarded: Guarded) -> tuple[Status, str, dict[str, object]]:
    rule = get_rule("CIS-2.13")
    assert rule is not None
    conn = connect(guarded.daemon.host)
    try:
        finding = evaluate(rule, collect_facts(conn))[0]
    finally:
        conn.close()
    return finding.status, finding.message, finding.evidence


def test_the_audit_sees_the_plugin_in_the_chain_and_answering_then_a_configured_one_that_is_not(
    guarded: Guarded,
) -> None:
    name = guarded.socket.stem
    status, message, evidence = cis_2_13(guarded)
    assert status is Status.PASS, message
    assert evidence["live_chain"] == [name]
    address = f"unix://{guarded.socket}"
    probe = {"name": name, "kind": "socket", "address": address, "answered": True, "implements": ["authz"]}
    assert evidence["probes"] == [probe]
    # daemon.json edited after dockerd started: the file names a plugin the running chain does not hold
    config = guarded.daemon.root / "daemon.json"
    started_with = config.read_text()
    try:
        config.write_text(json.dumps({"authorization-plugins": [name, "portcullis-absent"]}))
        status, message, evidence = cis_2_13(guarded)
        assert status is Status.FAIL and "not in the engine's live chain: portcullis-absent" in message, message
        assert evidence["live_chain"] == [name]
    finally:
        config.write_text(started_with)


def test_with_engine_an_unset_user_is_judged_by_the_container_or_image_user(guarded: Guarded) -> None:
    """With --engine the plugin reads the user a request leaves unset from the dockerd it guards, from inside
    dockerd's call to it (no deadlock: the lookup's own GET is judged on another thread)."""
    good = guarded.policy.read_text()
    guarded.plugin.terminate()
    guarded.plugin.wait(timeout=30)
    engine_socket = guarded.daemon.root / "docker.sock"
    guarded.plugin = _start_plugin(guarded.socket, guarded.policy, guarded.log, engine=engine_socket)
    try:
        guarded.policy.write_text("deny: [CIS-5.5, CIS-5.24, DKR-RT-001]\n")
        refused = run(guarded, *SAFE, BUSYBOX, "true")  # busybox has no USER: root
        assert refused.returncode != 0 and "DKR-RT-001" in refused.stderr, refused.stderr
        assert run(guarded, *SAFE, NON_ROOT, "true").returncode == 0  # USER 65534:65534 read from the image
        with closing(guarded.daemon.client()) as client:
            container = client.containers.run(
                NON_ROOT, "sleep 300", detach=True, cap_drop=["NET_RAW"], labels={"portcullis.test": "1"}
            )
            try:
                assert container.exec_run("true").exit_code == 0  # runs as the container's 65534
                with pytest.raises(docker.errors.APIError, match=r"CIS-5\.24"):
                    container.exec_run("true", user="0")
            finally:
                container.remove(force=True)
    finally:
        guarded.policy.write_text(good)
        guarded.plugin.terminate()
        guarded.plugin.wait(timeout=30)
        guarded.plugin = _start_plugin(guarded.socket, guarded.policy, guarded.log)


@dataclass
class Attempt:
    kind: str  # "safe" or "privileged"
    started: float
    ended: float
    allowed: bool
    error: str  # or the id of the container it created


def test_a_plugin_killed_mid_run_lets_nothing_through_and_the_daemon_recovers_after_a_restart(
    guarded: Guarded,
) -> None:
    """Creates run back to back while the plugin is SIGKILLed (its socket file stays behind), left down for 20 s
    and started again. dockerd retries an unreachable plugin for ~15 s and then fails the request with a 500 that
    does not name the plugin; the audit, which cannot reach the engine either, names it."""
    attempts: list[Attempt] = []
    stop = threading.Event()
    origin = time.monotonic()

    def attempt(api: docker.APIClient, kind: str) -> None:
        started = time.monotonic() - origin
        host_config = api.create_host_config(privileged=kind == "privileged", cap_drop=["NET_RAW"])
        try:
            created = api.create_container(BUSYBOX, "true", host_config=host_config, labels=LABELS)
        except docker.errors.APIError as exc:
            attempts.append(Attempt(kind, started, time.monotonic() - origin, False, str(exc)[:400]))
        else:
            attempts.append(Attempt(kind, started, time.monotonic() - origin, True, created["Id"]))

    def back_to_back() -> None:
        with closing(docker.APIClient(base_url=guarded.daemon.host, version="1.41", timeout=90)) as api:
            while not stop.is_set():
                attempt(api, "safe")
                attempt(api, "privileged")

    def once_while_down() -> None:
        with closing(docker.APIClient(base_url=guarded.daemon.host, version="1.41", timeout=90)) as api:
            attempt(api, "safe")

    workers = [threading.Thread(target=back_to_back), threading.Thread(target=once_while_down)]
    workers[0].start()
    try:
        time.sleep(2)
        killed = time.monotonic() - origin
        guarded.plugin.send_signal(signal.SIGKILL)
        guarded.plugin.wait(timeout=30)
        workers[1].start()
        audit = subprocess.run(
            [sys.executable, "-m", "portcullis", "audit", "--host", guarded.daemon.host],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")},
        )  # fmt: skip
        time.sleep(max(0.0, killed + 20 - (time.monotonic() - origin)))
        guarded.plugin = _start_plugin(guarded.socket, guarded.policy, guarded.log)
        restarted = time.monotonic() - origin
        time.sleep(4)
    finally:
        stop.set()
        for worker in workers:
            if worker.is_alive() or worker.ident is not None:
                worker.join(timeout=120)
        with closing(guarded.daemon.client()) as client:
            for left in client.containers.list(all=True, filters={"label": "portcullis.test=1"}):
                left.remove(force=True)
    for a in attempts:
        print(f"{a.kind:10} {a.started:6.1f}-{a.ended:6.1f} s {'allowed' if a.allowed else 'refused'} {a.error}")
    print(f"killed at {killed:.1f} s, restarted at {restarted:.1f} s; the audit said: {audit.stderr.strip()}")
    assert audit.returncode == 1 and "Traceback" not in audit.stderr
    assert "authorization plugin does not answer" in audit.stderr and guarded.socket.stem in audit.stderr
    assert not [a for a in attempts if a.kind == "privileged" and a.allowed], "a privileged create passed"
    while_down = [a for a in attempts if a.started > killed]
    assert not [a for a in while_down if a.allowed and a.ended < restarted], "a request passed while it was down"
    refused = [a for a in while_down if a.ended < restarted]
    assert refused and all("500 Server Error" in a.error and guarded.socket.stem in a.error for a in refused), refused
    after = [a for a in attempts if a.started > restarted]
    assert any(a.kind == "safe" and a.allowed for a in after)
    assert any(a.kind == "privileged" and "CIS-5.5" in a.error for a in after)
