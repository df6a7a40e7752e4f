"""Harden one container (or the container of a compose service): search `docker run` flags on labelled copies,
verify the tightest proposal on a fresh copy, and on request write a compose override or recreate the container.

Every refusal is a HardenError with one line for the user; the caller renders the resulting document.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portcullis.collect.engine import EngineConnection
from portcullis.harden import HardenError


@dataclass(frozen=True)
class ContainerRequest:
    """What to harden and how hard to try: a container `name`, or `compose` with `service`."""

    name: str | None = None
    compose: Path | None = None
    service: str | None = None
    override_out: Path | None = None  # with compose: where the merged override is written
    smoke: str | None = None  # command run inside each copy that must exit 0
    observe: float = 8.0  # seconds the baseline copy runs
    settle: float = 3.0  # seconds a service copy must stay up
    timeout: float = 60.0  # seconds one trial may take at most
    max_trials: int = 16
    apply: bool = False  # recreate the container under the verified proposal
    host: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


def _check_request(request: ContainerRequest) -> None:
    if (request.compose is None) != (request.service is None):
        raise HardenError("--compose and --service go together")
    if request.compose is not None and request.name is not None:
        raise HardenError("give a container NAME or --compose/--service, not both")
    if request.compose is None and request.name is None:
        raise HardenError("name a container, or give --compose FILE --service NAME")
    if request.override_out is not None and request.compose is None:
        raise HardenError("--override-out needs --compose")
    if request.apply and request.compose is not None:
        raise HardenError(
            "--apply recreates plain containers; for compose, write --override-out and run `docker compose up -d`"
        )


def harden_container(request: ContainerRequest, log: Callable[[str], None]) -> dict[str, Any]:
    """The hardening document: the container, its trials, the proposal and whether a fresh copy verified it.

    `log` hears progress lines. Raises HardenError when the request, the engine or the workload rules it out.
    """
    from portcullis.collect import CollectionError
    from portcullis.collect.engine import connect
    from portcullis.collect.sandbox import SandboxError
    from portcullis.harden.compose_override import load_service

    _check_request(request)
    base_service = load_service(request.compose, request.service) if request.compose and request.service else {}
    try:
        conn = connect(request.host, timeout=max(60, int(request.timeout) + 30))
    except CollectionError as exc:
        raise HardenError(str(exc)) from exc
    try:
        return _harden(conn, request, base_service, log)
    except SandboxError as exc:
        raise HardenError(str(exc)) from exc
    except OSError as exc:
        raise HardenError(f"{exc.filename or 'file'}: {exc.strerror}") from exc
    finally:
        conn.close()


def _original(conn: EngineConnection, request: ContainerRequest) -> dict[str, Any]:
    """The inspected container to harden; one that exited with an error cannot show what its workload needs."""
    import docker.errors

    from portcullis.harden.compose_override import service_container

    name = request.name
    try:
        if request.compose is not None and request.service is not None:
            name = service_container(conn.api.containers(all=True), request.compose, request.service)
        assert name is not None
        original: dict[str, Any] = conn.api.inspect_container(name)
    except docker.errors.NotFound:
        raise HardenError(f"no container named {name!r}") from None
    state = original["State"]
    if not state.get("Running") and int(state.get("ExitCode") or 0) != 0:
        raise HardenError(f"{name} exited with {state.get('ExitCode')}; harden a container whose workload works")
    return original


def _harden(
    conn: EngineConnection, request: ContainerRequest, base_service: dict[str, Any], log: Callable[[str], None]
) -> dict[str, Any]:
    from portcullis.collect.sandbox import sandbox
    from portcullis.harden.compose_override import merge_override, override_fields
    from portcullis.harden.container_trial import Copies, recreate_with, search_proposal, verify_proposal

    original = _original(conn, request)
    if original["HostConfig"].get("Privileged"):
        log("note: the container is privileged; copies run unprivileged with Docker's defaults first")
    with sandbox(conn, "harden") as box:
        copies = Copies(conn, box, original, request.smoke, request.settle, request.timeout, request.labels)
        watched = f"for {request.observe:g} s" if copies.mode == "service" else "until it exits"
        log(f"observing a copy of {copies.name} {watched}…")
        search = search_proposal(copies, request.observe, request.max_trials)
        verification = None
        if search.verified:
            log("verifying the proposal on a fresh copy and re-auditing it…")
            verification = verify_proposal(copies, conn, search.proposal)
        document: dict[str, Any] = {
            "container": copies.name,
            "mode": search.mode,
            "verified": bool(verification and verification.ok),
            "proposal": search.proposal.to_json(),
            "trials": [t.to_json() for t in search.trials]
            + (
                []
                if verification is None
                else [{"trial": "verification", "ok": verification.ok, "reason": verification.reason}]
            ),
            "verification": verification.to_json() if verification else None,
            "needed": search.needed or None,
            "paths_written": search.baseline_changes,
        }
        if request.service is not None and document["verified"]:
            out = request.override_out
            existing = out.read_text(encoding="utf-8") if out and out.exists() else None
            text = merge_override(existing, request.service, override_fields(search.proposal, base_service))
            document["compose_override"] = text
            if out is not None:
                out.write_text(text, encoding="utf-8")
                log(f"override written to {out}")
        if request.apply and document["verified"]:
            document["applied"] = recreate_with(copies, search.proposal, log)
    return document
