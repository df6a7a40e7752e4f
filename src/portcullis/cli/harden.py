"""`portcullis harden`: proposed fixes, verified on a real engine before they are shown, applied only on --apply."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from portcullis.cli import harden_profiles
from portcullis.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    TLSCACertOption,
    TLSCertOption,
    TLSKeyOption,
    TLSVerifyOption,
    die,
    say,
    use_engine_tls,
)
from portcullis.cli.harden_options import HostOption, LabelOption, parse_labels, write_stdout
from portcullis.harden import HardenError

app = typer.Typer(
    help="Generate hardening fixes (daemon.json, run flags, compose overrides, profiles) and verify them.",
    no_args_is_help=True,
)


class Format(StrEnum):
    text = "text"
    json = "json"


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
    tlsverify: TLSVerifyOption = False,
    tlscacert: TLSCACertOption = None,
    tlscert: TLSCertOption = None,
    tlskey: TLSKeyOption = None,
    facts_in: Annotated[
        Path | None, typer.Option("--facts-in", help="propose from saved facts (no --verify or --apply)")
    ] = None,
    label: LabelOption = None,
) -> None:
    """Propose a daemon.json that fixes the section-2 findings, as a diff against the current one.

    Each change names the CIS controls it fixes and its impact. Examples: `portcullis harden daemon`,
    `portcullis harden daemon --level 2 --verify`, `portcullis harden daemon --apply`.
    """
    use_engine_tls(tlsverify, tlscacert, tlscert, tlskey)
    from portcullis.harden.daemon import DaemonRequest, harden_daemon

    request = DaemonRequest(
        level=level,
        verify=verify,
        smoke_image=smoke_image,
        apply=apply,
        daemon_json=daemon_json,
        host=host,
        facts_in=facts_in,
        labels=parse_labels(label),
    )
    try:
        result = harden_daemon(request, say)
    except HardenError as exc:
        die(str(exc))
    proposal, outcomes, applied = result.proposal, result.outcomes, result.applied
    if output_format is Format.json:
        document = proposal.to_json()
        document["comments"] = proposal.comments()
        document["verification"] = [o.to_json() for o in outcomes] if outcomes else None
        document["applied"] = applied
        write_stdout(json.dumps(document, indent=2) + "\n")
    else:
        write_stdout(_daemon_text(proposal, outcomes, applied))
    raise typer.Exit(EXIT_FINDINGS if result.failing else EXIT_OK)


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
    tlsverify: TLSVerifyOption = False,
    tlscacert: TLSCACertOption = None,
    tlscert: TLSCertOption = None,
    tlskey: TLSKeyOption = None,
    label: LabelOption = None,
) -> None:
    """Find `docker run` flags (or a compose override) that fix a container's section-5 findings, verified on copies.

    Examples: `portcullis harden container web --smoke "wget -q -O- http://127.0.0.1:8080/"`,
    `portcullis harden container --compose compose.yaml --service web --override-out compose.override.yaml`.
    """
    use_engine_tls(tlsverify, tlscacert, tlscert, tlskey)
    from portcullis.harden.container import ContainerRequest, harden_container

    request = ContainerRequest(
        name=name,
        compose=compose,
        service=service,
        override_out=override_out,
        smoke=smoke,
        observe=observe,
        settle=settle,
        timeout=timeout,
        max_trials=max_trials,
        apply=apply,
        host=host,
        labels=parse_labels(label),
    )
    try:
        document = harden_container(request, say)
    except HardenError as exc:
        die(str(exc))
    if output_format is Format.json:
        write_stdout(json.dumps(document, indent=2) + "\n")
    else:
        write_stdout(_container_text(document))
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


# The profile generators (seccomp, AppArmor) live in their own module and join this group here.
app.command()(harden_profiles.seccomp)
app.command()(harden_profiles.apparmor)
