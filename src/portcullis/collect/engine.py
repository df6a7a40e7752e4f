"""Facts from the Docker Engine API: one list call plus one inspect per object, in parallel."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlparse

import docker
import docker.errors
import docker.tls
import requests
from pydantic import BaseModel, ValidationError

from portcullis.collect import CollectionError, first_problem
from portcullis.collect.authz_plugins import refusal_reason
from portcullis.collect.daemon import attach_swarm_files
from portcullis.collect.docker_config import ContextEndpoint, config_dir, current_context
from portcullis.collect.ssh_relay import SSHRelay
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
    relay: SSHRelay | None = None  # an ssh:// engine's private socket and ssh processes

    def _count(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        self.calls += 1
        return response

    def __post_init__(self) -> None:
        self.api.hooks["response"].append(self._count)

    def close(self) -> None:
        self.api.close()
        if self.relay is not None:
            self.relay.close()


def validate_docker_host(value: str) -> None:
    parsed = urlparse(value)
    if parsed.scheme not in ("unix", "tcp", "ssh", "http", "https", "npipe"):
        raise CollectionError(
            f"DOCKER_HOST={value!r} is not a valid engine address "
            "(expected unix:///path/docker.sock, tcp://HOST:PORT or ssh://USER@HOST)"
        )
    if parsed.scheme == "tcp" and not parsed.hostname:
        raise CollectionError(f"DOCKER_HOST={value!r} names no host (expected tcp://HOST:PORT)")


@dataclass(frozen=True)
class TLSFlags:
    """The docker CLI's --tlsverify/--tlscacert/--tlscert/--tlskey, as given (None: not on the command line)."""

    verify: bool = False
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None


_tls_flags = TLSFlags()


def use_tls_flags(flags: TLSFlags) -> None:
    """Set this process's TLS flags once, from the command line: every later connect() honours them, however
    deep (harden, pipelines) the call that connects."""
    global _tls_flags
    _tls_flags = flags


def _tls_config(flags: TLSFlags) -> docker.tls.TLSConfig | None:
    """TLS as the docker CLI sets it: on with --tlsverify or DOCKER_TLS_VERIFY (any non-empty value), with
    ca.pem/cert.pem/key.pem from DOCKER_CERT_PATH (else the config directory) unless a flag names the file.
    Unlike the CLI, naming a certificate turns verification on rather than being silently ignored."""
    explicit = flags.ca or flags.cert or flags.key
    if not (flags.verify or explicit or os.environ.get("DOCKER_TLS_VERIFY")):
        return None
    cert_dir = Path(os.environ.get("DOCKER_CERT_PATH") or config_dir())
    ca = flags.ca or cert_dir / "ca.pem"
    if not ca.is_file():
        raise CollectionError(f"TLS verification needs a CA certificate: {ca} is not a file (--tlscacert)")
    cert = flags.cert or (cert_dir / "cert.pem" if (cert_dir / "cert.pem").is_file() else None)
    key = flags.key or (cert_dir / "key.pem" if (cert_dir / "key.pem").is_file() else None)
    for path, flag in ((cert, "--tlscert"), (key, "--tlskey")):
        if path is not None and not path.is_file():
            raise CollectionError(f"{flag} {path} is not a file")
    if (cert is None) != (key is None):
        raise CollectionError(
            "a TLS client certificate needs its key and the key its certificate (--tlscert, --tlskey)"
        )
    client_cert = (str(cert), str(key)) if cert and key else None
    return docker.tls.TLSConfig(client_cert=client_cert, ca_cert=str(ca), verify=True)


def _context_tls(context: ContextEndpoint) -> docker.tls.TLSConfig | None:
    """The TLS material `docker context create --docker host=…,ca=…,cert=…,key=…` stored, as the CLI uses it."""
    if not (context.ca or context.cert):
        return None
    client_cert = (str(context.cert), str(context.key)) if context.cert and context.key else None
    ca = str(context.ca) if context.ca else None
    return docker.tls.TLSConfig(client_cert=client_cert, ca_cert=ca, verify=not context.skip_tls_verify)


