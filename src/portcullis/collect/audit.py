"""Gather the whole audit snapshot: engine, daemon configuration, host, container processes."""

from __future__ import annotations

from datetime import UTC, datetime

import docker.errors

from portcullis.collect import CollectionError
from portcullis.collect.daemon import collect_daemon_config
from portcullis.collect.engine import EngineConnection, api_top_processes, collect_engine
from portcullis.collect.execs import attach_exec_sessions
from portcullis.collect.host import collect_host
from portcullis.collect.processes import PidNamespaces, attach_local_processes, processes_from_top
from portcullis.model.facts import Facts, HostFacts
from portcullis.model.findings import CollectionProblem


def collect_facts(conn: EngineConnection) -> Facts:
    snapshot = collect_engine(conn)
    problems: list[CollectionProblem] = list(snapshot.problems)
    daemon = collect_daemon_config(conn.endpoint, conn.local, problems)
    bridge = next((n for n in snapshot.networks if n.name == "bridge"), None)
    daemon.bridge_options = dict(bridge.options) if bridge else None
    if conn.local:
        host = collect_host(daemon, snapshot.engine.info.docker_root_dir, problems, endpoint=conn.endpoint)
    else:
        host = HostFacts()
        problems.append(CollectionProblem(fact="host files", reason="the engine is remote; host not audited"))

    namespaces = PidNamespaces()
    for container in snapshot.containers:
        if not container.state.running:
            continue
        attach_exec_sessions(conn.api, container)
        if conn.local:
            attach_local_processes(container, namespaces=namespaces)
        else:
            try:
                container.processes = processes_from_top(api_top_processes(conn, container.id))
                container.processes_source = "api-top"
            except docker.errors.APIError as exc:
                container.processes_error = str(exc)

    return Facts(
        collected_at=datetime.now(UTC).isoformat(timespec="seconds"),
        engine=snapshot.engine,
        daemon=daemon,
        host=host,
        containers=snapshot.containers,
        images=snapshot.images,
        networks=snapshot.networks,
        swarm_nodes=snapshot.swarm_nodes,
        problems=problems,
        skipped_containers=snapshot.skipped_containers,
    )


def load_facts(path: str) -> Facts:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise CollectionError(f"cannot read facts file {path}: {exc.strerror}") from None
    try:
        return Facts.from_json(text)
    except ValueError as exc:
        first = str(exc).splitlines()[0]
        raise CollectionError(f"{path} is not a Portcullis facts snapshot ({first})") from None
