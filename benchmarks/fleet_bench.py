"""The fleet service's store at scale, on a throw-away PostgreSQL cluster (Debian's postgresql 15).

1. Ingest: `--reports` audit reports (default 1,000) of `--findings` findings each (default 300), pushed by
   `--engines` agents (default 200, so 5 runs per engine), written through the store (`Store.save`, the code the
   API's POST /api/v1/reports runs, without HTTP). Then `--pushes` more through the real API (`portcullis serve`
   over HTTP, one client) for the push rate an agent sees.
2. Queries: the ones the dashboard and the API run (overview, an engine's page with its change since the previous
   run, findings filtered by engine / severity / rule, trends), each timed as the median of `--runs` after a warm-up,
   and EXPLAIN (ANALYZE, BUFFERS) of each, with the table, index and database sizes.
3. Re-match: `--images` deployed images carrying the real 130-package inventory of the vulnlab bookworm image
   (../shared/vulndata/image-inventory), re-matched against a database of the real Debian tracker records.

    .venv/bin/python benchmarks/fleet_bench.py            # -> benchmarks/results/fleet.json and fleet.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from portcullis.model.findings import Finding, Report, Severity, Status, Summary, Target, TargetKind, ToolInfo  # noqa: E402
from portcullis.model.fleet import DeployedContainer, ImageInventory  # noqa: E402
from portcullis.model.vuln import OsRelease  # noqa: E402
from portcullis.pipelines.history import diff_stored  # noqa: E402
from portcullis.pipelines.rematch import rematch  # noqa: E402
from portcullis.service.tokens import Role  # noqa: E402
from portcullis.store import Store, open_store  # noqa: E402
from portcullis.store.fleet import (  # noqa: E402
    FindingFilter,
    engines,
    find,
    images,
    latest_runs_of,
    previous_run,
    trends,
)
from portcullis.store.rematch import keep_inventory, replace_containers  # noqa: E402
from portcullis.vuln.db import SourceInfo, now_iso, rebuild  # noqa: E402
from portcullis.vuln.sources import load_path  # noqa: E402
from support.fleet import dpkg_base  # noqa: E402
from support.fleet_service import start_server, stop_server  # noqa: E402
from support.postgres import throwaway_cluster  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
BAR_MS = 200.0
INVENTORY = Path("/work/shared/vulndata/image-inventory/vulnlab-debian-bookworm.dpkg.tsv")
TRACKER = ROOT / "tests" / "vuln" / "data" / "debian-tracker-converted.json"
BOOKWORM = OsRelease(id="debian", version_id="12", codename="bookworm")
SEVERITIES = [Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFO]
STATUSES = [Status.FAIL] * 3 + [Status.PASS] * 5 + [Status.MANUAL, Status.SKIP]


def audit(engine: int, run: int, count: int, started: datetime) -> Report:
    """One engine's audit: `count` findings over 120 rules and a few dozen containers; each run differs a little
    from the one before (a failure fixed, another new), as a real fleet's runs do."""
    rng = random.Random(engine * 1000 + run)
    findings = []
    for position in range(count):
        rule = f"CIS-{position % 7 + 1}.{position % 120 + 1}"
        status = STATUSES[(position + engine + (run if position % 23 == 0 else 0)) % len(STATUSES)]
        findings.append(
            Finding(
                rule_id=rule,
                title=f"control {rule}",
                cis=None,
                status=status,
                severity=SEVERITIES[(position * 7 + engine) % 5],
                target=Target(kind=TargetKind.CONTAINER, name=f"/svc-{position % 40}-{rng.randrange(3)}"),
                message=f"{rule} on container svc-{position % 40}: {status.value}",
            )
        )
    return Report(
        command="audit",
        tool=ToolInfo(version="bench"),
        subject="unix:///var/run/docker.sock",
        started_at=started,
        findings=findings,
        summary=Summary.of(findings),
    )


def timed(call: Callable[[], Any], runs: int) -> dict[str, float]:
    call()  # warm-up: plans cached, pages in the buffer cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2)}


def explain(store: Store, sql: str, params: list[Any]) -> list[str]:
    return [row[0] for row in store.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)]


def engine_page(store: Store, name: str) -> None:
    """What /engine?name=… asks of the store: the failures, then each stream's change since its previous run."""
    find(store, FindingFilter(engine=name, statuses=["fail"]), limit=1001)
    for run in latest_runs_of(store, engine=name):
        before = previous_run(store, run)
        if before is not None:
            diff_stored(store, before, run)


