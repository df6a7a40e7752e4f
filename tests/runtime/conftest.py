"""Real containers for the runtime tests: labelled, and removed whatever happens."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest

LABEL = "portcullis.test=1"
BUSYBOX = "portcullis-test/busybox:1"
PYTHON = "portcullis-test/python:bookworm"


def docker(*args: str, check: bool = True, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=timeout)


class Containers:
    def __init__(self) -> None:
        self.names: list[str] = []

    def run(self, options: list[str], image: str = BUSYBOX, command: tuple[str, ...] = ("sleep", "600")) -> str:
        name = f"pc-rt-{uuid.uuid4().hex[:8]}"
        self.names.append(name)
        docker("run", "-d", "--label", LABEL, "--name", name, *options, image, *command)
        return name

    def remove_all(self) -> None:
        if self.names:
            docker("rm", "-f", *self.names, check=False)
        self.names.clear()


@pytest.fixture(scope="module")
def containers() -> Iterator[Containers]:
    made = Containers()
    try:
        yield made
    finally:
        made.remove_all()
