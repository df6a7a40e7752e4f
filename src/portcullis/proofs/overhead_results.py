"""The pure half of `portcullis overhead`: statistics over recorded runs, ratios against native, the
published claims set against what was measured, and the JSON/text/Markdown renderings. No I/O here.

The JSON document (`OverheadReport`, `schema_version` 2; 2 added `tcp_throughput` and `runtime`):
- `settings`: what was run (repetitions, work sizes, RTT samples per run, MiB streamed per throughput run).
- `environment`: engine version, storage driver, whether dockerd runs with iptables, the process that
  served the published port, kernel, CPU count, the python3 of the native side and of the container.
- `measurements`: one per (workload, environment): the `runtime` it ran in (native, runc, runsc, vm), every
  per-run value in `runs`, and `summary` (median, quartiles, min, max). Each workload has exactly one `baseline`
  environment (native).
- `comparisons`: container median / native median (`ratio`) and `slowdown_percent`, the extra time the
  container needs for the same work (positive = slower), so throughput and latency read the same way.
- `claims`: the published container-vs-native claims next to the measured slowdown, with a verdict.
- `notes`: what limits the reading of the numbers on this engine.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

SCHEMA_VERSION = 2
# A container within this slowdown of native counts as "near-native".
NEAR_NATIVE_PERCENT = 10.0


class Workload(StrEnum):
    cpu = "cpu"
    memory = "memory"
    disk = "disk"
    tcp_rtt = "tcp_rtt"
    tcp_throughput = "tcp_throughput"


# What each workload's number is, as a figure's axis names it (the unit comes with the measurement).
QUANTITIES = {
    Workload.cpu: "time for the fixed CPU work",
    Workload.memory: "memory copy bandwidth",
    Workload.disk: "write + fsync throughput",
    Workload.tcp_rtt: "1-byte TCP round trip",
    Workload.tcp_throughput: "TCP stream throughput, host to instance",
}


class Spread(BaseModel):
    median: float
    q1: float
    q3: float
    minimum: float
    maximum: float

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1


def spread(values: Sequence[float]) -> Spread:
    """Median, quartiles (inclusive method: they stay inside the observed range) and extremes."""
    if not values:
        raise ValueError("no values to summarise")
    ordered = sorted(values)
    if len(ordered) == 1:
        q1 = q3 = ordered[0]
    else:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    return Spread(median=statistics.median(ordered), q1=q1, q3=q3, minimum=ordered[0], maximum=ordered[-1])


class Measurement(BaseModel):
    workload: Workload
    environment: str
    runtime: str = Field("runc", description="what ran the workload: native, runc, runsc or vm")
    baseline: bool = Field(False, description="the native reference of this workload")
    metric: str = Field(description="what one run measures, e.g. 'MiB/s writing 64 MiB + fsync'")
    unit: str
    better: Literal["lower", "higher"]
    runs: list[float]
    summary: Spread


def measurement(
    workload: Workload,
    environment: str,
    metric: str,
    unit: str,
    better: Literal["lower", "higher"],
    runs: Sequence[float],
    baseline: bool = False,
    runtime: str = "runc",
) -> Measurement:
    return Measurement(
        workload=workload, environment=environment, runtime=runtime, baseline=baseline, metric=metric, unit=unit,
        better=better, runs=list(runs), summary=spread(runs),
    )  # fmt: skip


class Comparison(BaseModel):
    workload: Workload
    environment: str
    baseline: str
    ratio: float = Field(description="container median / native median, in the metric's own unit")
    slowdown_percent: float = Field(description="extra time for the same work (positive = container slower)")
    ranges_overlap: bool = Field(description="the min..max ranges of both overlap: the difference is within noise")


def slowdown_percent(container: float, native: float, better: Literal["lower", "higher"]) -> float:
    """Extra time the container needs for the work native does, in percent.

    For a time or a latency that is container/native - 1; for a throughput, native/container - 1.
    """
    if container <= 0 or native <= 0:
        raise ValueError("medians must be positive")
    factor = container / native if better == "lower" else native / container
    return (factor - 1.0) * 100.0


def compare(measurements: Sequence[Measurement]) -> list[Comparison]:
    """Every non-baseline environment against its workload's baseline."""
    baselines = {m.workload: m for m in measurements if m.baseline}
    comparisons = []
    for item in measurements:
        base = baselines.get(item.workload)
        if item.baseline or base is None:
            continue
        comparisons.append(
            Comparison(
                workload=item.workload,
                environment=item.environment,
                baseline=base.environment,
                ratio=item.summary.median / base.summary.median,
                slowdown_percent=slowdown_percent(item.summary.median, base.summary.median, item.better),
                ranges_overlap=item.summary.minimum <= base.summary.maximum
                and base.summary.minimum <= item.summary.maximum,
            )
        )
    return comparisons


