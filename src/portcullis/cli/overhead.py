"""`portcullis overhead`: container vs native CPU, memory, disk, TCP latency and throughput, measured on this engine;
with `--runtime`, native against runc, gVisor (runsc) and a VM side by side."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from portcullis.cli.common import (
    TLSCACertOption,
    TLSCertOption,
    TLSKeyOption,
    TLSVerifyOption,
    die,
    progress,
    say,
    use_engine_tls,
)
from portcullis.pipelines.errors import ExperimentsInterrupted, PipelineError


class OverheadFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


def _write(path: Path, text: str, what: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        die(f"cannot write {what} {path}: {exc.strerror}")
    say(f"{what} written to {path}")


def overhead(
    quick: Annotated[
        bool, typer.Option("--quick", help="smaller work, 5 repetitions, at most 30 s of measuring")
    ] = False,
    repetitions: Annotated[int | None, typer.Option("--repetitions", "-n", min=1, max=50)] = None,
    rtt_samples: Annotated[
        int | None, typer.Option("--rtt-samples", min=10, max=100_000, help="round trips per run and path")
    ] = None,
    time_limit: Annotated[
        float | None,
        typer.Option("--time-limit", min=1, help="seconds for the repetitions; none starts that would end past it"),
    ] = None,
    image: Annotated[str, typer.Option("--image", help="container image with python3 on its PATH")] = (
        "portcullis-test/python:bookworm"
    ),
    native_python: Annotated[
        str | None,
        typer.Option("--native-python", help="python3 for the native side (default /usr/bin/python3, else this one)"),
    ] = None,
    native_dir: Annotated[
        Path | None, typer.Option("--native-dir", help="where the native disk test writes (default: the temp dir)")
    ] = None,
    host: Annotated[str | None, typer.Option("--host", "-H", help="engine address (must be this host)")] = None,
    tlsverify: TLSVerifyOption = False,
    tlscacert: TLSCACertOption = None,
    tlscert: TLSCertOption = None,
    tlskey: TLSKeyOption = None,
    output_format: Annotated[OverheadFormat, typer.Option("--format", "-f")] = OverheadFormat.text,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the result here, not stdout")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="also draw an SVG bar chart into this file")] = None,
    runtime: Annotated[
        str | None,
        typer.Option(
            "--runtime",
            help="compare these runtimes with native instead, e.g. runc,runsc,vm,vm-tcg (vm-tcg: the VM under QEMU's "
            "software emulation, not KVM; one that cannot run here is reported with the reason)",
        ),
    ] = None,
) -> None:
    """Measure container vs native overhead: CPU, memory bandwidth, disk write (layer, volume), 1-byte TCP
    round trips and TCP stream throughput (host network, bridge IP, published port), repeated, with medians,
    spreads and ratios. With --runtime, the same workloads in each runtime named (runc, runsc, vm, vm-tcg) vs native.

    The same python workload runs natively and in two labelled throw-away containers, which are removed
    also on Ctrl-C and SIGTERM. Exit 0 when measured, 1 on a tool error.
    """
    use_engine_tls(tlsverify, tlscacert, tlscert, tlskey)
    # Late: the flow loads the Docker SDK, which `portcullis --help` (every command's module) should not.
    from portcullis.proofs import overhead_results, runtime_results
    from portcullis.proofs.overhead import Plan, overhead_report
    from portcullis.proofs.runtime_compare import parse_runtimes, runtimes_report

    if plot is not None and plot.suffix.lower() != ".svg":
        die(f"--plot {plot}: only SVG charts are drawn (name the file *.svg)")
    try:
        runtimes = parse_runtimes(runtime) if runtime is not None else None
    except ValueError as exc:
        die(f"--runtime: {exc}")
    plan = Plan.chosen(quick, repetitions, rtt_samples, time_limit)
    try:
        if runtimes is None:
            report: overhead_results.OverheadReport | runtime_results.RuntimesReport = overhead_report(
                plan, host, image, native_python, native_dir, log=progress
            )
        else:
            report = runtimes_report(plan, runtimes, host, image, native_python, native_dir, log=progress)
    except PipelineError as exc:
        die(str(exc))
    except ExperimentsInterrupted:
        say("portcullis: interrupted; every experiment container was removed")
        raise typer.Exit(130) from None
    if output_format is OverheadFormat.json:
        rendered = report.model_dump_json(indent=2) + "\n"
    elif isinstance(report, overhead_results.OverheadReport):
        markdown = output_format is OverheadFormat.markdown
        rendered = overhead_results.render_markdown(report) if markdown else overhead_results.render_text(report)
    else:
        markdown = output_format is OverheadFormat.markdown
        rendered = runtime_results.render_markdown(report) if markdown else runtime_results.render_text(report)
    if output is None:
        typer.echo(rendered, nl=False)
    else:
        _write(output, rendered, "result")
    if plot is not None:
        if isinstance(report, overhead_results.OverheadReport):
            _write(plot, overhead_results.render_plot(report), "chart")
        else:
            _write(plot, runtime_results.render_plot(report), "chart")
