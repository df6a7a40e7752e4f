"""The lint flow: Dockerfiles and compose files judged with their exact lines, before anything is built or started."""

from __future__ import annotations

from pathlib import Path

from portcullis import __version__
from portcullis.checks.registry import Rule, UnknownSelector, all_rules, select_rules
from portcullis.checks.runner import evaluate_on
from portcullis.collect import CollectionError
from portcullis.collect.files import open_regular
from portcullis.model.findings import CollectionProblem, Finding, Report, Summary, Target, TargetKind, ToolInfo
from portcullis.model.lint import ComposeFacts, DockerfileFacts
from portcullis.pipelines.errors import SubjectError, UsageError

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
        with open_regular(path) as stream:  # a FIFO named like neither would block a plain read
            head = stream.read(65536).decode("utf-8", errors="replace")
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
    """The findings of the rules for this kind of file, each marked when an inline comment silences it."""
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
    """Lint each Dockerfile; each compose file alone, or all compose files as one project when -f is used.

    A file that is missing or cannot be read or parsed raises SubjectError.
    """
    try:
        return _lint(files, compose_files, env_file, select or [], skip or [])
    except CollectionError as exc:
        raise SubjectError(str(exc)) from exc


def _lint(
    files: list[Path], compose_files: list[Path], env_file: Path | None, select: list[str], skip: list[str]
) -> Report:
    from portcullis.collect.compose import load_compose
    from portcullis.collect.dockerfile import load_dockerfile

    for path in [*files, *compose_files]:
        if not path.is_file():
            raise SubjectError(f"{path}: no such file")
    try:
        rules = select_rules(all_rules(), select, skip, command="lint")
    except UnknownSelector as exc:
        raise UsageError(str(exc)) from exc
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
