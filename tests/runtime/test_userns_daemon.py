"""inside and prove against a second dockerd with userns-remap: container root is an unprivileged host uid.

The remapping daemon creates the `dockremap` user and its /etc/subuid and /etc/subgid ranges; the
fixture restores those files and removes the user again when it created them.
"""

from __future__ import annotations

import json
import pwd
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from portcullis.harden.trial_daemon import TrialDaemon, copy_image, missing_requirement

pytestmark = pytest.mark.engine

BUSYBOX = "portcullis-test/busybox:1"
ID_FILES = (Path("/etc/subuid"), Path("/etc/subgid"))


@dataclass
class RemappedContainer:
    host: str
    name: str


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture(scope="module")
def remapped() -> Iterator[RemappedContainer]:
    saved = {path: path.read_bytes() if path.exists() else None for path in ID_FILES}
    had_user = _user_exists("dockremap")
    missing = missing_requirement()
    if missing:
        pytest.skip(missing)
    daemon = TrialDaemon(config={"userns-remap": "default"})
    try:
        daemon.start()
        with closing(docker.from_env()) as engine, closing(daemon.client()) as target:
            copy_image(BUSYBOX, engine.api, target)
        with closing(daemon.client()) as client:
            client.containers.run(BUSYBOX, "sleep 600", name="pc-userns", detach=True, labels={"portcullis.test": "1"})
        yield RemappedContainer(daemon.host, "pc-userns")
    finally:
        daemon.stop()
        if not had_user and _user_exists("dockremap"):
            subprocess.run(["userdel", "dockremap"], check=False, capture_output=True)
        for path, content in saved.items():
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(content)


def portcullis(*args: str) -> dict[str, dict[str, object]]:
    result = subprocess.run([sys.executable, "-m", "portcullis", *args, "-f", "json"], capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return {f["rule_id"]: f for f in json.loads(result.stdout)["findings"]}


def test_inside_sees_an_unprivileged_host_uid(remapped: RemappedContainer) -> None:
    findings = portcullis("inside", "--container", remapped.name, "--host", remapped.host)
    user_ns = findings["DKR-IN-013"]
    assert user_ns["status"] == "pass"
    mapping = user_ns["evidence"]["uid_map"]
    assert mapping[0][0] == 0 and mapping[0][1] >= 100000
    # The remapped container has its own user namespace: nothing else about it changed.
    assert findings["DKR-IN-006"]["status"] == "pass"


def test_prove_shows_container_root_is_not_host_root(remapped: RemappedContainer) -> None:
    findings = portcullis("prove", remapped.name, "--host", remapped.host)
    proof = findings["DKR-PRV-008"]
    assert proof["status"] == "pass"
    assert int(proof["evidence"]["host_uid"]) >= 100000
