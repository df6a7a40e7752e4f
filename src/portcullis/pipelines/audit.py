"""The audit flow: facts (collected or replayed) through the selected CIS rules into one Report."""

from __future__ import annotations

from portcullis import CIS_BENCHMARK_VERSION, __version__
from portcullis.checks.registry import all_rules, select_rules
from portcullis.checks.runner import run_rules
from portcullis.model.facts import Facts
from portcullis.model.findings import Report, Summary, ToolInfo


def audit_report(facts: Facts, select: list[str], skip: list[str], level: int | None) -> Report:
    rules = list(select_rules(all_rules(), select, skip, level, command="audit"))
    findings = run_rules(rules, facts)
    return Report(
        command="audit",
        tool=ToolInfo(version=__version__, benchmark=f"CIS Docker Benchmark {CIS_BENCHMARK_VERSION}"),
        subject=facts.engine.endpoint,
        findings=findings,
        summary=Summary.of(findings),
        problems=facts.problems,
    )
