"""Vulnerability matching at fleet scale: 20 images, about 10,000 packages, in one process (bar: <= 100 ms warm).

What `portcullis image --all` does per image, `vulnerability_findings(image, options, checked)`, timed for a fleet
of 20 inventories (tests/support/fleet.py): images in families that share a Debian bookworm base (the whole real
inventory of a test image on this engine, read once and untimed; the vulnlab dpkg databases in ../shared/vulndata
when the images are absent) or an Alpine 3.11 base, a family layer and their own application
packages (real PyPI/npm names at versions the advisories name, plus packages without advisories). The database is
built from the real advisory data in ../shared/vulndata (Debian tracker records, the PyPA database, npm records,
Alpine secdb), as the vulnerability tests build it.

Per fleet, in one process:
- cold: the first run (the database not open yet, version keys not cached, nothing memoised);
- warm: repeated runs with the process's scanner kept (open database, memo of verdicts and findings): the bar;
- fresh memo: repeated runs after `forget_shared()` (the database reopened, every distinct package matched and
  reported again; only version keys and Python itself warm): what the first `image --all` after a database
  change costs;
- unshared: every image on its own, the scanner dropped before each (nothing one image learnt serves the next, as
  before the process kept a scanner): the baseline the memo is measured against.
Two fleets: the realistic one (the bar) and one of 10,000 packages that are all distinct (nothing shared: every
package is matched). Medians and bests of the wall time and of the process CPU time; the VM is shared, so the load
average is recorded. Writes benchmarks/results/match-scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from portcullis.model.vuln import Package
from portcullis.pipelines.errors import SubjectError
from portcullis.pipelines.image import ImageSource, read_image
from portcullis.pipelines.vulnerabilities import VulnOptions, check_database, vulnerability_findings
from portcullis.vuln.db import SourceInfo, now_iso, rebuild
from portcullis.vuln.scanner import forget_shared
from portcullis.vuln.sources import load_path
from portcullis.vuln.versions import clear_caches
from support.fleet import NPM_RECORDS, PYPA, SHARED, FleetImage, build_fleet, distinct_fleet

HERE = Path(__file__).parent
TRACKER = HERE.parent / "tests" / "vuln" / "data" / "debian-tracker-converted.json"
SECDB = SHARED / "alpine" / "alpine-secdb"
BASE_IMAGES = (
    "portcullis-test/debian:bookworm",
    "portcullis-test/python:bookworm",
    "portcullis-test/vulnlab:bookworm",
    "portcullis-test/vulnlab:layered",
    "portcullis-test/risky:1",
)
BAR_MS = 100


def build_db(path: Path) -> None:
    with rebuild(path, fresh=True) as db:
        for source in (TRACKER, PYPA, NPM_RECORDS, SECDB):
            for feed in load_path(source):
                db.replace_source(SourceInfo(feed.name, str(source), now_iso()), feed.advisories)


def engine_bases() -> tuple[list[list[Package]], list[str]]:
    """The inventories of the bookworm test images on this engine (their Debian packages, and the Python and npm
    packages of the vulnlab ones); none when they are absent (the fleet then uses the shared dpkg databases)."""
    bases, names = [], []
    for reference in BASE_IMAGES:
        try:
            content = read_image(ImageSource(f"engine:{reference}")).content
        except SubjectError as exc:  # an absent image or engine: say so, use the shared data
            print(f"{reference}: not read ({exc}); using the shared dpkg databases", file=sys.stderr)
            return [], []
        if content is not None:
            bases.append(list(content.packages))
            names.append(reference)
    return bases, names


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _timed(run: Callable[[], object], runs: int, before: Callable[[], None]) -> dict[str, float]:
    """Median and best of `runs` runs, each after `before()` (untimed)."""
    wall, cpu = [], []
    for _ in range(runs):
        before()
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {
        "median_ms": _ms(statistics.median(wall)),
        "best_ms": _ms(min(wall)),
        "median_cpu_ms": _ms(statistics.median(cpu)),
        "best_cpu_ms": _ms(min(cpu)),
    }


def measure(fleet: Sequence[FleetImage], db: Path, runs: int) -> dict[str, Any]:
    options = VulnOptions(db_path=db, max_age_days=0)
    checked = check_database(options)
    images = [image.facts for image in fleet]

    def run() -> int:
        return sum(len(vulnerability_findings(image, options, checked).findings) for image in images)

    def unshared() -> int:
        found = 0
        for image in images:
            forget_shared()
            found += len(vulnerability_findings(image, options, checked).findings)
        return found

    packages = [p for image in images for p in (image.content.packages if image.content else [])]
    forget_shared()
    clear_caches()
    start = time.perf_counter()
    findings = run()
    cold = time.perf_counter() - start
    return {
        "images": len(images),
        "packages": len(packages),
        "distinct_packages": len({(p.ecosystem, p.name, p.version) for p in packages}),
        "findings": findings,
        "cold_ms": _ms(cold),
        "warm": _timed(run, runs, lambda: None),
        "fresh_memo": _timed(run, runs, forget_shared),
        "unshared": _timed(unshared, max(3, runs // 3), forget_shared),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--shared-data-only", action="store_true", help="do not read the test images' inventories")
    args = parser.parse_args()
    bases, base_names = ([], []) if args.shared_data_only else engine_bases()
    results: dict[str, Any] = {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_1min_before": round(os.getloadavg()[0], 2),
        "debian_bases": base_names or ["shared/vulndata/image-inventory/*.dpkg.tsv"],
        "bar_ms": BAR_MS,
        "modes": {
            "cold_ms": "first run in the process: database not open, version keys not cached, nothing memoised",
            "warm": "repeat runs, the process's scanner kept (open database, verdict and finding memo): the bar",
            "fresh_memo": "runs after forget_shared(): every distinct package matched and reported again",
            "unshared": "each image on its own, scanner dropped before each: no sharing between images",
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "vuln.db"
        build_db(db)
        results["fleet"] = measure(build_fleet(debian_bases=bases or None), db, args.runs)
        results["distinct"] = measure(distinct_fleet(debian_bases=bases or None), db, args.runs)
        forget_shared()
    results["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    results["bar_met"] = {  # wall time depends on the other jobs of the shared VM; CPU time is the code's own cost
        f"{fleet}_{mode}_median{kind}": results[fleet][mode][f"median{kind}_ms"] <= BAR_MS
        for fleet in ("fleet", "distinct")
        for mode in ("warm", "fresh_memo")
        for kind in ("", "_cpu")
    }
    out = HERE / "results" / "match-scale.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
