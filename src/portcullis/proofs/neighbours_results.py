"""The pure half of `portcullis neighbours`: degradation from the recorded runs, the founding claims set
against the matrix, and the text and Markdown renderings. No I/O here."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Literal

from portcullis.model.neighbours import (
    VICTIM_METRICS,
    Aggressor,
    Cell,
    ClaimVerdict,
    LimitsMode,
    NeighboursReport,
    Victim,
)

# Below this loss a neighbour counts as "not felt": a shared 2-core machine moves single runs by a few percent.
FELT_PERCENT = 10.0
CONTAINER_RUNTIMES = frozenset({"runc", "runsc", "io.containerd.runc.v2"})
VM_RUNTIMES = frozenset({"vm", "vm-tcg"})


def degradation_percent(alone: float, beside: float, better: Literal["lower", "higher"]) -> float:
    """Share of the alone performance lost beside the aggressor: 1 - beside/alone for a rate, 1 - alone/beside
    for a latency, so both read as "percent of the work per second lost"."""
    if alone <= 0 or beside <= 0:
        raise ValueError("values must be positive")
    kept = beside / alone if better == "higher" else alone / beside
    return (1.0 - kept) * 100.0


def cell(
    runtime: str,
    limits: LimitsMode,
    aggressor: Aggressor,
    victim: Victim,
    alone: Sequence[float],
    beside: Sequence[float],
    note: str = "",
) -> Cell:
    """A matrix cell from the recorded runs; without runs on both sides it stays undecided (None), never 0."""
    _, unit, better = VICTIM_METRICS[victim]
    degradation = within_noise = None
    if alone and beside and min(alone) > 0 and min(beside) > 0:
        alone_median, beside_median = statistics.median(alone), statistics.median(beside)
        degradation = degradation_percent(alone_median, beside_median, better)
        within_noise = min(alone) <= beside_median <= max(alone)
    elif not note:
        note = "no complete runs"
    return Cell(
        runtime=runtime, limits=limits, aggressor=aggressor, victim=victim, unit=unit, better=better,
        alone=list(alone), beside=list(beside), degradation_percent=degradation, within_noise=within_noise, note=note,
    )  # fmt: skip


def felt(item: Cell) -> bool:
    return item.degradation_percent is not None and item.degradation_percent > FELT_PERCENT and not item.within_noise


def _describe(items: Sequence[Cell]) -> str:
    return ", ".join(f"{c.aggressor}→{c.victim} {c.degradation_percent:+.0f} %" for c in items)


def _find(cells: Sequence[Cell], runtime: str, limits: LimitsMode, aggressor: Aggressor, victim: Victim) -> Cell | None:
    for item in cells:
        key = (item.runtime, item.limits, item.aggressor, item.victim)
        if key == (runtime, limits, aggressor, victim) and item.degradation_percent is not None:
            return item
    return None


def _isolation_claims(cells: Sequence[Cell], runtimes: Sequence[str]) -> list[ClaimVerdict]:
    claims = []
    vm_claim = "A VM isolates memory, fork, CPU, disk and network traffic completely"
    vm_runtimes = [runtime for runtime in runtimes if runtime in VM_RUNTIMES]
    for runtime in vm_runtimes:
        claim = f"{vm_claim} ({runtime})"
        measured = [
            c
            for c in cells
            if c.runtime == runtime and c.limits is LimitsMode.none and c.degradation_percent is not None
        ]
        if not measured:
            reasons = {c.note for c in cells if c.runtime == runtime and c.note}
            evidence = "; ".join(sorted(reasons)) or "no cell without limits"
            claims.append(ClaimVerdict(claim=claim, verdict="not measured", evidence=evidence))
            continue
        hurt = sorted((c for c in measured if felt(c)), key=lambda c: -(c.degradation_percent or 0.0))
        verdict: Literal["held", "did not hold", "not measured"] = "did not hold" if hurt else "held"
        evidence = f"felt beside a VM neighbour: {_describe(hurt)}" if hurt else f"no cell over {FELT_PERCENT:.0f} %"
        if runtime == "vm-tcg":
            evidence = f"under TCG software emulation, not KVM: {evidence}"
        claims.append(ClaimVerdict(claim=claim, verdict=verdict, evidence=evidence))
    if not vm_runtimes:
        claims.append(ClaimVerdict(claim=vm_claim, verdict="not measured", evidence="no vm runtime in this run"))
    for runtime in runtimes:
        if runtime not in CONTAINER_RUNTIMES:
            continue
        mine = [c for c in cells if c.runtime == runtime and c.limits is LimitsMode.none]
        measured = [c for c in mine if c.degradation_percent is not None]
        claim = f"A container ({runtime}) is affected by a neighbour only through the network"
        if not measured:
            claims.append(ClaimVerdict(claim=claim, verdict="not measured", evidence="no cell without limits"))
            continue
        off_network = [c for c in measured if c.aggressor is not Aggressor.net and felt(c)]
        network = [c for c in measured if c.aggressor is Aggressor.net and felt(c)]
        if off_network:
            worst = sorted(off_network, key=lambda c: -(c.degradation_percent or 0.0))
            evidence = f"felt through other resources: {_describe(worst)}"
            claims.append(ClaimVerdict(claim=claim, verdict="did not hold", evidence=evidence))
        else:
            tail = f"; through the network: {_describe(network)}" if network else ""
            evidence = f"no non-network aggressor took more than {FELT_PERCENT:.0f} %{tail}"
            claims.append(ClaimVerdict(claim=claim, verdict="held", evidence=evidence))
    return claims


# Resource, the aggressor that loads it, the victims that feel it, the Docker limit that should contain it.
LIMIT_PAIRS = (
    ("CPU", Aggressor.cpu, (Victim.cpu,), "--cpus"),
    ("memory", Aggressor.membw, (Victim.membw,), "--memory (a capacity limit; there is no bandwidth limit)"),
    ("process count", Aggressor.fork, (Victim.cpu,), "--pids-limit"),
    ("disk", Aggressor.disk, (Victim.disk,), "--device-write-bps"),
    ("network", Aggressor.net, (Victim.tcp_throughput, Victim.tcp_latency), "tc on the instance's veth"),
)


def _limit_claims(cells: Sequence[Cell], runtimes: Sequence[str]) -> list[ClaimVerdict]:
    claims = []
    for runtime in runtimes:
        if runtime in VM_RUNTIMES:
            continue  # Docker's limits do not reach a VM: the isolation claim speaks for it
        for resource, aggressor, victims, limit in LIMIT_PAIRS:
            claim = f"A {resource} limit contains a {aggressor} neighbour ({runtime}, {limit})"
            pairs = [
                (victim, _find(cells, runtime, LimitsMode.none, aggressor, victim),
                 _find(cells, runtime, LimitsMode.docker, aggressor, victim))
                for victim in victims
            ]  # fmt: skip
            compared = [(v, free, capped) for v, free, capped in pairs if free is not None and capped is not None]
            if not compared:
                reasons = [
                    c.note for c in cells
                    if c.runtime == runtime and c.aggressor is aggressor and c.victim in victims
                    and c.degradation_percent is None and c.note
                ]  # fmt: skip
                evidence = reasons[0] if reasons else "needs both --limits modes"
                claims.append(ClaimVerdict(claim=claim, verdict="not measured", evidence=evidence))
                continue
            parts = []
            for victim, free, capped in compared:
                assert free.degradation_percent is not None and capped.degradation_percent is not None
                change = f"{free.degradation_percent:+.0f} % → {capped.degradation_percent:+.0f} %"
                if felt(capped):
                    reduced = capped.degradation_percent < free.degradation_percent - FELT_PERCENT
                    change += " (reduced, still felt)" if reduced else " (still felt)"
                parts.append(f"{victim}: {change}")
            lead = "without → with limits: "
            # Contained means the limited neighbour is no longer felt; merely less is not isolation. A neighbour not
            # felt even without limits leaves nothing to contain: the run cannot tell, which is no pass.
            verdict: Literal["held", "did not hold", "not measured"] = "held"
            if any(felt(capped) for _, _, capped in compared):
                verdict = "did not hold"
            elif not any(felt(free) for _, free, _ in compared):
                verdict = "not measured"
                lead = "not felt even without limits (within the victim's own spread), so the run cannot tell: " + lead
            claims.append(ClaimVerdict(claim=claim, verdict=verdict, evidence=lead + "; ".join(parts)))
    return claims


def check_claims(cells: Sequence[Cell], runtimes: Sequence[str]) -> list[ClaimVerdict]:
    """The founding claims this matrix can speak to; near-native speed is `portcullis overhead`'s."""
    near_native = ClaimVerdict(
        claim="Containers reach near-native CPU, memory, disk and network performance (CPU ~22 % better than a VM, "
        "disk ~2x, NAT doubling latency)",
        verdict="not measured",
        evidence="a neighbour matrix compares a victim with itself; see `portcullis overhead` for container vs native",
    )
    return [near_native, *_isolation_claims(cells, runtimes), *_limit_claims(cells, runtimes)]


