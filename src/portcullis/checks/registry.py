"""Rule declaration: metadata and a pure check function, declared once with `@rule`."""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portcullis.data.benchmark import Benchmark, Control, load_benchmark
from portcullis.model.findings import CisRef, Finding, Location, RuleInfo, Severity, Status, Target, TargetKind

# Rules are imported explicitly, not discovered by side effect: this list is the catalogue.
RULE_MODULES = (
    "portcullis.checks.cis.s1_host",
    "portcullis.checks.cis.s2_daemon",
    "portcullis.checks.cis.s3_files",
    "portcullis.checks.cis.s4_images",
    "portcullis.checks.cis.s5_runtime.network",
    "portcullis.checks.cis.s5_runtime.confinement",
    "portcullis.checks.cis.s5_runtime.privileges",
    "portcullis.checks.cis.s5_runtime.mounts",
    "portcullis.checks.cis.s5_runtime.lifecycle",
    "portcullis.checks.cis.s5_runtime.namespaces",
    "portcullis.checks.cis.s5_runtime.resources",
    "portcullis.checks.cis.s6_operations",
    "portcullis.checks.cis.s7_swarm",
    "portcullis.checks.dockerfile_rules",
    "portcullis.checks.compose_rules",
    "portcullis.checks.engine_rules",
    "portcullis.checks.host_rules",
    "portcullis.checks.image_rules",
    "portcullis.checks.inside_rules",
    "portcullis.checks.prove_rules",
    "portcullis.checks.runtime_rules",
)
# The modules declaring image-scoped rules: `portcullis image` imports only these (a test keeps the list complete).
IMAGE_RULE_MODULES = ("portcullis.checks.cis.s4_images", "portcullis.checks.image_rules")


@dataclass(frozen=True)
class Outcome:
    """What a check concluded about one target."""

    status: Status
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    target: Target | None = None  # None: the runner uses the scope's default target
    location: Location | None = None
    severity: Severity | None = None  # None: the rule's own severity


def passed(message: str, target: Target | None = None, **evidence: Any) -> Outcome:
    return Outcome(Status.PASS, message, evidence, target)


def failed(message: str, target: Target | None = None, location: Location | None = None, **evidence: Any) -> Outcome:
    return Outcome(Status.FAIL, message, evidence, target, location)


def manual(message: str, target: Target | None = None, **evidence: Any) -> Outcome:
    return Outcome(Status.MANUAL, message, evidence, target)


def skipped(reason: str, target: Target | None = None, **evidence: Any) -> Outcome:
    return Outcome(Status.SKIP, reason, evidence, target)


def not_applicable(reason: str, target: Target | None = None, **evidence: Any) -> Outcome:
    return Outcome(Status.NOT_APPLICABLE, reason, evidence, target)


CheckResult = Outcome | Iterable[Outcome]


@dataclass(frozen=True)
class ControlClaim:
    """A benchmark control a rule implements: `control` (CIS-5.5) in `benchmark`, or in every benchmark that has a
    control of that number when `benchmark` is None (a control that keeps its number and meaning across releases)."""

    control: str
    benchmark: str | None = None


def control_claims(cis: str | Mapping[str, str] | None) -> tuple[ControlClaim, ...]:
    """`cis="CIS-5.5"`, or, for a control renumbered or changed between releases, one entry per benchmark:
    `cis={"cis-docker-1.8.0": "CIS-5.5", "cis-docker-1.9.0": "CIS-5.6"}`."""
    if cis is None:
        return ()
    if isinstance(cis, str):
        return (ControlClaim(cis),)
    return tuple(ControlClaim(control, benchmark) for benchmark, control in cis.items())


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: Severity
    scope: TargetKind
    rationale: str
    remediation: str
    check: Callable[..., CheckResult]
    defined_at: Location  # where the rule is declared, for its documentation
    claims: tuple[ControlClaim, ...] = ()
    cis: CisRef | None = None  # the claimed control in the benchmark `all_rules` resolved against
    impact: str = ""
    references: tuple[str, ...] = ()
    statuses: tuple[Status, ...] = (Status.PASS, Status.FAIL)
    commands: tuple[str, ...] = ("audit",)

    def matches(self, pattern: str) -> bool:
        return id_matches(self.id, pattern)

    def control_in(self, benchmark: Benchmark) -> Control | None:
        """The control of `benchmark` this rule implements: a claim naming the benchmark wins over a general one."""
        named = [c for c in self.claims if c.benchmark == benchmark.id]
        for claim in named or [c for c in self.claims if c.benchmark is None]:
            if (control := benchmark.control(claim.control)) is not None:
                return control
        return None

    def info(self) -> RuleInfo:
        """The rule as a report carries it, for renderers that must not depend on the rule catalogue."""
        return RuleInfo(
            id=self.id,
            title=self.title,
            severity=self.severity,
            scope=self.scope,
            cis=self.cis,
            rationale=self.rationale,
            remediation=self.remediation,
            impact=self.impact,
            references=list(self.references),
            statuses=list(self.statuses),
            commands=list(self.commands),
            defined_at=self.defined_at,
        )


