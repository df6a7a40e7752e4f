"""`portcullis prove`: demonstrate that a container's limits hold, in labelled throw-away containers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from portcullis.cli.common import (
    EXIT_FINDINGS,
    ExitCodeOption,
    FailOn,
    OutputFormat,
    ShowAllOption,
    TLSCACertOption,
    TLSCertOption,
    TLSKeyOption,
    TLSVerifyOption,
    die,
    emit,
    listed,
    progress,
    say,
    use_engine_tls,
)
from portcullis.pipelines.errors import ExperimentsInterrupted, PipelineError


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
    tlsverify: TLSVerifyOption = False,
    tlscacert: TLSCACertOption = None,
    tlscert: TLSCertOption = None,
    tlskey: TLSKeyOption = None,
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
    use_engine_tls(tlsverify, tlscacert, tlscert, tlskey)
    # Late: the flow loads the Docker SDK, which `portcullis --help` (every command's module) should not.
    from portcullis.proofs.prove import PolicyOptions, ProofImages, prove_report

    options = PolicyOptions(
        memory=memory,
        pids_limit=pids_limit,
        cpus=cpus,
        read_only=read_only,
        cap_drop=listed(cap_drop),
        no_new_privileges=no_new_privileges,
        seccomp_unconfined=seccomp_unconfined,
    )
    try:
        report = prove_report(
            container, options, ProofImages(busybox_image, python_image), host, log=say, progress=progress
        )
    except PipelineError as exc:
        die(str(exc))
    except ExperimentsInterrupted:
        say("portcullis: interrupted; every experiment container was removed")
        raise typer.Exit(130) from None
    raise typer.Exit(emit(report, output_format, output, fail_on, exit_code=exit_code, show_all=show_all))