class _EngineAPI(docker.APIClient):  # type: ignore[misc]  # docker ships no type hints
    def merge_environment_settings(self, url: str, proxies: Any, stream: Any, verify: Any, cert: Any) -> dict[str, Any]:
        # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE replace the session's CA on every call: the engine's
        # CA (or the system store when none was given) must win, so pin the session's own setting.
        settings: dict[str, Any] = super().merge_environment_settings(url, proxies, stream, verify, cert)
        settings["verify"] = self.verify
        return settings

    def export_images(self, ids: list[str], chunk_size: int) -> Iterator[bytes]:
        """`docker save ID ID …` as one stream: a layer the images share is in it once (the SDK saves one image)."""
        response = self._get(self._url("/images/get"), params={"names": ids}, stream=True)
        return cast(Iterator[bytes], self._stream_raw_result(response, chunk_size, False))


def connect(host: str | None = None, timeout: int = 30, tls_flags: TLSFlags | None = None) -> EngineConnection:
    """Connect as the docker CLI does: `host`, else DOCKER_HOST, else the active Docker context, else the default
    socket; TLS from `tls_flags` (one engine's own material, when several are audited at once), else the
    command-line flags (use_tls_flags), or DOCKER_TLS_VERIFY/DOCKER_CERT_PATH."""
    address = host or os.environ.get("DOCKER_HOST") or None
    if address:
        validate_docker_host(address)
    relay: SSHRelay | None = None
    try:
        tls: docker.tls.TLSConfig | bool | None = _tls_config(tls_flags or _tls_flags)
        if address is None and (context := current_context()) is not None:
            address = context.host
            tls = tls or _context_tls(context)
        if address and address.startswith("ssh://"):
            relay = SSHRelay(address)
        api = _EngineAPI(base_url=relay.url if relay else address, tls=tls or False, timeout=timeout)
        api.ping()
    except (CollectionError, docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        said = relay.last_error() if relay else ""
        if relay is not None:
            relay.close()
        if isinstance(exc, CollectionError):
            raise
        if said:  # ssh's own reason (login refused, no docker on the remote) beats "connection aborted"
            raise CollectionError(f"cannot reach the Docker engine at {address} over ssh: {said}") from None
        endpoint = address or "unix:///var/run/docker.sock"
        # The SDK's own first call (/version) wraps the 500 in a plain DockerException: match the text.
        if "500 Server Error" in str(exc) and endpoint.startswith("unix://"):
            reason = refusal_reason(endpoint)
            if reason:
                raise CollectionError(f"the Docker engine at {endpoint} answers 500: {reason}") from None
        raise CollectionError(_explain_connect_error(address, exc)) from None
    endpoint = address or "unix:///var/run/docker.sock"
    local = endpoint.startswith("unix://")
    return EngineConnection(api=api, endpoint=endpoint, local=local, relay=relay)


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
    if isinstance(exc, requests.exceptions.SSLError) or "SSLError(" in text:  # docker wraps it at its first call
        reason = _ssl_reason(text)
        return (
            f"TLS with the Docker engine at {where} failed ({reason}): "
            "check --tlscacert/--tlscert/--tlskey or DOCKER_CERT_PATH"
        )
    if "HTTP request to an HTTPS server" in text:
        return f"the Docker engine at {where} speaks only TLS: pass --tlsverify (or set DOCKER_TLS_VERIFY=1)"
    first_line = text.splitlines()[0] if text else type(exc).__name__
    return f"cannot reach the Docker engine at {where}: {first_line}"


def _ssl_reason(text: str) -> str:
    for known in (
        "certificate verify failed",
        "certificate required",
        "bad certificate",
        "unknown ca",
        "wrong version number",
    ):
        if known in text:
            return known
    return "handshake failed"


def parallel(func: Callable[[T], Any], items: list[T]) -> list[Any]:
    """func over items, PARALLEL_CALLS at a time: for calls that wait on the engine."""
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
    containers = [c for c in parallel(inspect_container, container_list) if c is not None]
    images = [i for i in parallel(inspect_image, image_list) if i is not None]
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
