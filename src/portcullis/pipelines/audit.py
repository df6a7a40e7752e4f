"""The audit flow: facts (collected or replayed) through the selected CIS rules into one Report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from portcullis import __version__
from portcullis.checks.registry import Rule, UnknownSelector, all_rules, select_rules
from portcullis.checks.runner import run_rules
from portcullis.data.benchmark import Benchmark, UnknownBenchmark, load_benchmark
from portcullis.model.facts import Facts
from portcullis.model.findings import Report, Summary, ToolInfo
from portcullis.pipelines.errors import OutputError, SubjectError, UsageError


def _silent(message: str) -> None:
    """The default progress sink: callers that show no progress (tests, a service) pass nothing."""


def choose_benchmark(benchmark_id: str | None) -> Benchmark:
    """The benchmark named (the newest by default); an unknown name raises UsageError.

    Callers choose it before collecting: a mistyped benchmark should not cost a whole audit.
    """
    try:
        return load_benchmark(benchmark_id)
    except UnknownBenchmark as exc:
        raise UsageError(str(exc)) from exc


def gather_facts(host: str | None, facts_in: Path | None, log: Callable[[str], None] = _silent) -> Facts:
    """Replay the facts saved in `facts_in`, or collect them from the engine at `host` (None: the default one).

    An engine that does not answer or a facts file that cannot be read raises SubjectError.
    """
    from portcullis.collect import CollectionError
    from portcullis.collect.audit import collect_facts, load_facts
    from portcullis.collect.engine import connect

    try:
        if facts_in is not None:
            return load_facts(str(facts_in))
        conn = connect(host)
        log(f"collecting facts from {conn.endpoint}…")
        try:
            facts = collect_facts(conn)
        finally:
            conn.close()
    except CollectionError as exc:
        raise SubjectError(str(exc)) from exc
    log(f"collected {len(facts.containers)} containers, {len(facts.images)} images in {conn.calls} API calls")
    return facts


def write_facts(facts: Facts, path: Path) -> None:
    """Save `facts` for a later `--facts-in` replay, secrets masked and readable by its owner only; a path that
    cannot be written raises OutputError."""
    from portcullis.collect.audit import save_facts

    try:
        save_facts(facts, str(path))
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}") from exc


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
