"""How closely the limits `portcullis prove` demonstrates hold, and how long each proof takes (issue 16 §3).

For several caps, the disk write and read proofs (O_DIRECT dd under --device-write-bps / --device-read-bps) and
the egress proof (tbf in the sender's namespace) are measured `--runs` times each; the result is measured/cap
(the proofs pass up to 1.2) and the seconds each measurement took, container start-up included. One daemon-death
measurement (two private dockerds) is timed too. Everything runs in one labelled sandbox, removed at the end.
Writes benchmarks/results/prove-limits.json and .md, with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from portcullis.checks.prove_judges import parse_dd_rate
from portcullis.collect.engine import connect
from portcullis.collect.sandbox import sandbox
from portcullis.harden.daemon_death import measure_daemon_death
from portcullis.proofs import limits
from portcullis.proofs.prove import engine_view

PYTHON = "portcullis-test/python:bookworm"
BUSYBOX = "portcullis-test/busybox:1"
MIB = 1 << 20


def _summary(ratios: list[float], seconds: list[float]) -> dict[str, Any]:
    return {
        "ratio_min": round(min(ratios), 3),
        "ratio_median": round(statistics.median(ratios), 3),
        "ratio_max": round(max(ratios), 3),
        "seconds_median": round(statistics.median(seconds), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--disk-caps-mib", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--egress-mbit", type=int, nargs="+", default=[2, 8, 32, 100])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    conn = connect()
    try:
        view = engine_view(conn.api.info(), conn.local)
        if view.data_root_device is None:
            raise SystemExit(f"no device to throttle: {view.device_reason}")
        with sandbox(conn, "prove") as box:
            for kind, measure in (("write", limits.measure_device_write), ("read", limits.measure_device_read)):
                for cap_mib in args.disk_caps_mib:
                    ratios, seconds = [], []
                    for _ in range(args.runs):
                        began = time.monotonic()
                        run = measure(box, PYTHON, view.data_root_device, cap_mib * MIB, cap_mib * MIB)
                        seconds.append(time.monotonic() - began)
                        done = parse_dd_rate(run["output"])
                        if done:
                            ratios.append(done[0] / done[1] / (cap_mib * MIB))
                    rows.append({"proof": f"device {kind}", "cap": f"{cap_mib} MiB/s", **_summary(ratios, seconds)})
            for mbit in args.egress_mbit:
                ratios, seconds = [], []
                for _ in range(args.runs):
                    began = time.monotonic()
                    measured = limits.measure_egress(box, PYTHON, mbit * 1_000_000)
                    seconds.append(time.monotonic() - began)
                    sent = measured["shaped"]["output"].split()
                    ratios.append(int(sent[1]) * 8 / float(sent[2]) / (mbit * 1_000_000))
                rows.append({"proof": "egress (tbf)", "cap": f"{mbit} Mbit/s", **_summary(ratios, seconds)})
        began = time.monotonic()
        death = measure_daemon_death(conn.api, BUSYBOX)
        death_seconds = round(time.monotonic() - began, 1)
    finally:
        conn.close()
    result = {
        "runs": args.runs,
        "cpus": os.cpu_count(),
        "device": view.data_root_device,
        "rows": rows,
        "daemon_death": {"seconds": death_seconds, **death},
        "load_average": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "prove-limits.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# prove: measured rate / cap (pass ≤ 1.2)",
        "",
        f"{args.runs} runs per cap on {view.data_root_device}, {os.cpu_count()} CPUs; load average "
        f"{result['load_average']['before'][0]} before, {result['load_average']['after'][0]} after.",
        "",
        "| proof | cap | min | median | max | seconds per measurement (median) |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['proof']} | {r['cap']} | {r['ratio_min']} | {r['ratio_median']} | {r['ratio_max']} | "
            f"{r['seconds_median']} |"
            for r in rows
        ),
        "",
        f"Daemon death (live-restore off, then on, on private dockerds): {death_seconds} s.",
        "",
    ]
    (args.out / "prove-limits.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
