"""One container or one image at a time, as `watch` reads them when the engine reports them: the same inspect →
facts path as the audit's snapshot (which attaches its containers' processes here too), for a single object."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import docker.errors
import requests
from pydantic import ValidationError

from portcullis.collect import CollectionError
from portcullis.collect.engine import EngineConnection, api_top_processes, from_api
from portcullis.collect.execs import attach_exec_sessions
from portcullis.collect.files import open_regular
from portcullis.collect.processes import PidNamespaces, attach_local_processes, processes_from_top
from portcullis.model.facts import ContainerFacts, HistoryEntry, ImageFacts

# The containers a watcher judges when it (re)connects: those running and those created but never started.
RECONCILED_STATES = ("running", "created")
CONTAINER_ID = re.compile(r"[0-9a-f]{64}")
# The engine's own files for one container; its environment and labels make them grow, never to this size.
MOST_CONTAINER_FILE = 4 * 1024 * 1024
NEVER_STARTED = "0001-01-01T00:00:00Z"


def _engine_error(conn: EngineConnection, exc: Exception) -> CollectionError:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return CollectionError(f"the engine at {conn.endpoint} did not answer: {text[:200]}")


def current_containers(conn: EngineConnection) -> list[str]:
    """The ids of the containers running or created now; an engine that does not answer raises CollectionError."""
    try:
        listed: list[dict[str, Any]] = conn.api.containers(filters={"status": list(RECONCILED_STATES)})
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise _engine_error(conn, exc) from None
    return [str(summary["Id"]) for summary in listed]


def attach_runtime(conn: EngineConnection, container: ContainerFacts, namespaces: PidNamespaces | None = None) -> None:
    """A running container's exec sessions and processes: from the host's /proc when the engine is local, else from
    the API's `top`."""
    if not container.state.running:
        return
    attach_exec_sessions(conn.api, container)
    if conn.local:
        attach_local_processes(container, namespaces=namespaces)
        return
    try:
        container.processes = processes_from_top(api_top_processes(conn, container.id))
        container.processes_source = "api-top"
    except docker.errors.APIError as exc:
        container.processes_error = str(exc)


def read_container(conn: EngineConnection, container_id: str) -> ContainerFacts | None:
    """The container's facts with its processes and exec sessions when it runs; None when it is gone already."""
    try:
        container = from_api(ContainerFacts, conn.api.inspect_container(container_id), "container inspect")
        attach_runtime(conn, container)
    except docker.errors.NotFound:
        return None
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise _engine_error(conn, exc) from None
    return container


def read_image_config(conn: EngineConnection, reference: str, history: bool = True) -> ImageFacts | None:
    """The image's configuration (and its history unless `history` is False), not its layers; None when the engine
    has no such image."""
    try:
        image = from_api(ImageFacts, conn.api.inspect_image(reference), "image inspect")
        if history:
            image.history = [from_api(HistoryEntry, h, "image history") for h in conn.api.history(image.id)]
    except docker.errors.NotFound:
        return None
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise _engine_error(conn, exc) from None
    return image


def _engine_file(path: Path) -> dict[str, Any]:
    with open_regular(path) as handle:
        data = handle.read(MOST_CONTAINER_FILE + 1)
    if len(data) > MOST_CONTAINER_FILE:
        raise CollectionError(f"{path} is over {MOST_CONTAINER_FILE >> 20} MiB")
    loaded = json.loads(data)
    if not isinstance(loaded, dict):
        raise CollectionError(f"{path} is not a JSON object")
    return loaded


def _as_inspected(stored: dict[str, Any], host_config: dict[str, Any]) -> dict[str, Any]:
    """A never-started container's stored configuration in the shape `docker inspect` gives it (the engine derives
    Mounts from MountPoints, whose Mode it stores as Relabel, and shows no Ports before the start)."""
    mounts = [
        {
            "Type": point.get("Type", ""),
            "Name": point.get("Name", ""),
            "Source": point.get("Source", ""),
            "Destination": point.get("Destination", ""),
            "Mode": point.get("Relabel", ""),
            "RW": point.get("RW", True),
            "Propagation": point.get("Propagation", ""),
        }
        for point in (stored.get("MountPoints") or {}).values()
    ]
    return {
        **stored,
        "Id": stored.get("ID", ""),
        "State": {**stored.get("State", {}), "Status": "created"},
        "HostConfig": host_config,
        "Mounts": sorted(mounts, key=lambda mount: str(mount["Destination"])),
        "NetworkSettings": {**stored.get("NetworkSettings", {}), "Ports": {}},
        "ExecIDs": None,
    }


def read_created_container(root_dir: str, container_id: str) -> ContainerFacts | None:
    """A container created and never started, read from the engine's own files under its root directory instead of
    through inspect: the engine holds a container's lock while starting it, so an inspect at its create event waits
    for the whole start. None when that cannot stand for an inspect here: the files are not readable from this host
    or mount namespace (or not by this user), the engine has removed them, or the container has started meanwhile
    (its state is then the engine's to report); the caller inspects instead."""
    if not CONTAINER_ID.fullmatch(container_id):
        return None
    folder = Path(root_dir) / "containers" / container_id
    try:
        stored = _engine_file(folder / "config.v2.json")
        host_config = _engine_file(folder / "hostconfig.json")
    except (CollectionError, ValueError, RecursionError):
        return None
    state = stored.get("State")
    if stored.get("ID") != container_id or not isinstance(state, dict):
        return None
    if (
        any(state.get(flag) for flag in ("Running", "RemovalInProgress", "Dead"))
        or state.get("StartedAt") != NEVER_STARTED
    ):
        return None
    try:
        return ContainerFacts.model_validate(_as_inspected(stored, host_config))
    except ValidationError:
        return None
