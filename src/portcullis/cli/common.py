"""What every command shares: output formats, the --fail-on gate, exit codes, one-line errors."""

from __future__ import annotations

import sys
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from portcullis.model.findings import Report, Severity, Status

EXIT_OK = 0
EXIT_TOOL_ERROR = 1
EXIT_FINDINGS = 2


def say(message: str) -> None:
    """One line for people on stderr, as written: diagnostics only; reports go to stdout or --output."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


DEFAULT_IGNORE_FILE = ".portcullisignore.yaml"  # read from the working directory when --ignore-file is not given


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    sarif = "sarif"
    junit = "junit"
    html = "html"


class FailOn(StrEnum):
    critical = "critical"
    high = "high"
    medium = "medium"
    low = "low"
    info = "info"
    none = "none"


def die(message: str) -> NoReturn:
    """One clear line on stderr, exit code 1."""
    say(f"portcullis: error: {message}")
    raise typer.Exit(EXIT_TOOL_ERROR)


# Options every report-producing command can declare with the same names and help.
IgnoreFileOption = Annotated[
    Path | None,
    typer.Option(
        "--ignore-file",
        help="accepted findings with reasons (default: ./.portcullisignore.yaml when it exists)",
    ),
]
ExitCodeOption = Annotated[
    int,
    typer.Option("--exit-code", min=0, max=255, help="exit with this code, not 2, when --fail-on trips"),
]
ShowAllOption = Annotated[
    bool,
    typer.Option("--all", "-a", help="text: also list pass, n/a and suppressed findings (counted either way)"),
]


def apply_ignore_file(report: Report, ignore_file: Path | None) -> Report:
    """Mark the findings the ignore file accepts; with no --ignore-file, ./.portcullisignore.yaml if present."""
    path = ignore_file
    if path is None:
        path = Path(DEFAULT_IGNORE_FILE)
        if not path.is_file():
            return report  # the common case: the policy module (pydantic models, YAML) is not even loaded
    from portcullis.pipelines.policy import PolicyError, load_policy

    try:
        policy = load_policy(path, date.today())
    except PolicyError as exc:
        die(str(exc))
    for item in policy.expired:
        say(
            f"portcullis: warning: {policy.source}#{item.number} ({item.entry.id}) expired on "
            f"{item.entry.expires}; it no longer applies"
        )
    report = policy.apply(report)
    if report.summary.suppressed:
        say(f"{report.summary.suppressed} finding(s) suppressed by {policy.source}")
    return report


def emit(
    report: Report,
    fmt: OutputFormat,
    output: Path | None,
    fail_on: FailOn | None,
    *,
    ignore_file: Path | None = None,
    exit_code: int = EXIT_FINDINGS,
    show_all: bool = False,
) -> int:
    """Apply the ignore file, describe the rules behind the findings, render the report to stdout or --output, and
    return the exit code the gate decides.

    Only unsuppressed `fail` findings at or above --fail-on trip the gate; it then returns `exit_code`.
    With a gate in force, any `error` finding (a check that raised) makes the exit code 1.
    """
    from portcullis.checks.registry import describe
    from portcullis.model.redaction import redact_report
    from portcullis.report import RENDERER_MODULES, renderer

    if fmt.value not in RENDERER_MODULES:
        die(f"format {fmt.value!r} is not available for this command")
    report = apply_ignore_file(report, ignore_file)
    report = redact_report(report)  # the one pass every format goes through: no quoted secret is printed
    # Renderers describe rules (SARIF descriptors) from the report alone, so every command's report carries them.
    report = report.model_copy(update={"rules": describe(report.findings)})
    if fmt is OutputFormat.text:
        from portcullis.report import text

        # a file gets neither colour codes nor the terminal's width
        rendered = text.render(report, 80 if output else None, show_all=show_all, colour=False if output else None)
    else:
        rendered = renderer(fmt.value)(report)
    if output is None:
        sys.stdout.write(rendered)
        sys.stdout.flush()
    else:
        try:
            output.write_text(rendered, encoding="utf-8")
        except OSError as exc:
            die(f"cannot write {output}: {exc.strerror}")
        say(f"report written to {output}")
    if fail_on is None or fail_on is FailOn.none:
        return EXIT_OK
    # A check that raised cannot vouch for its target: with a gate in force that is a tool error, not a pass.
    broken = [f for f in report.findings if f.status is Status.ERROR]
    if broken:
        say(f"{len(broken)} check(s) raised an error (first: {broken[0].rule_id}); the gate cannot be trusted")
        return EXIT_TOOL_ERROR
    gate = report.failures_at_or_above(Severity(fail_on.value))
    if gate:
        say(f"{len(gate)} failure(s) at or above {fail_on.value}")
        return exit_code
    return EXIT_OK
