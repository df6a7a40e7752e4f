"""Retention at scale: how long pruning takes on each store backend, and what trimming the layer cache costs a scan.

1. Store: `--engines` subjects (default 50) with `--runs-per` audit runs each (default 8) of `--findings` findings
   (default 300): 120,000 findings. Every run but each subject's newest is 30+ days old, so
   `prune(keep_last=1, older_than=10 days)` removes 350 runs and 105,000 findings in one transaction. Timed on SQLite
   (a file in a temp dir) and on PostgreSQL 15 (a throw-away cluster, tests/support/postgres.py): the dry run (the
   same selection and counts, nothing removed) and the prune itself, and the store's size before and after.
2. Layer cache: `--entries` entry files (default 5,000, 2-40 KiB) with spread last-use times; timed: the listing a
   scan pays after every run when under the cap (nothing removed), and trimming to half the size.

    .venv/bin/python benchmarks/retention_bench.py     # -> benchmarks/results/retention.json and retention.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from portcullis.collect.image.layer_cache import INDEX_DIR, evict  # noqa: E402
from portcullis.model.findings import Finding, Report, Severity, Status, Summary, Target, TargetKind, ToolInfo  # noqa: E402
from portcullis.store import Store, open_store  # noqa: E402
from portcullis.store.retention import Retention, prune  # noqa: E402
from support.postgres import throwaway_cluster  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
NOW = datetime.now(UTC)


def _report(engine: int, run: int, runs_per: int, findings: int) -> Report:
    age = timedelta(days=1) if run == runs_per - 1 else timedelta(days=30 + runs_per - run)
    items = [
        Finding(
            rule_id=f"CIS-{i % 120}",
            title="t",
            cis=None,
            status=Status.FAIL if i % 3 else Status.PASS,
            severity=Severity.HIGH,
            target=Target(kind=TargetKind.CONTAINER, name=f"c{i}"),
            message=f"finding {i} of engine {engine}",
        )
        for i in range(findings)
    ]
    return Report(
        command="audit",
        tool=ToolInfo(version="bench"),
        subject=f"tcp://engine-{engine}:2376",
        started_at=NOW - age,
        findings=items,
        summary=Summary.of(items),
    )


def _size(store: Store, postgres: bool, path: Path | None) -> int:
    if postgres:
        return int(store.execute("SELECT pg_database_size(current_database())")[0][0])
    assert path is not None
    return path.stat().st_size


def bench_store(location: str, postgres: bool, args: argparse.Namespace) -> dict[str, Any]:
    store = open_store(location)
    path = None if postgres else Path(location)
    started = time.perf_counter()
    for run in range(args.runs_per):  # interleaved, as agents push
        for engine in range(args.engines):
            store.save(_report(engine, run, args.runs_per, args.findings))
    filled = time.perf_counter() - started
    if postgres:
        store.execute("ANALYZE")
        store.commit()
    total = int(store.execute("SELECT count(*) FROM findings")[0][0])
    size_before = _size(store, postgres, path)
    retention = Retention(keep_last=1, older_than=NOW - timedelta(days=10))
    started = time.perf_counter()
    looked = prune(store, retention, dry_run=True)
    dry = time.perf_counter() - started
    started = time.perf_counter()
    pruned = prune(store, retention)
    took = time.perf_counter() - started
    left = int(store.execute("SELECT count(*) FROM findings")[0][0])
    runs_left = int(store.execute("SELECT count(*) FROM runs")[0][0])
    store.close()
    assert (len(looked.runs), looked.findings) == (len(pruned.runs), pruned.findings)
    return {
        "backend": "postgresql 15" if postgres else "sqlite " + __import__("sqlite3").sqlite_version,
        "findings_before": total,
        "fill_seconds": round(filled, 2),
        "runs_removed": len(pruned.runs),
        "findings_removed": pruned.findings,
        "dry_run_seconds": round(dry, 3),
        "prune_seconds": round(took, 3),
        "findings_left": left,
        "runs_left": runs_left,
        "store_bytes_before": size_before,
    }


def bench_cache(entries: int) -> dict[str, Any]:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        layers = root / INDEX_DIR / "layers"
        layers.mkdir(parents=True, mode=0o700)
        os.chmod(root / INDEX_DIR, 0o700)
        total = 0
        now = time.time()
        for n in range(entries):
            path = layers / f"{n:064x}"
            size = rng.randint(2, 40) * 1024
            path.write_bytes(b"\0" * size)
            used = now - rng.uniform(0, 90 * 86400)
            os.utime(path, (used, used))
            total += size
        started = time.perf_counter()
        assert evict(root, max_bytes=total) == (0, 0)
        listing = time.perf_counter() - started
        started = time.perf_counter()
        files, removed = evict(root, max_bytes=total // 2)
        trimming = time.perf_counter() - started
    return {
        "entries": entries,
        "bytes": total,
        "under_cap_seconds": round(listing, 4),
        "trim_to_half_seconds": round(trimming, 4),
        "trim_removed_files": files,
        "trim_removed_bytes": removed,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Retention: pruning the store, trimming the layer cache",
        "",
        f"Machine: {result['machine']}. Run {result['when']}, load average before {result['load_before']}, after "
        f"{result['load_after']}. Generated by `benchmarks/retention_bench.py`.",
        "",
        "| backend | findings | runs removed | findings removed | dry run | prune (one transaction) | store before |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in result["stores"]:
        lines.append(
            f"| {s['backend']} | {s['findings_before']:,} | {s['runs_removed']} | {s['findings_removed']:,} | "
            f"{s['dry_run_seconds']} s | {s['prune_seconds']} s | {s['store_bytes_before'] / 1e6:.1f} MB |"
        )
    c = result["cache"]
    lines += [
        "",
        f"Layer cache of {c['entries']:,} entries ({c['bytes'] / 1e6:.0f} MB): the check after a scan under the cap "
        f"takes {c['under_cap_seconds'] * 1000:.1f} ms; trimming to half removes {c['trim_removed_files']:,} entries "
        f"in {c['trim_to_half_seconds'] * 1000:.1f} ms.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", type=int, default=50)
    parser.add_argument("--runs-per", type=int, default=8)
    parser.add_argument("--findings", type=int, default=300)
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    before = [round(x, 2) for x in os.getloadavg()]
    stores = []
    with tempfile.TemporaryDirectory() as temp:
        stores.append(bench_store(str(Path(temp) / "history.sqlite3"), False, args))
    with throwaway_cluster() as url:
        stores.append(bench_store(url, True, args))
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_before": before,
        "stores": stores,
        "cache": bench_cache(args.entries),
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "retention.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "retention.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
