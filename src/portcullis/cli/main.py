"""The `portcullis` command."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from portcullis import CIS_BENCHMARK_VERSION, __version__
from portcullis.cli import audit, harden, inside, lint, overhead, prove, rules, sbom
from portcullis.cli import db as vulndb_cmd
from portcullis.cli import image as image_cmd
from portcullis.cli.common import EXIT_TOOL_ERROR, stderr

app = typer.Typer(
    name="portcullis",
    help="Measure and prove the security of Docker hosts, images and containers.\n\n"
    "Exit codes: 0 completed with nothing at or above --fail-on, 2 failures at or above it, 1 tool error.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(audit.audit)
app.command()(rules.rules)
app.command()(inside.inside)
app.command()(prove.prove)
app.command()(overhead.overhead)
app.command()(image_cmd.image)
app.command()(sbom.sbom)
app.command()(lint.lint)
app.add_typer(vulndb_cmd.app, name="db")
app.add_typer(harden.app, name="harden")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"portcullis {__version__} (CIS Docker Benchmark {CIS_BENCHMARK_VERSION})")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Measure and prove the security of Docker hosts, images and containers."""


@app.command()
def schema() -> None:
    """Print the JSON Schema of the JSON report."""
    from portcullis.report.json_report import schema_text

    typer.echo(schema_text(), nl=False)


def run() -> None:
    """Entry point: usage errors exit 1 with one line; an unexpected fault never prints a traceback."""
    try:
        code = app(standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        stderr.print("portcullis: interrupted", markup=False)
        sys.exit(130)
    except KeyboardInterrupt:
        stderr.print("portcullis: interrupted", markup=False)
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: bad option, bad value
        stderr.print(f"portcullis: error: {exc.format_message()}", markup=False)
        sys.exit(EXIT_TOOL_ERROR)
    except Exception as exc:  # the last line of defence: one line, exit 1, no traceback
        stderr.print(f"portcullis: internal error: {type(exc).__name__}: {exc}", markup=False)
        sys.exit(EXIT_TOOL_ERROR)
    sys.exit(code if isinstance(code, int) else 0)
