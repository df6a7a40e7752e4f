"""`portcullis paths`: the ways a network user or a process in a container takes over the host, ranked."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from portcullis.checks.attack_paths import DEFAULT_CAPS
from portcullis.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    ExitCodeOption,
    TLSCACertOption,
    TLSCertOption,
    TLSKeyOption,
    TLSVerifyOption,
    die,
    end_progress,
    refuse_format_as_output,
    say,
    use_engine_tls,
)
from portcullis.model.paths import Certainty, EntryKind, PathsReport
from portcullis.pipelines.errors import PipelineError


class PathsFormat(StrEnum):
    text = "text"
    json = "json"
    svg = "svg"
    html = "html"


class PathsFailOn(StrEnum):
    """Exit 2 when a path starts from this entry point or a more exposed one."""

    network = "network"
    container_network = "container_network"
    host_local = "host_local"
    container_process = "container_process"
    engine_api = "engine_api"
    none = "none"


def render_text(report: PathsReport, to_file: bool) -> str:
    """The ranked paths for people; colour only on a terminal, 100 columns in a file."""
    import io
    import shutil

    from rich.console import Console
    from rich.markup import escape

    buffer = io.StringIO()
    terminal = not to_file and sys.stdout.isatty()
    width = 100 if to_file else shutil.get_terminal_size((100, 24)).columns
    console = Console(file=buffer, width=width, force_terminal=terminal, no_color=not terminal, highlight=False)
    console.print(f"[bold]Attack paths of {escape(report.subject)}[/bold] (most exposed entry first)")
    if not report.paths:
        console.print("No attack path found.")
    for number, path in enumerate(report.paths, 1):
        style = "red" if path.certainty is Certainty.CONFIRMED else "yellow"
        console.print()
        console.print(
            f"[{style}]{number}. {escape(path.title)}[/{style}] in [bold]{escape(path.target)}[/bold] "
            f"({path.certainty.value})"
        )
        console.print(f"   entry: {path.entry.kind.value}: {path.entry.description}", markup=False)
        for step in path.steps:
            cited = f" [{step.finding}]" if step.finding else ""
            console.print(f"   -> {step.description}{cited}", markup=False)
            if step.evidence:
                console.print(f"        {step.evidence}", markup=False)
            if step.undecided:
                console.print(f"        undecided: {step.undecided}", markup=False)
        console.print(f"   => {path.outcome}", markup=False)
        console.print(f"   fix: {path.fix}", markup=False)
    if report.capabilities:
        console.print()
        console.print("[bold]Capabilities beyond Docker's default set[/bold] (? = reachability undecided)")
        for name, reach in sorted(report.capabilities.items()):
            extra = [r for r in reach if r.capability not in DEFAULT_CAPS]
            shown = ", ".join(
                f"{r.capability}{ {True: '', None: '?', False: ' (exec -u 0 only)'}[r.reachable] }" for r in extra
            )
            console.print(f"   {name}: {shown or 'none'}", markup=False)
    for note in report.notes:
        console.print(f"note: {note}", markup=False)
    return buffer.getvalue()


def paths(
    host: Annotated[str | None, typer.Option("--host", "-H", help="engine address (default: the local one)")] = None,
    tlsverify: TLSVerifyOption = False,
    tlscacert: TLSCACertOption = None,
    tlscert: TLSCertOption = None,
    tlskey: TLSKeyOption = None,
    facts_in: Annotated[
        Path | None, typer.Option("--facts-in", help="replay from facts saved by `audit --facts-out`; no engine")
    ] = None,
    inside: Annotated[
        bool,
        typer.Option("--inside", help="also read each running container's own /proc (capabilities really held)"),
    ] = False,
    output_format: Annotated[PathsFormat, typer.Option("--format", "-f", help="report format")] = PathsFormat.text,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write here; .svg, .html and .json choose the format")
    ] = None,
    fail_on: Annotated[
        PathsFailOn | None,
        typer.Option("--fail-on", help="exit 2 when a path starts from this entry point or a more exposed one"),
    ] = None,
    exit_code: ExitCodeOption = EXIT_FINDINGS,
) -> None:
    """Attack paths: chains from an entry point (the network, a container) to root on the host, each step with
    the finding that enables it and the single fix that breaks it.

    Examples: `portcullis paths`, `portcullis paths --inside -o paths.svg`,
    `portcullis paths --facts-in facts.json -f json --fail-on network`.
    """
    from portcullis.pipelines.paths import paths_report

    use_engine_tls(tlsverify, tlscacert, tlscert, tlskey)
    refuse_format_as_output(output)
    if output is not None and output.suffix.lstrip(".") in PathsFormat.__members__:
        output_format = PathsFormat(output.suffix.lstrip("."))
    try:
        report = paths_report(host, facts_in, inside, log=say)
    except PipelineError as exc:
        die(str(exc))
    end_progress()
    rendered = _render(report, output_format, to_file=output is not None)
    if output is None:
        sys.stdout.write(rendered)
        sys.stdout.flush()
    else:
        try:
            output.write_text(rendered, encoding="utf-8")
        except OSError as exc:
            die(f"cannot write {output}: {exc.strerror}")
        say(f"{len(report.paths)} path(s) written to {output}")
    raise typer.Exit(gate(report, fail_on, exit_code))


def _render(report: PathsReport, output_format: PathsFormat, to_file: bool) -> str:
    from portcullis.report import paths_graph

    if output_format is PathsFormat.json:
        return report.model_dump_json(indent=2) + "\n"
    if output_format is PathsFormat.svg:
        return paths_graph.render_svg(report)
    if output_format is PathsFormat.html:
        return paths_graph.render_html(report)
    return render_text(report, to_file)


def gate(report: PathsReport, fail_on: PathsFailOn | None, exit_code: int) -> int:
    """`exit_code` when a path (confirmed or possible: an undecided step fails closed) is as exposed as --fail-on."""
    if fail_on is None or fail_on is PathsFailOn.none:
        return EXIT_OK
    threshold = EntryKind(fail_on.value).exposure
    hits = [path for path in report.paths if path.exposure >= threshold]
    if hits:
        say(f"{len(hits)} attack path(s) from {fail_on.value} or a more exposed entry point")
        return exit_code
    return EXIT_OK