def id_matches(rule_id: str, pattern: str) -> bool:
    """True when `pattern` is the rule id or an id prefix ending on a boundary (CIS-5, CIS-1.1), any case."""
    pattern = pattern.strip().upper()
    rule_id = rule_id.upper()
    if rule_id == pattern:
        return True
    if pattern.endswith((".", "-")):
        return rule_id.startswith(pattern)
    return rule_id.startswith(pattern + ".") or rule_id.startswith(pattern + "-")


_RULES: dict[str, Rule] = {}


def default_commands(rule_id: str, scope: TargetKind) -> tuple[str, ...]:
    if scope in (TargetKind.DOCKERFILE, TargetKind.COMPOSE):
        return ("lint",)
    if rule_id.startswith("DKR-IN-"):
        return ("inside",)
    if scope is TargetKind.IMAGE:
        return ("audit", "image")
    return ("audit",)


def rule(
    *,
    id: str,
    title: str,
    severity: Severity,
    scope: TargetKind,
    rationale: str,
    remediation: str,
    cis: str | Mapping[str, str] | None = None,
    impact: str = "",
    references: tuple[str, ...] = (),
    statuses: tuple[Status, ...] = (Status.PASS, Status.FAIL),
    commands: tuple[str, ...] | None = None,
) -> Callable[[Callable[..., CheckResult]], Callable[..., CheckResult]]:
    """Declare a rule. `statuses` lists every status the check can return; each needs a fixture.

    Container- and image-scoped checks are called as ``check(target_facts, facts)`` once per
    target; every other scope is called as ``check(facts)``. `commands` names the commands that run
    the rule; by default it follows from the scope (see `default_commands`). `cis` names the benchmark control the
    rule implements (see `control_claims`); its level and section come from the benchmark's data file.
    """
    defined_at = _declaration_site()

    def register(check: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
        if id in _RULES:
            raise ValueError(f"rule {id} declared twice")
        _RULES[id] = Rule(
            id=id,
            title=title,
            severity=severity,
            scope=scope,
            rationale=rationale.strip(),
            remediation=remediation.strip(),
            check=check,
            defined_at=defined_at,
            claims=control_claims(cis),
            impact=impact.strip(),
            references=references,
            statuses=statuses,
            commands=commands or default_commands(id, scope),
        )
        return check

    return register


def register_table(
    table: dict[str, tuple[str, str, str, str]],
    check_for: Callable[[str], Callable[..., CheckResult]],
    statuses: Callable[[str], tuple[Status, ...]],
    command: str,
) -> None:
    """Register rules whose metadata lives in a plain table (id -> title, severity, rationale, remediation),
    kept by modules that must stay importable without pydantic (the `inside` zipapp) or that judge recorded
    measurements (`prove`)."""
    for rule_id, (title, severity, rationale, remediation) in table.items():
        rule(
            id=rule_id,
            title=title,
            severity=Severity(severity),
            scope=TargetKind.CONTAINER,
            rationale=rationale,
            remediation=remediation,
            statuses=statuses(rule_id),
            commands=(command,),
        )(check_for(rule_id))


def _declaration_site() -> Location:
    """Where `rule(...)` was called from outside this module: the `@rule` line, or the loop or `register_table` call
    that declares a table of rules. The path is relative to the package's parent (portcullis/checks/...)."""
    frame = inspect.currentframe()
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    if frame is None:  # only when called from this module itself, which declares no rules
        raise RuntimeError("rule() must be called from a rule module")
    path = Path(frame.f_code.co_filename).resolve()
    package_root = Path(__file__).resolve().parents[2]
    return Location(path=path.relative_to(package_root).as_posix(), line=frame.f_lineno)


def _control_key(rule_id: str) -> tuple[object, ...]:
    head, _, tail = rule_id.partition("-")
    parts: list[object] = [head]
    for piece in tail.replace("-", ".").split("."):
        parts.append((0, int(piece)) if piece.isdigit() else (1, piece))
    return tuple(parts)


def _resolved(candidate: Rule, benchmark: Benchmark) -> Rule | None:
    """The rule with its control in `benchmark`; None when it implements controls of other benchmarks only."""
    if not candidate.claims:
        return candidate
    control = candidate.control_in(benchmark)
    return dataclasses.replace(candidate, cis=benchmark.cis_ref(control)) if control else None


def all_rules(modules: Iterable[str] = RULE_MODULES, benchmark: Benchmark | None = None) -> list[Rule]:
    """Every rule the given modules declare (all of them by default), in control order, each CIS rule with its
    control in `benchmark` (the newest by default); CIS rules that implement no control of it are left out."""
    wanted = set(modules)
    for module in wanted:
        importlib.import_module(module)
    against = benchmark or load_benchmark()
    resolved = (_resolved(r, against) for r in _RULES.values() if r.check.__module__ in wanted)
    return sorted((r for r in resolved if r is not None), key=lambda r: _control_key(r.id))


def get_rule(rule_id: str) -> Rule | None:
    wanted = rule_id.strip().upper()
    return next((r for r in all_rules() if r.id.upper() == wanted), None)


def describe(findings: Iterable[Finding]) -> list[RuleInfo]:
    """The rules behind these findings, in order of first appearance, each with the control its findings were judged
    against. Only rules already declared in this process are looked up: describing never imports rule modules."""
    described: dict[str, RuleInfo] = {}
    for finding in findings:
        declared = _RULES.get(finding.rule_id)
        if declared is not None and finding.rule_id not in described:
            described[finding.rule_id] = dataclasses.replace(declared, cis=finding.cis).info()
    return list(described.values())


class UnknownSelector(ValueError):
    """A --select or --skip pattern that matches no rule the command runs; the message is one line."""


def select_rules(
    rules: Iterable[Rule],
    select: Iterable[str] = (),
    skip: Iterable[str] = (),
    level: int | None = None,
    command: str | None = None,
) -> list[Rule]:
    """The rules `command` runs, narrowed by `select`, `skip` and `level`.

    A pattern that matches none of the command's rules raises UnknownSelector: a misspelt --select would
    otherwise judge nothing and pass, a misspelt --skip would silently keep the rule it meant to drop.
    """
    select, skip = list(select), list(skip)
    runnable = [r for r in rules if command is None or command in r.commands]
    for flag, patterns in (("--select", select), ("--skip", skip)):
        for pattern in patterns:
            if not any(r.matches(pattern) for r in runnable):
                raise UnknownSelector(_unknown(flag, pattern, runnable, command))
    return [
        candidate
        for candidate in runnable
        if (not select or any(candidate.matches(p) for p in select))
        and not any(candidate.matches(p) for p in skip)
        and (level is None or candidate.cis is None or candidate.cis.level <= level)
    ]


def _unknown(flag: str, pattern: str, rules: list[Rule], command: str | None) -> str:
    by_upper = {r.id.upper(): r.id for r in rules}
    # 0.75: a transposed or doubled character still matches, a different control number (CIS-4.9 for CIS-5.5) does not
    close = difflib.get_close_matches(pattern.strip().upper(), list(by_upper), n=1, cutoff=0.75)
    hint = f"; did you mean {by_upper[close[0]]}?" if close else ""
    scope = f" `{command}` runs" if command else ""
    return f"{flag} {pattern.strip()!r} matches no rule{scope}{hint}"
