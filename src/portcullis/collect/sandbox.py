"""Short-lived, labelled containers for experiments, always removed: on success, failure, timeout,
Ctrl-C and SIGTERM.

Every container carries `portcullis.managed=true` and the run's id, so a crashed run can also be
swept by label. Nothing here touches containers the tool did not create.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import docker.errors
import requests

from portcullis.collect.engine import EngineConnection

MANAGED_LABEL = "portcullis.managed"
RUN_LABEL = "portcullis.run"


class SandboxError(Exception):
    """An experiment container could not be created or started (bad image, engine refused…)."""


@dataclass
class RunResult:
    exit_code: int | None  # None: killed at the timeout
    output: str
    oom_killed: bool
    timed_out: bool
    host_pid: int | None = None


@dataclass
class Sandbox:
    conn: EngineConnection
    purpose: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created: list[str] = field(default_factory=list)

    @property
    def labels(self) -> dict[str, str]:
        return {MANAGED_LABEL: "true", RUN_LABEL: self.run_id, "portcullis.purpose": self.purpose}

    def create(self, image: str, command: list[str], user: str = "", **host_options: Any) -> str:
        api = self.conn.api
        try:
            host_config = api.create_host_config(**host_options)
            created = api.create_container(
                image,
                command=command,
                user=user or None,
                labels=self.labels,
                host_config=host_config,
                network_disabled=host_options.get("network_mode") == "none",
                # The engine publishes only ports the container also exposes.
                ports=list(host_options.get("port_bindings") or {}) or None,
            )
        except docker.errors.ImageNotFound:
            raise SandboxError(f"image {image} is not in the engine (build it with `make test-images`)") from None
        except docker.errors.APIError as exc:
            raise SandboxError(f"the engine refused the experiment container: {exc.explanation or exc}") from None
        container_id = str(created["Id"])
        self.created.append(container_id)
        return container_id

    def run(
        self, image: str, command: list[str], timeout: float = 30, user: str = "", **host_options: Any
    ) -> RunResult:
        """Create, start, wait (bounded), collect output and state; the container is removed by `close`."""
        container_id = self.create(image, command, user=user, **host_options)
        api = self.conn.api
        try:
            api.start(container_id)
        except docker.errors.APIError as exc:
            raise SandboxError(f"the experiment container did not start: {exc.explanation or exc}") from None
        timed_out = False
        try:
            status = api.wait(container_id, timeout=timeout)
            exit_code: int | None = int(status.get("StatusCode", -1))
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            timed_out = True
            exit_code = None
            api.kill(container_id)
        output = api.logs(container_id, stdout=True, stderr=True).decode(errors="replace")
        state = api.inspect_container(container_id)["State"]
        return RunResult(exit_code, output, bool(state.get("OOMKilled")), timed_out)

    def start_detached(self, image: str, command: list[str], user: str = "", **host_options: Any) -> RunResult:
        """Start and leave running (for host-side observation); returns its host pid."""
        container_id = self.create(image, command, user=user, **host_options)
        self.conn.api.start(container_id)
        state = self.conn.api.inspect_container(container_id)["State"]
        return RunResult(None, "", False, False, host_pid=int(state.get("Pid") or 0) or None)

    def close(self) -> None:
        for container_id in self.created:
            with suppress(docker.errors.NotFound):
                self.conn.api.remove_container(container_id, force=True)
        self.created.clear()


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def sandbox(conn: EngineConnection, purpose: str) -> Iterator[Sandbox]:
    """A sandbox whose containers are removed however the block ends; SIGTERM is treated as Ctrl-C."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    box = Sandbox(conn, purpose)
    try:
        yield box
    finally:
        # A second signal during clean-up must not leave containers behind.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            box.close()
        finally:
            signal.signal(signal.SIGTERM, previous)
