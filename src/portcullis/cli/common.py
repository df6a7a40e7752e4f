"""What every command shares: output formats, the --fail-on gate, exit codes, one-line errors."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from portcullis.model.findings import Report, Severity, Status, Summary

EXIT_OK = 0
EXIT_TOOL_ERROR = 1
EXIT_FINDINGS = 2


_quiet = False


def set_quiet(quiet: bool) -> None:
    """-q/--quiet: say() stays silent; errors (die, shout) still print."""
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    return _quiet


_progress_open = False  # a transient progress line is on the terminal and must be cleared before anything else


def shout(message: str) -> None:
    """One line on stderr even under --quiet: errors."""
    end_progress()
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def progress(message: str) -> None:
    """What a long step is doing, as one line rewritten in place on a terminal; nothing when stderr is piped (a
    CI log keeps only the lines that matter) or under --quiet."""
    global _progress_open
    if _quiet or not sys.stderr.isatty():
        return
    width = shutil.get_terminal_size((80, 24)).columns
    sys.stderr.write("\r\x1b[K" + message[: max(width - 1, 1)])
    sys.stderr.flush()
    _progress_open = True


def end_progress() -> None:
    """Clear the progress line, so the summary or an error starts on a clean line."""
    global _progress_open
    if _progress_open:
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()
        _progress_open = False


def listed(values: list[str] | None) -> list[str]:
    """A repeatable option's values with comma-separated lists split: `--select CIS-5.5,CIS-5.4` is two values."""
    return [item.strip() for value in values or [] for item in value.split(",") if item.strip()]


def say(message: str) -> None:
    """One line for people on stderr, as written: diagnostics only; reports go to stdout or --output."""
    if not _quiet:
        shout(message)


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


# Format names people pass to -o out of habit (syft's -o is the format): never a file to write silently.
FORMAT_WORDS = {*OutputFormat, "table", "cyclonedx", "cyclonedx-json", "cyclonedx-xml", "spdx", "spdx-json"}


def refuse_format_as_output(output: Path | None) -> None:
    """`-o cyclonedx-json` would write a file named `cyclonedx-json`: refuse it (Path drops `./`, so a file of that
    name needs its full path)."""
    if output is not None and str(output) in FORMAT_WORDS:
        die(
            f"--output {output} is a format name, not a file: -f sets the format "
            "(for a file of that name give its full path)"
        )


def die(message: str) -> NoReturn:
    """One clear line on stderr, exit code 1."""
    shout(f"portcullis: error: {message}")
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
# The docker CLI's TLS flags, for every command that takes --host; use_engine_tls() hands them to the engine client.
TLSVerifyOption = Annotated[
    bool,
    typer.Option("--tlsverify", help="TLS to the engine, verified against the CA (default: DOCKER_TLS_VERIFY)"),
]
TLSCACertOption = Annotated[
    Path | None,
    typer.Option("--tlscacert", help="the engine's CA (default: ca.pem in DOCKER_CERT_PATH or ~/.docker)"),
]
TLSCertOption = Annotated[
    Path | None,
    typer.Option("--tlscert", help="client certificate (default: cert.pem in DOCKER_CERT_PATH or ~/.docker)"),
]
TLSKeyOption = Annotated[
    Path | None,
    typer.Option("--tlskey", help="client key (default: key.pem in DOCKER_CERT_PATH or ~/.docker)"),
]
StrictOption = Annotated[
    bool, typer.Option("--strict", help="an ignore-file entry that matches no finding is an error, not a warning")
]
SeverityOption = Annotated[
    list[str] | None,
    typer.Option(
        "--severity",
        metavar="SEVERITY[,SEVERITY]",
        help="report and gate only these severities, e.g. HIGH,CRITICAL (any case; comma list or repeated)",
    ),
]
ShowAllOption = Annotated[
    bool,
    typer.Option("--show-all", "-a", help="text: also list pass, n/a and suppressed findings (counted either way)"),
]


StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar="PORTCULLIS_STORE",
        help="keep runs here: postgresql://… or an SQLite file (default: history.sqlite3 in the user data dir)",
    ),
]
NoStoreOption = Annotated[bool, typer.Option("--no-store", help="do not keep this run in the store")]
BaselineOption = Annotated[
    str | None,
    typer.Option(
        "--baseline",
        metavar="FILE_OR_RUN",
        help="a JSON report (-f json) or a stored run (id, latest, previous): only failures it lacks trip --fail-on",
    ),
]


@dataclass(frozen=True)
class History:
    """Where this run is kept (None: not kept) and the failure fingerprints of its baseline (None: no baseline)."""

    store: str | None
    save: bool
    baseline: frozenset[str] | None


def history_options(store: str | None, no_store: bool, baseline: str | None) -> History:
    """Read the baseline now: one that cannot be read should not cost a whole audit or scan."""
    from portcullis.pipelines.errors import HistoryError
    from portcullis.pipelines.history import load_baseline

    known = None
    if baseline is not None:
        try:
            known = frozenset(load_baseline(baseline, store))
        except HistoryError as exc:
            die(str(exc))
    return History(store=store, save=not no_store, baseline=known)


