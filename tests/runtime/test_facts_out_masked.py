"""Issue 13: `audit --facts-out` masks secrets in container and image env values, labels and command lines (keys
kept) and is readable by its owner only; a replay of it still finds the secret-named variables (CIS-4.10)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.runtime.conftest import BUSYBOX, LABEL, docker

pytestmark = pytest.mark.engine

PASSWORD = "hunter2"
TOKEN = "tok-Zq8v1rLm3"
IMAGE_SECRET = "imgS3cretVal9"
LOGIN = "LoginPw0rd8"


@pytest.fixture
def secret_container(tmp_path: Path) -> Iterator[tuple[str, str]]:
    tag = f"portcullis-test/facts-secret:{uuid.uuid4().hex[:8]}"
    (tmp_path / "Dockerfile").write_text(f"FROM {BUSYBOX}\nENV API_TOKEN={IMAGE_SECRET}\n", encoding="utf-8")
    subprocess.run(["docker", "build", "-q", "--label", LABEL, "-t", tag, str(tmp_path)], capture_output=True,
                   check=True, timeout=120, env={**os.environ, "DOCKER_BUILDKIT": "0"})  # fmt: skip
    name = f"pc-rt-{uuid.uuid4().hex[:8]}"
    try:
        docker("run", "-d", "--label", LABEL, "--label", f"token={TOKEN}", "-e", f"DB_PASSWORD={PASSWORD}",
               "--name", name, tag, "sh", "-c", f"echo docker login -p {LOGIN} r; sleep 600")  # fmt: skip
        yield name, tag
    finally:
        docker("rm", "-f", name, check=False)
        docker("rmi", "-f", tag, check=False)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "portcullis", *args], capture_output=True, text=True, timeout=300,
                          check=False)  # fmt: skip


def test_facts_out_is_masked_and_private(secret_container: tuple[str, str], tmp_path: Path) -> None:
    name, tag = secret_container
    facts = tmp_path / "facts.json"
    facts.write_text("stale", encoding="utf-8")
    facts.chmod(0o644)  # an existing world-readable file must not keep its mode
    audited = cli("audit", "--facts-out", str(facts), "-f", "json")
    assert audited.returncode == 0, audited.stderr
    assert stat.S_IMODE(facts.stat().st_mode) == 0o600
    text = facts.read_text(encoding="utf-8")
    for secret in (PASSWORD, TOKEN, IMAGE_SECRET, LOGIN):
        assert secret not in text, secret
    snapshot = json.loads(text)
    [container] = [c for c in snapshot["containers"] if c["Name"].lstrip("/") == name]
    assert "DB_PASSWORD=<redacted>" in container["Config"]["Env"]
    assert container["Config"]["Labels"]["token"] == "<redacted>"
    assert container["Config"]["Labels"]["portcullis.test"] == "1"  # keys and harmless values kept
    assert "<redacted>" in container["Config"]["Cmd"][-1]
    replay = cli("audit", "--facts-in", str(facts), "-f", "json", "--select", "CIS-4.10")
    assert replay.returncode == 0, replay.stderr
    hits = [
        f
        for f in json.loads(replay.stdout)["findings"]
        if f["rule_id"] == "CIS-4.10" and tag in json.dumps(f["target"])
    ]
    assert [f["status"] for f in hits] == ["fail"]  # the masked value still marks API_TOKEN as holding a literal
    assert any(hit["name"] == "API_TOKEN" for hit in hits[0]["evidence"]["secrets"])
