"""`portcullis lint`: Dockerfiles and compose files, judged before anything is built or started."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from portcullis import __version__
from portcullis.checks.registry import Rule, all_rules, select_rules
from portcullis.checks.runner import evaluate_on
from portcullis.cli.common import FailOn, OutputFormat, die, emit
from portcullis.collect import CollectionError
from portcullis.model.findings import CollectionProblem, Finding, Report, Summary, Target, TargetKind, ToolInfo
from portcullis.model.lint import ComposeFacts, DockerfileFacts

DOCKERFILE_NAMES = ("dockerfile", "containerfile")


def detect_kind(path: Path) -> TargetKind:
    """Dockerfile or compose file, by name first (Dockerfile, *.Dockerfile, *.yaml), then by content."""
    from portcullis.collect.compose import looks_like_compose

    name = path.name.lower()
    if name in DOCKERFILE_NAMES or name.startswith(tuple(n + "." for n in DOCKERFILE_NAMES)):
        return TargetKind.DOCKERFILE
    if name.endswith((".dockerfile", ".containerfile")):
        return TargetKind.DOCKERFILE
    if name.endswith((".yaml", ".yml")):
        return TargetKind.COMPOSE
    try:
        head = path.read_bytes()[:65536].decode("utf-8", errors="replace")
    except OSError as exc:
        raise CollectionError(f"cannot read {path}: {exc.strerror}") from exc
    return TargetKind.COMPOSE if looks_like_compose(head) else TargetKind.DOCKERFILE


def _inline_ignore(finding: Finding, subject: DockerfileFacts | ComposeFacts) -> str | None:
    """The `# portcullis ignore=ID` comment that silences a finding: above its line or above its
    instruction (Dockerfile) / service (compose)."""
    if finding.location is None or finding.location.line is None:
        return None
    line = finding.location.line
    if isinstance(subject, DockerfileFacts):
        ignores = subject.ignores
        start = subject.instruction_start(line)
        candidates = [line] if start is None else [line, start]
    else:
        ignores = subject.ignores.get(finding.location.path, {})
        candidates = [line]
        service = finding.evidence.get("service")
        if service:
            service_ref = subject.where("services", service)
            if service_ref.path == finding.location.path:
                candidates.append(service_ref.line)
    for candidate in candidates:
        ids = ignores.get(candidate, ())
        if finding.rule_id.upper() in ids or "ALL" in ids:
            return f"inline comment: # portcullis ignore={finding.rule_id}"
    return None


def lint_subject(rules: list[Rule], subject: DockerfileFacts | ComposeFacts) -> list[Finding]:
    kind = TargetKind.DOCKERFILE if isinstance(subject, DockerfileFacts) else TargetKind.COMPOSE
    target = Target(kind=kind, name=subject.path)
    findings = []
    for candidate in rules:
        if candidate.scope is not kind:
            continue
        for finding in evaluate_on(candidate, subject, target):
            suppressed = _inline_ignore(finding, subject)
            findings.append(finding.model_copy(update={"suppressed_by": suppressed}) if suppressed else finding)
    return findings


def lint_report(
    files: list[Path],
    compose_files: list[Path],
    env_file: Path | None = None,
    select: list[str] | None = None,
    skip: list[str] | None = None,
) -> Report:
    """Lint each Dockerfile; each compose file alone, or all compose files as one project when -f is used."""
    from portcullis.collect.compose import load_compose
    from portcullis.collect.dockerfile import load_dockerfile

    for path in [*files, *compose_files]:
        if not path.is_file():
            raise CollectionError(f"{path}: no such file")
    rules = list(select_rules(all_rules(), select or [], skip or [], command="lint"))
    kinds = {path: detect_kind(path) for path in files}
    positional_compose = [p for p in files if kinds[p] is TargetKind.COMPOSE]
    projects = [[*positional_compose, *compose_files]] if compose_files else [[p] for p in positional_compose]

    findings: list[Finding] = []
    problems: list[CollectionProblem] = []
    for path in files:
        if kinds[path] is TargetKind.DOCKERFILE:
            findings.extend(lint_subject(rules, load_dockerfile(path)))
    for project in projects:
        compose = load_compose(project, env_file=env_file)
        findings.extend(lint_subject(rules, compose))
        problems.extend(CollectionProblem(fact=f"{compose.path} interpolation", reason=w) for w in compose.warnings)
    findings.sort(key=lambda f: (f.target.name, f.location.path if f.location else "", _line(f), f.rule_id))
    return Report(
        command="lint",
        tool=ToolInfo(version=__version__),
        subject=" ".join(str(p) for p in [*files, *compose_files]),
        findings=findings,
        summary=Summary.of(findings),
        problems=problems,
    )


def _line(finding: Finding) -> int:
    return finding.location.line or 0 if finding.location else 0


def lint(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Dockerfiles and compose files (the kind is detected)", show_default=False),
    ] = None,
    compose_files: Annotated[
        list[Path] | None,
        typer.Option("--file", "-f", help="compose file merged, in order, into one project (like docker compose -f)"),
    ] = None,
    env_file: Annotated[
        Path | None, typer.Option("--env-file", help="variables for compose interpolation (default: .env beside it)")
    ] = None,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="report format")] = OutputFormat.text,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the report here, not stdout")] = None,
    fail_on: Annotated[
        FailOn | None, typer.Option("--fail-on", help="exit 2 when a failure at or above this severity exists")
    ] = None,
    select: Annotated[list[str] | None, typer.Option("--select", help="only these rule ids or prefixes")] = None,
    skip: Annotated[list[str] | None, typer.Option("--skip", help="leave out these rule ids or prefixes")] = None,
) -> None:
    """Lint Dockerfiles and compose files: security problems with their exact line.

    Examples: `portcullis lint Dockerfile`, `portcullis lint compose.yaml -f compose.prod.yaml --fail-on high`,
    `portcullis lint --format sarif -o lint.sarif Dockerfile compose.yaml`.
    Silence one finding with `# portcullis ignore=DKR-DF-004` on the line before it.
    """
    if not files and not compose_files:
        die("nothing to lint: give a Dockerfile or a compose file")
    try:
        report = lint_report(files or [], compose_files or [], env_file, select, skip)
    except CollectionError as exc:
        die(str(exc))
    raise typer.Exit(emit(report, output_format, output, fail_on))
