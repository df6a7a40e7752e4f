"""The I/O half of `portcullis overhead`: run the same workload agent natively and in containers, drive it
from this process, and hand the raw per-run numbers to `overhead_results` for the statistics.

Layout of one measurement:
- native: the agent (`overhead_probe`) as a child process of the host's python3, on 127.0.0.1;
- one container on the default bridge with its agent port published on 127.0.0.1 (so the same agent is
  reached through the bridge IP and through the published port) and a fresh named volume at /vol;
- one container with the host network, its agent on a free 127.0.0.1 port.
CPU, memory and disk run in the bridge container (the network mode does not touch them). Repetitions
interleave the environments and rotate who goes first, so drift on a shared machine spreads evenly.
Everything is removed on success, failure, timeout, Ctrl-C and SIGTERM (containers by the sandbox,
the volume, the native agent and its scratch directory here).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

import docker.errors
import requests

from portcullis import __version__
from portcullis.collect import CollectionError
from portcullis.collect.daemon import collect_daemon_config
from portcullis.collect.engine import EngineConnection, connect
from portcullis.collect.sandbox import MANAGED_LABEL, OWNER_LABEL, Sandbox, SandboxError, run_owner, sandbox
from portcullis.model.findings import CollectionProblem
from portcullis.pipelines.errors import ExperimentsInterrupted, PipelineError, UsageError
from portcullis.proofs.overhead_results import (
    Environment,
    Measurement,
    OverheadReport,
    PythonInfo,
    Settings,
    Workload,
    check_claims,
    compare,
    environment_notes,
    measurement,
)

AGENT_PORT = 7000  # inside the bridge container
CONTROL_TIMEOUT = 60.0  # seconds one agent command may take
READY_TIMEOUT = 120.0  # a python image on the vfs driver can take tens of seconds to create and start
RTT_WARMUP = 100
DEFAULT_IMAGE = "portcullis-test/python:bookworm"
Measured = TypeVar("Measured")


class OverheadError(PipelineError):
    """The measurement cannot run (remote engine, missing image, agent not answering…): one clear line."""


@dataclass(frozen=True)
class Plan:
    quick: bool
    repetitions: int
    cpu_iterations: int
    memory_mib: int
    memory_rounds: int
    disk_mib: int
    rtt_samples: int
    stream_mib: int  # MiB sent per TCP throughput run
    time_limit: float  # seconds for the measuring loop; a repetition that would not fit is not started

    @classmethod
    def standard(cls) -> Plan:
        return cls(False, 10, 5_000_000, 64, 8, 128, 5000, 256, 150.0)

    @classmethod
    def fast(cls) -> Plan:
        return cls(True, 5, 1_000_000, 32, 4, 16, 500, 32, 30.0)

    @classmethod
    def chosen(
        cls,
        quick: bool,
        repetitions: int | None = None,
        rtt_samples: int | None = None,
        time_limit: float | None = None,
    ) -> Plan:
        """The fast or the standard plan, with any of its numbers the caller gives instead."""
        plan = cls.fast() if quick else cls.standard()
        return replace(
            plan,
            repetitions=repetitions or plan.repetitions,
            rtt_samples=rtt_samples or plan.rtt_samples,
            time_limit=time_limit or plan.time_limit,
        )


@dataclass
class Agent:
    """One running workload agent, reached at host:port from this process."""

    name: str
    host: str
    port: int

    def _connect(self, timeout: float) -> socket.socket:
        conn = socket.create_connection((self.host, self.port), timeout=timeout)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def call(self, *words: str | int, timeout: float = CONTROL_TIMEOUT) -> dict[str, Any]:
        with self._connect(timeout) as conn:
            conn.sendall((" ".join(str(w) for w in words) + "\n").encode())
            reply = conn.makefile("rb").readline()
        try:
            answer = json.loads(reply)
        except json.JSONDecodeError:
            raise OverheadError(f"the {self.name} agent gave no answer to {words[0]!r}") from None
        if not isinstance(answer, dict) or "error" in answer:
            raise OverheadError(f"the {self.name} agent failed {words[0]!r}: {answer}")
        return answer

    def wait_ready(self, timeout: float, alive: Callable[[], bool]) -> PythonInfo:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return PythonInfo.model_validate(self.call("info"))
            except OSError:
                if not alive():
                    raise OverheadError(f"the {self.name} agent exited before answering") from None
                if time.monotonic() > deadline:
                    raise OverheadError(f"the {self.name} agent did not answer within {timeout:.0f} s") from None
                time.sleep(0.2)

    def median_rtt_us(self, samples: int) -> float:
        """1-byte TCP ping-pong from this process; the median round trip of `samples`, in microseconds."""
        with self._connect(CONTROL_TIMEOUT) as conn:
            conn.sendall(b"echo\n")
            if conn.makefile("rb").readline() != b"ready\n":
                raise OverheadError(f"the {self.name} agent refused the echo mode")
            for _ in range(RTT_WARMUP):
                conn.sendall(b"x")
                conn.recv(1)
            times = []
            for _ in range(samples):
                start = time.perf_counter_ns()
                conn.sendall(b"x")
                if not conn.recv(1):
                    raise OverheadError(f"the {self.name} agent closed the echo connection")
                times.append(time.perf_counter_ns() - start)
        return statistics.median(times) / 1000.0

    def stream_gbit_s(self, mib: int) -> float:
        """Stream `mib` MiB from this process into the agent; Gbit/s of wall time until the agent has counted
        every byte (so data still in socket buffers is not counted as delivered)."""
        block = bytes(1 << 20)
        with self._connect(CONTROL_TIMEOUT) as conn:
            conn.sendall(b"sink\n")
            reader = conn.makefile("rb")
            if reader.readline() != b"ready\n":
                raise OverheadError(f"the {self.name} agent refused the sink mode")
            start = time.perf_counter()
            for _ in range(mib):
                conn.sendall(block)
            conn.shutdown(socket.SHUT_WR)
            reply = reader.readline()
            elapsed = time.perf_counter() - start
        try:
            counted = json.loads(reply)["bytes"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise OverheadError(f"the {self.name} agent gave no count after the stream") from None
        if counted != len(block) * mib:
            raise OverheadError(f"the {self.name} agent received {counted:.0f} of {len(block) * mib} bytes")
        return len(block) * mib * 8 / elapsed / 1e9


def probe_source() -> str:
    return resources.files("portcullis.proofs").joinpath("overhead_probe.py").read_text(encoding="utf-8")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def default_native_python() -> str:
    """The distribution's python3 when there is one (the python image is built from the same distribution),
    else the interpreter running Portcullis."""
    return "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


@contextmanager
def native_agent(python: str) -> Iterator[tuple[Agent, subprocess.Popen[bytes]]]:
    port = free_port()
    try:
        process = subprocess.Popen(
            [python, "-c", probe_source(), str(port), "127.0.0.1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches Portcullis, which then ends the agent itself
        )  # fmt: skip
    except OSError as exc:
        raise OverheadError(f"cannot run the native python {python!r}: {exc.strerror}") from None
    try:
        yield Agent("native", "127.0.0.1", port), process
    finally:
        process.kill()
        process.wait(timeout=10)


@contextmanager
def scratch_volume(conn: EngineConnection, run_id: str) -> Iterator[str]:
    name = f"portcullis-overhead-{run_id}"
    try:
        conn.api.create_volume(
            name, labels={MANAGED_LABEL: "true", OWNER_LABEL: run_owner(), "portcullis.purpose": "overhead"}
        )
    except docker.errors.APIError as exc:
        raise OverheadError(f"the engine refused a scratch volume: {exc.explanation or exc}") from None
    try:
        yield name
    finally:
        conn.api.remove_volume(name, force=True)


@dataclass
class ContainerAgents:
    bridge: Agent  # through the bridge IP
    published: Agent  # through 127.0.0.1:<published port>
    host_network: Agent
    bridge_python: PythonInfo
    published_port: int


def _start(box: Sandbox, image: str, command: list[str], **options: Any) -> str:
    container_id = box.create(image, command, **options)
    try:
        box.conn.api.start(container_id)
    except docker.errors.APIError as exc:
        raise SandboxError(f"the experiment container did not start: {exc.explanation or exc}") from None
    return container_id


def start_container_agents(box: Sandbox, image: str, volume: str, runtime: str | None = None) -> ContainerAgents:
    """The bridge container (published port, `volume` at /vol) and the host-network one, in `runtime` (None: the
    engine's default), both answering."""
    source = probe_source()
    options = {"runtime": runtime} if runtime else {}
    published_port, host_port = free_port(), free_port()
    # Both containers are created at once: on the vfs driver creating one copies the whole image.
    with ThreadPoolExecutor(max_workers=2) as pool:
        bridged = pool.submit(
            _start, box, image, ["python3", "-c", source, str(AGENT_PORT), "0.0.0.0"],
            port_bindings={AGENT_PORT: ("127.0.0.1", published_port)}, binds={volume: {"bind": "/vol", "mode": "rw"}},
            **options,
        )  # fmt: skip
        hosted = pool.submit(
            _start, box, image, ["python3", "-c", source, str(host_port), "127.0.0.1"], network_mode="host", **options
        )
        bridge_id, host_id = bridged.result(), hosted.result()
    inspect = box.conn.api.inspect_container(bridge_id)
    networks = inspect["NetworkSettings"].get("Networks") or {}
    bridge_ip = (networks.get("bridge") or {}).get("IPAddress") or inspect["NetworkSettings"].get("IPAddress")
    if not bridge_ip:
        raise OverheadError("the bridge container got no IP address on the default bridge")

    def running(container_id: str) -> Callable[[], bool]:
        return lambda: bool(box.conn.api.inspect_container(container_id)["State"].get("Running"))

    bridge = Agent("container (bridge IP)", bridge_ip, AGENT_PORT)
    host_network = Agent("container (host network)", "127.0.0.1", host_port)
    bridge_python = bridge.wait_ready(READY_TIMEOUT, running(bridge_id))
    host_network.wait_ready(READY_TIMEOUT, running(host_id))
    published = Agent("container (published port)", "127.0.0.1", published_port)
    published.wait_ready(READY_TIMEOUT, running(bridge_id))
    return ContainerAgents(bridge, published, host_network, bridge_python, published_port)


def published_port_path(port: int, iptables: bool | None) -> str | None:
    """What relays 127.0.0.1:<port>: a docker-proxy process that owns it, else NAT when iptables is on."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "docker-proxy":
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        flag = argv.index(b"-host-port") if b"-host-port" in argv else -1
        if 0 <= flag < len(argv) - 1 and argv[flag + 1] == str(port).encode():
            return "docker-proxy"
    return "nat" if iptables else None


def dockerd_iptables(conn: EngineConnection) -> bool | None:
    problems: list[CollectionProblem] = []
    config = collect_daemon_config(conn.endpoint, conn.local, problems)
    flags = config.flag_values("--iptables")
    if flags:
        return flags[-1].lower() not in ("false", "0")
    if config.daemon_json and "iptables" in config.daemon_json:
        return bool(config.daemon_json["iptables"])
    return True if config.dockerd_cmdline is not None else None


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


@dataclass
class Runs:
    """Raw per-run values, keyed by (workload, environment)."""

    values: dict[tuple[Workload, str], list[float]] = field(default_factory=dict)

    def add(self, workload: Workload, environment: str, value: float) -> None:
        self.values.setdefault((workload, environment), []).append(value)


def rotated(items: list[Any], by: int) -> list[Any]:
    by %= len(items)
    return items[by:] + items[:by]


def run_repetition(plan: Plan, native: Agent, agents: ContainerAgents, native_dir: str, runs: Runs, index: int) -> None:
    """One round of every workload in every environment, the order rotated by `index`."""
    for name, agent in rotated([("native", native), ("container", agents.bridge)], index):
        result = agent.call("cpu", plan.cpu_iterations)
        runs.add(Workload.cpu, name, result["seconds"])
    for name, agent in rotated([("native", native), ("container", agents.bridge)], index):
        result = agent.call("memory", plan.memory_mib, plan.memory_rounds)
        runs.add(Workload.memory, name, result["bytes"] / result["seconds"] / 1e9)
    disks = [("native", native, native_dir), ("container-layer", agents.bridge, "/tmp")]
    disks.append(("container-volume", agents.bridge, "/vol"))
    for name, agent, directory in rotated(disks, index):
        result = agent.call("disk", directory, plan.disk_mib)
        runs.add(Workload.disk, name, result["bytes"] / result["seconds"] / (1 << 20))
    rtts = [("native-loopback", native), ("container-host-network", agents.host_network)]
    rtts += [("container-bridge-ip", agents.bridge), ("container-published-port", agents.published)]
    for name, agent in rotated(rtts, index):
        runs.add(Workload.tcp_rtt, name, agent.median_rtt_us(plan.rtt_samples))
    for name, agent in rotated(rtts, index):
        runs.add(Workload.tcp_throughput, name, agent.stream_gbit_s(plan.stream_mib))


METRICS: dict[Workload, tuple[str, str, Literal["lower", "higher"], str]] = {
    Workload.cpu: ("CPU seconds for {cpu} LCG iterations in python", "s", "lower", "native"),
    Workload.memory: ("GB per CPU second copying a {mem} MiB buffer {rounds} times", "GB/s", "higher", "native"),
    Workload.disk: ("MiB/s writing {disk} MiB then fsync", "MiB/s", "higher", "native"),
    Workload.tcp_rtt: ("median 1-byte TCP round trip over {rtt} samples", "µs", "lower", "native-loopback"),
    Workload.tcp_throughput: ("Gbit/s streaming {stream} MiB from the host", "Gbit/s", "higher", "native-loopback"),
}


def metric_text(plan: Plan, workload: Workload) -> str:
    return METRICS[workload][0].format(
        cpu=plan.cpu_iterations, mem=plan.memory_mib, rounds=plan.memory_rounds, disk=plan.disk_mib,
        rtt=plan.rtt_samples, stream=plan.stream_mib,
    )  # fmt: skip


def summarise(plan: Plan, runs: Runs) -> list[Measurement]:
    items = []
    for (workload, environment), values in runs.values.items():
        _, unit, better, baseline = METRICS[workload]
        runtime = "native" if environment.startswith("native") else "runc"
        items.append(
            measurement(
                workload, environment, metric_text(plan, workload), unit, better, values, environment == baseline,
                runtime,
            )
        )  # fmt: skip
    return items


def measure_overhead(
    conn: EngineConnection,
    plan: Plan,
    image: str = DEFAULT_IMAGE,
    native_python: str | None = None,
    native_dir: str | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> OverheadReport:
    if not conn.local:
        raise OverheadError(
            f"the engine at {conn.endpoint} is remote: overhead compares this host with containers on it, "
            "so it needs the local engine"
        )
    try:
        conn.api.inspect_image(image)
    except docker.errors.ImageNotFound:
        raise OverheadError(f"image {image} is not in the engine (it needs python3; see --image)") from None
    python = native_python or default_native_python()
    started = time.monotonic()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    loads = [load_average()]
    info = conn.api.info()
    iptables = dockerd_iptables(conn)
    runs = Runs()
    completed = 0
    with sandbox(conn, "overhead") as box:
        # Inside the sandbox so SIGTERM already means "clean up"; the containers go before the volume.
        scratch = tempfile.mkdtemp(prefix="portcullis-overhead-", dir=native_dir)
        try:
            with scratch_volume(conn, uuid.uuid4().hex[:12]) as volume, native_agent(python) as (native, process):
                progress(f"starting the agents: native {python}, two containers of {image}…")
                native_python_info = native.wait_ready(30, lambda: process.poll() is None)
                try:
                    agents = start_container_agents(box, image, volume)
                    path = published_port_path(agents.published_port, iptables)
                    loop_started = time.monotonic()
                    for index in range(plan.repetitions):
                        spent = time.monotonic() - loop_started
                        if index and spent / index * (index + 1) > plan.time_limit:
                            break
                        progress(f"repetition {index + 1}/{plan.repetitions}…")
                        run_repetition(plan, native, agents, scratch, runs, index)
                        completed += 1
                finally:
                    box.close()  # containers first: the volume cannot go while one still uses it
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    loads.append(load_average())
    measurements = summarise(plan, runs)
    comparisons = compare(measurements)
    environment = Environment(
        engine_version=conn.api.version().get("Version"),
        storage_driver=info.get("Driver"),
        dockerd_iptables=iptables,
        published_port_path=path,
        kernel=platform.release(),
        cpus=os.cpu_count(),
        image=image,
        native_python=native_python_info,
        container_python=agents.bridge_python,
    )
    settings = Settings(
        quick=plan.quick, repetitions=plan.repetitions, completed_repetitions=completed,
        cpu_iterations=plan.cpu_iterations, memory_mib=plan.memory_mib, memory_rounds=plan.memory_rounds,
        disk_mib=plan.disk_mib, rtt_samples=plan.rtt_samples, stream_mib=plan.stream_mib,
        time_limit_seconds=plan.time_limit,
    )  # fmt: skip
    return OverheadReport(
        version=__version__,
        started_at=started_at,
        duration_seconds=round(time.monotonic() - started, 1),
        settings=settings,
        environment=environment,
        measurements=measurements,
        comparisons=comparisons,
        claims=check_claims(comparisons, path),
        notes=environment_notes(environment, settings, loads),
    )


def _silent(message: str) -> None:
    """The default progress sink: callers that show no progress (tests, a service) pass nothing."""


def overhead_report(
    plan: Plan,
    host: str | None = None,
    image: str = DEFAULT_IMAGE,
    native_python: str | None = None,
    native_dir: Path | None = None,
    log: Callable[[str], None] = _silent,
) -> OverheadReport:
    """The whole `portcullis overhead` flow: connect to the engine at `host` (it must be local) and measure.

    A `native_dir` that is no directory raises UsageError, every other failure OverheadError; Ctrl-C or SIGTERM
    raises ExperimentsInterrupted once the containers, the volume and the native agent are gone.
    """
    return on_local_engine(
        host, native_dir, lambda conn, directory: measure_overhead(conn, plan, image, native_python, directory, log)
    )


def on_local_engine(
    host: str | None, native_dir: Path | None, measure: Callable[[EngineConnection, str | None], Measured]
) -> Measured:
    """Connect to the engine at `host`, run `measure(conn, native_dir)` and turn its failures into one line:
    UsageError for a `native_dir` that is no directory, ExperimentsInterrupted for Ctrl-C or SIGTERM (raised
    once everything `measure` started is gone), OverheadError for the rest."""
    if native_dir is not None and not native_dir.is_dir():
        raise UsageError(f"--native-dir {native_dir} is not a directory")
    try:
        conn = connect(host, timeout=180)  # creating a container on the vfs driver copies the whole image
    except CollectionError as exc:
        raise OverheadError(str(exc)) from exc
    try:
        return measure(conn, str(native_dir) if native_dir else None)
    except KeyboardInterrupt as exc:  # once connected: an interrupt while connecting stays a plain one
        raise ExperimentsInterrupted(*exc.args) from exc
    except OverheadError:
        raise
    except SandboxError as exc:
        raise OverheadError(str(exc)) from exc
    except OSError as exc:  # as before the move: requests' exceptions are OSErrors, so they land here too
        raise OverheadError(f"an agent connection failed: {exc}") from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise engine_error(exc) from exc
    finally:
        conn.close()


def engine_error(exc: Exception) -> OverheadError:
    """Engine-side failures during the run, as one line."""
    if isinstance(exc, requests.exceptions.RequestException):
        return OverheadError(f"the engine stopped answering: {exc}")
    return OverheadError(str(getattr(exc, "explanation", None) or exc))