class ClaimCheck(BaseModel):
    workload: Workload
    environment: str
    claim: str
    measured_slowdown_percent: float
    verdict: Literal["consistent", "within noise", "differs", "not comparable"]
    note: str = ""


# Published container-vs-native/VM comparisons (e.g. Felter et al., IBM 2014; repeated in later surveys).
NEAR_NATIVE_CLAIMS = {
    Workload.cpu: "near-native CPU",
    Workload.memory: "near-native memory bandwidth",
    Workload.disk: "near-native disk I/O",
}
NAT_CLAIM = "about +100 % TCP latency through Docker's NAT"


def near_native_verdict(comparison: Comparison) -> Literal["consistent", "within noise", "differs"]:
    if abs(comparison.slowdown_percent) <= NEAR_NATIVE_PERCENT:
        return "consistent"
    return "within noise" if comparison.ranges_overlap else "differs"


def check_claims(comparisons: Sequence[Comparison], published_port_path: str | None) -> list[ClaimCheck]:
    """The claims next to the numbers. The NAT claim is only comparable when the published port really
    went through NAT; `published_port_path` says what served it ("docker-proxy" or "nat")."""
    checks = []
    for item in comparisons:
        if item.workload in NEAR_NATIVE_CLAIMS:
            checks.append(
                ClaimCheck(
                    workload=item.workload,
                    environment=item.environment,
                    claim=NEAR_NATIVE_CLAIMS[item.workload],
                    measured_slowdown_percent=item.slowdown_percent,
                    verdict=near_native_verdict(item),
                )
            )
        elif item.workload is Workload.tcp_rtt and item.environment == "container-published-port":
            if published_port_path == "nat":
                verdict: Literal["consistent", "within noise", "differs", "not comparable"] = (
                    "consistent" if 50.0 <= item.slowdown_percent <= 200.0 else "differs"
                )
                note = "published port through iptables DNAT"
            else:
                verdict = "not comparable"
                note = (
                    "no NAT here: dockerd runs without iptables, the published port is relayed by the userland "
                    "docker-proxy (two extra socket hops and a process in user space)"
                    if published_port_path == "docker-proxy"
                    else "what served the published port could not be determined"
                )
            checks.append(
                ClaimCheck(
                    workload=item.workload,
                    environment=item.environment,
                    claim=NAT_CLAIM,
                    measured_slowdown_percent=item.slowdown_percent,
                    verdict=verdict,
                    note=note,
                )
            )
    return checks


class Settings(BaseModel):
    quick: bool
    repetitions: int
    completed_repetitions: int
    cpu_iterations: int
    memory_mib: int
    memory_rounds: int
    disk_mib: int
    rtt_samples: int
    stream_mib: int = Field(0, description="MiB streamed per throughput run (0: not measured)")
    time_limit_seconds: float


class PythonInfo(BaseModel):
    python: str
    implementation: str
    executable: str
    executable_sha256: str | None = None
    kernel: str | None = Field(None, description="the kernel release the agent sees (gVisor reports its own)")


