"""`portcullis harden`: proposed fixes, verified on a real engine before they are shown, applied only on --apply."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from portcullis.cli.common import EXIT_FINDINGS, EXIT_OK, die, say
from portcullis.harden import HardenError

app = typer.Typer(
    help="Generate hardening fixes (daemon.json, run flags, compose overrides, profiles) and verify them.",
    no_args_is_help=True,
)


class Format(StrEnum):
    text = "text"
    json = "json"


HostOption = Annotated[
    str | None,
    typer.Option("--host", "-H", help="engine address (default: DOCKER_HOST, the active context, the local socket)"),
]
LabelOption = Annotated[
    list[str] | None,
    typer.Option("--label", help="extra KEY=VALUE label on every container the verification starts"),
]


def _labels(values: list[str] | None) -> dict[str, str]:
    labels = {}
    for value in values or []:
        key, sep, text = value.partition("=")
        if not sep or not key:
            die(f"--label {value!r} is not KEY=VALUE")
        labels[key] = text
    return labels


def _say(message: str) -> None:
    say(message)


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


# --- daemon ----------------------------------------------------------------------------------------------------


@app.command()
def daemon(
    level: Annotated[int, typer.Option("--level", min=1, max=2, help="2 adds user-namespace remapping")] = 1,
    verify: Annotated[
        bool, typer.Option("--verify", help="run the proposal on a private second dockerd and re-audit it")
    ] = False,
    smoke_image: Annotated[
        str | None,
        typer.Option("--smoke-image", help="with --verify: start a container of this local image under the proposal"),
    ] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="verify, then write daemon.json (backup first); dockerd is not restarted")
    ] = False,
    daemon_json: Annotated[
        Path | None, typer.Option("--daemon-json", help="write here instead of the file the running dockerd reads")
    ] = None,
    output_format: Annotated[Format, typer.Option("--format", "-f", help="output format")] = Format.text,
    host: HostOption = None,
    facts_in: Annotated[
        Path | None, typer.Option("--facts-in", help="propose from saved facts (no --verify or --apply)")
    ] = None,
    label: LabelOption = None,
) -> None:
    """Propose a daemon.json that fixes the section-2 findings, as a diff against the current one.

    Each change names the CIS controls it fixes and its impact. Examples: `portcullis harden daemon`,
    `portcullis harden daemon --level 2 --verify`, `portcullis harden daemon --apply`.
    """
    from portcullis.collect import CollectionError
    from portcullis.collect.audit import collect_facts, load_facts
    from portcullis.collect.engine import connect
    from portcullis.harden.daemon_json import propose_daemon_json, render
    from portcullis.harden.trial_daemon import ControlOutcome, verify_daemon_proposal
    from portcullis.pipelines.audit import audit_report

    labels = _labels(label)
    if facts_in is not None and (verify or apply):
        die("--facts-in proposes from a snapshot; --verify and --apply need the live engine")
    conn = None
    try:
        if facts_in is not None:
            facts = load_facts(str(facts_in))
        else:
            conn = connect(host)
            facts = collect_facts(conn)
        proposal = propose_daemon_json(facts, level)
    except (CollectionError, HardenError) as exc:
        if conn is not None:
            conn.close()
        die(str(exc))

    outcomes: list[ControlOutcome] = []
    applied: dict[str, str] | None = None
    try:
        if (verify or apply) and proposal.written:
            assert conn is not None
            _say("starting a private dockerd with the proposal (own socket, roots and bridge; --iptables=false)…")
            remap_user_existed = _has_user("dockremap")
            try:
                outcomes = verify_daemon_proposal(
                    proposal, audit_report(facts, [], [], None), conn.api, smoke_image, labels
                )
            except HardenError as exc:
                die(f"verification failed: {exc}")
            if "userns-remap" in proposal.proposed and not remap_user_existed and _has_user("dockremap"):
                _say("note: the trial dockerd created the host user dockremap and its /etc/subuid, /etc/subgid ranges")
        if apply:
            broken = [o for o in outcomes if o.after not in ("pass", "not verifiable", "held back", "-")]
            if broken:
                die(f"not applied: {', '.join(o.rule_id for o in broken)} did not pass on the trial daemon")
            if not proposal.written:
                _say("nothing to apply: daemon.json already has every proposed setting")
            else:
                target = daemon_json or Path(proposal.path)
                applied = _apply_daemon_json(target, render(proposal.proposed))
    finally:
        if conn is not None:
            conn.close()

    if output_format is Format.json:
        document = proposal.to_json()
        document["comments"] = proposal.comments()
        document["verification"] = [o.to_json() for o in outcomes] if outcomes else None
        document["applied"] = applied
        _write(json.dumps(document, indent=2) + "\n")
    else:
        _write(_daemon_text(proposal, outcomes, applied))
    failing = [o for o in outcomes if o.after not in ("pass", "not verifiable", "held back", "-")]
    raise typer.Exit(EXIT_FINDINGS if failing else EXIT_OK)


def _has_user(name: str) -> bool:
    try:
        with open("/etc/passwd", encoding="utf-8") as passwd:
            return any(line.split(":", 1)[0] == name for line in passwd)
    except OSError:
        return False


def _apply_daemon_json(target: Path, text: str) -> dict[str, str]:
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
        die(f"cannot write {target}: {exc.strerror}")
    return {"path": str(target), "backup": backup}


def _daemon_text(proposal: Any, outcomes: list[Any], applied: dict[str, str] | None) -> str:
    lines = []
    if not proposal.changes:
        lines.append(f"{proposal.path}: nothing to change for section 2")
    else:
        lines.append(f"{'key':<22} {'action':<8} {'controls':<20} impact")
        for change in proposal.changes:
            lines.append(f"{change.key:<22} {change.action.value:<8} {', '.join(change.controls):<20} {change.impact}")
            if change.note and change.action.value in ("held", "remove"):
                lines.append(f"{'':<22} {'':<8} {'':<20} ({change.note})")
        lines.append("")
        diff = proposal.diff()
        lines.append(diff.rstrip("\n") if diff else f"(no change to {proposal.path})")
        lines.extend(proposal.comments())
    if outcomes:
        lines += ["", "verified on a private dockerd:", f"{'control':<10} {'before':<8} {'after':<16} note"]
        lines += [f"{o.rule_id:<10} {o.before:<8} {o.after:<16} {o.note}" for o in outcomes]
    if applied:
        backup = f" (previous version saved as {applied['backup']})" if applied["backup"] else ""
        lines += [
            "",
            f"wrote {applied['path']}{backup}.",
            "dockerd was not restarted: run `systemctl restart docker` when convenient (with live-restore already "
            "on, `systemctl reload docker` / SIGHUP applies live-restore, log-level and default-ulimits without "
            "stopping containers; icc, userland-proxy and userns-remap need a restart).",
        ]
    return "\n".join(lines) + "\n"


# --- container -------------------------------------------------------------------------------------------------


@app.command()
def container(
    name: Annotated[str | None, typer.Argument(help="the container to harden (or use --compose/--service)")] = None,
    compose: Annotated[Path | None, typer.Option("--compose", help="compose file the service comes from")] = None,
    service: Annotated[str | None, typer.Option("--service", help="service in --compose to harden")] = None,
    override_out: Annotated[
        Path | None,
        typer.Option("--override-out", help="with --compose: write the override here (merged, comments kept)"),
    ] = None,
    smoke: Annotated[
        str | None, typer.Option("--smoke", help="command run inside each copy (exec) that must exit 0")
    ] = None,
    observe: Annotated[float, typer.Option("--observe", min=1, help="seconds the baseline copy runs")] = 8.0,
    settle: Annotated[float, typer.Option("--settle", min=0.5, help="seconds a service copy must stay up")] = 3.0,
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="seconds one trial may take at most")] = 60.0,
    max_trials: Annotated[int, typer.Option("--max-trials", min=3, max=64, help="bound on trial copies")] = 16,
    apply: Annotated[
        bool, typer.Option("--apply", help="recreate the container under the verified proposal (same name)")
    ] = False,
    output_format: Annotated[Format, typer.Option("--format", "-f", help="output format")] = Format.text,
    host: HostOption = None,
    label: LabelOption = None,
) -> None:
    """Find `docker run` flags (or a compose override) that fix a container's section-5 findings, verified on copies.

    Examples: `portcullis harden container web --smoke "wget -q -O- http://127.0.0.1:8080/"`,
    `portcullis harden container --compose compose.yaml --service web --override-out compose.override.yaml`.
    """
    import docker.errors

    from portcullis.collect import CollectionError
    from portcullis.collect.engine import connect
    from portcullis.collect.sandbox import SandboxError, sandbox
    from portcullis.harden.compose_override import load_service, merge_override, override_fields, service_container
    from portcullis.harden.container_trial import Copies, recreate_with, search_proposal, verify_proposal

    labels = _labels(label)
    if (compose is None) != (service is None):
        die("--compose and --service go together")
    if compose is not None and name is not None:
        die("give a container NAME or --compose/--service, not both")
    if compose is None and name is None:
        die("name a container, or give --compose FILE --service NAME")
    if override_out is not None and compose is None:
        die("--override-out needs --compose")
    if apply and compose is not None:
        die("--apply recreates plain containers; for compose, write --override-out and run `docker compose up -d`")
    base_service: dict[str, Any] = {}
    if compose is not None and service is not None:
        try:
            base_service = load_service(compose, service)
        except HardenError as exc:
            die(str(exc))

    try:
        conn = connect(host, timeout=max(60, int(timeout) + 30))
    except CollectionError as exc:
        die(str(exc))
    document: dict[str, Any] = {}
    try:
        try:
            if compose is not None and service is not None:
                name = service_container(conn.api.containers(all=True), compose, service)
            assert name is not None
            original = conn.api.inspect_container(name)
        except docker.errors.NotFound:
            die(f"no container named {name!r}")
        except HardenError as exc:
            die(str(exc))
        state = original["State"]
        if not state.get("Running") and int(state.get("ExitCode") or 0) != 0:
            die(f"{name} exited with {state.get('ExitCode')}; harden a container whose workload works")
        if original["HostConfig"].get("Privileged"):
            _say("note: the container is privileged; copies run unprivileged with Docker's defaults first")
        with sandbox(conn, "harden") as box:
            copies = Copies(conn, box, original, smoke, settle, timeout, labels)
            watched = f"for {observe:g} s" if copies.mode == "service" else "until it exits"
            _say(f"observing a copy of {copies.name} {watched}…")
            search = search_proposal(copies, observe, max_trials)
            verification = None
            if search.verified:
                _say("verifying the proposal on a fresh copy and re-auditing it…")
                verification = verify_proposal(copies, conn, search.proposal)
            document = {
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
            if compose is not None and service is not None and document["verified"]:
                existing = override_out.read_text(encoding="utf-8") if override_out and override_out.exists() else None
                text = merge_override(existing, service, override_fields(search.proposal, base_service))
                document["compose_override"] = text
                if override_out is not None:
                    override_out.write_text(text, encoding="utf-8")
                    _say(f"override written to {override_out}")
            if apply and document["verified"]:
                document["applied"] = recreate_with(copies, search.proposal, _say)
    except (HardenError, SandboxError) as exc:
        die(str(exc))
    except OSError as exc:
        die(f"{exc.filename or 'file'}: {exc.strerror}")
    finally:
        conn.close()

    if output_format is Format.json:
        _write(json.dumps(document, indent=2) + "\n")
    else:
        _write(_container_text(document))
    raise typer.Exit(EXIT_OK if document["verified"] else EXIT_FINDINGS)


def _container_text(document: dict[str, Any]) -> str:
    proposal = document["proposal"]
    lines = [f"{document['container']} ({document['mode']}):"]
    for trial in document["trials"]:
        lines.append(f"  trial {'ok  ' if trial['ok'] else 'FAIL'} {trial['trial']}: {trial['reason']}")
    if document["verified"]:
        lines += ["", "verified docker run flags:", "  " + " \\\n  ".join(proposal["flags"])]
    else:
        lines += ["", "NOT verified: the workload does not work under the tightest proposal.", "what it needed:"]
        lines += [f"  {key}: {value}" for key, value in (document.get("needed") or {}).items()]
    lines += [f"  note: {note}" for note in proposal["notes"]]
    verification = document.get("verification")
    if verification:
        lines += [
            "",
            f"section 5 on the original → on the verified copy: {verification['section5_failed_before']} failed → "
            f"{verification['section5_failed_after']} failed",
        ]
        for r in verification["rules"]:
            if r["before"] != r["after"] or r["after"] == "fail":
                why = r["after_message"] if r["after"] == "fail" else ""
                lines.append(f"  {r['rule_id']:<9} {r['before']:<15} → {r['after']:<8} {why}".rstrip())
    if document.get("compose_override"):
        lines += ["", "compose override:", document["compose_override"].rstrip("\n")]
    if document.get("applied"):
        lines += ["", f"recreated {document['container']} under the proposal (new id {document['applied'][:12]})"]
    return "\n".join(lines) + "\n"


# The profile generators (seccomp, AppArmor) add their commands to this group from their own module.
try:
    from portcullis.cli import harden_profiles  # noqa: F401
except ModuleNotFoundError as missing:  # only a checkout without that module; its own import errors still show
    if missing.name != "portcullis.cli.harden_profiles":
        raise
