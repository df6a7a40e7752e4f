"""`portcullis lint`: Dockerfiles and compose files, judged before anything is built or started."""

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
    SeverityOption,
    ShowAllOption,
    StrictOption,
    die,
    emit,
    listed,
    parse_severities,
)
from portcullis.pipelines.errors import PipelineError
from portcullis.pipelines.lint import lint_report


def lint(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Dockerfiles and compose files (the kind is detected)", show_default=False),
    ] = None,
    compose_files: Annotated[
        list[Path] | None,
        # -f is the report format on every command (`lint -f json`), so the compose file is --file/-c
        typer.Option("--file", "-c", help="compose file merged, in order, into one project (docker compose's -f)"),
    ] = None,
    env_file: Annotated[
        Path | None, typer.Option("--env-file", help="variables for compose interpolation (default: .env beside it)")
    ] = None,
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f", help="report format")] = OutputFormat.text,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the report here, not stdout")] = None,
    show_all: ShowAllOption = False,
    fail_on: Annotated[
        FailOn | None, typer.Option("--fail-on", help="exit 2 when a failure at or above this severity exists")
    ] = None,
    severity: SeverityOption = None,
    exit_code: ExitCodeOption = EXIT_FINDINGS,
    select: Annotated[list[str] | None, typer.Option("--select", help="only these rule ids or prefixes")] = None,
    skip: Annotated[list[str] | None, typer.Option("--skip", help="leave out these rule ids or prefixes")] = None,
    ignore_file: IgnoreFileOption = None,
    strict: StrictOption = False,
) -> None:
    """Lint Dockerfiles and compose files: security problems with their exact line.

    Examples: `portcullis lint Dockerfile`, `portcullis lint -f json Dockerfile`,
    `portcullis lint -c compose.yaml -c compose.prod.yaml --fail-on high`,
    `portcullis lint -f sarif -o lint.sarif Dockerfile compose.yaml`.
    Silence one finding with `# portcullis ignore=DKR-DF-004` on the line before it.
    """
    severities = parse_severities(severity)
    if not files and not compose_files:
        die("nothing to lint: give a Dockerfile or a compose file")
    try:
        report = lint_report(files or [], compose_files or [], env_file, listed(select), listed(skip))
    except PipelineError as exc:
        die(str(exc))
    raise typer.Exit(
        emit(
            report,
            output_format,
            output,
            fail_on,
            ignore_file=ignore_file,
            strict=strict,
            exit_code=exit_code,
            show_all=show_all,
            severities=severities,
        )
    )
