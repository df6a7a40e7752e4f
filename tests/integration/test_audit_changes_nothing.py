"""The audit only reads: no container, file or engine state differs after `portcullis audit` runs.

Other test runs may share this engine, so the comparison covers what this session owns (its
containers and the engine events about them) and the host files the audit itself reads, minus the
engine's own state directories, which change whenever anyone starts a container.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from portcullis.model.findings import Report
from support.containers import SESSION_LABEL, ContainerFactory, labelled_containers
from support.scenario import Audit, Scenario

pytestmark = pytest.mark.engine

HOST_FILES = ("/etc/passwd", "/etc/group", "/etc/subuid", "/etc/subgid", "/etc/docker")


def _stat(path: Path) -> tuple[Any, ...] | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_ino)


def _files(audit: Audit) -> dict[str, tuple[Any, ...] | None]:
    engine_state = (audit.facts.engine.info.docker_root_dir, "/var/run/docker", "/run/docker")
    paths = {Path(p) for p in audit.facts.host.files if not p.startswith(engine_state)}
    paths |= {Path(p) for p in HOST_FILES}
    docker_conf = Path("/etc/docker")
    if docker_conf.is_dir():
        paths |= set(docker_conf.rglob("*"))
    return {str(p): _stat(p) for p in sorted(paths)}


def _containers(engine: docker.DockerClient, scenario: Scenario) -> dict[str, Any]:
    states = {}
    for role, container_id in scenario.ids.items():
        inspect = engine.api.inspect_container(container_id)
        state = inspect["State"]
        states[role] = (
            state["Status"],
            state["Pid"],
            state["StartedAt"],
            state["FinishedAt"],
            inspect["RestartCount"],
            # Health probes run as exec sessions: the hardened container's list moves on its own.
            None if role == "hardened" else inspect["ExecIDs"],
            inspect["HostConfig"],
            inspect["Config"],
        )
    return states


def test_cli_audit_changes_nothing(engine: docker.DockerClient, scenario: Scenario, audit: Audit) -> None:
    files_before = _files(audit)
    containers_before = _containers(engine, scenario)
    # The events API counts whole seconds: start the window on a fresh second after the set-up's events.
    time.sleep(1.1)
    since = int(time.time())
    cli = subprocess.run(
        [sys.executable, "-m", "portcullis", "audit", "-f", "json"], capture_output=True, text=True, timeout=120
    )
    until = int(time.time()) + 1  # inclusive of the last second
    assert cli.returncode == 0, cli.stderr
    report = Report.model_validate_json(cli.stdout)  # stdout holds the JSON document and nothing else
    assert {scenario.name(role) for role in scenario.ids} <= {f.target.name for f in report.findings}

    assert _containers(engine, scenario) == containers_before
    assert _files(audit) == files_before
    ours = set(scenario.ids.values())
    events = [
        f"{e.get('Type')} {e.get('Action')} {e.get('Actor', {}).get('Attributes', {}).get('name')}"
        for e in engine.events(since=since, until=until, decode=True)
        if e.get("Actor", {}).get("ID") in ours
        or e.get("Actor", {}).get("Attributes", {}).get(SESSION_LABEL) == scenario.factory.session
    ]
    # Health probes of the hardened container are the engine's own doing, not the audit's.
    assert [e for e in events if "exec_" not in e and "health_status" not in e] == []
    assert [e for e in events if "exec_create" in e and scenario.name("hardened") not in e] == []


def test_factory_removes_its_containers_when_the_block_fails(engine: docker.DockerClient) -> None:
    with pytest.raises(RuntimeError, match="boom"), labelled_containers(engine, "pc-it-cleanup") as factory:
        factory.run("running")
        factory.create("created")
        session = factory.session
        assert len(factory.session_containers()) == 2
        raise RuntimeError("boom")
    assert engine.containers.list(all=True, filters={"label": f"{SESSION_LABEL}={session}"}) == []


def test_a_session_only_removes_its_own_containers(engine: docker.DockerClient) -> None:
    with labelled_containers(engine, "pc-it-mine") as mine:
        kept = mine.create("kept")
        other = ContainerFactory(engine, prefix="pc-it-other")
        other.create("other")
        assert other.remove_all() == []
        kept.reload()
        assert kept.status == "created"
