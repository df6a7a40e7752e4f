"""Noisy neighbours on this engine (issue 16 §2): the full matrix of `portcullis neighbours` for runc, runsc
(gVisor, on a private dockerd) and vm-tcg (QEMU guests; KVM where the host has it), every aggressor against every
victim metric, without and with Docker's limits (n/a in a VM, with the reason).

Writes benchmarks/results/neighbours.json (the command's JSON document), neighbours.svg (the heat map) and
neighbours.md (the table, the founding claims, the load average). The near-native claim is `portcullis overhead`'s:
the Markdown quotes this host's recorded overhead run (results/overhead.json) for it rather than measuring again.
Opt-in and heavy (about 20 minutes): `make bench-neighbours`; `--render-only` redraws the figure and the table
from the recorded JSON and judges its claims again (the cells stay as measured); `--unpinned` measures runc and the
VM runtime once more, without limits and not pinned to one core (neighbours-unpinned.*, about 8 minutes).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from portcullis.model.neighbours import LimitsMode, NeighboursReport
from portcullis.proofs.neighbours import Plan, default_cpuset, neighbours_report
from portcullis.proofs.neighbours_results import check_claims, render_markdown
from portcullis.proofs.runtimes import kvm_problem
from portcullis.report.heatmap import render_heatmap

RESULTS = Path(__file__).parent / "results"
# A KVM guest where the host has hardware KVM; elsewhere the same guest under TCG, named so.
RUNTIMES = ("runc", "runsc", "vm" if kvm_problem() is None else "vm-tcg")
# Sized to keep the three runtimes within about 20 minutes on 2 cores.
REPEAT = 3
SECONDS = 1.0


def near_native_section() -> list[str]:
    """The founding near-native claims as this host's recorded `portcullis overhead` run judged them."""
    try:
        overhead = json.loads((RESULTS / "overhead.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    lines = [
        "",
        f"## Near-native claims (from `portcullis overhead`, {overhead['started_at']}, results/overhead.md)",
        "",
        "| claim | environment | slowdown vs native | verdict |",
        "|---|---|---|---|",
    ]
    for claim in overhead["claims"]:
        lines.append(
            f"| {claim['claim']} | {claim['environment']} | {claim['measured_slowdown_percent']:+.1f} % | "
            f"{claim['verdict']} |"
        )
    lines.append(
        "\nThe VM comparisons of the founding claims (CPU about 22 % better than a VM, disk about twice as fast) need "
        "a KVM guest: `portcullis overhead --runtime vm` (results/runtimes.md says whether this host has one)."
    )
    return lines


def main() -> None:
    # --unpinned: runc and the VM runtime again without limits, but not pinned: the scheduler may give each
    # neighbour its own core, which is how a VM is usually granted its vCPU. Written as neighbours-unpinned.*.
    unpinned = "--unpinned" in sys.argv
    name = "neighbours-unpinned" if unpinned else "neighbours"
    if "--render-only" in sys.argv:  # the recorded cells, claims judged again by today's rules, nothing measured
        report = NeighboursReport.model_validate_json((RESULTS / f"{name}.json").read_text(encoding="utf-8"))
        report.claims = check_claims(report.cells, report.settings.runtimes)
    else:
        if unpinned:
            plan = Plan(runtimes=(RUNTIMES[0], RUNTIMES[-1]), limits=(LimitsMode.none,), repeat=REPEAT,
                        seconds=SECONDS, cpuset=None)  # fmt: skip
        else:
            plan = Plan(runtimes=RUNTIMES, repeat=REPEAT, seconds=SECONDS, cpuset=default_cpuset())
        report = neighbours_report(plan, log=lambda message: print(message, file=sys.stderr))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    (RESULTS / f"{name}.svg").write_text(render_heatmap(report), encoding="utf-8")
    markdown = render_markdown(report) + ("" if unpinned else "\n".join(near_native_section())) + "\n"
    (RESULTS / f"{name}.md").write_text(markdown, encoding="utf-8")
    print(markdown)


if __name__ == "__main__":
    main()