class Environment(BaseModel):
    engine_version: str | None = None
    storage_driver: str | None = None
    dockerd_iptables: bool | None = Field(None, description="None: the dockerd command line was not readable")
    published_port_path: str | None = Field(None, description="docker-proxy, nat, or None when unknown")
    kernel: str | None = None
    cpus: int | None = None
    image: str
    native_python: PythonInfo | None = None
    container_python: PythonInfo | None = None


class OverheadReport(BaseModel):
    schema_version: int = SCHEMA_VERSION
    tool: str = "portcullis"
    version: str
    started_at: str
    duration_seconds: float
    settings: Settings
    environment: Environment
    measurements: list[Measurement]
    comparisons: list[Comparison]
    claims: list[ClaimCheck]
    notes: list[str]


# --- renderings ----------------------------------------------------------------------------------


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def table_rows(measurements: Sequence[Measurement], comparisons: Sequence[Comparison]) -> list[list[str]]:
    """One row per measurement: workload, environment, median, IQR, min..max, slowdown vs native."""
    by_key = {(c.workload, c.environment): c for c in comparisons}
    rows = []
    for item in measurements:
        s = item.summary
        comparison = by_key.get((item.workload, item.environment))
        rows.append(
            [
                item.workload.value,
                item.environment,
                f"{_number(s.median)} {item.unit}",
                f"{_number(s.q1)}–{_number(s.q3)}",
                f"{_number(s.minimum)}–{_number(s.maximum)}",
                "baseline" if comparison is None else f"{comparison.slowdown_percent:+.1f} %",
            ]
        )
    return rows


HEADERS = ["workload", "environment", "median", "IQR", "min–max", "slowdown vs native"]


