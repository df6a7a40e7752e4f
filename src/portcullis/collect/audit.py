"""Gather the whole audit snapshot: engine, daemon configuration, host, container processes."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import docker.errors
import requests
from pydantic import BaseModel, ValidationError

from portcullis.collect import CollectionError, first_problem
from portcullis.collect.api_probe import probe_local_daemon, probe_remote_endpoint
from portcullis.collect.authz_plugins import configured_plugins, probe_plugins
from portcullis.collect.daemon import collect_daemon_config
from portcullis.collect.engine import EngineConnection, collect_engine, from_api
from portcullis.collect.engine_packages import engine_exposure
from portcullis.collect.files import open_regular
from portcullis.collect.hardening import collect_hardening, on_the_host
from portcullis.collect.host import collect_host, stat_path
from portcullis.collect.processes import PidNamespaces
from portcullis.collect.subjects import attach_runtime
from portcullis.model.facts import (
    FACTS_SCHEMA_VERSION,
    ApiProbe,
    AuthzPluginProbe,
    DaemonConfig,
    EngineFacts,
    EngineInfo,
    EngineVersion,
    Facts,
    HostFacts,
    NetworkFacts,
    PluginsInfo,
)
from portcullis.model.findings import CollectionProblem
from portcullis.model.redaction import redact_snapshot


def collect_facts(conn: EngineConnection) -> Facts:
    """The snapshot; an engine that dies or drops the connection part-way is one CollectionError naming it."""
    try:
        return _collect_facts(conn)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CollectionError(
            f"the engine at {conn.endpoint} stopped answering during collection: {text[:200]}"
        ) from None


def _daemon_and_host(
    conn: EngineConnection, engine: EngineFacts, networks: list[NetworkFacts], problems: list[CollectionProblem]
) -> tuple[DaemonConfig, HostFacts]:
    daemon = collect_daemon_config(conn.endpoint, conn.local, problems)
    bridge = next((n for n in networks if n.name == "bridge"), None)
    daemon.bridge_options = dict(bridge.options) if bridge else None
    if not conn.local:
        problems.append(CollectionProblem(fact="host files", reason="the engine is remote; host not audited"))
        return daemon, HostFacts()
    host = collect_host(daemon, engine.info.docker_root_dir, problems, endpoint=conn.endpoint)
    host.hardening = collect_hardening() if on_the_host(daemon.dockerd_pid) else None
    host.engine_components, host.kernel_build = engine_exposure(host.binaries, engine.version.components)
    return daemon, host


def collect_context(conn: EngineConnection) -> Facts:
    """The engine, its daemon's configuration and its host, without containers or images: what a container rule
    reads besides the container itself (`watch` judges containers one at a time against it)."""
    try:
        engine = EngineFacts(
            endpoint=conn.endpoint,
            local=conn.local,
            info=from_api(EngineInfo, conn.api.info(), "/info"),
            version=from_api(EngineVersion, conn.api.version(), "/version"),
        )
        networks = [from_api(NetworkFacts, n, "network list") for n in conn.api.networks()]
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise CollectionError(f"the engine at {conn.endpoint} stopped answering: {exc}") from None
    problems: list[CollectionProblem] = []
    daemon, host = _daemon_and_host(conn, engine, networks, problems)
    return Facts(
        collected_at=datetime.now(UTC).isoformat(timespec="seconds"),
        engine=engine,
        daemon=daemon,
        host=host,
        networks=networks,
        problems=problems,
    )


def _collect_facts(conn: EngineConnection) -> Facts:
    snapshot = collect_engine(conn)
    problems: list[CollectionProblem] = list(snapshot.problems)
    daemon, host = _daemon_and_host(conn, snapshot.engine, snapshot.networks, problems)
    api_probes: list[ApiProbe] | None
    if conn.local:
        api_probes = probe_local_daemon(daemon, host)
        # A socket mount hands over the engine only if its source really is a socket (`portcullis paths`).
        host.mount_sources = {
            mount.source: stat_path(mount.source)
            for container in snapshot.containers
            for mount in container.mounts
            if mount.type == "bind" and mount.source
        }
        if on_the_host(daemon.dockerd_pid):  # legacy plugins' sockets are in dockerd's mount namespace
            daemon.authz_plugins = _authz_plugins(conn, daemon, snapshot.engine.info.plugins)
        else:
            problems.append(CollectionProblem(fact="authorization plugins", reason="not in dockerd's mount namespace"))
    else:
        api_probes = probe_remote_endpoint(conn.endpoint) if conn.endpoint.startswith("tcp://") else None

    namespaces = PidNamespaces()
    for container in snapshot.containers:
        attach_runtime(conn, container, namespaces)

    return Facts(
        collected_at=datetime.now(UTC).isoformat(timespec="seconds"),
        engine=snapshot.engine,
        daemon=daemon,
        host=host,
        containers=snapshot.containers,
        images=snapshot.images,
        networks=snapshot.networks,
        swarm_nodes=snapshot.swarm_nodes,
        api_probes=api_probes,
        problems=problems,
        skipped_containers=snapshot.skipped_containers,
    )


def _authz_plugins(conn: EngineConnection, daemon: DaemonConfig, live: PluginsInfo | None) -> list[AuthzPluginProbe]:
    """Every authorization plugin configured or in the live chain, each probed (CIS-2.13's evidence)."""
    names = list(dict.fromkeys([*configured_plugins(daemon), *(live.authorization if live else [])]))
    if not names:
        return []
    try:
        managed: list[dict[str, Any]] | None = conn.api.plugins()
    except docker.errors.APIError:
        managed = None
    return probe_plugins(names, managed)


def save_facts(facts: Facts, path: str) -> None:
    """Write the snapshot with secrets masked (env values, labels, command lines), readable by its owner only:
    created 0600 under a temporary name and renamed, so no other user can open it, even briefly or when it existed."""
    text = json.dumps(redact_snapshot(json.loads(facts.to_json())), indent=1)
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".facts-", dir=directory)  # mkstemp creates with mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise


