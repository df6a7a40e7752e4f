"""Native vs runc vs gVisor (runsc) vs a KVM VM vs the same VM under QEMU's software emulation (vm-tcg) on this
host: `portcullis overhead --runtime runc,runsc,vm,vm-tcg` with the standard workload sizes (`make bench-isolation`).

Writes benchmarks/results/runtimes.json (the command's JSON document), runtimes.svg (the figure) and runtimes.md
(the tables, the rows of runtimes that cannot run here with their reasons, and the machine's load before and after,
which the notes of the document carry too).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from portcullis.proofs.overhead import Plan
from portcullis.proofs.runtime_compare import runtimes_report
from portcullis.proofs.runtime_results import render_markdown, render_plot
from portcullis.proofs.runtimes import Runtime

RESULTS = Path(__file__).parent / "results"
# Three instances take about three times as long per repetition as `overhead`'s two environments.
TIME_LIMIT = 450.0


def main() -> None:
    plan = replace(Plan.standard(), time_limit=TIME_LIMIT)
    report = runtimes_report(plan, list(Runtime), log=lambda message: print(message, file=sys.stderr))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "runtimes.json").write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    (RESULTS / "runtimes.svg").write_text(render_plot(report), encoding="utf-8")
    (RESULTS / "runtimes.md").write_text(render_markdown(report), encoding="utf-8")
    print(render_markdown(report))


if __name__ == "__main__":
    main()
