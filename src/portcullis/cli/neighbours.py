"""`portcullis neighbours`: how much a victim loses beside a noisy neighbour of the same runtime, with and without
Docker's limits, measured on this engine (issue 16 §2)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from portcullis.cli.common import (
    TLSCACertOption,
    TLSCertOption,
    TLSKeyOption,
    TLSVerifyOption,
    die,
    end_progress,
    progress,
    say,
    use_engine_tls,
)
from portcullis.model.neighbours import Aggressor, LimitsMode, Victim
from portcullis.pipelines.errors import ExperimentsInterrupted, PipelineError


class NeighboursFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"
    html = "html"
    svg = "svg"


ALL_AGGRESSORS = ",".join(Aggressor)
ALL_VICTIMS = ",".join(Victim)
# An --output whose name ends so picks its format when --format is not given.
SUFFIX_FORMATS = {
    ".json": NeighboursFormat.json,
    ".md": NeighboursFormat.markdown,
    ".html": NeighboursFormat.html,
    ".svg": NeighboursFormat.svg,
}


E = TypeVar("E", bound=StrEnum)


def _choices(option: str, text: str, kind: type[E]) -> tuple[E, ...]:
    """A comma-separated list of names of `kind`, in the order given, without repeats; a bad name is one line."""
    chosen: list[E] = []
    for word in (part.strip() for part in text.split(",")):
        try:
            item = kind(word)
        except ValueError:
            die(f"{option} {word!r}: choose from {', '.join(member.value for member in kind)}")
        if item not in chosen:
            chosen.append(item)
    return tuple(chosen)


def _runtimes(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",")))
    if not all(names):
        die(f"--runtime {text!r}: an empty runtime name")
    return names


def _cpuset(text: str) -> str | None:
    if text == "none":
        return None
    if not text or any(not part.replace("-", "", 1).isdigit() for part in text.split(",")):
        die(f"--cpuset-cpus {text!r}: give CPUs like 1 or 0-1 or 0,2, or 'none' not to pin")
    return text


def neighbours(
    runtime: Annotated[
        str,
        typer.Option(
            "--runtime",
            help="runtimes to compare, comma-separated: runc, runsc (gVisor, on a private dockerd if need be), "
            "vm-tcg (QEMU guests under TCG emulation), vm (QEMU guests under KVM)",
        ),
    ] = "runc",
    aggressor: Annotated[
        str, typer.Option("--aggressor", help="neighbours to run: cpu, membw, fork, disk, net (comma-separated)")
    ] = ALL_AGGRESSORS,
    victim: Annotated[
        str,
        typer.Option(
            "--victim", help="victim metrics: cpu, membw, disk, tcp-latency, tcp-throughput (comma-separated)"
        ),
    ] = ALL_VICTIMS,
    limits: Annotated[
        str,
        typer.Option("--limits", help="none (runtime defaults), docker (cpus, memory, pids, disk bps, tc), or both"),
    ] = "none,docker",
    repeat: Annotated[int, typer.Option("--repeat", "-n", min=1, max=50, help="repetitions of every cell")] = 3,
    seconds: Annotated[
        float, typer.Option("--seconds", min=0.2, max=120, help="wall-clock seconds of each victim run")
    ] = 3.0,
    cpuset_cpus: Annotated[
        str | None,
        typer.Option(
            "--cpuset-cpus", help="CPUs victim and aggressors share (default: the last CPU; 'none': not pinned)"
        ),
    ] = None,
    image: Annotated[str, typer.Option("--image", help="victim image with python3 on its PATH")] = (
        "portcullis-test/python:bookworm"
    ),
    host: Annotated[str | None, typer.Option("--host", "-H", help="engine address (must be this host)")] = None,
    tlsverify: TLSVerifyOption = False,
    tlscacert: TLSCACertOption = None,
    tlscert: TLSCertOption = None,
    tlskey: TLSKeyOption = None,
    output_format: Annotated[
        NeighboursFormat | None, typer.Option("--format", "-f", help="default: from --output's suffix, else text")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write here, not stdout (heatmap.svg: the heat map)")
    ] = None,
) -> None:
    """Measure noisy neighbours: a victim workload alone and beside an aggressor (CPU hog, memory-bandwidth hog,
    fork storm, disk writer, network flood) in a neighbouring instance of the same runtime, with and without
    Docker's limits; each cell is the victim's loss in percent. The fork storm is capped by a pids limit even
    without limits; every instance is labelled and removed, also on Ctrl-C. Exit 0 when measured, 1 on a tool error.
    """
    use_engine_tls(tlsverify, tlscacert, tlscert, tlskey)
    # Late: the flow loads the Docker SDK, which `portcullis --help` should not.
    from portcullis.proofs.neighbours import Plan, default_cpuset, neighbours_report
    from portcullis.proofs.neighbours_results import render_markdown, render_text
    from portcullis.report.heatmap import render_heatmap
    from portcullis.report.neighbours_html import render_neighbours_html

    chosen_format = output_format or SUFFIX_FORMATS.get(output.suffix.lower() if output else "", NeighboursFormat.text)
    plan = Plan(
        runtimes=_runtimes(runtime),
        aggressors=_choices("--aggressor", aggressor, Aggressor),
        victims=_choices("--victim", victim, Victim),
        limits=_choices("--limits", limits, LimitsMode),
        repeat=repeat,
        seconds=seconds,
        cpuset=_cpuset(cpuset_cpus) if cpuset_cpus is not None else default_cpuset(),
        victim_image=image,
    )
    if output is not None and output.parent != Path() and not output.parent.is_dir():
        die(f"--output {output}: the directory {output.parent} does not exist")
    try:
        report = neighbours_report(plan, host, log=progress)
    except PipelineError as exc:
        end_progress()
        die(str(exc))
    except ExperimentsInterrupted:
        end_progress()
        say("portcullis: interrupted; every neighbour instance was removed")
        raise typer.Exit(130) from None
    end_progress()
    renderers = {
        NeighboursFormat.text: render_text,
        NeighboursFormat.json: lambda r: r.model_dump_json(indent=2) + "\n",
        NeighboursFormat.markdown: render_markdown,
        NeighboursFormat.html: render_neighbours_html,
        NeighboursFormat.svg: render_heatmap,
    }
    rendered = renderers[chosen_format](report)
    if output is None:
        typer.echo(rendered, nl=False)
        return
    try:
        output.write_text(rendered, encoding="utf-8")
    except OSError as exc:
        die(f"cannot write {output}: {exc.strerror}")
    say(f"{chosen_format.value} written to {output}")
