"""The I/O half of `portcullis overhead --runtime …`: the overhead workloads natively and in one instance of
each runtime asked for (proofs.runtimes), interleaved and rotated per repetition as `overhead` does, every
runtime against native.

A runtime that cannot run on this host becomes a row with its reason; the others are still measured. CPU and
memory are timed in wall time (the agent's CPU clock inside gVisor or a VM is the sandbox's own accounting).
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Literal

import docker.errors

from portcullis import __version__
from portcullis.collect.engine import EngineConnection
from portcullis.proofs.overhead import (
    DEFAULT_IMAGE,
    METRICS,
    Agent,
    OverheadError,
    Plan,
    Runs,
    default_native_python,
    load_average,
    metric_text,
    native_agent,
    on_local_engine,
    rotated,
)
from portcullis.proofs.overhead_results import Measurement, Settings, Workload, compare, measurement
from portcullis.proofs.runtime_results import RuntimesReport, RuntimeStatus
from portcullis.proofs.runtimes import Instance, Runtime, RuntimeUnavailable, start

WALL_METRICS: dict[Workload, tuple[str, str, Literal["lower", "higher"]]] = {
    Workload.cpu: ("wall seconds for {cpu} LCG iterations in python", "s", "lower"),
    Workload.memory: ("GB per wall second copying a {mem} MiB buffer {rounds} times", "GB/s", "higher"),
}
NATIVE_NETWORK = "native-loopback"


def run_round(
    plan: Plan, native: Agent, native_dir: str, instances: Sequence[Instance], runs: Runs, index: int
) -> None:
    """One round of every workload in native and every instance, the order rotated by `index`."""
    computing = [("native", native)] + [(item.runtime.value, item.agent) for item in instances]
    for name, agent in rotated(computing, index):
        runs.add(Workload.cpu, name, agent.call("cpu", plan.cpu_iterations)["wall_seconds"])
    for name, agent in rotated(computing, index):
        result = agent.call("memory", plan.memory_mib, plan.memory_rounds)
        runs.add(Workload.memory, name, result["bytes"] / result["wall_seconds"] / 1e9)
    disks = [("native", native, native_dir)]
    for item in instances:
        disks += [(f"{item.runtime} layer", item.agent, item.layer_dir)]
        disks += [(f"{item.runtime} volume", item.agent, item.volume_dir)]
    for name, agent, directory in rotated(disks, index):
        result = agent.call("disk", directory, plan.disk_mib)
        runs.add(Workload.disk, name, result["bytes"] / result["seconds"] / (1 << 20))
    paths = [(NATIVE_NETWORK, native)]
    for item in instances:
        offered = [("host-network", item.host_network), ("bridge-ip", item.bridge), ("published-port", item.published)]
        paths += [(f"{item.runtime} {path}", agent) for path, agent in offered if agent is not None]
    for name, agent in rotated(paths, index):
        runs.add(Workload.tcp_rtt, name, agent.median_rtt_us(plan.rtt_samples))
    for name, agent in rotated(paths, index):
        runs.add(Workload.tcp_throughput, name, agent.stream_gbit_s(plan.stream_mib))


def summarise(plan: Plan, runs: Runs) -> list[Measurement]:
    items = []
    for (workload, environment), values in runs.values.items():
        template, unit, better = WALL_METRICS.get(workload) or METRICS[workload][:3]
        metric = metric_text(plan, workload) if workload not in WALL_METRICS else template.format(
            cpu=plan.cpu_iterations, mem=plan.memory_mib, rounds=plan.memory_rounds
        )  # fmt: skip
        runtime = "native" if environment.startswith("native") else environment.split()[0]
        baseline = environment in ("native", NATIVE_NETWORK)
        items.append(measurement(workload, environment, metric, unit, better, values, baseline, runtime))
    return items


def notes(instances: Sequence[Instance], statuses: Sequence[RuntimeStatus], loads: list[float | None]) -> list[str]:
    lines = [
        "CPU and memory in wall time (not CPU time): gVisor and a VM keep their own CPU clocks, so only the host's "
        "clock compares them; on a busy machine waiting for a CPU counts too, so read them next to the load.",
        "Disk: 'layer' writes in the instance's writable root (/var/tmp: runsc mounts a tmpfs on /tmp), 'volume' "
        "in a named volume (/vol).",
    ]
    if any(item.runtime is Runtime.runsc for item in instances):
        lines.append(
            "runsc runs with --network=host: the sandbox uses the host kernel's network stack inside the container's "
            "own network namespace (gVisor's netstack does not start with this runsc on this kernel), so its network "
            "numbers are gVisor's syscall interception without its user-space TCP/IP stack."
        )
    lines += [note for item in instances for note in item.notes]
    known = [load for load in loads if load is not None]
    cpus = os.cpu_count()
    if known and cpus:
        lines.append(f"1-minute load average {' -> '.join(f'{load:.1f}' for load in known)} on {cpus} CPUs.")
    lines += [f"{row.runtime} was not measured: {row.reason}" for row in statuses if not row.measured]
    return lines


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def runtimes_report(
    plan: Plan,
    runtimes: Sequence[Runtime],
    host: str | None = None,
    image: str = DEFAULT_IMAGE,
    native_python: str | None = None,
    native_dir: Path | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> RuntimesReport:
    """The whole `portcullis overhead --runtime` flow, failing like `overhead_report` does."""
    return on_local_engine(
        host,
        native_dir,
        lambda conn, directory: measure_runtimes(conn, plan, runtimes, image, native_python, directory, log),
    )


def measure_runtimes(
    conn: EngineConnection,
    plan: Plan,
    runtimes: Sequence[Runtime],
    image: str,
    native_python: str | None = None,
    native_dir: str | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> RuntimesReport:
    if not conn.local:
        raise OverheadError(f"the engine at {conn.endpoint} is remote: runtimes are compared on this host")
    try:
        conn.api.inspect_image(image)
    except docker.errors.ImageNotFound:
        raise OverheadError(f"image {image} is not in the engine (it needs python3; see --image)") from None
    # SIGTERM cleans up like Ctrl-C from the start: a private dockerd may be copying an image before any sandbox.
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _measure(conn, plan, runtimes, image, native_python, native_dir, progress)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _measure(
    conn: EngineConnection,
    plan: Plan,
    runtimes: Sequence[Runtime],
    image: str,
    native_python: str | None,
    native_dir: str | None,
    progress: Callable[[str], None],
) -> RuntimesReport:
    started, started_at = time.monotonic(), datetime.now(UTC).isoformat(timespec="seconds")
    loads = [load_average()]
    runs, completed = Runs(), 0
    statuses: list[RuntimeStatus] = []
    instances: list[Instance] = []
    scratch = tempfile.mkdtemp(prefix="portcullis-runtimes-", dir=native_dir)
    try:
        with ExitStack() as stack:
            native, process = stack.enter_context(native_agent(native_python or default_native_python()))
            native_python_info = native.wait_ready(30, lambda: process.poll() is None)
            for runtime in runtimes:
                progress(f"starting {runtime.value}…")
                try:
                    instance = stack.enter_context(start(runtime, conn, image, progress))
                except RuntimeUnavailable as exc:
                    statuses.append(RuntimeStatus(runtime=runtime.value, measured=False, reason=str(exc)))
                    continue
                instances.append(instance)
                statuses.append(
                    RuntimeStatus(runtime=runtime.value, measured=True, how=instance.how, python=instance.python)
                )
            loop_started = time.monotonic()
            for index in range(plan.repetitions):
                spent = time.monotonic() - loop_started
                if index and spent / index * (index + 1) > plan.time_limit:
                    break
                progress(f"repetition {index + 1}/{plan.repetitions}…")
                run_round(plan, native, scratch, instances, runs, index)
                completed += 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    loads.append(load_average())
    measurements = summarise(plan, runs)
    settings = Settings(
        quick=plan.quick, repetitions=plan.repetitions, completed_repetitions=completed,
        cpu_iterations=plan.cpu_iterations, memory_mib=plan.memory_mib, memory_rounds=plan.memory_rounds,
        disk_mib=plan.disk_mib, rtt_samples=plan.rtt_samples, stream_mib=plan.stream_mib,
        time_limit_seconds=plan.time_limit,
    )  # fmt: skip
    return RuntimesReport(
        version=__version__,
        started_at=started_at,
        duration_seconds=round(time.monotonic() - started, 1),
        settings=settings,
        kernel=platform.release(),
        cpus=os.cpu_count(),
        image=image,
        native_python=native_python_info,
        runtimes=statuses,
        measurements=measurements,
        comparisons=compare(measurements),
        notes=notes(instances, statuses, loads),
    )


def parse_runtimes(text: str) -> list[Runtime]:
    """`runc,runsc,vm` → the runtimes in that order; an unknown name is a UsageError-worthy ValueError."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    known = ", ".join(item.value for item in Runtime)
    chosen = []
    for name in names:
        try:
            runtime = Runtime(name)
        except ValueError:
            raise ValueError(f"unknown runtime {name!r} (known: {known})") from None
        if runtime not in chosen:
            chosen.append(runtime)
    if not chosen:
        raise ValueError(f"no runtime named (known: {known})")
    return chosen
