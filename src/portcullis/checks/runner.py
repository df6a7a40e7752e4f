"""Run rules over a facts snapshot and turn outcomes into findings."""

from __future__ import annotations

from collections.abc import Iterable

from portcullis.checks.registry import Outcome, Rule
from portcullis.model.facts import ContainerFacts, EolTables, Facts, ImageFacts
from portcullis.model.findings import Finding, Status, Target, TargetKind


def container_target(container: ContainerFacts) -> Target:
    return Target(kind=TargetKind.CONTAINER, name=container.short_name, id=container.id)


def image_target(image: ImageFacts) -> Target:
    return Target(kind=TargetKind.IMAGE, name=image.display_name, id=image.id)


def default_target(scope: TargetKind, facts: Facts) -> Target:
    if scope is TargetKind.HOST:
        return Target(kind=scope, name=facts.host.hostname or "localhost")
    if scope is TargetKind.SWARM:
        return Target(kind=scope, name="swarm", id=facts.engine.info.swarm.node_id or None)
    if scope is TargetKind.FILE:
        return Target(kind=scope, name=facts.host.hostname or "localhost")
    return Target(kind=TargetKind.DAEMON, name=facts.engine.endpoint, id=facts.engine.info.id or None)


def _as_list(result: Outcome | Iterable[Outcome]) -> list[Outcome]:
    return [result] if isinstance(result, Outcome) else list(result)


def _finding(rule: Rule, outcome: Outcome, target: Target) -> Finding:
    return Finding(
        rule_id=rule.id,
        title=rule.title,
        cis=rule.cis,
        status=outcome.status,
        severity=outcome.severity or rule.severity,
        target=outcome.target or target,
        location=outcome.location,
        message=outcome.message,
        evidence=outcome.evidence,
        remediation=rule.remediation if outcome.status is Status.FAIL else "",
    )


def _error(rule: Rule, target: Target, exc: Exception) -> Finding:
    return Finding(
        rule_id=rule.id,
        title=rule.title,
        cis=rule.cis,
        status=Status.ERROR,
        severity=rule.severity,
        target=target,
        message=f"the check raised {type(exc).__name__}: {exc}",
    )


def _judge(rule: Rule, subject: ContainerFacts | ImageFacts, facts: Facts, target: Target) -> list[Finding]:
    try:
        return [_finding(rule, o, target) for o in _as_list(rule.check(subject, facts))]
    except Exception as exc:
        return [_error(rule, target, exc)]


def evaluate(rule: Rule, facts: Facts) -> list[Finding]:
    """All findings of one rule. A check that raises yields an `error` finding, never a crash."""
    findings: list[Finding] = []
    if rule.scope in (TargetKind.CONTAINER, TargetKind.IMAGE):
        targets: list[tuple[ContainerFacts | ImageFacts, Target]]
        if rule.scope is TargetKind.CONTAINER:
            targets = [(c, container_target(c)) for c in facts.containers]
        else:
            targets = [(i, image_target(i)) for i in facts.images]
        if not targets:
            kind = "containers" if rule.scope is TargetKind.CONTAINER else "images"
            target = default_target(TargetKind.DAEMON, facts)
            return [_finding(rule, Outcome(Status.NOT_APPLICABLE, f"the engine has no {kind}"), target)]
        for subject, target in targets:
            findings.extend(_judge(rule, subject, facts, target))
        return findings
    target = default_target(rule.scope, facts)
    try:
        return [_finding(rule, o, target) for o in _as_list(rule.check(facts))]
    except Exception as exc:
        return [_error(rule, target, exc)]


def run_rules(rules: Iterable[Rule], facts: Facts) -> list[Finding]:
    findings: list[Finding] = []
    for candidate in rules:
        findings.extend(evaluate(candidate, facts))
    return findings


def run_image_rules(
    rules: Iterable[Rule], image: ImageFacts, collected_at: str, eol_tables: EolTables | None = None
) -> list[Finding]:
    """The image-scope rules on one image read on its own, not through an engine or a host.

    The rules see the image, the collection date and the refreshed end-of-life tables (None: the frozen ones); the
    context has no engine at all (not a made-up one), so a rule that reached for it would raise and show as an
    `error` finding instead of judging nothing.
    """
    # Built unvalidated on purpose: Facts requires an engine, and an image read on its own has none.
    context = Facts.model_construct(  # type: ignore[call-arg]
        collected_at=collected_at, images=[image], eol_tables=eol_tables
    )
    target = image_target(image)
    findings: list[Finding] = []
    for candidate in rules:
        if candidate.scope is TargetKind.IMAGE:
            findings.extend(_judge(candidate, image, context, target))
    return findings


def evaluate_on(rule: Rule, subject: object, target: Target) -> list[Finding]:
    """Run a rule whose check takes one non-Facts subject (inside signals, a parsed file) about `target`."""
    try:
        return [_finding(rule, o, target) for o in _as_list(rule.check(subject))]
    except Exception as exc:
        return [_error(rule, target, exc)]
