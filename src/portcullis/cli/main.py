"""The `portcullis` command."""

from __future__ import annotations

import signal
import sys

# Ctrl-C while the CLI's modules still load ends as quietly as one later on (nothing has started yet): exit 130, no
# traceback from the middle of an import. run() hands SIGINT back to Python before any command runs.
signal.signal(signal.SIGINT, lambda signum, frame: sys.exit(130))

import gc  # noqa: E402
import importlib  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402
from collections.abc import Iterable  # noqa: E402
from typing import Annotated, TextIO  # noqa: E402

import typer  # noqa: E402

from portcullis import CIS_BENCHMARK_VERSION, __version__  # noqa: E402
from portcullis.cli import conventions  # noqa: E402
from portcullis.cli.common import EXIT_TOOL_ERROR, shout  # noqa: E402

# Command -> the module defining it. Only the invoked command's module is imported (an image scan should not pay
# for the audit's Docker SDK or the HTML renderer); help and unknown names load them all.
COMMANDS = {
    "audit": "portcullis.cli.audit",
    "rules": "portcullis.cli.rules",
    "inside": "portcullis.cli.inside",
    "paths": "portcullis.cli.paths",
    "prove": "portcullis.cli.prove",
    "overhead": "portcullis.cli.overhead",
    "neighbours": "portcullis.cli.neighbours",
    "image": "portcullis.cli.image",
    "sbom": "portcullis.cli.sbom",
    "lint": "portcullis.cli.lint",
    "diff": "portcullis.cli.history",
    "serve": "portcullis.cli.serve",
    "agent": "portcullis.cli.agent",
    "authz": "portcullis.cli.authz",
    "watch": "portcullis.cli.watch",
    "schema": "portcullis.cli.main",
}
GROUPS = {
    "db": "portcullis.cli.db",
    "harden": "portcullis.cli.harden",
    "token": "portcullis.cli.token",
    "cache": "portcullis.cli.cache",
    "history": "portcullis.cli.history",
}  # each module's `app` is a typer group

app = typer.Typer(
    name="portcullis",
    help="Measure and prove the security of Docker hosts, images and containers.\n\n"
    "Exit codes: 0 completed with nothing at or above --fail-on, 2 failures at or above it, 1 tool error.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    context_settings=conventions.HELP,
)


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


def schema() -> None:
    """Print the JSON Schema of the JSON report."""
    from portcullis.report.json_report import schema_text

    typer.echo(schema_text(), nl=False)


def register(names: Iterable[str]) -> None:
    for name in names:
        if name in COMMANDS:
            conventions.install(app, name, getattr(importlib.import_module(COMMANDS[name]), name))
        elif name in GROUPS:
            conventions.install_group(app, importlib.import_module(GROUPS[name]).app, name)


def invoked_command(argv: list[str]) -> str | None:
    """The command named on the command line, when it is one of ours (the first word; options come after it)."""
    if argv and argv[0] in (*COMMANDS, *GROUPS):
        return argv[0]
    return None


def run() -> None:
    """Entry point: usage errors exit 1 with one line; an unexpected fault never prints a traceback."""
    named = invoked_command(sys.argv[1:])
    register([named] if named else [*COMMANDS, *GROUPS])
    # Everything imported so far lives until exit: keep it out of the collector's full passes, which otherwise
    # rescan these hundreds of thousands of objects while a scan builds its own.
    gc.freeze()
    stdout = sys.stdout = _Stdout(sys.stdout)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # from here a Ctrl-C is a KeyboardInterrupt to clean up
    code = _dispatch(stdout)
    try:  # the report's last bytes: a full disk or a closed pipe is a failed run, not a silent 0
        stdout.flush()
    except OSError as exc:
        code = _stdout_lost(exc)
    sys.exit(code)


class _Stdout(io.TextIOWrapper):
    """sys.stdout, remembering whether a write to it failed: that OSError is about the report, not the subject."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(
            stream.buffer, encoding=stream.encoding, errors=stream.errors, line_buffering=bool(stream.line_buffering)
        )
        self.lost: OSError | None = None

    def write(self, text: str) -> int:
        try:
            return super().write(text)
        except OSError as exc:
            self.lost = exc
            raise

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as exc:
            self.lost = exc
            raise


def _dispatch(stdout: _Stdout) -> int:
    try:
        code = app(standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except SystemExit:
        if stdout.lost:  # click's own answer to a closed pipe: a silent exit 1
            return _stdout_lost(stdout.lost)
        raise
    except (typer.Abort, KeyboardInterrupt):
        shout("portcullis: interrupted")
        return 130
    except conventions.CommandTimeout as exc:
        shout(f"portcullis: error: {exc}")
        return EXIT_TOOL_ERROR
    except typer.TyperException as exc:  # usage errors: bad option, bad value
        shout(f"portcullis: error: {exc.format_message()}")
        return EXIT_TOOL_ERROR
    except Exception as exc:  # the last line of defence: one line, exit 1, no traceback
        if stdout.lost:
            return _stdout_lost(stdout.lost)
        shout(f"portcullis: internal error: {type(exc).__name__}: {exc}")
        return EXIT_TOOL_ERROR
    return code if isinstance(code, int) else 0


def _stdout_lost(exc: OSError) -> int:
    # Unflushed bytes would make the interpreter's own flush at exit print a second error: send them nowhere.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    shout(f"portcullis: error: cannot write to stdout: {exc.strerror or exc}")
    return EXIT_TOOL_ERROR