def keep_run(report: Report, history: History) -> None:
    """Store the report; a failure is an error when --store named the store, a warning for the default one (a
    read-only home should not fail every CI run)."""
    from portcullis.pipelines.errors import HistoryError
    from portcullis.pipelines.history import save_run

    try:
        run_id = save_run(report, history.store)
    except HistoryError as exc:
        if history.store is not None:
            die(f"run not stored: {exc}")
        say(f"portcullis: warning: run not stored: {exc}")
        return
    say(f"stored as run {run_id}")


def use_engine_tls(verify: bool, ca: Path | None, cert: Path | None, key: Path | None) -> None:
    """Every engine connection this command makes uses these TLS flags (over DOCKER_TLS_VERIFY/DOCKER_CERT_PATH)."""
    from portcullis.collect.engine import TLSFlags, use_tls_flags

    use_tls_flags(TLSFlags(verify=verify, ca=ca, cert=cert, key=key))


def parse_severities(values: list[str] | None) -> list[Severity]:
    """--severity HIGH,CRITICAL (Trivy's spelling) or --severity high --severity critical."""
    chosen: list[Severity] = []
    for word in (w.strip().lower() for value in values or [] for w in value.split(",")):
        if not word:
            continue
        if word not in Severity.__members__.values():
            die(f"--severity: {word!r} is not a severity ({', '.join(s.value for s in Severity)})")
        chosen.append(Severity(word))
    return chosen


def apply_ignore_file(
    report: Report, ignore_file: Path | None, *, strict: bool = False, legacy: Path | None = None
) -> Report:
    """Mark the findings the ignore file accepts; with no --ignore-file, ./.portcullisignore.yaml if present.

    `legacy` is a file named by a deprecated flag (--vuln-ignore), applied after it. An entry that matches no
    finding is a warning, and an error under `strict`: it is a misspelt id or an acceptance nobody needs any more.
    """
    if ignore_file is not None:
        paths = [ignore_file]
    else:
        paths = [Path(DEFAULT_IGNORE_FILE)] if Path(DEFAULT_IGNORE_FILE).is_file() else []
    if legacy is not None:
        paths.append(legacy)
    if not paths:
        return report  # the common case: the policy module (pydantic models, YAML) is not even loaded
    from portcullis.pipelines.policy import PolicyError, load_policy

    for path in paths:
        try:
            policy = load_policy(path, date.today())
        except PolicyError as exc:
            die(str(exc))
        for item in policy.expired:
            say(
                f"portcullis: warning: {policy.source}#{item.number} ({item.entry.id}) expired on "
                f"{item.entry.expires}; it no longer applies"
            )
        for item in policy.unmatched(report):
            message = f"{policy.source} entry {item.number} (id {item.entry.id}) matched nothing"
            if strict:
                die(f"{message} (--strict)")
            say(f"portcullis: warning: {message}")
        report = policy.apply(report)
    if report.summary.suppressed:
        say(f"{report.summary.suppressed} finding(s) suppressed by {', '.join(str(p) for p in paths)}")
    return report


def emit(
    report: Report,
    fmt: OutputFormat,
    output: Path | None,
    fail_on: FailOn | None,
    *,
    ignore_file: Path | None = None,
    strict: bool = False,
    legacy_ignore_file: Path | None = None,
    exit_code: int = EXIT_FINDINGS,
    show_all: bool = False,
    severities: Collection[Severity] = (),
    history: History | None = None,
) -> int:
    """Apply the ignore file, describe the rules behind the findings, render the report to stdout or --output, and
    return the exit code the gate decides.

    Only unsuppressed `fail` findings at or above --fail-on trip the gate; it then returns `exit_code`.
    With a gate in force, any `error` finding (a check that raised) makes the exit code 1.
    With `severities` (--severity), findings of other severities are neither reported nor gated.
    With a baseline in `history`, the failures it already had are marked "in baseline" and not gated; the run is
    then stored (as reported, marks included) unless --no-store.
    """
    from portcullis.checks.registry import describe
    from portcullis.model.redaction import redact_report
    from portcullis.report import RENDERER_MODULES, renderer

    end_progress()
    if fmt.value not in RENDERER_MODULES:
        die(f"format {fmt.value!r} is not available for this command")
    refuse_format_as_output(output)
    if severities:
        kept = [f for f in report.findings if f.severity in severities]
        report = report.model_copy(update={"findings": kept, "summary": Summary.of(kept)})
    report = apply_ignore_file(report, ignore_file, strict=strict, legacy=legacy_ignore_file)
    report = redact_report(report)  # the one pass every format goes through: no quoted secret is printed
    # Renderers describe rules (SARIF descriptors) from the report alone, so every command's report carries them.
    report = report.model_copy(update={"rules": describe(report.findings)})
    if history is not None and history.baseline is not None:
        from portcullis.pipelines.history import apply_baseline

        report = apply_baseline(report, set(history.baseline))
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
    if history is not None and history.save:
        keep_run(report, history)
    if fail_on is None or fail_on is FailOn.none:
        return EXIT_OK
    # A check that raised cannot vouch for its target: with a gate in force that is a tool error, not a pass.
    broken = [f for f in report.findings if f.status is Status.ERROR]
    if broken:
        shout(f"{len(broken)} check(s) raised an error (first: {broken[0].rule_id}); the gate cannot be trusted")
        return EXIT_TOOL_ERROR
    gate = report.failures_at_or_above(Severity(fail_on.value))
    if gate:
        say(f"{len(gate)} failure(s) at or above {fail_on.value}")
        return exit_code
    return EXIT_OK
