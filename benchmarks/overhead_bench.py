"""Container vs native overhead on this engine, the full default run of `portcullis overhead`.

Writes benchmarks/results/overhead.json (the command's JSON document), overhead.svg (the chart) and
overhead.md (the table), all from the same run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from portcullis.collect.engine import connect
from portcullis.proofs.overhead import Plan, measure_overhead
from portcullis.proofs.overhead_results import render_markdown, render_plot

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    conn = connect(timeout=180)
    try:
        report = measure_overhead(conn, Plan.standard(), progress=lambda message: print(message, file=sys.stderr))
    finally:
        conn.close()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "overhead.json").write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    (RESULTS / "overhead.svg").write_text(render_plot(report), encoding="utf-8")
    (RESULTS / "overhead.md").write_text(render_markdown(report), encoding="utf-8")
    print(render_markdown(report))


if __name__ == "__main__":
    main()
