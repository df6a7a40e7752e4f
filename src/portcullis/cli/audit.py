"""`portcullis audit`: the CIS Docker Benchmark against a live engine, its host and files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from portcullis.cli.common import (
    EXIT_FINDINGS,
    BaselineOption,
    ExitCodeOption,
    FailOn,
    IgnoreFileOption,
    NoStoreOption,
    OutputFormat,
    SeverityOption,
    ShowAllOption,
    StoreOption,
    StrictOption,
    TLSCACertOption,
    TLSCertOption,
    TLSKeyOption,
    TLSVerifyOption,
    die,
    emit,
    history_options,
    listed,
    parse_severities,
    say,
    use_engine_tls,
)
from portcullis.pipelines.audit import (
    audit_engines,
    audit_report,
    audit_rules,
    choose_benchmark,
    engines_to_audit,
    gather_facts,
    write_facts,
)
from portcullis.pipelines.errors import PipelineError, UsageError
from portcullis.pipelines.exposure import ExposureOptions, check_named_database
from portcullis.pipelines.measurements import load_neighbours
from portcullis.pipelines.trust import attach_running_signatures, load_trust_policy
from portcullis.pipelines.vulnerabilities import DEFAULT_MAX_AGE_DAYS


def audit(
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f", help="report format")] = OutputFormat.text,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the report here, not stdout")] = None,
    show_all: ShowAllOption = False,
    fail_on: Annotated[
        FailOn | None, typer.Option("--fail-on", help="exit 2 when a failure at or above this severity exists")
    ] = None,
    severity: SeverityOption = None,
    select: Annotated[list[str] | None, typer.Option("--select", help="only these rule ids or prefixes")] = None,
    skip: Annotated[list[str] | None, typer.Option("--skip", help="leave out these rule ids or prefixes")] = None,
    level: Annotated[int | None, typer.Option("--level", min=1, max=2, help="1: level-1 controls only")] = None,
    benchmark_id: Annotated[
        str | None,
        typer.Option("--benchmark", help="the benchmark to audit against, e.g. cis-docker-1.8.0 (default: the newest)"),
    ] = None,
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            "-H",
            help="engine address (default: DOCKER_HOST, the active context, the local socket); "
            "repeat it or give a comma list to audit several engines at once",
        ),
    ] = None,
    engines_file: Annotated[
        Path | None,
        typer.Option("--engines", help="a YAML list of engines (name, host, TLS material) to audit at once"),
    ] = None,
    tlsverify: TLSVerifyOption = False,
    tlscacert: TLSCACertOption = None,
    tlscert: TLSCertOption = None,
    tlskey: TLSKeyOption = None,
    facts_out: Annotated[Path | None, typer.Option("--facts-out", help="save the collected facts")] = None,
    facts_in: Annotated[
        Path | None, typer.Option("--facts-in", help="replay an audit from saved facts; no engine needed")
    ] = None,
    no_vulns: Annotated[
        bool,
        typer.Option("--no-vulns", help="do not match the engine's components and the kernel against advisories"),
    ] = False,
    db: Annotated[Path | None, typer.Option("--db", help="vulnerability database (default: the user cache)")] = None,
    db_max_age: Annotated[
        float,
        typer.Option(
            "--db-max-age",
            min=0,
            help="days the database's oldest source may be old; older is an error under --fail-on (0: no limit)",
        ),
    ] = DEFAULT_MAX_AGE_DAYS,
    ignore_file: IgnoreFileOption = None,
    strict: StrictOption = False,
    exit_code: ExitCodeOption = EXIT_FINDINGS,
    store: StoreOption = None,
    no_store: NoStoreOption = False,
    baseline: BaselineOption = None,
    trust_policy: Annotated[
        Path | None,
        typer.Option(
            "--trust-policy",
            metavar="FILE",
            help="CIS-4.12 verifies the cosign signatures of running containers' images against this policy",
        ),
    ] = None,
    verify_key: Annotated[
        list[Path] | None,
        typer.Option("--verify-key", metavar="KEY.pub", help="a cosign public key trusted for every repository"),
    ] = None,
    neighbours: Annotated[
        Path | None,
        typer.Option(
            "--neighbours",
            metavar="FILE.json",
            help="attach a noisy-neighbour matrix measured on this host (`portcullis neighbours -f json`): "
            "the HTML report shows its heat map and claims, JSON carries it",
        ),
    ] = None,
) -> None:
    """Audit a Docker engine, its host and its files against the CIS Docker Benchmark.

    Examples: `portcullis audit`, `portcullis audit -f sarif -o audit.sarif --fail-on high`,
    `portcullis audit --benchmark cis-docker-1.8.0`,
    `portcullis audit --select CIS-5 --skip CIS-5.28`, `portcullis audit --facts-in facts.json`,
    `portcullis audit --db vuln.db --select DKR-ENGINE` (the engine's binaries and the kernel against advisories),
    `portcullis audit -H tcp://a:2376,tcp://b:2376 --engines engines.yaml`,
    `portcullis audit --trust-policy trust.yaml --select CIS-4.12`,
    `portcullis audit -f html -o audit.html --neighbours benchmarks/results/neighbours.json`.
    """
    use_engine_tls(tlsverify, tlscacert, tlscert, tlskey)
    select, skip, hosts = listed(select), listed(skip), listed(host)
    severities = parse_severities(severity)  # a typo should not cost a whole audit either
    history = history_options(store, no_store, baseline)
    many = len(hosts) > 1 or engines_file is not None
    exposure = ExposureOptions(
        enabled=not no_vulns, db_path=db, gated=fail_on not in (None, FailOn.none), max_age_days=db_max_age
    )
    try:
        benchmark = choose_benchmark(benchmark_id)
        audit_rules(select, skip, level, benchmark)  # a misspelt selector should not cost a whole collection
        trust = load_trust_policy(trust_policy, verify_key or [])
        isolation = load_neighbours(neighbours) if neighbours is not None else None
        check_named_database(exposure)
        if many:
            if facts_in is not None or facts_out is not None:
                raise UsageError("--facts-in and --facts-out take one engine, not --engines or several --host")
            if trust is not None:
                raise UsageError("--trust-policy and --verify-key take one engine, not --engines or several --host")
            if isolation is not None:
                raise UsageError(
                    "--neighbours is measured on one host: it takes one engine, not --engines or several --host"
                )
            report = audit_engines(engines_to_audit(hosts, engines_file), select, skip, level, benchmark, say, exposure)
        else:
            facts = gather_facts(hosts[0] if hosts else None, facts_in, log=say)
            if trust is not None:
                looked_up = attach_running_signatures(facts, trust)
                say(f"looked up the signatures of {looked_up} images of running containers")
            if facts_out is not None:
                write_facts(facts, facts_out)
            report = audit_report(facts, select, skip, level, benchmark, exposure)
            report.isolation = isolation
    except PipelineError as exc:
        die(str(exc))
    raise typer.Exit(
        emit(
            report,
            output_format,
            output,
            fail_on,
            ignore_file=ignore_file,
            strict=strict,
            exit_code=exit_code,
            show_all=show_all,
            severities=severities,
            history=history,
        )
    )
