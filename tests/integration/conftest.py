"""Fixtures of the engine tests: the scenario's containers, the host sshd stand-in, one audit.

The scenario (about 20 containers, see support/scenario.py) is built once per session, audited once
through the Python API, and torn down by finalizers even when a test or the set-up fails. Every
container carries `portcullis.test=1` plus this session's own label, so the teardown removes exactly
what this session created while other people's test containers share the engine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from portcullis.collect.audit import collect_facts
from portcullis.collect.engine import connect
from portcullis.pipelines.audit import audit_report
from support.containers import BUSYBOX, SESSION_LABEL, ContainerFactory, wait_until
from support.scenario import Audit, Scenario, build_scenario


@pytest.fixture(scope="session")
def engine() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine answers (run `make engine`): {exc}")
    try:
        client.images.get(BUSYBOX)
    except docker.errors.ImageNotFound:
        pytest.fail(f"{BUSYBOX} is missing: run `make test-images`")
    yield client
    client.close()


@pytest.fixture(scope="session")
def host_sshd() -> Iterator[subprocess.Popen[bytes]]:
    """A harmless host process whose comm is `sshd` (a copy of sleep), killed at the end."""
    workdir = Path(tempfile.mkdtemp(prefix="pc-it-sshd-"))
    binary = workdir / "sshd"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", binary)
    process = subprocess.Popen([str(binary), "900"], stdin=subprocess.DEVNULL)  # program-list: skip (sleep's copy)
    try:
        wait_until(lambda: Path(f"/proc/{process.pid}/comm").read_text().strip() == "sshd", 10, "the host sshd")
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_mount() -> Iterator[Path | None]:
    """A small tmpfs marked shared: the only kind of source Docker accepts for rshared propagation."""
    workdir = Path(tempfile.mkdtemp(prefix="pc-it-shared-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "pc-it-shared", str(workdir)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        workdir.rmdir()
        yield None
        return
    try:
        subprocess.run(["mount", "--make-shared", str(workdir)], check=True)
        yield workdir
    finally:
        subprocess.run(["umount", "-l", str(workdir)], check=False)
        workdir.rmdir()


@pytest.fixture(scope="session")
def scenario(engine: docker.DockerClient, shared_mount: Path | None) -> Iterator[Scenario]:
    factory = ContainerFactory(engine, prefix=f"pc-it-{os.getpid()}")
    session_filter = {"label": f"{SESSION_LABEL}={factory.session}"}
    try:
        yield build_scenario(factory, engine, shared_mount)
    finally:
        left = factory.remove_all()
        for network in engine.networks.list(filters=session_filter):
            network.remove()
        # The teardown is itself checked: anything left behind fails the run.
        assert not left, f"test containers survived the teardown: {left}"
        assert not engine.networks.list(filters=session_filter)


@pytest.fixture(scope="session")
def audit(scenario: Scenario, host_sshd: subprocess.Popen[bytes]) -> Audit:
    """One audit of the main engine, through the same functions the CLI calls."""
    assert host_sshd.poll() is None, "the host sshd stand-in must run during the audit"
    conn = connect()
    try:
        facts = collect_facts(conn)
    finally:
        conn.close()
    return Audit(facts=facts, report=audit_report(facts, [], [], None), api_calls=conn.calls)
