"""Short-lived, labelled containers for experiments, always removed: on success, failure, timeout,
Ctrl-C and SIGTERM.

Every container carries `portcullis.managed=true`, the run's id and its owner (host and pid), and is named before
the create request, so a run removes what it created even when a signal arrives mid-create, and the next run sweeps
what a killed one (SIGKILL) left. Nothing here touches containers the tool did not create.
"""

from __future__ import annotations

import os
import signal
import socket
import time
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
OWNER_LABEL = "portcullis.owner"  # host:pid of the run, so the next run can tell a dead run's leftovers


class SandboxError(Exception):
    """An experiment container could not be created or started (bad image, engine refused…)."""


@dataclass
class RunResult:
    exit_code: int | None  # None: killed at the timeout
    output: str
    oom_killed: bool
    timed_out: bool
    host_pid: int | None = None
    container_id: str = ""


@dataclass
class Sandbox:
    conn: EngineConnection
    purpose: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created: list[str] = field(default_factory=list)  # names, given before each create request is sent
    networks: list[str] = field(default_factory=list)  # names of the user networks this run created
    creating: bool = False
    pending_signal: int | None = None  # a signal that arrived mid-create, raised once the create returns

    @property
    def labels(self) -> dict[str, str]:
        return {
            MANAGED_LABEL: "true",
            RUN_LABEL: self.run_id,
            OWNER_LABEL: run_owner(),
            "portcullis.purpose": self.purpose,
        }

    def create(self, image: str, command: list[str], user: str = "", **host_options: Any) -> str:
        api = self.conn.api
        name = f"portcullis-{self.purpose}-{self.run_id}-{len(self.created)}"
        self.created.append(name)
        # The engine may finish a create whose client was interrupted: hold signals until its answer is in.
        self.creating = True
        try:
            host_config = api.create_host_config(**host_options)
            created = api.create_container(
                image,
                command=command,
                name=name,
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
        finally:
            self.creating = False
            if self.pending_signal is not None:
                raise KeyboardInterrupt(f"signal {self.pending_signal}")
        return str(created["Id"])

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
        try:
            output = api.logs(container_id, stdout=True, stderr=True).decode(errors="replace")
            state = api.inspect_container(container_id)["State"]
        except docker.errors.APIError as exc:  # removed under us, by someone else's clean-up
            gone = exc.explanation or exc
            raise SandboxError(f"the experiment container went away before it was read: {gone}") from None
        return RunResult(exit_code, output, bool(state.get("OOMKilled")), timed_out)

    def start_detached(self, image: str, command: list[str], user: str = "", **host_options: Any) -> RunResult:
        """Start and leave running (for host-side observation); returns its host pid."""
        container_id = self.create(image, command, user=user, **host_options)
        try:
            self.conn.api.start(container_id)
        except docker.errors.APIError as exc:
            raise SandboxError(f"the experiment container did not start: {exc.explanation or exc}") from None
        state = self.conn.api.inspect_container(container_id)["State"]
        pid = int(state.get("Pid") or 0) or None
        return RunResult(None, "", False, False, host_pid=pid, container_id=container_id)

    def exec(self, container_id: str, command: list[str]) -> tuple[int | None, str]:
        """Run `command` in a running experiment container; the command must bound its own time."""
        api = self.conn.api
        try:
            started = api.exec_create(container_id, command)
            output = api.exec_start(started["Id"]).decode(errors="replace")
            return api.exec_inspect(started["Id"]).get("ExitCode"), output
        except docker.errors.APIError as exc:
            raise SandboxError(
                f"the engine refused to run a command in the experiment: {exc.explanation or exc}"
            ) from None

    def create_network(self) -> str:
        """A labelled user bridge network of this run, removed by `close` after the containers."""
        name = f"portcullis-{self.purpose}-{self.run_id}-net{len(self.networks)}"
        self.networks.append(name)
        self.creating = True
        try:
            self.conn.api.create_network(name, driver="bridge", labels=self.labels)
        except docker.errors.APIError as exc:
            raise SandboxError(f"the engine refused the experiment network: {exc.explanation or exc}") from None
        finally:
            self.creating = False
            if self.pending_signal is not None:
                raise KeyboardInterrupt(f"signal {self.pending_signal}")
        return name

    def close(self) -> None:
        for name in self.created:
            _remove(self.conn, name)
        self.created.clear()
        # Anything of this run the names missed (a create the engine completed after its client gave up).
        for container in self.conn.api.containers(all=True, filters={"label": f"{RUN_LABEL}={self.run_id}"}):
            _remove(self.conn, str(container["Id"]))
        for network in self.conn.api.networks(filters={"label": f"{RUN_LABEL}={self.run_id}"}):
            # APIError: a container the engine had not yet detached; the next run's sweep removes the network.
            with suppress(docker.errors.NotFound, docker.errors.APIError):
                self.conn.api.remove_network(str(network["Id"]))
        self.networks.clear()

    def interrupt(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM and Ctrl-C: raise KeyboardInterrupt, or after the create request in flight has returned."""
        if self.creating:
            self.pending_signal = signum
            return
        raise KeyboardInterrupt(f"signal {signum}")


def run_owner() -> str:
    """host:pid of this run, the value of OWNER_LABEL on everything it creates."""
    return f"{socket.gethostname()}:{os.getpid()}"


REMOVAL_WAIT = 20.0  # seconds to wait for a removal the engine already started (an interrupted earlier request)


def _remove(conn: EngineConnection, container: str) -> None:
    try:
        conn.api.remove_container(container, force=True)
    except docker.errors.NotFound:
        return
    except docker.errors.APIError as exc:
        # A signal can cut our first removal request short while the engine carries it on; the retry then meets it.
        if exc.status_code != 409 or "already in progress" not in str(exc):
            raise
        deadline = time.monotonic() + REMOVAL_WAIT
        while time.monotonic() < deadline:
            try:
                conn.api.inspect_container(container)
            except docker.errors.NotFound:
                return
            time.sleep(0.2)
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    return True


def sweep_orphans(conn: EngineConnection) -> int:
    """Remove managed containers whose run, on this host, is no longer alive (killed before its clean-up)."""
    host = socket.gethostname()
    removed = 0
    for container in conn.api.containers(all=True, filters={"label": f"{MANAGED_LABEL}=true"}):
        owner_host, _, pid = str((container.get("Labels") or {}).get(OWNER_LABEL, "")).rpartition(":")
        if owner_host == host and pid.isdigit() and not _alive(int(pid)):
            _remove(conn, str(container["Id"]))
            removed += 1
    for network in conn.api.networks(filters={"label": f"{MANAGED_LABEL}=true"}):
        owner_host, _, pid = str((network.get("Labels") or {}).get(OWNER_LABEL, "")).rpartition(":")
        if owner_host == host and pid.isdigit() and not _alive(int(pid)):
            with suppress(docker.errors.NotFound, docker.errors.APIError):  # APIError: still in use elsewhere
                conn.api.remove_network(str(network["Id"]))
    return removed


@contextmanager
def sandbox(conn: EngineConnection, purpose: str) -> Iterator[Sandbox]:
    """A sandbox whose containers are removed however the block ends; SIGTERM is treated as Ctrl-C."""
    box = Sandbox(conn, purpose)
    previous = {signum: signal.signal(signum, box.interrupt) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        sweep_orphans(conn)
        yield box
    finally:
        # A second signal during clean-up must not leave containers behind.
        for signum in previous:
            signal.signal(signum, signal.SIG_IGN)
        try:
            box.close()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
