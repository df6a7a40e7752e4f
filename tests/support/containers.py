"""Labelled test containers that are always removed.

Every container carries ``portcullis.test=1`` (the project-wide marker) and a per-session label, so
a session removes exactly what it created even while other people's test containers share the engine.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import docker
import docker.errors

TEST_LABEL = "portcullis.test"
SESSION_LABEL = "portcullis.test.session"
BUSYBOX = "portcullis-test/busybox:1"


class ContainerFactory:
    """Creates containers named ``<prefix>-<role>`` for one session and removes them all on `remove_all`."""

    def __init__(self, client: docker.DockerClient, prefix: str, session: str | None = None) -> None:
        self.client = client
        self.session = session or uuid.uuid4().hex[:10]
        self.prefix = prefix
        self.names: dict[str, str] = {}

    def name(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    def _labels(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {TEST_LABEL: "1", SESSION_LABEL: self.session, **(extra or {})}

    def run(self, role: str, command: str | list[str] = "sleep 600", **options: Any) -> Any:
        """`docker run -d`: started and left running (or exited, if the command ends)."""
        name = self.name(role)
        self.names[role] = name
        labels = self._labels(options.pop("labels", None))
        return self.client.containers.run(
            options.pop("image", BUSYBOX), command, name=name, labels=labels, detach=True, **options
        )

    def create(self, role: str, command: str | list[str] = "sleep 600", **options: Any) -> Any:
        """`docker create`: never started (status 'created')."""
        name = self.name(role)
        self.names[role] = name
        labels = self._labels(options.pop("labels", None))
        return self.client.containers.create(
            options.pop("image", BUSYBOX), command, name=name, labels=labels, **options
        )

    def session_containers(self) -> list[Any]:
        return list(self.client.containers.list(all=True, filters={"label": f"{SESSION_LABEL}={self.session}"}))

    def remove_all(self) -> list[str]:
        """Force-remove every container of this session; return the names that are still there."""
        for container in self.session_containers():
            with suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
        return [c.name for c in self.session_containers()]


@contextmanager
def labelled_containers(client: docker.DockerClient, prefix: str) -> Iterator[ContainerFactory]:
    """A factory whose containers are removed when the block ends, also when it raises."""
    factory = ContainerFactory(client, prefix)
    try:
        yield factory
    finally:
        left = factory.remove_all()
        if left:
            raise RuntimeError(f"test containers could not be removed: {left}")


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def free_tcp_port(candidates: range, address: str = "0.0.0.0") -> int:
    """The first port in `candidates` nobody listens on (other test runs may hold the usual ones)."""
    for port in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((address, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free TCP port in {candidates}")
