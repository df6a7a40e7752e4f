"""The audit flow: facts (collected or replayed) through the selected CIS rules into one Report."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from portcullis import __version__
from portcullis.checks.registry import Rule, UnknownSelector, all_rules, select_rules
from portcullis.checks.runner import run_rules
from portcullis.data.benchmark import Benchmark, UnknownBenchmark, load_benchmark
from portcullis.model.facts import Facts
from portcullis.model.findings import (
    CollectionProblem,
    Finding,
    Report,
    Severity,
    Status,
    Summary,
    Target,
    TargetKind,
    ToolInfo,
)
from portcullis.pipelines.errors import OutputError, SubjectError, UsageError
from portcullis.pipelines.exposure import ENGINE_RULE_PREFIX, ExposureOptions, engine_exposure
from portcullis.pipelines.vulnerabilities import refreshed_eol_tables

if TYPE_CHECKING:
    from portcullis.collect.engines_file import EngineSpec

UNREACHABLE_RULE = "DKR-ENGINE-UNREACHABLE"
# Each engine is mostly waiting on its daemon's answers; more than this many at once only queues on the CPUs.
PARALLEL_ENGINES = 16


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
    facts: Facts,
    select: list[str],
    skip: list[str],
    level: int | None,
    benchmark: Benchmark | None = None,
    exposure: ExposureOptions | None = None,
) -> Report:
    """Judge `facts` against `benchmark` (the newest available by default) and our own audit rules; with `exposure`,
    the end-of-life tables refreshed beside the database are used, and the host's engine components and kernel are
    first matched against the database (only when a DKR-ENGINE rule that reads the verdicts is selected: the
    database is not opened for nothing)."""
    benchmark = benchmark or load_benchmark()
    rules = audit_rules(select, skip, level, benchmark)
    if exposure is not None:
        eol_tables, eol_problems = refreshed_eol_tables(exposure.db_path)
        update: dict[str, object] = {"eol_tables": eol_tables, "problems": facts.problems + eol_problems}
        if any(r.id.startswith(ENGINE_RULE_PREFIX) for r in rules):
            update["engine_exposure"] = engine_exposure(facts, exposure)
        facts = facts.model_copy(update=update)
    findings = run_rules(rules, facts)
    return Report(
        command="audit",
        tool=ToolInfo(version=__version__, benchmark=benchmark.label),
        subject=facts.engine.endpoint,
        findings=findings,
        summary=Summary.of(findings),
        problems=facts.problems,
    )


def engines_to_audit(hosts: list[str], engines_file: Path | None) -> list[EngineSpec]:
    """The engines of a many-engine run: each --host (named by its address), then those `engines_file` lists.
    A bad file raises UsageError (one line); the same name twice does too, since findings are told apart by it."""
    from portcullis.collect import CollectionError
    from portcullis.collect.engine import validate_docker_host
    from portcullis.collect.engines_file import EngineSpec, load_engines

    try:
        for host in hosts:  # as a single --host is told, rather than as a validation error
            validate_docker_host(host)
        engines = [EngineSpec(name=host, host=host) for host in hosts]
        if engines_file is not None:
            engines += load_engines(engines_file)
    except CollectionError as exc:
        raise UsageError(str(exc)) from exc
    names = [engine.name for engine in engines]
    if len(set(names)) != len(names):
        raise UsageError(f"engine {next(n for n in names if names.count(n) > 1)!r} is named twice")
    return engines


def audit_engines(
    engines: list[EngineSpec],
    select: list[str],
    skip: list[str],
    level: int | None,
    benchmark: Benchmark,
    log: Callable[[str], None] = _silent,
    exposure: ExposureOptions | None = None,
) -> Report:
    """Audit every engine at once (a thread each: collection waits on the daemons) into one Report whose findings
    name their engine; an engine that cannot be reached or dies part-way is one error finding, the rest complete."""
    with ThreadPoolExecutor(max_workers=min(PARALLEL_ENGINES, len(engines))) as pool:
        parts = list(
            pool.map(lambda engine: _audit_one(engine, select, skip, level, benchmark, log, exposure), engines)
        )
    findings = [finding for part_findings, _ in parts for finding in part_findings]
    return Report(
        command="audit",
        tool=ToolInfo(version=__version__, benchmark=benchmark.label),
        subject=", ".join(engine.name for engine in engines),
        findings=findings,
        summary=Summary.of(findings),
        problems=[problem for _, part_problems in parts for problem in part_problems],
    )


def _audit_one(
    engine: EngineSpec,
    select: list[str],
    skip: list[str],
    level: int | None,
    benchmark: Benchmark,
    log: Callable[[str], None],
    exposure: ExposureOptions | None,
) -> tuple[list[Finding], list[CollectionProblem]]:
    from portcullis.collect import CollectionError
    from portcullis.collect.audit import collect_facts
    from portcullis.collect.engine import connect

    try:
        conn = connect(engine.host, tls_flags=engine.tls_flags())
        try:
            facts = collect_facts(conn)
        finally:
            conn.close()
    except CollectionError as exc:
        log(f"{engine.name}: {exc}")
        return [_unreachable(engine, str(exc))], []
    log(f"{engine.name}: collected {len(facts.containers)} containers, {len(facts.images)} images")
    report = audit_report(facts, select, skip, level, benchmark, exposure)
    findings = [finding.model_copy(update={"engine": engine.name}) for finding in report.findings]
    problems = [problem.model_copy(update={"fact": f"{engine.name}: {problem.fact}"}) for problem in report.problems]
    return findings, problems


def _unreachable(engine: EngineSpec, reason: str) -> Finding:
    return Finding(
        rule_id=UNREACHABLE_RULE,
        title="The engine answers the audit",
        cis=None,
        status=Status.ERROR,
        severity=Severity.HIGH,
        target=Target(kind=TargetKind.DAEMON, name=engine.host),
        message=reason,
        remediation="start the engine, or correct its address and TLS material",
        engine=engine.name,
    )
