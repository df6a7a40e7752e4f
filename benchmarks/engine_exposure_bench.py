"""What matching the engine's components and the kernel against the vulnerability database adds to an audit
(DKR-ENGINE-001/002, issue 17 §3). The bar: well under 0.2 s per audit.

On this host's real facts (collected once from the engine) and a database of realistic size (the whole PyPI
advisory database, every Alpine secdb release and the runc records of tests/vuln/data/engine):
1. in process, warm: `engine_exposure` alone (open the database, match, close), median of REPEATS calls;
2. in a fresh process, cold: its first call, with the imports it pulls in (the matcher, the CVSS library);
3. the whole CLI, `portcullis audit --facts-in F` with `--db` against `--no-vulns`, alternating, median wall time.

    .venv/bin/python benchmarks/engine_exposure_bench.py [--repeats 30]

Writes benchmarks/results/engine-exposure.{json,md}, with the machine's load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "tests" / "vuln"))
from vulndata import DATA, PYPI_DIR, SECDB_DIR, build_db  # noqa: E402

from portcullis.collect.audit import collect_facts, save_facts  # noqa: E402
from portcullis.collect.engine import connect  # noqa: E402
from portcullis.pipelines.exposure import ExposureOptions, engine_exposure  # noqa: E402

COLD = """
import sys, time
from portcullis.collect.audit import load_facts
facts = load_facts(sys.argv[1])
from portcullis.pipelines.exposure import ExposureOptions, engine_exposure
start = time.perf_counter()
engine_exposure(facts, ExposureOptions(db_path=__import__("pathlib").Path(sys.argv[2])))
print(time.perf_counter() - start)
"""


def _cli(facts: Path, *extra: str) -> float:
    command = [sys.executable, "-m", "portcullis", "audit", "--no-store", "-f", "json", "--facts-in", str(facts)]
    start = time.perf_counter()
    subprocess.run([*command, *extra], capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        db = build_db(work / "vuln.db", PYPI_DIR, SECDB_DIR, DATA / "engine")
        facts = collect_facts(connect())
        facts_file = work / "facts.json"
        save_facts(facts, str(facts_file))
        options = ExposureOptions(db_path=db)
        verdict = engine_exposure(facts, options)
        warm = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            engine_exposure(facts, options)
            warm.append(time.perf_counter() - start)
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        cold = [
            float(
                subprocess.run(
                    [sys.executable, "-c", COLD, str(facts_file), str(db)],
                    capture_output=True,
                    text=True,
                    check=True,
                    env=env,
                ).stdout
            )
            for _ in range(5)
        ]
        with_db, without = [], []
        for _ in range(5):
            with_db.append(_cli(facts_file, "--db", str(db)))
            without.append(_cli(facts_file, "--no-vulns"))
        size = db.stat().st_size
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()},
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "database_bytes": size,
        "components": len(facts.host.engine_components or []),
        "exposures": len(verdict.exposures) if verdict else None,
        "unjudged": len(verdict.unjudged) if verdict else None,
        "warm_median_s": round(statistics.median(warm), 4),
        "warm_max_s": round(max(warm), 4),
        "cold_first_call_median_s": round(statistics.median(cold), 4),
        "cli_with_db_median_s": round(statistics.median(with_db), 3),
        "cli_no_vulns_median_s": round(statistics.median(without), 3),
    }
    result["cli_added_s"] = round(result["cli_with_db_median_s"] - result["cli_no_vulns_median_s"], 3)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "engine-exposure.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / "engine-exposure.md").write_text(
        "# Engine and kernel exposure: added cost per audit\n\n"
        f"{result['date']}, {result['machine']['cpus']} CPUs, load {result['load_before']} before,"
        f" {result['load_after']} after (other engineers' work shares the machine).\n"
        f"Database {size / 1e6:.1f} MB (whole PyPI advisory db, Alpine secdb, runc records);"
        f" {result['components']} engine components and the kernel of this host.\n\n"
        "| measure | seconds |\n|---|---|\n"
        f"| engine_exposure, warm, median of {args.repeats} (max) | {result['warm_median_s']}"
        f" ({result['warm_max_s']}) |\n"
        f"| engine_exposure, first call in a fresh process, imports included (median of 5) |"
        f" {result['cold_first_call_median_s']} |\n"
        f"| `audit --facts-in --db`, whole CLI (median of 5) | {result['cli_with_db_median_s']} |\n"
        f"| `audit --facts-in --no-vulns`, whole CLI (median of 5) | {result['cli_no_vulns_median_s']} |\n"
        f"| added by the matching, CLI medians' difference | {result['cli_added_s']} |\n\n"
        "Bar: well under 0.2 s per audit.\n"
    )
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
