"""`docker exec` sessions of running containers, from the engine's own records (one exec inspect each).

Docker remembers an exec (its user and privileged flag) from `exec create` until the container
stops, so this sees every exec of the current run, finished or not, and nothing older.
"""

from __future__ import annotations

from typing import Any

import docker.errors
import requests

from portcullis.model.facts import ContainerFacts, ExecSession


def exec_session(raw: dict[str, Any]) -> ExecSession:
    """Convert the API's exec inspect answer."""
    config = raw.get("ProcessConfig") or {}
    entrypoint = config.get("entrypoint") or ""
    arguments = [str(a) for a in config.get("arguments") or []]
    return ExecSession(
        id=str(raw.get("ID", "")),
        running=bool(raw.get("Running")),
        privileged=bool(config.get("privileged")),
        user=str(config.get("user") or ""),
        command=([str(entrypoint)] if entrypoint else []) + arguments,
    )


def attach_exec_sessions(api: Any, container: ContainerFacts) -> None:
    """Fill `exec_sessions` of a running container; on an API failure record the reason instead."""
    if not container.state.running:
        return
    sessions: list[ExecSession] = []
    for exec_id in container.exec_ids or []:
        try:
            sessions.append(exec_session(api.exec_inspect(exec_id)))
        except docker.errors.NotFound:
            continue  # the container stopped or the record was dropped since the inspect
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            container.exec_sessions_error = f"exec inspect {exec_id[:12]} failed: {exc}"
            return
    container.exec_sessions = sessions
