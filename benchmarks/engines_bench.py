"""Many engines in one `portcullis audit`: N private dockerds audited in one run (in parallel) against the same
engines audited one by one, as a user would script it today.

Each engine is a portcullis.harden.trial_daemon.TrialDaemon (own socket, roots and bridge) holding a few running
busybox containers copied from the main engine. Every number is the wall time of a CLI run, Python start-up
included: the one-by-one sum pays that start-up once per engine, the parallel run once.

    .venv/bin/python benchmarks/engines_bench.py                  # 20 engines, 3 containers each
    .venv/bin/python benchmarks/engines_bench.py --engines 5 --containers 0
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from portcullis.harden.trial_daemon import TrialDaemon, copy_image  # noqa: E402
from support.containers import BUSYBOX  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
# One /24 per engine in a range no other helper hands out (trial_daemon's default is 10.213.n.0/24).
BRIDGE = "10.231.{n}.1/24"


def audit_seconds(hosts: list[str]) -> tuple[float, dict[str, Any]]:
    """Wall time of one `portcullis audit -H …` over `hosts`, and its JSON report."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "portcullis", "audit", "-H", ",".join(hosts), "-f", "json"],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 2):
        raise SystemExit(f"engines_bench: portcullis audit failed ({done.returncode}): {done.stderr.strip()}")
    report: dict[str, Any] = json.loads(done.stdout)
    return elapsed, report


def start_engines(stack: ExitStack, count: int, containers: int) -> list[TrialDaemon]:
    main = docker.APIClient(timeout=300)
    engines: list[TrialDaemon] = []
    for index in range(count):
        engine = TrialDaemon({}, bridge_address=BRIDGE.format(n=index + 1))
        stack.callback(engine.stop)  # registered first: a start that fails half-way is still cleaned up
        engine.start()
        engines.append(engine)
        if containers:
            client = engine.client()
            copy_image(BUSYBOX, main, client)
            for _ in range(containers):
                client.containers.run(BUSYBOX, "sleep 86400", detach=True, network_mode="none")
            client.close()
        print(f"engines_bench: engine {index + 1}/{count} up", file=sys.stderr)
    main.close()
    return engines


def write_results(result: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "engines.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    singles = result["single_seconds"]
    lines = [
        "# Many engines in one `portcullis audit`",
        "",
        f"Measured {result['measured_at']} on {result['cpus']} CPUs, {result['engines']} private dockerds (vfs), "
        f"{result['containers_per_engine']} running containers each. Wall time of CLI runs "
        "(`portcullis audit -f json`, Python start-up included).",
        "",
        "| run | wall time (s) |",
        "|---|---:|",
        f"| all {result['engines']} engines in one run (parallel) | {result['parallel_seconds']:.2f} |",
        f"| slowest single engine | {max(singles):.2f} |",
        f"| fastest single engine | {min(singles):.2f} |",
        f"| sum of the {result['engines']} single runs (one by one) | {sum(singles):.2f} |",
        "",
        f"One parallel run takes {result['parallel_seconds'] / max(singles):.1f}× the slowest single engine and "
        f"{result['parallel_seconds'] / sum(singles):.2f}× the one-by-one sum. The engines share "
        f"{result['cpus']} CPUs: collection mostly waits on the daemons, but reading the host's files and judging "
        "the rules is CPU work done once per engine, so the parallel run cannot approach the slowest single one.",
        "",
        f"Findings: {result['findings_parallel']} in the parallel run, {result['findings_single']} over the single "
        "runs.",
        "",
    ]
    (RESULTS / "engines.md").write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", type=int, default=20)
    parser.add_argument("--containers", type=int, default=3, help="running containers per engine")
    args = parser.parse_args()
    with ExitStack() as stack:
        engines = start_engines(stack, args.engines, args.containers)
        hosts = [engine.host for engine in engines]
        audit_seconds(hosts[:1])  # warm the page cache (modules, host files) before anything is timed
        parallel, report = audit_seconds(hosts)
        singles: list[float] = []
        single_findings = 0
        for host in hosts:
            seconds, alone = audit_seconds([host])
            singles.append(seconds)
            single_findings += len(alone["findings"])
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "engines": args.engines,
        "containers_per_engine": args.containers,
        "parallel_seconds": round(parallel, 3),
        "single_seconds": [round(s, 3) for s in singles],
        "slowest_single_seconds": round(max(singles), 3),
        "sum_single_seconds": round(sum(singles), 3),
        "findings_parallel": len(report["findings"]),
        "findings_single": single_findings,
    }
    write_results(result)
    print(json.dumps({k: v for k, v in result.items() if k != "single_seconds"}, indent=1))


if __name__ == "__main__":
    main()
