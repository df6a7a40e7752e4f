"""A container that is created and never started, read from the engine's own files (what `watch` does at a create
event, since an inspect then waits for the engine to finish starting it): the same facts as `docker inspect` gives,
on real containers with risky and hardened options; anything else (started, removed, unreadable) reads as None."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import docker
import docker.types
import pytest

from portcullis.collect.subjects import read_created_container
from portcullis.model.facts import ContainerFacts
from support.containers import ContainerFactory

pytestmark = pytest.mark.engine

CREATED: dict[str, dict[str, Any]] = {
    "risky": {
        "cap_add": ["SYS_ADMIN", "NET_ADMIN"],
        "volumes": {"/var/run/docker.sock": {"bind": "/var/run/docker.sock"}, "/etc": {"bind": "/h", "mode": "ro"}},
        "mounts": [docker.types.Mount("/data", None, type="volume")],
        "ports": {"80/tcp": ("0.0.0.0", None)},
        "security_opt": ["seccomp=unconfined", "apparmor=unconfined"],
        "environment": {"PASSWORD": "not-a-real-one"},
        "tmpfs": {"/scratch": "size=1m"},
    },
    "host-namespaces": {"pid_mode": "host", "network_mode": "host", "ipc_mode": "host", "uts_mode": "host"},
    "hardened": {
        "read_only": True,
        "user": "1000:1000",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "mem_limit": "64m",
        "pids_limit": 64,
        "network_mode": "none",
        "healthcheck": {"test": ["CMD", "true"], "interval": 1_000_000_000},
    },
}


@pytest.fixture(scope="module")
def root_dir(client: docker.DockerClient) -> str:
    return str(client.info()["DockerRootDir"])


@pytest.mark.parametrize("role", sorted(CREATED))
def test_a_created_container_reads_as_its_inspect(
    role: str, client: docker.DockerClient, containers: ContainerFactory, root_dir: str
) -> None:
    created = containers.create(role, **CREATED[role])
    inspected = ContainerFacts.model_validate(client.api.inspect_container(created.id))
    inspected.mounts.sort(key=lambda mount: mount.destination)  # the engine lists them in map order
    stored = read_created_container(root_dir, created.id)
    assert stored is not None
    assert stored.model_dump() == inspected.model_dump()
    assert stored.state.status == "created" and not stored.state.running
    if role == "risky":
        assert {"SYS_ADMIN", "NET_ADMIN"} <= set(stored.host_config.cap_add or [])
        assert [m.destination for m in stored.mounts] == ["/data", "/h", "/var/run/docker.sock"]
        assert [m.rw for m in stored.mounts] == [True, False, True]


def test_a_started_or_removed_container_is_left_to_inspect(
    containers: ContainerFactory, root_dir: str, tmp_path: Path
) -> None:
    created = containers.create("started", "sleep 60")
    assert read_created_container(root_dir, created.id) is not None
    created.start()
    assert read_created_container(root_dir, created.id) is None  # running: the engine reports its state
    created.kill()
    created.wait(timeout=30)
    assert read_created_container(root_dir, created.id) is None  # exited: it has a start time
    created.remove(v=True)
    assert read_created_container(root_dir, created.id) is None  # its files are gone
    assert read_created_container(str(tmp_path), created.id) is None  # another root: nothing here
    assert read_created_container(root_dir, "../" + created.id[3:]) is None  # not an id: never a path


def test_damaged_or_oversized_files_read_as_none(tmp_path: Path) -> None:
    container_id = "a" * 64
    folder = tmp_path / "containers" / container_id
    folder.mkdir(parents=True)
    never_started = {"Running": False, "StartedAt": "0001-01-01T00:00:00Z"}
    (folder / "hostconfig.json").write_text("{}")
    (folder / "config.v2.json").write_text('{"ID": "' + container_id + '", "Name": "/x", "State": {')
    assert read_created_container(str(tmp_path), container_id) is None  # cut short
    (folder / "config.v2.json").write_text("[" * 100_000 + "]" * 100_000)
    assert read_created_container(str(tmp_path), container_id) is None  # nested past the parser
    (folder / "config.v2.json").write_bytes(b" " * (5 << 20))
    assert read_created_container(str(tmp_path), container_id) is None  # over the size bound
    (folder / "config.v2.json").write_text(json.dumps({"ID": "b" * 64, "Name": "/x", "State": never_started}))
    assert read_created_container(str(tmp_path), container_id) is None  # another container's files
    (folder / "config.v2.json").write_text(json.dumps({"ID": container_id, "Name": "/x", "State": never_started}))
    stored = read_created_container(str(tmp_path), container_id)
    assert stored is not None and stored.name == "/x" and stored.state.status == "created"
    (folder / "hostconfig.json").unlink()
    os.mkfifo(folder / "hostconfig.json")  # a FIFO would block a plain open
    assert read_created_container(str(tmp_path), container_id) is None
