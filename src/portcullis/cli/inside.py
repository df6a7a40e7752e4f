"""`portcullis inside`: what a process in this container (or in container NAME, read from the host) can reach."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from portcullis import __version__
from portcullis.checks.registry import all_rules, select_rules
from portcullis.checks.runner import evaluate_on
from portcullis.cli.common import FailOn, OutputFormat, die, emit
from portcullis.collect import CollectionError
from portcullis.model.findings import Report, Summary, Target, TargetKind, ToolInfo


def inside_report(signals: dict[str, Any], target: Target) -> Report:
    findings = []
    for item in select_rules(all_rules(), command="inside"):
        findings.extend(evaluate_on(item, signals, target))
    return Report(
        command="inside",
        tool=ToolInfo(version=__version__),
        subject=target.name,
        findings=findings,
        summary=Summary.of(findings),
    )


def inside(
    container: Annotated[
        str | None, typer.Option("--container", "-c", help="judge this container from the host (reads /proc/<pid>)")
    ] = None,
    host: Annotated[str | None, typer.Option("--host", "-H", help="engine address for --container")] = None,
    probes: Annotated[bool, typer.Option("--probes/--no-probes", help="run the harmless live syscall probes")] = True,
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.text,
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
    fail_on: Annotated[FailOn | None, typer.Option("--fail-on")] = None,
    signals_out: Annotated[Path | None, typer.Option("--signals-out", help="save the raw signals as JSON")] = None,
) -> None:
    """Self-assessment: capabilities, seccomp, namespaces, sockets, mounts, devices, escape hooks.

    Examples: inside a container `portcullis inside` (or `python3 portcullis-inside.pyz`);
    from the host `portcullis inside --container web`.
    """
    import json

    from portcullis.collect.engine import connect, resolve_container
    from portcullis.inside.signals import collect_from_host, collect_self

    try:
        if container:
            conn = connect(host)
            try:
                container_id, name, pid = resolve_container(conn, container)
            finally:
                conn.close()
            if not conn.local:
                die("--container reads the container's /proc: run it on the engine's host")
            signals = collect_from_host(pid)
            target = Target(kind=TargetKind.CONTAINER, name=name, id=container_id)
        else:
            signals = collect_self(probes=probes)
            target = Target(kind=TargetKind.CONTAINER, name="this container")
    except CollectionError as exc:
        die(str(exc))
    except OSError as exc:
        die(f"cannot read the process's /proc: {exc}")
    if signals_out is not None:
        signals_out.write_text(json.dumps(signals, indent=1), encoding="utf-8")
    raise typer.Exit(emit(inside_report(signals, target), output_format, output, fail_on))
