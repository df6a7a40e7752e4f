"""One container or one image at a time, as `watch` reads them when the engine reports them: the same inspect →
facts path as the audit's snapshot (which attaches its containers' processes here too), for a single object."""

from __future__ import annotations

from typing import Any

import docker.errors
import requests

from portcullis.collect import CollectionError
from portcullis.collect.engine import EngineConnection, api_top_processes, from_api
from portcullis.collect.execs import attach_exec_sessions
from portcullis.collect.processes import PidNamespaces, attach_local_processes, processes_from_top
from portcullis.model.facts import ContainerFacts, HistoryEntry, ImageFacts

# The containers a watcher judges when it (re)connects: those running and those created but never started.
RECONCILED_STATES = ("running", "created")


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
