"""How `portcullis audit` scales with the number of containers: wall time and Engine API calls.

By default the containers live on a private second dockerd (portcullis.harden.trial_daemon), so the counts
are exact and the user's engine is left alone; `--host` benchmarks an existing engine instead (the
containers are labelled `portcullis.test=1` and removed afterwards). For each size the CLI runs
`--runs` times (median wall time, Python start-up included, as a user sees it) and one extra audit
through the API counts the calls (`EngineConnection.calls`).

    .venv/bin/python benchmarks/audit_bench.py                # 7, 67 and 500 running containers
    .venv/bin/python benchmarks/audit_bench.py --sizes 7 67 --runs 5
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import docker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from portcullis.collect.audit import collect_facts  # noqa: E402
from portcullis.collect.engine import connect  # noqa: E402
from portcullis.harden.trial_daemon import TrialDaemon, copy_image  # noqa: E402
from support.containers import BUSYBOX, ContainerFactory  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
# The bar, and docker-bench-security 1.6.0 measured on this VM for reference.
BAR_SECONDS_AT_67 = 2.0
BAR_MS_PER_EXTRA_CONTAINER = 15.0
DOCKER_BENCH_SECONDS = {7: 14.6, 67: 99.0}
PARALLEL_STARTS = 8


def cli_audit_seconds(host: str) -> tuple[float, int]:
    """Wall time of one `portcullis audit` run, and its exit code (0 or 2 are both a completed audit)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "portcullis", "audit", "--host", host, "-f", "json", "-o", os.devnull],
        capture_output=True,
        text=True,
        timeout=600,
    )
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 2):
        raise SystemExit(f"audit_bench: portcullis audit failed ({done.returncode}): {done.stderr.strip()}")
    return elapsed, done.returncode


def api_calls(host: str) -> tuple[int, int, int, float]:
    """Calls, containers and images seen by one collection through the API, and its duration."""
    started = time.perf_counter()
    conn = connect(host)
    try:
        facts = collect_facts(conn)
    finally:
        conn.close()
    return conn.calls, len(facts.containers), len(facts.images), time.perf_counter() - started


def grow_to(factory: ContainerFactory, client: docker.DockerClient, size: int) -> None:
    """Start busybox sleeps until the engine holds `size` containers of this run."""
    have = len(factory.session_containers())
    roles = [f"c{index:04d}" for index in range(have, size)]
    with ThreadPoolExecutor(max_workers=PARALLEL_STARTS) as pool:
        list(pool.map(lambda role: factory.run(role, "sleep 86400"), roles))
    running = len(client.containers.list(filters={"label": f"portcullis.test.session={factory.session}"}))
    if running != size:
        raise SystemExit(f"audit_bench: {running} containers run, expected {size}")


def measure(host: str, client: docker.DockerClient, sizes: list[int], runs: int) -> list[dict[str, Any]]:
    factory = ContainerFactory(client, prefix=f"pc-bench-{os.getpid()}")
    rows: list[dict[str, Any]] = []
    try:
        for size in sizes:
            started = time.perf_counter()
            grow_to(factory, client, size)
            setup = time.perf_counter() - started
            cli_audit_seconds(host)  # warm the page cache and the engine once
            times = [cli_audit_seconds(host)[0] for _ in range(runs)]
            calls, containers, images, collect = api_calls(host)
            rows.append(
                {
                    "containers": containers,
                    "images": images,
                    "cli_seconds_median": round(statistics.median(times), 3),
                    "cli_seconds_runs": [round(t, 3) for t in times],
                    "collect_seconds": round(collect, 3),
                    "api_calls": calls,
                    "setup_seconds": round(setup, 1),
                }
            )
            print(f"{containers:4d} containers: audit {statistics.median(times):.2f} s, {calls} API calls", flush=True)
    finally:
        left = factory.remove_all()
        if left:
            print(f"audit_bench: could not remove {left}", file=sys.stderr)
    return rows


def derived(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cost of each extra container between consecutive sizes."""
    steps = []
    for low, high in itertools.pairwise(rows):
        extra = high["containers"] - low["containers"]
        steps.append(
            {
                "from": low["containers"],
                "to": high["containers"],
                "ms_per_extra_container": round(
                    1000 * (high["cli_seconds_median"] - low["cli_seconds_median"]) / extra, 2
                ),
                "api_calls_per_extra_container": round((high["api_calls"] - low["api_calls"]) / extra, 3),
            }
        )
    return steps


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# `portcullis audit` benchmark",
        "",
        f"Measured {result['measured_at']} on {result['machine']['cpus']} CPUs, Docker {result['engine_version']}, "
        f"engine: {result['engine']}. Wall time is the median of {result['runs']} CLI runs "
        "(`portcullis audit -f json`, Python start-up included).",
        "",
        "| containers | audit wall time (s) | API calls | collection only (s) | docker-bench-security (s) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in result["sizes"]:
        reference = DOCKER_BENCH_SECONDS.get(row["containers"])
        lines.append(
            f"| {row['containers']} | {row['cli_seconds_median']:.2f} | {row['api_calls']} | "
            f"{row['collect_seconds']:.2f} | {reference if reference is not None else '–'} |"
        )
    lines += ["", "| step | ms per extra container | API calls per extra container |", "|---|---:|---:|"]
    for step in result["steps"]:
        lines.append(
            f"| {step['from']} → {step['to']} | {step['ms_per_extra_container']:.2f} | "
            f"{step['api_calls_per_extra_container']:.2f} |"
        )
    bar = result["bar"]
    verdict = {True: "met", False: "NOT met", None: "not measured"}
    lines += [
        "",
        f"Bar: ≤ {bar['seconds_at_67']} s at 67 containers ({verdict[bar['met_at_67']]}), "
        f"≤ {bar['ms_per_extra_container']} ms per extra container ({verdict[bar['met_per_container']]}).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[7, 67, 500])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--host", help="benchmark this engine instead of a private second dockerd")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    sizes = sorted(set(args.sizes))

    daemon: TrialDaemon | None = None
    if args.host:
        host = args.host
    else:
        # A /21: the 500-container size needs more addresses than a /24 holds.
        daemon = TrialDaemon(config={}, bridge_address="172.30.88.1/21")
        daemon.start()
        host = daemon.host
    try:
        with closing(docker.DockerClient(base_url=host, timeout=300)) as client:
            if daemon is not None:
                with closing(docker.from_env()) as main_engine:
                    copy_image(BUSYBOX, main_engine.api, client)
            rows = measure(host, client, sizes, args.runs)
            engine_version = client.version()["Version"]
    finally:
        if daemon is not None:
            daemon.stop()

    steps = derived(rows)
    at_67 = next((r for r in rows if r["containers"] == 67), None)
    result = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()},
        "engine": "private second dockerd (vfs)" if daemon is not None else host,
        "engine_version": engine_version,
        "runs": args.runs,
        "sizes": rows,
        "steps": steps,
        "docker_bench_security_seconds": DOCKER_BENCH_SECONDS,
        "bar": {
            "seconds_at_67": BAR_SECONDS_AT_67,
            "ms_per_extra_container": BAR_MS_PER_EXTRA_CONTAINER,
            "met_at_67": None if at_67 is None else at_67["cli_seconds_median"] <= BAR_SECONDS_AT_67,
            "met_per_container": all(s["ms_per_extra_container"] <= BAR_MS_PER_EXTRA_CONTAINER for s in steps),
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "audit.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    (args.out / "audit.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))


if __name__ == "__main__":
    main()
