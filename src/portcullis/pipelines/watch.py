"""What `watch` judges one object with: the audit's container rules over one container (with the engine, daemon and
host read once), the inside rules over a started container's /proc, the image rules over one image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from portcullis.checks.registry import IMAGE_RULE_MODULES, Rule, UnknownSelector, all_rules, select_rules
from portcullis.checks.runner import evaluate_on, run_image_rules, run_rules
from portcullis.data.benchmark import Benchmark
from portcullis.model.facts import ContainerFacts, Facts, ImageFacts
from portcullis.model.findings import Finding, Target, TargetKind
from portcullis.pipelines.errors import SubjectError, UsageError


@dataclass(frozen=True)
class WatchRules:
    container: list[Rule]  # the audit's container-scoped rules
    inside: list[Rule]  # `inside`'s rules, over a started container's signals
    image: list[Rule]  # the image rules, over an image's configuration (and content when read)


def watch_rules(select: Sequence[str], skip: Sequence[str], level: int | None, benchmark: Benchmark) -> WatchRules:
    """The three rule sets narrowed together by `select`, `skip` and `level` (a selector needs to match one of them);
    a selector matching none raises UsageError."""
    container = [r for r in all_rules(benchmark=benchmark) if "audit" in r.commands and r.scope is TargetKind.CONTAINER]
    inside = select_rules(all_rules(benchmark=benchmark), command="inside")
    image = [
        r for r in all_rules(IMAGE_RULE_MODULES, benchmark) if "image" in r.commands and r.scope is TargetKind.IMAGE
    ]
    try:
        chosen = {r.id for r in select_rules([*container, *inside, *image], select, skip, level)}
    except UnknownSelector as exc:
        raise UsageError(str(exc).replace("matches no rule", "matches no rule `watch` runs")) from exc
    return WatchRules(
        container=[r for r in container if r.id in chosen],
        inside=[r for r in inside if r.id in chosen],
        image=[r for r in image if r.id in chosen],
    )


def judge_container(
    rules: WatchRules, context: Facts, container: ContainerFacts, images: list[ImageFacts]
) -> list[Finding]:
    """The container rules over `container` alone, in `context` (the engine, daemon and host), with `images` (the
    one it runs and the one its tag names now) as the only images known."""
    facts = context.model_copy(update={"containers": [container], "images": images})
    return run_rules(rules.container, facts)


def judge_inside(rules: WatchRules, container: ContainerFacts) -> list[Finding]:
    """The inside rules over the running container's signals, read from the host through /proc/PID; a container
    that stopped meanwhile raises SubjectError."""
    from portcullis.inside.signals import collect_from_host

    try:
        signals = collect_from_host(container.state.pid)
    except OSError as exc:
        raise SubjectError(f"cannot read the container's /proc: {exc}") from exc
    target = Target(kind=TargetKind.CONTAINER, name=container.short_name, id=container.id)
    return [finding for rule in rules.inside for finding in evaluate_on(rule, signals, target)]


def judge_image_facts(rules: WatchRules, image: ImageFacts) -> list[Finding]:
    return run_image_rules(rules.image, image, datetime.now(UTC).isoformat(timespec="seconds"))
