"""How long `portcullis inside` takes inside a container (bar: 100 ms), probes included.

Runs the zipapp in the Python test image and times collection + analysis + rendering inside
the container with perf_counter, so container start-up is not counted. Writes
benchmarks/results/inside.json.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
from pathlib import Path

from portcullis.inside.build import build

RUNS = 15
TIMER = (
    "import sys, time, io, contextlib; sys.path.insert(0, '/pi.pyz');"
    "from portcullis.inside.main import main;"
    "times = []\n"
    "for _ in range({runs}):\n"
    "    start = time.perf_counter()\n"
    "    with contextlib.redirect_stdout(io.StringIO()): main(['-f', 'json'])\n"
    "    times.append(time.perf_counter() - start)\n"
    "print(' '.join('%.6f' % t for t in times))"
)


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        pyz = build(Path(scratch) / "portcullis-inside.pyz")
        out = subprocess.run(
            ["docker", "run", "--rm", "--label", "portcullis.test=1", "-v", f"{pyz}:/pi.pyz:ro",
             "portcullis-test/python:bookworm", "python3", "-c", TIMER.format(runs=RUNS)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    times_ms = [float(t) * 1000 for t in out.stdout.split()]
    result = {
        "runs": RUNS,
        "median_ms": round(statistics.median(times_ms), 2),
        "first_run_ms": round(times_ms[0], 2),
        "max_ms": round(max(times_ms), 2),
        "bar_ms": 100,
    }
    target = Path(__file__).parent / "results" / "inside.json"
    target.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
