"""Run the real `portcullis` console script; record facts once from the real engine with planted containers."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

PORTCULLIS = Path(sys.executable).parent / "portcullis"
BUSYBOX = "portcullis-test/busybox:1"
LABELS = {"portcullis.test": "1"}


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def one_error_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got: {self.stderr!r}"
        assert lines[0].startswith("portcullis: error: "), lines[0]
        return lines[0]


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, prefix: tuple[str, ...] = ()
) -> Run:
    environment = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    environment.update(env or {})
    done = subprocess.run(
        [*prefix, str(PORTCULLIS), *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        timeout=300,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="session")
def engine() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
        client.images.get(BUSYBOX)
    except docker.errors.ImageNotFound:
        pytest.fail(f"{BUSYBOX} is missing: run `make test-images`")
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine answers (run `make engine`): {exc}")
    yield client
    client.close()


@dataclass(frozen=True)
class Planted:
    privileged: str  # created, never started (it could not start on this VM): CIS-5.5 fails, critical
    plain: str  # running, unprivileged


@pytest.fixture(scope="session")
def planted(engine: docker.DockerClient) -> Iterator[Planted]:
    tag = uuid.uuid4().hex[:8]
    names = Planted(privileged=f"pc-clitest-priv-{tag}", plain=f"pc-clitest-plain-{tag}")
    try:
        engine.containers.create(BUSYBOX, "sleep 600", name=names.privileged, privileged=True, labels=LABELS)
        engine.containers.run(BUSYBOX, "sleep 600", name=names.plain, detach=True, labels=LABELS)
        yield names
    finally:
        for name in (names.privileged, names.plain):
            with contextlib.suppress(docker.errors.NotFound):
                engine.containers.get(name).remove(force=True)


@dataclass(frozen=True)
class Recorded:
    facts: Path
    report: dict[str, Any]
    planted: Planted


@pytest.fixture(scope="session")
def recorded(planted: Planted, tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """One live audit with --facts-out: the facts every replay test starts from, and the live report."""
    facts = tmp_path_factory.mktemp("facts") / "facts.json"
    run = run_cli("audit", "--format", "json", "--facts-out", str(facts))
    assert run.code == 0, run.stderr
    return Recorded(facts=facts, report=run.json(), planted=planted)


def verdicts(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return sorted((f["rule_id"], f["target"]["kind"], f["target"]["name"], f["status"]) for f in report["findings"])