def render_markdown(report: OverheadReport) -> str:
    env = report.environment
    lines = [
        "# Container vs native overhead",
        "",
        f"Measured by `portcullis overhead` {report.version} on {report.started_at} "
        f"({report.settings.completed_repetitions} repetitions, {report.duration_seconds:.0f} s).",
        f"Engine {env.engine_version}, storage driver {env.storage_driver}, kernel {env.kernel}, {env.cpus} CPUs, "
        f"image `{env.image}`.",
    ]
    if env.native_python and env.container_python:
        lines.append(
            f"Workload: the same Python agent, native {env.native_python.implementation} "
            f"{env.native_python.python} (`{env.native_python.executable}`) vs container "
            f"{env.container_python.implementation} {env.container_python.python}."
        )
    lines += ["", "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(report.measurements, report.comparisons)]
    lines += ["", "Slowdown = extra time for the same work (positive: the container is slower).", ""]
    lines += ["## Published claims vs this engine", "", "| claim | environment | measured | verdict | note |"]
    lines += ["|---|---|---|---|---|"]
    for claim in report.claims:
        lines.append(
            f"| {claim.claim} | {claim.environment} | {claim.measured_slowdown_percent:+.1f} % | "
            f"{claim.verdict} | {claim.note} |"
        )
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def render_text(report: OverheadReport) -> str:
    rows = [HEADERS, *table_rows(report.measurements, report.comparisons)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    out = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    out.insert(1, "  ".join("-" * width for width in widths))
    out.append("")
    for claim in report.claims:
        line = f"claim: {claim.claim} — {claim.environment} {claim.measured_slowdown_percent:+.1f} %: {claim.verdict}"
        out.append(line + (f" ({claim.note})" if claim.note else ""))
    out += [f"note: {note}" for note in report.notes]
    return "\n".join(out) + "\n"


def environment_notes(env: Environment, settings: Settings, loads: Sequence[float | None]) -> list[str]:
    """What limits the reading of the numbers on this engine, in plain words."""
    notes = [
        "CPU, memory and disk in the container ran in the bridge-network container; the network mode does not "
        "change them. CPU and memory are timed in CPU time of the workload (time spent waiting for a CPU on a "
        "shared machine is not container overhead); disk and TCP in wall time."
    ]
    if env.storage_driver == "vfs":
        notes.append(
            "Storage driver vfs: the writable layer is a plain directory under the data root (no copy-on-write "
            "overlay), so layer, volume and native writes reach the same kind of directory; overlay2 copy-up is not "
            "measured."
        )
    if env.published_port_path == "docker-proxy":
        reason = " because dockerd runs with --iptables=false" if env.dockerd_iptables is False else ""
        notes.append(
            f"The published port (-p 127.0.0.1:PORT:7000) is relayed by the userland docker-proxy{reason}: no NAT "
            "is on this path, so the published '+100 % through NAT' figure is not what was measured here."
        )
    notes.append("Host to bridge IP is routed over docker0 and a veth pair, without NAT.")
    native, contained = env.native_python, env.container_python
    if native and contained and native.python != contained.python:
        notes.append(
            f"The native python ({native.python}) and the container's ({contained.python}) differ, so CPU and "
            "memory ratios also compare two interpreters."
        )
    elif native and contained and native.executable_sha256 != contained.executable_sha256:
        notes.append(
            f"The native python and the container's are both {native.python} but different builds (their "
            "binaries' sha256 differ), so CPU and memory ratios include the difference between the builds."
        )
    if settings.completed_repetitions < settings.repetitions:
        notes.append(
            f"Stopped after {settings.completed_repetitions} of {settings.repetitions} repetitions: the next one "
            f"would have passed the {settings.time_limit_seconds:.0f} s time limit."
        )
    known = [load for load in loads if load is not None]
    if known and env.cpus:
        busy = max(known) > env.cpus * 0.5
        notes.append(
            "1-minute load average "
            + " -> ".join(f"{load:.1f}" for load in known)
            + f" on {env.cpus} CPUs"
            + (": other work shared the machine, so expect wide spreads." if busy else ".")
        )
    return notes


def change_label(item: Measurement, native: float) -> str:
    """The change against native as a reader wants it: how much slower (or faster) the same work ran."""
    percent = slowdown_percent(item.summary.median, native, item.better)
    return f"{percent:+.0f} % time"


def clock_of(metric: str) -> str:
    """Which clock timed CPU and memory work, for the axis: `overhead` uses CPU time, `--runtime` wall time."""
    if "wall second" in metric:
        return ", wall clock"
    if "CPU second" in metric:
        return ", CPU clock"
    return ""


def plot_measurements(measurements: Sequence[Measurement], title: str, note: str = "") -> str:
    """One panel per workload in its own quantity and unit, bars coloured by runtime, the IQR as error bars and
    the change against native above each bar."""
    from portcullis.proofs.svgplot import Bar, Panel, panel_chart

    baselines = {m.workload: m.summary.median for m in measurements if m.baseline}
    panels = []
    for workload in Workload:
        items = [m for m in measurements if m.workload is workload]
        if not items:
            continue
        bars = [
            Bar(
                label=item.environment,
                value=item.summary.median,
                low=item.summary.q1,
                high=item.summary.q3,
                series=item.runtime,
                annotation=""
                if item.baseline or workload not in baselines
                else change_label(item, baselines[workload]),
            )
            for item in items
        ]
        panels.append(Panel(QUANTITIES[workload] + clock_of(items[0].metric), items[0].unit, items[0].better, bars))
    return panel_chart(panels, title, note)


PLOT_NOTE = "Bars: median of the runs; error bars: interquartile range; above: extra time for the same work vs native."


def render_plot(report: OverheadReport) -> str:
    """The SVG figure of `portcullis overhead`: every workload in its own unit, native and runc coloured as in
    every other runtime figure."""
    return plot_measurements(
        report.measurements,
        title=f"Container (runc) vs native on Docker {report.environment.engine_version}, "
        f"{report.settings.completed_repetitions} runs each",
        note=PLOT_NOTE,
    )
