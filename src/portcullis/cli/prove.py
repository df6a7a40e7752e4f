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
    device_write_bps: Annotated[
        str | None, typer.Option("--device-write-bps", help="policy: write rate cap on the data root's disk, e.g. 4mb")
    ] = None,
    device_read_bps: Annotated[
        str | None, typer.Option("--device-read-bps", help="policy: read rate cap on the data root's disk, e.g. 4mb")
    ] = None,
    storage_size: Annotated[str | None, typer.Option("--storage-size", help="policy: --storage-opt size=")] = None,
    publish_ip: Annotated[
        str | None, typer.Option("--publish-ip", help="policy: the host address ports are published on")
    ] = None,
    egress_rate: Annotated[
        str | None,
        typer.Option("--egress-rate", help="opt-in: shape a probe's egress with tc, e.g. 8mbit"),
    ] = None,
    network: Annotated[
        bool, typer.Option("--network", help="opt-in: prove network isolation between containers and published ports")
    ] = False,
    daemon_death: Annotated[
        bool, typer.Option("--daemon-death", help="opt-in: kill and restart private dockerds to prove live-restore")
    ] = False,
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
    dropped capabilities, seccomp, no-new-privileges, userns-remap, disk rate caps and storage quota; opt-in:
    egress shaping, network isolation and published ports, and what dockerd's death does to containers.

    Examples: `portcullis prove web` (the settings of container web), `portcullis prove --memory 64m
    --pids-limit 50 --cpus 0.5 --read-only --cap-drop ALL --no-new-privileges` (an explicit policy),
    `portcullis prove web --network --egress-rate 8mbit --daemon-death` (the opt-in proofs too).
    Every container and network it starts is labelled portcullis.managed=true and removed, also on Ctrl-C and
    SIGTERM; --daemon-death uses private dockerds it starts and stops, never the engine being proven.
    """
    use_engine_tls(tlsverify, tlscacert, tlscert, tlskey)
    # Late: the flow loads the Docker SDK, which `portcullis --help` (every command's module) should not.
    from portcullis.proofs.prove import OptInProofs, PolicyOptions, ProofImages, prove_report

    death = None
    if daemon_death:
        from portcullis.harden.daemon_death import measure_daemon_death

        death = measure_daemon_death

    options = PolicyOptions(
        memory=memory,
        pids_limit=pids_limit,
        cpus=cpus,
        read_only=read_only,
        cap_drop=listed(cap_drop),
        no_new_privileges=no_new_privileges,
        seccomp_unconfined=seccomp_unconfined,
        device_write_bps=device_write_bps,
        device_read_bps=device_read_bps,
        storage_size=storage_size,
        publish_ip=publish_ip,
    )
    opt_in = OptInProofs(egress_rate=egress_rate, network=network, daemon_death=death)
    images = ProofImages(busybox_image, python_image)
    try:
        report = prove_report(container, options, images, host, log=say, progress=progress, opt_in=opt_in)
    except PipelineError as exc:
        die(str(exc))
    except ExperimentsInterrupted:
        say("portcullis: interrupted; every experiment container was removed")
        raise typer.Exit(130) from None
    raise typer.Exit(emit(report, output_format, output, fail_on, exit_code=exit_code, show_all=show_all))
