"""Test workloads for `harden`, built offline from tests/harden/images/*, and the containers they run in.

Every container a test starts carries `portcullis.test=1` and is removed at the end, also on failure; the
containers `harden` itself starts get the same label through `--label`.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

IMAGES = Path(__file__).parent / "images"
LABEL = "portcullis.test=1"
BASE_IMAGE = "portcullis-test/busybox:1"


def docker(*args: str, check: bool = True, timeout: int = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=timeout)


def image_of(workload: str) -> str:
    return f"portcullis-test/harden-{workload}:1"


@pytest.fixture(scope="session")
def workload_images() -> dict[str, str]:
    if docker("info", check=False, timeout=30).returncode != 0:
        pytest.skip("no Docker engine answers (run `make engine`)")
    if docker("image", "inspect", BASE_IMAGE, check=False).returncode != 0:
        pytest.fail(f"{BASE_IMAGE} is missing: run `make test-images`")
    built = {}
    for directory in sorted(p for p in IMAGES.iterdir() if (p / "Dockerfile").is_file()):
        built[directory.name] = image_of(directory.name)
        docker("build", "-q", "-t", built[directory.name], str(directory))
    return built


class Workloads:
    """Containers of this test session, named `pc-hd-<session>-<role>`, removed by `remove_all`."""

    def __init__(self) -> None:
        self.session = uuid.uuid4().hex[:8]
        self.names: list[str] = []

    def name(self, role: str) -> str:
        return f"pc-hd-{self.session}-{role}"

    def run(self, role: str, workload: str, *options: str) -> str:
        name = self.name(role)
        self.names.append(name)
        docker("run", "-d", "--label", LABEL, "--name", name, *options, image_of(workload))
        return name

    def wait_exit(self, name: str, timeout: float = 30) -> int:
        return int(docker("wait", name, timeout=int(timeout)).stdout.strip())

    def leftovers(self) -> list[str]:
        """Experiment copies (`portcullis-harden-<name>-…`) and renamed originals of this session."""
        listed = docker("ps", "-a", "--format", "{{.Names}}", "--filter", f"name={self.session}").stdout.split()
        return [n for n in listed if n not in self.names]

    def remove_all(self) -> None:
        names = self.names + self.leftovers()
        if names:
            docker("rm", "-f", "-v", *names, check=False)


@pytest.fixture(scope="module")
def workloads(workload_images: dict[str, str]) -> Iterator[Workloads]:
    made = Workloads()
    try:
        yield made
    finally:
        made.remove_all()


def harden(*args: str, timeout: int = 300) -> tuple[int, dict[str, Any], str]:
    """`portcullis harden …` in a subprocess, JSON on stdout; returns (exit code, document, stderr)."""
    result = subprocess.run(
        [sys.executable, "-m", "portcullis", "harden", *args, "-f", "json", "--label", LABEL],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    document = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.returncode, document, result.stderr


def flag_words(flags: list[str]) -> list[str]:
    return [word for flag in flags for word in shlex.split(flag)]


def http_get(address: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(address, timeout=2) as response:
                return str(response.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def container_ip(name: str) -> str:
    return docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", name).stdout.strip()
