"""The plugin in front of a private dockerd started with --authorization-plugin: what `docker run` gets."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from portcullis.harden.trial_daemon import TrialDaemon, copy_image, missing_requirement

pytestmark = pytest.mark.engine

BUSYBOX = "portcullis-test/busybox:1"
PLUGIN_DIR = Path("/run/docker/plugins")
POLICY = """
deny: [CIS-5.4, CIS-5.5, CIS-5.6, CIS-5.10, CIS-5.16, CIS-5.17, CIS-5.22, CIS-5.23, CIS-5.32]
log: [CIS-5.13, CIS-5.24, CIS-5.26]
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


def _start_plugin(socket: Path, policy: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    with open(log, "ab") as out:
        plugin = subprocess.Popen(
            [sys.executable, "-m", "portcullis", "authz", "--socket", str(socket), "--policy", str(policy)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while not socket.exists():
        assert plugin.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the plugin did not listen within 30 s"
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


def test_while_the_plugin_is_down_the_daemon_refuses_and_recovers_after_a_restart(guarded: Guarded) -> None:
    """dockerd retries a plugin it cannot reach (17-36 s measured here), then fails the request (even the CLI's /_ping,
    with a 500 that does not name the plugin): closed, not open."""
    guarded.plugin.terminate()
    guarded.plugin.wait(timeout=30)
    guarded.socket.unlink(missing_ok=True)
    started = time.monotonic()
    result = run(guarded, *SAFE, BUSYBOX, "true")
    waited = time.monotonic() - started
    assert result.returncode != 0, "a request passed while the plugin was down"
    assert "500 Internal Server Error" in result.stderr, result.stderr
    print(f"plugin down: docker run failed after {waited:.1f} s: {result.stderr.strip()}")
    guarded.plugin = _start_plugin(guarded.socket, guarded.policy, guarded.log)
    assert run(guarded, *SAFE, BUSYBOX, "true").returncode == 0
    refused = run(guarded, *SAFE, "--privileged", BUSYBOX, "true")
    assert refused.returncode != 0 and "CIS-5.5" in refused.stderr