def sizes(store: Store) -> dict[str, Any]:
    rows = store.execute(
        "SELECT c.relname, c.relkind, pg_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid ="
        " c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i') ORDER BY pg_relation_size(c.oid) DESC"
    )
    return {
        "database_bytes": int(store.execute("SELECT pg_database_size(current_database())")[0][0]),
        "relations": [{"name": r[0], "kind": "index" if r[1] == "i" else "table", "bytes": int(r[2])} for r in rows],
        "indexes": [r[0] for r in store.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'")],
    }


def ingest(store: Store, reports: int, per_report: int, engine_count: int) -> dict[str, Any]:
    start_time = datetime(2026, 1, 1, tzinfo=UTC)
    build = save = 0.0
    for number in range(reports):
        engine, run = number % engine_count, number // engine_count
        t0 = time.perf_counter()
        report = audit(engine, run, per_report, start_time + timedelta(minutes=number))
        t1 = time.perf_counter()
        store.save(report, agent=f"engine-{engine:04d}", report_uid=f"run-{run}")
        save += time.perf_counter() - t1
        build += t1 - t0
    store.execute("ANALYZE")
    store.commit()
    return {
        "reports": reports,
        "findings_per_report": per_report,
        "engines": engine_count,
        "store_save_s": round(save, 2),
        "reports_per_s": round(reports / save, 1),
        "findings_per_s": round(reports * per_report / save),
        "report_build_s": round(build, 2),
    }


def api_pushes(url: str, count: int, per_report: int, work: Path) -> dict[str, Any]:
    """Pushes through the real service: one agent, sequential, each a new report of `per_report` findings."""
    service = start_server(url, work / "serve.log", "--db", str(work / "no-vuln.db"), "--db-watch", "0")
    try:
        token = service.token("api-agent", Role.AGENT)
        bodies = [json.loads(audit(9999, n, per_report, datetime.now(UTC)).model_dump_json()) for n in range(count)]
        times = []
        for n, body in enumerate(bodies):
            start = time.perf_counter()
            answer = service.call(
                "POST", "/reports", token, json={"report_id": f"p{n}", "agent": "api-agent", "report": body}
            )
            times.append((time.perf_counter() - start) * 1000)
            assert answer.status_code == 201, answer.text
    finally:
        stop_server(service.process)
    size = len(json.dumps({"report_id": "p0", "agent": "api-agent", "report": bodies[0]}))
    return {
        "pushes": count,
        "body_bytes": size,
        "median_ms": round(statistics.median(times), 1),
        "p95_ms": round(sorted(times)[int(len(times) * 0.95) - 1], 1),
        "pushes_per_s_one_client": round(1000 / statistics.median(times), 1),
    }


def rematch_cost(store: Store, count: int, work: Path) -> dict[str, Any]:
    db = work / "vuln.db"
    with rebuild(db) as database:
        for feed in load_path(TRACKER):
            database.replace_source(SourceInfo(feed.name, str(TRACKER), now_iso()), feed.advisories)
    packages = dpkg_base(INVENTORY)
    when = now_iso()
    for n in range(count):
        image_id = "sha256:" + f"{n:064x}"
        keep_inventory(
            store,
            "rematch",
            ImageInventory(image=f"app/{n}:1", image_id=image_id, os_release=BOOKWORM, packages=packages),
            when,
        )
    containers = [
        DeployedContainer(
            id=f"{n:064x}", name=f"app-{n}", image=f"app/{n}:1", image_id="sha256:" + f"{n:064x}", running=True
        )
        for n in range(count)
    ]
    replace_containers(store, "rematch", containers, when)
    store.commit()
    start = time.perf_counter()
    first = rematch(store, db)
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    again = rematch(store, db)
    again_s = time.perf_counter() - start
    return {
        "images": count,
        "packages_per_image": len(packages),
        "database": "Debian tracker records (tests/vuln/data)",
        "first_s": round(first_s, 2),
        "first_new_matches": first.new_matches,
        "again_s": round(again_s, 2),
        "again_new_matches": again.new_matches,
        "ms_per_image": round(again_s * 1000 / count, 1),
    }


QUERIES: dict[str, Callable[[Store], Any]] = {
    "overview: engines": engines,
    "overview: images": images,
    "engine page (failures + change since previous run)": lambda s: engine_page(s, "engine-0042"),
    "findings ?engine=…&status=fail": lambda s: find(
        s, FindingFilter(engine="engine-0042", statuses=["fail"]), limit=101
    ),
    "findings ?severity=critical&status=fail (fleet)": lambda s: find(
        s, FindingFilter(severities=["critical"], statuses=["fail"]), limit=101
    ),
    "findings ?rule=CIS-5.4": lambda s: find(s, FindingFilter(rule="CIS-5.4"), limit=101),
    "trends ?engine=…": lambda s: trends(s, engine="engine-0042", limit=200),
    "trends (fleet, 200 runs)": lambda s: trends(s, limit=200),
}
EXPLAINED = {
    "findings ?engine=…&status=fail": (
        "SELECT f.run_id, f.rule_id FROM findings f JOIN runs r ON r.id = f.run_id WHERE f.run_id IN (SELECT max(id)"
        " FROM runs GROUP BY agent, command, subject) AND f.engine = %s AND f.status IN (%s)"
        " ORDER BY f.run_id DESC, f.position LIMIT 101",
        ["engine-0042", "fail"],
    ),
    "overview: engines": (
        "SELECT f.engine, f.severity, count(*) FROM findings f JOIN runs r ON r.id = f.run_id WHERE f.run_id IN"
        " (SELECT max(id) FROM runs GROUP BY agent, command, subject) AND f.engine IS NOT NULL"
        " GROUP BY f.engine, f.severity",
        [],
    ),
    "trends ?engine=…": (
        "SELECT r.id FROM runs r WHERE r.id IN (SELECT run_id FROM findings WHERE engine = %s)"
        " ORDER BY r.id DESC LIMIT 200",
        ["engine-0042"],
    ),
}


def markdown(result: dict[str, Any]) -> str:
    ing, api, rem = result["ingest"], result["api_push"], result["rematch"]
    lines = [
        "# Fleet store at scale (PostgreSQL 15)",
        "",
        f"Machine: {result['machine']}. Run {result['when']}. Generated by `benchmarks/fleet_bench.py`.",
        "",
        "## Ingest",
        "",
        f"- {ing['reports']} audit reports x {ing['findings_per_report']} findings = "
        f"{ing['reports'] * ing['findings_per_report']:,} findings from {ing['engines']} engines, "
        f"through the store (`Store.save`, what POST /api/v1/reports runs): {ing['store_save_s']} s, "
        f"{ing['reports_per_s']} reports/s, {ing['findings_per_s']:,} findings/s.",
        f"- Through the API (real `portcullis serve`, HTTP, one sequential client, {api['body_bytes']:,}-byte pushes): "
        f"median {api['median_ms']} ms, p95 {api['p95_ms']} ms per push, {api['pushes_per_s_one_client']} pushes/s.",
        "",
        f"## Queries (bar: {BAR_MS:g} ms)",
        "",
        "| query | median ms | max ms | within bar |",
        "|---|---:|---:|---|",
    ]
    for name, numbers in result["queries"].items():
        ok = "yes" if numbers["median_ms"] <= BAR_MS else "**no**"
        lines.append(f"| {name} | {numbers['median_ms']} | {numbers['max_ms']} | {ok} |")
    lines += [
        "",
        "## Sizes",
        "",
        f"Database: {result['sizes']['database_bytes'] / 2**20:.1f} MiB.",
        "",
        "| relation | kind | MiB |",
        "|---|---|---:|",
    ]
    for rel in result["sizes"]["relations"][:16]:
        lines.append(f"| {rel['name']} | {rel['kind']} | {rel['bytes'] / 2**20:.2f} |")
    lines += ["", "Indexes:", "", "```"] + result["sizes"]["indexes"] + ["```", "", "## Plans (EXPLAIN ANALYZE)", ""]
    for name, plan in result["plans"].items():
        lines += [f"### {name}", "", "```", *plan, "```", ""]
    lines += [
        "## Re-match",
        "",
        f"{rem['images']} deployed images of {rem['packages_per_image']} Debian packages each, against "
        f"{rem['database']}: first match {rem['first_s']} s ({rem['first_new_matches']} matches, all new), "
        f"again {rem['again_s']} s ({rem['again_new_matches']} new): {rem['ms_per_image']} ms per image.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=1000)
    parser.add_argument("--findings", type=int, default=300)
    parser.add_argument("--engines", type=int, default=200)
    parser.add_argument("--pushes", type=int, default=50)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS)
    options = parser.parse_args()
    result: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "bar_ms": BAR_MS,
    }
    with (
        throwaway_cluster("-c shared_buffers=128MB") as server,
        tempfile.TemporaryDirectory(prefix="portcullis-fleet-bench-") as scratch,
    ):
        work = Path(scratch)
        store = open_store(server)
        try:
            result["ingest"] = ingest(store, options.reports, options.findings, options.engines)
            result["queries"] = {name: timed(lambda q=query: q(store), options.runs) for name, query in QUERIES.items()}
            store.release()
            result["plans"] = {name: explain(store, sql, params) for name, (sql, params) in EXPLAINED.items()}
            store.release()
            result["sizes"] = sizes(store)
            store.release()
            result["rematch"] = rematch_cost(store, options.images, work)
        finally:
            store.close()
        bench_db = server.replace("/postgres?", "/bench_api?")
        import psycopg

        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute("CREATE DATABASE bench_api")
        result["api_push"] = api_pushes(bench_db, options.pushes, options.findings, work)
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "fleet.json").write_text(json.dumps(result, indent=2) + "\n")
    (options.out / "fleet.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
