"""`portcullis audit`: the CIS Docker Benchmark against a live engine, its host and files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from portcullis.cli.common import (
    EXIT_FINDINGS,
    ExitCodeOption,
    FailOn,
    IgnoreFileOption,
    OutputFormat,
    ShowAllOption,
    die,
    emit,
    say,
)
from portcullis.collect import CollectionError
from portcullis.pipelines.audit import audit_report


def audit(
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f", help="report format")] = OutputFormat.text,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the report here, not stdout")] = None,
    show_all: ShowAllOption = False,
    fail_on: Annotated[
        FailOn | None, typer.Option("--fail-on", help="exit 2 when a failure at or above this severity exists")
    ] = None,
    select: Annotated[list[str] | None, typer.Option("--select", help="only these rule ids or prefixes")] = None,
    skip: Annotated[list[str] | None, typer.Option("--skip", help="leave out these rule ids or prefixes")] = None,
    level: Annotated[int | None, typer.Option("--level", min=1, max=2, help="1: level-1 controls only")] = None,
    benchmark_id: Annotated[
        str | None,
        typer.Option("--benchmark", help="the benchmark to audit against, e.g. cis-docker-1.8.0 (default: the newest)"),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(
            "--host", "-H", help="engine address (default: DOCKER_HOST, the active context, the local socket)"
        ),
    ] = None,
    facts_out: Annotated[Path | None, typer.Option("--facts-out", help="save the collected facts")] = None,
    facts_in: Annotated[
        Path | None, typer.Option("--facts-in", help="replay an audit from saved facts; no engine needed")
    ] = None,
    ignore_file: IgnoreFileOption = None,
    exit_code: ExitCodeOption = EXIT_FINDINGS,
) -> None:
    """Audit a Docker engine, its host and its files against the CIS Docker Benchmark.

    Examples: `portcullis audit`, `portcullis audit -f sarif -o audit.sarif --fail-on high`,
    `portcullis audit --benchmark cis-docker-1.8.0`,
    `portcullis audit --select CIS-5 --skip CIS-5.28`, `portcullis audit --facts-in facts.json`.
    """
    from portcullis.collect.audit import collect_facts, load_facts, save_facts
    from portcullis.collect.engine import connect
    from portcullis.data.benchmark import UnknownBenchmark, load_benchmark

    try:  # before any collection: a mistyped benchmark should not cost a whole audit
        benchmark = load_benchmark(benchmark_id)
    except UnknownBenchmark as exc:
        die(str(exc))
    try:
        if facts_in is not None:
            facts = load_facts(str(facts_in))
        else:
            conn = connect(host)
            say(f"collecting facts from {conn.endpoint}…")
            try:
                facts = collect_facts(conn)
            finally:
                conn.close()
            say(f"collected {len(facts.containers)} containers, {len(facts.images)} images in {conn.calls} API calls")
    except CollectionError as exc:
        die(str(exc))
    if facts_out is not None:
        try:
            save_facts(facts, str(facts_out))
        except OSError as exc:
            die(f"cannot write {facts_out}: {exc.strerror}")
    report = audit_report(facts, select or [], skip or [], level, benchmark)
    raise typer.Exit(
        emit(report, output_format, output, fail_on, ignore_file=ignore_file, exit_code=exit_code, show_all=show_all)
    )
