"""`portcullis prove`: demonstrate that a container's limits hold, in labelled throw-away containers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from portcullis import __version__
from portcullis.checks.registry import all_rules, select_rules
from portcullis.checks.runner import evaluate_on
from portcullis.cli.common import EXIT_FINDINGS, ExitCodeOption, FailOn, OutputFormat, ShowAllOption, die, emit, say
from portcullis.collect import CollectionError
from portcullis.model.findings import Report, Summary, Target, TargetKind, ToolInfo


def _parse_bytes(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip().lower().removesuffix("b")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def _host_uid(pid: int) -> int | None:
    from portcullis.collect.host import read_text

    for line in (read_text(f"/proc/{pid}/status") or "").splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return None


def prove(
    container: Annotated[str | None, typer.Argument(help="prove the limits this container is configured with")] = None,
    memory: Annotated[str | None, typer.Option("--memory", "-m", help="policy: memory limit, e.g. 64m")] = None,
    pids_limit: Annotated[int | None, typer.Option("--pids-limit", help="policy: pids limit")] = None,
    cpus: Annotated[float | None, typer.Option("--cpus", help="policy: CPU quota, e.g. 0.5")] = None,
    read_only: Annotated[bool, typer.Option("--read-only", help="policy: read-only root filesystem")] = False,
    cap_drop: Annotated[list[str] | None, typer.Option("--cap-drop", help="policy: dropped capabilities")] = None,
    no_new_privileges: Annotated[bool, typer.Option("--no-new-privileges", help="policy: no-new-privileges")] = False,
    seccomp_unconfined: Annotated[bool, typer.Option("--seccomp-unconfined", help="policy: no seccomp")] = False,
    busybox_image: Annotated[str, typer.Option(help="busybox image for the probes")] = "portcullis-test/busybox:1",
    python_image: Annotated[
        str, typer.Option(help="python3 image for syscall probes")
    ] = "portcullis-test/python:bookworm",
    host: Annotated[str | None, typer.Option("--host", "-H", help="engine address")] = None,
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.text,
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
    show_all: ShowAllOption = False,
    fail_on: Annotated[FailOn | None, typer.Option("--fail-on")] = None,
    exit_code: ExitCodeOption = EXIT_FINDINGS,
) -> None:
    """Prove that limits hold: OOM at the memory limit, fork storms stopped, CPU throttled, read-only root,
    dropped capabilities, seccomp, no-new-privileges, userns-remap.

    Examples: `portcullis prove web` (the settings of container web), `portcullis prove --memory 64m
    --pids-limit 50 --cpus 0.5 --read-only --cap-drop ALL --no-new-privileges` (an explicit policy).
    Every container it starts is labelled portcullis.managed=true and removed, also on Ctrl-C and SIGTERM.
    """
    from portcullis.collect.engine import connect
    from portcullis.collect.sandbox import sandbox
    from portcullis.proofs.prove import Policy, ProofImages, run_proofs

    try:
        conn = connect(host)
    except CollectionError as exc:
        die(str(exc))
    try:
        security_options = list(conn.api.info().get("SecurityOptions") or [])
        if container:
            try:
                inspect = conn.api.inspect_container(container)
            except Exception as exc:  # the SDK raises NotFound/APIError; either way one line
                die(f"cannot inspect container {container!r}: {getattr(exc, 'explanation', None) or exc}")
            policy = Policy.from_inspect(inspect, security_options)
            target = Target(kind=TargetKind.CONTAINER, name=policy.source.removeprefix("container "), id=inspect["Id"])
        else:
            try:
                memory_bytes = _parse_bytes(memory) if memory else None
            except ValueError:
                die(f"--memory {memory!r} is not a size (examples: 64m, 1g)")
            policy = Policy(
                source="explicit policy",
                memory=memory_bytes,
                pids_limit=pids_limit,
                cpus=cpus,
                read_only=read_only,
                cap_drop=[c.upper().removeprefix("CAP_") for c in cap_drop or []],
                seccomp_unconfined=seccomp_unconfined,
                no_new_privileges=no_new_privileges,
                userns_remap=any("name=userns" in o for o in security_options),
            )
            target = Target(kind=TargetKind.CONTAINER, name="explicit policy")
        say(f"proving the limits of {policy.source} in labelled throw-away containers…")
        with sandbox(conn, "prove") as box:
            measurements = run_proofs(
                box, policy, ProofImages(busybox_image, python_image), os.cpu_count() or 1, _host_uid
            )
    except KeyboardInterrupt:
        say("portcullis: interrupted; every experiment container was removed")
        raise typer.Exit(130) from None
    finally:
        conn.close()
    findings = []
    for item in select_rules(all_rules(), command="prove"):
        findings.extend(evaluate_on(item, measurements[item.id], target))
    report = Report(
        command="prove",
        tool=ToolInfo(version=__version__),
        subject=policy.source,
        findings=findings,
        summary=Summary.of(findings),
    )
    raise typer.Exit(emit(report, output_format, output, fail_on, exit_code=exit_code, show_all=show_all))
