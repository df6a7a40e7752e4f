"""Facts from the Docker Engine API: one list call plus one inspect per object, in parallel."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlparse

import docker
import docker.errors
import requests
from pydantic import BaseModel, ValidationError

from portcullis.collect import CollectionError, first_problem
from portcullis.collect.daemon import attach_swarm_files
from portcullis.model.facts import (
    ContainerFacts,
    EngineFacts,
    EngineInfo,
    EngineVersion,
    HistoryEntry,
    ImageFacts,
    NetworkFacts,
)
from portcullis.model.findings import CollectionProblem

T = TypeVar("T")
ModelT = TypeVar("ModelT", bound=BaseModel)
# Inspect calls are I/O bound on the daemon; a few in flight hides the round-trip latency.
PARALLEL_CALLS = 8


@dataclass
class EngineSnapshot:
    engine: EngineFacts
    containers: list[ContainerFacts]
    images: list[ImageFacts]
    networks: list[NetworkFacts]
    swarm_nodes: list[dict[str, Any]] | None
    problems: list[CollectionProblem] = field(default_factory=list)
    skipped_containers: list[dict[str, str]] = field(default_factory=list)


@dataclass
class EngineConnection:
    api: Any  # docker.APIClient, which ships no type hints
    endpoint: str
    local: bool
    calls: int = 0

    def _count(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        self.calls += 1
        return response

    def __post_init__(self) -> None:
        self.api.hooks["response"].append(self._count)

    def close(self) -> None:
        self.api.close()


def _validate_docker_host(value: str) -> None:
    parsed = urlparse(value)
    if parsed.scheme not in ("unix", "tcp", "ssh", "http", "https", "npipe"):
        raise CollectionError(
            f"DOCKER_HOST={value!r} is not a valid engine address "
            "(expected unix:///path/docker.sock, tcp://HOST:PORT or ssh://USER@HOST)"
        )
    if parsed.scheme == "tcp" and not parsed.hostname:
        raise CollectionError(f"DOCKER_HOST={value!r} names no host (expected tcp://HOST:PORT)")


def connect(host: str | None = None, timeout: int = 30) -> EngineConnection:
    """Connect to `host`, else DOCKER_HOST, else the active Docker context, else the default socket."""
    if host:
        _validate_docker_host(host)
    elif os.environ.get("DOCKER_HOST"):
        _validate_docker_host(os.environ["DOCKER_HOST"])
    try:
        client = docker.DockerClient(base_url=host, timeout=timeout) if host else docker.from_env(timeout=timeout)
        client.api.ping()
    except docker.errors.DockerException as exc:
        raise CollectionError(_explain_connect_error(host, exc)) from None
    except requests.exceptions.RequestException as exc:
        raise CollectionError(_explain_connect_error(host, exc)) from None
    api = client.api
    base = str(api.base_url)
    endpoint = host or os.environ.get("DOCKER_HOST") or base
    if base.startswith("http+docker://"):
        socket_path = getattr(getattr(api, "_custom_adapter", None), "socket_path", None)
        endpoint = host or os.environ.get("DOCKER_HOST") or f"unix://{socket_path or '/var/run/docker.sock'}"
    local = endpoint.startswith("unix://")
    return EngineConnection(api=api, endpoint=endpoint, local=local)


def _explain_connect_error(host: str | None, exc: Exception) -> str:
    text = str(exc)
    where = host or os.environ.get("DOCKER_HOST") or "the default Docker socket"
    if "Permission denied" in text or "PermissionError" in text:
        return f"permission denied on {where}: run as root or as a member of the docker group"
    if "No such file" in text or "FileNotFoundError" in text or "Connection refused" in text:
        return (
            f"no Docker engine answers at {where}: start dockerd, or point Portcullis at an engine "
            "with --host, DOCKER_HOST or `docker context use`"
        )
    first_line = text.splitlines()[0] if text else type(exc).__name__
    return f"cannot reach the Docker engine at {where}: {first_line}"


def _parallel(func: Callable[[T], Any], items: list[T]) -> list[Any]:
    if len(items) <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=PARALLEL_CALLS) as pool:
        return list(pool.map(func, items))


def from_api(model: type[ModelT], answer: Any, what: str) -> ModelT:
    """An API answer as facts; a wrong-typed answer (a broken engine or proxy) is one line, not a validation dump."""
    try:
        return model.model_validate(answer)
    except ValidationError as exc:
        raise CollectionError(f"the engine returned a malformed {what}: {first_problem(exc)}") from None


def collect_engine(conn: EngineConnection) -> EngineSnapshot:
    api = conn.api
    problems: list[CollectionProblem] = []
    try:
        info = from_api(EngineInfo, api.info(), "/info")
        version = from_api(EngineVersion, api.version(), "/version")
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise CollectionError(f"the engine at {conn.endpoint} stopped answering: {exc}") from None
    engine = EngineFacts(endpoint=conn.endpoint, local=conn.local, info=info, version=version)

    skipped: list[dict[str, str]] = []

    def inspect_container(summary: dict[str, Any]) -> ContainerFacts | None:
        try:
            return from_api(ContainerFacts, api.inspect_container(summary["Id"]), "container inspect")
        except docker.errors.NotFound:
            names = summary.get("Names") or [""]
            skipped.append({"id": summary["Id"], "name": names[0].lstrip("/"), "reason": "removed during collection"})
            return None

    def inspect_image(summary: dict[str, Any]) -> ImageFacts | None:
        try:
            image = from_api(ImageFacts, api.inspect_image(summary["Id"]), "image inspect")
        except docker.errors.NotFound:
            return None
        try:
            image.history = [from_api(HistoryEntry, h, "image history") for h in api.history(summary["Id"])]
        except docker.errors.APIError as exc:
            problems.append(CollectionProblem(fact=f"image {summary['Id'][:19]} history", reason=str(exc)))
        return image

    container_list = api.containers(all=True)
    image_list = api.images()
    containers = [c for c in _parallel(inspect_container, container_list) if c is not None]
    images = [i for i in _parallel(inspect_image, image_list) if i is not None]
    networks = [from_api(NetworkFacts, n, "network list") for n in api.networks()]

    swarm_nodes: list[dict[str, Any]] | None = None
    if info.swarm.local_node_state == "active" and info.swarm.control_available:
        try:
            swarm_nodes = api.nodes()
        except docker.errors.APIError as exc:
            problems.append(CollectionProblem(fact="swarm nodes", reason=str(exc)))
        try:
            info.swarm.secret_count = len(api.secrets())
        except docker.errors.APIError as exc:
            problems.append(CollectionProblem(fact="swarm secrets", reason=str(exc)))
    if conn.local and info.swarm.local_node_state == "active":
        attach_swarm_files(info.swarm, info.docker_root_dir, problems)
    return EngineSnapshot(engine, containers, images, networks, swarm_nodes, problems, skipped)


def api_top_processes(conn: EngineConnection, container_id: str) -> dict[str, Any]:
    """The API's `top` (the daemon runs ps): used only for remote engines, where /proc is not ours."""
    result: dict[str, Any] = conn.api.top(container_id)
    return result


def resolve_container(conn: EngineConnection, name: str) -> tuple[str, str, int]:
    """(id, name, init pid) of a running container, or a CollectionError that says why not."""
    try:
        inspect = conn.api.inspect_container(name)
    except docker.errors.NotFound:
        raise CollectionError(f"no container named {name!r}") from None
    except docker.errors.APIError as exc:
        raise CollectionError(f"cannot inspect container {name!r}: {exc.explanation or exc}") from None
    pid = int(inspect.get("State", {}).get("Pid") or 0)
    if pid <= 0:
        raise CollectionError(f"container {name!r} is not running")
    return str(inspect["Id"]), str(inspect["Name"]).lstrip("/"), pid