# A facts file is read whole and every JSON object in it becomes a model with all its defaults: ~8x the file's
# size for a real snapshot, up to ~4.5 KB per object for one crafted of tiny container objects. A real snapshot
# holds one object per ~250 bytes (~4 KB per image, ~10 KB per container with its processes): 32 MiB and 200,000
# objects are thousands of containers and images, and keep a crafted file under ~1 GiB.
MAX_FACTS_BYTES = 32 << 20
MAX_FACTS_OBJECTS = 200_000


class _Version(BaseModel):
    """Just the version, read before the snapshot itself: a future schema must not fail as a corrupt file."""

    schema_version: Any = None


def load_facts(path: str) -> Facts:
    try:
        with open_regular(path) as handle:
            data = handle.read(MAX_FACTS_BYTES + 1)
    except OSError as exc:
        raise CollectionError(f"cannot read facts file {path}: {exc.strerror}") from None
    if len(data) > MAX_FACTS_BYTES:
        raise CollectionError(f"facts file {path} is over the {MAX_FACTS_BYTES >> 20} MiB limit")
    if data.count(b"{") > MAX_FACTS_OBJECTS:
        raise CollectionError(f"facts file {path} holds more than {MAX_FACTS_OBJECTS} JSON objects")
    try:
        version = _Version.model_validate_json(data).schema_version
    except ValidationError as exc:
        raise CollectionError(f"{path} is not a Portcullis facts snapshot ({first_problem(exc)})") from None
    if version is None:
        raise CollectionError(f"{path} is not a Portcullis facts snapshot (no schema_version)")
    if version != FACTS_SCHEMA_VERSION:
        # Version 1 is the only schema there has been: nothing older to migrate, anything else is unknown.
        raise CollectionError(
            f"{path} has facts schema_version {version!r}; this Portcullis reads version {FACTS_SCHEMA_VERSION}"
        )
    try:
        return Facts.model_validate_json(data)
    except ValidationError as exc:
        raise CollectionError(f"{path} is not a Portcullis facts snapshot ({first_problem(exc)})") from None
