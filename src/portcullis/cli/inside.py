"""`portcullis inside`: what a process in this container (or in container NAME, read from the host) can reach."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from portcullis.cli.common import (
    EXIT_FINDINGS,
    ExitCodeOption,
    FailOn,
    OutputFormat,
    SeverityOption,
    ShowAllOption,
    TLSCACertOption,
    TLSCertOption,
    TLSKeyOption,
    TLSVerifyOption,
    die,
    emit,
    parse_severities,
    use_engine_tls,
)
from portcullis.pipelines.errors import PipelineError
from portcullis.pipelines.inside import assess_inside


def inside(
    container: Annotated[
        str | None, typer.Option("--container", "-c", help="judge this container from the host (reads /proc/<pid>)")
    ] = None,
    host: Annotated[str | None, typer.Option("--host", "-H", help="engine address for --container")] = None,
    tlsverify: TLSVerifyOption = False,
    tlscacert: TLSCACertOption = None,
    tlscert: TLSCertOption = None,
    tlskey: TLSKeyOption = None,
    probes: Annotated[bool, typer.Option("--probes/--no-probes", help="run the harmless live syscall probes")] = True,
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.text,
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
    show_all: ShowAllOption = False,
    fail_on: Annotated[FailOn | None, typer.Option("--fail-on")] = None,
    severity: SeverityOption = None,
    exit_code: ExitCodeOption = EXIT_FINDINGS,
    signals_out: Annotated[Path | None, typer.Option("--signals-out", help="save the raw signals as JSON")] = None,
) -> None:
    """Self-assessment: capabilities, seccomp, namespaces, sockets, mounts, devices, escape hooks.

    Examples: inside a container `portcullis inside` (or `python3 portcullis-inside.pyz`);
    from the host `portcullis inside --container web`.
    """
    use_engine_tls(tlsverify, tlscacert, tlscert, tlskey)
    import json

    severities = parse_severities(severity)
    try:
        assessment = assess_inside(container, host, probes)
    except PipelineError as exc:
        die(str(exc))
    if signals_out is not None:
        signals_out.write_text(json.dumps(assessment.signals, indent=1), encoding="utf-8")
    code = emit(
        assessment.report,
        output_format,
        output,
        fail_on,
        exit_code=exit_code,
        show_all=show_all,
        severities=severities,
    )
    if output_format is OutputFormat.text and output is None:
        # the bounding set is evidence, which the text report does not list: print it after the findings
        from portcullis.inside.analyse import capability_reach, reach_lines

        typer.echo("\n".join(reach_lines(capability_reach(assessment.signals))))
    raise typer.Exit(code)
