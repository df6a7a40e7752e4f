"""The audit flow: facts (collected or replayed) through the selected CIS rules into one Report."""

from __future__ import annotations

from portcullis import __version__
from portcullis.checks.registry import Rule, UnknownSelector, all_rules, select_rules
from portcullis.checks.runner import run_rules
from portcullis.data.benchmark import Benchmark, load_benchmark
from portcullis.model.facts import Facts
from portcullis.model.findings import Report, Summary, ToolInfo
from portcullis.pipelines.errors import UsageError


def audit_rules(select: list[str], skip: list[str], level: int | None, benchmark: Benchmark) -> list[Rule]:
    """The audit rules narrowed by the selectors and level; a selector that matches no rule raises UsageError
    (callers check it before collecting: a misspelt --select should not cost a whole collection)."""
    try:
        return select_rules(all_rules(benchmark=benchmark), select, skip, level, command="audit")
    except UnknownSelector as exc:
        raise UsageError(str(exc)) from exc


def audit_report(
    facts: Facts, select: list[str], skip: list[str], level: int | None, benchmark: Benchmark | None = None
) -> Report:
    """Judge `facts` against `benchmark` (the newest available by default) and our own audit rules."""
    benchmark = benchmark or load_benchmark()
    findings = run_rules(audit_rules(select, skip, level, benchmark), facts)
    return Report(
        command="audit",
        tool=ToolInfo(version=__version__, benchmark=benchmark.label),
        subject=facts.engine.endpoint,
        findings=findings,
        summary=Summary.of(findings),
        problems=facts.problems,
    )