# --- renderings ----------------------------------------------------------------------------------


def _value(item: Cell) -> str:
    if item.degradation_percent is None:
        return "n/a"
    return f"{item.degradation_percent:+.0f} %" + (" ~" if item.within_noise else "")


def matrix_rows(report: NeighboursReport) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per (runtime, limits, aggressor), one column per victim metric."""
    victims = report.settings.victims
    header = ["runtime", "limits", "aggressor", *(f"{v} ({VICTIM_METRICS[v][1]})" for v in victims)]
    by_key = {(c.runtime, c.limits, c.aggressor, c.victim): c for c in report.cells}
    rows = []
    for runtime in report.settings.runtimes:
        for limits in report.settings.limits:
            for aggressor in report.settings.aggressors:
                row = [runtime, limits.value, aggressor.value]
                for victim in victims:
                    found = by_key.get((runtime, limits, aggressor, victim))
                    row.append(_value(found) if found else "n/a")
                rows.append(row)
    return header, rows


LEGEND = (
    "Each cell: the share of the victim's alone performance lost beside the aggressor (median of the repetitions; "
    "lower is better, negative = faster). `~`: inside the alone runs' min–max, so within noise."
)


def _number(value: float) -> str:
    return f"{value:.3g}" if value < 1000 else f"{value:,.0f}"


def alone_spread_rows(report: NeighboursReport) -> list[list[str]]:
    """Per runtime, limits and victim metric: the alone runs' min, median and max and their max/min ratio, the
    yardstick every degradation of that column must beat to stand out of the noise."""
    rows, seen = [], set()
    for item in report.cells:
        key = (item.runtime, item.limits, item.victim)
        if key in seen or not item.alone or min(item.alone) <= 0:
            continue
        seen.add(key)
        low, high = min(item.alone), max(item.alone)
        rows.append(
            [item.runtime, item.limits.value, f"{item.victim} ({item.unit})", _number(low),
             _number(statistics.median(item.alone)), _number(high), f"×{high / low:.2f}"]
        )  # fmt: skip
    return rows


def unmeasured_notes(report: NeighboursReport) -> list[str]:
    """Why cells say n/a: one line per runtime and reason, naming the victim metrics it covers."""
    victims: dict[tuple[str, str], list[str]] = {}
    for item in report.cells:
        if item.degradation_percent is None and item.note:
            names = victims.setdefault((item.runtime, item.note), [])
            if item.victim.value not in names:
                names.append(item.victim.value)
    return [f"n/a ({runtime}, victim {', '.join(names)}): {note}" for (runtime, note), names in victims.items()]


def render_markdown(report: NeighboursReport) -> str:
    env, settings = report.environment, report.settings
    header, rows = matrix_rows(report)
    loads = " → ".join(f"{load:.2f}" for load in env.load_average)
    lines = [
        "# Noisy neighbours",
        "",
        f"Measured by `portcullis neighbours` {report.version} on {report.started_at} in "
        f"{report.duration_seconds:.0f} s: "
        f"{settings.repeat} repetition(s) of {settings.seconds:g} s per victim run.",
        f"Engine {env.engine_version}, storage driver {env.storage_driver}, cgroup v{env.cgroup_version}, kernel "
        f"{env.kernel}, {env.cpus} CPUs, 1-minute load average {loads}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
        LEGEND,
        *(f"\n{line}" for line in unmeasured_notes(report)),
        "",
        "## The victim alone: spread of its runs",
        "",
        "| runtime | limits | victim | min | median | max | max/min |",
        "|---|---|---|---|---|---|---|",
        *("| " + " | ".join(row) + " |" for row in alone_spread_rows(report)),
        "",
        "## Founding claims on this host",
        "",
        "| claim | verdict | evidence |",
        "|---|---|---|",
        *(f"| {c.claim} | {c.verdict} | {c.evidence} |" for c in report.claims),
    ]
    if report.notes:
        lines += ["", "## Notes", "", *(f"- {note}" for note in report.notes)]
    return "\n".join(lines) + "\n"


def render_text(report: NeighboursReport) -> str:
    header, rows = matrix_rows(report)
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    out = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in table]
    out.insert(1, "  ".join("-" * width for width in widths))
    out += ["", LEGEND, *unmeasured_notes(report), ""]
    out += [f"claim: {c.claim}: {c.verdict} ({c.evidence})" for c in report.claims]
    out += [f"note: {note}" for note in report.notes]
    return "\n".join(out) + "\n"
