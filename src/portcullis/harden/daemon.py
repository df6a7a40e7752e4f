"""Harden the daemon: propose a daemon.json from the engine's facts, optionally verify it on a private second
dockerd, and on request write it (backup first). dockerd itself is never restarted.

Every refusal is a HardenError with one line for the user; the caller renders the result.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portcullis.harden import HardenError
from portcullis.harden.daemon_json import DaemonProposal
from portcullis.harden.trial_daemon import ControlOutcome
from portcullis.model.facts import Facts

# Outcomes on the trial daemon that do not count against the proposal.
_NOT_FAILING = ("pass", "not verifiable", "held back", "-")


@dataclass(frozen=True)
class DaemonRequest:
    """How far to go: propose (from the live engine or saved facts), verify on a trial dockerd, apply."""

    level: int = 1  # 2 adds user-namespace remapping
    verify: bool = False
    smoke_image: str | None = None  # with verify: a local image started under the proposal
    apply: bool = False  # verify, then write daemon.json
    daemon_json: Path | None = None  # write here instead of the file the running dockerd reads
    host: str | None = None
    facts_in: Path | None = None  # propose from saved facts; no verify or apply
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DaemonHardening:
    proposal: DaemonProposal
    outcomes: list[ControlOutcome]  # per control on the trial daemon; empty when not verified
    applied: dict[str, str] | None  # the written path and its backup ("" when there was no file)

    @property
    def failing(self) -> list[ControlOutcome]:
        return [o for o in self.outcomes if o.after not in _NOT_FAILING]


def harden_daemon(request: DaemonRequest, log: Callable[[str], None]) -> DaemonHardening:
    """Propose, and as the request asks verify and apply; `log` hears progress lines."""
    from portcullis.collect import CollectionError
    from portcullis.collect.audit import collect_facts, load_facts
    from portcullis.collect.engine import connect
    from portcullis.harden.daemon_json import propose_daemon_json

    if request.facts_in is not None and (request.verify or request.apply):
        raise HardenError("--facts-in proposes from a snapshot; --verify and --apply need the live engine")
    conn = None
    try:
        try:
            if request.facts_in is not None:
                facts = load_facts(str(request.facts_in))
            else:
                conn = connect(request.host)
                facts = collect_facts(conn)
            proposal = propose_daemon_json(facts, request.level)
        except CollectionError as exc:
            raise HardenError(str(exc)) from exc
        outcomes: list[ControlOutcome] = []
        if (request.verify or request.apply) and proposal.written:
            assert conn is not None
            outcomes = _verify(proposal, facts, conn.api, request, log)
        result = DaemonHardening(proposal, outcomes, None)
        if request.apply:
            result = DaemonHardening(proposal, outcomes, _apply(result, request, log))
        return result
    finally:
        if conn is not None:
            conn.close()


def _verify(
    proposal: DaemonProposal, facts: Facts, api: Any, request: DaemonRequest, log: Callable[[str], None]
) -> list[ControlOutcome]:
    from portcullis.harden.trial_daemon import verify_daemon_proposal
    from portcullis.pipelines.audit import audit_report

    log("starting a private dockerd with the proposal (own socket, roots and bridge; --iptables=false)…")
    remap_user_existed = _has_user("dockremap")
    try:
        outcomes = verify_daemon_proposal(
            proposal, audit_report(facts, [], [], None), api, request.smoke_image, request.labels
        )
    except HardenError as exc:
        raise HardenError(f"verification failed: {exc}") from exc
    if "userns-remap" in proposal.proposed and not remap_user_existed and _has_user("dockremap"):
        log("note: the trial dockerd created the host user dockremap and its /etc/subuid, /etc/subgid ranges")
    return outcomes


def _apply(result: DaemonHardening, request: DaemonRequest, log: Callable[[str], None]) -> dict[str, str] | None:
    """Write the verified proposal; refuse when any control did not pass on the trial daemon."""
    from portcullis.harden.daemon_json import render

    broken = result.failing
    if broken:
        raise HardenError(f"not applied: {', '.join(o.rule_id for o in broken)} did not pass on the trial daemon")
    if not result.proposal.written:
        log("nothing to apply: daemon.json already has every proposed setting")
        return None
    target = request.daemon_json or Path(result.proposal.path)
    return _write_daemon_json(target, render(result.proposal.proposed))


def _has_user(name: str) -> bool:
    try:
        with open("/etc/passwd", encoding="utf-8") as passwd:
            return any(line.split(":", 1)[0] == name for line in passwd)
    except OSError:
        return False


def _write_daemon_json(target: Path, text: str) -> dict[str, str]:
    """Back up the current file, then replace it atomically. dockerd is not touched."""
    backup = ""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            backup = f"{target}.portcullis-{time.strftime('%Y%m%d%H%M%S')}.bak"
            shutil.copy2(target, backup)
        handle, temporary = tempfile.mkstemp(prefix=".daemon.json.", dir=target.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except OSError as exc:
        raise HardenError(f"cannot write {target}: {exc.strerror}") from exc
    return {"path": str(target), "backup": backup}
