"""The I/O half of `portcullis neighbours`: a victim instance measured alone and beside an aggressor in a
neighbouring instance of the same runtime, with and without Docker's limits.

Layout, per runtime and limits mode: one long-lived victim instance (the python agent of `neighbours_probe`,
driven over TCP from this process through the bridge IP); per repetition the victim runs every metric alone,
then every aggressor is started in turn, the victim runs every metric beside it, and the aggressor is removed.
Victim and aggressors share the pinned CPUs (`cpuset`), so a neighbour competes for the same core as on a
crowded host. The order of aggressors and victim metrics rotates per repetition so drift spreads evenly.

Instances are started through a `Launcher`: `DockerLauncher` serves every runtime the engine knows (runc, and
runsc on a private dockerd when the engine lacks it); `VmLauncher` makes every instance a QEMU guest (vm, vm-tcg),
reached through port forwards instead of a bridge address.

Aggressors are bounded three ways: their cell's duration (removed when the victim's runs end), a hard
`timeout -s KILL` inside the instance (so even a killed Portcullis leaves nothing running for long), and for
the fork storm a pids limit even in the "none" mode. Everything is labelled and removed on success, failure,
Ctrl-C and SIGTERM (the sandbox).
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import docker.errors
import docker.types
import requests

from portcullis import __version__
from portcullis.collect import CollectionError
from portcullis.collect.engine import EngineConnection, connect
from portcullis.collect.private_dockerd import PrivateDockerdError
from portcullis.collect.sandbox import Sandbox, SandboxError, sandbox
from portcullis.model.neighbours import (
    Aggressor,
    Cell,
    LimitsMode,
    LimitValues,
    NeighboursEnvironment,
    NeighboursReport,
    NeighboursSettings,
    Victim,
)
from portcullis.pipelines.errors import ExperimentsInterrupted, PipelineError
from portcullis.proofs.neighbours_results import VM_RUNTIMES, cell, check_claims
from portcullis.proofs.runtimes import RUNSC_ARGS, RuntimeUnavailable, kvm_problem, private_runsc
from portcullis.proofs.vm import (
    BOOT_TIMEOUT,
    COMMAND_STARTED,
    GUEST_MEMORY_MIB,
    Accel,
    GuestRoots,
    RunningVm,
    VmUnavailable,
    console_tail,
    guest_roots,
    run_vm,
)

VICTIM_IMAGE = "portcullis-test/python:bookworm"
AGGRESSOR_IMAGE = "portcullis-test/busybox:1"
VICTIM_PORT = 7100
SINK_PORT = 7200
FORK_PIDS_CAP = 2000  # the fork storm's ceiling even without limits: the host must survive the "none" case
MEMBW_MIB = 32  # the victim's copy buffers: larger than any last-level cache here
READY_TIMEOUT = 120.0  # creating a python instance copies the whole image on the vfs driver
CALL_SLACK = 60.0  # seconds an agent command may take beyond its own duration
# Where the disk victim and aggressor write: the instance's writable root under runc. Not /tmp: runsc mounts its
# own tmpfs there (memory), and busybox images lack /var/tmp, so the aggressor creates it.
SCRATCH_DIR = "/var/tmp"
# Measured here (runsc 20221219, cache=fscache): `dd oflag=direct` of 200 MiB took 0.1 s in a sandbox, with or
# without --device-write-bps 20mb. The sandbox's kernel ignores O_DIRECT and keeps the writes in its own file cache.
VM_VOLUME = "/vol"  # the guest's virtio-blk volume: its root is an initramfs in its RAM
SLIRP_HOST = "10.0.2.2"  # inside a slirp guest, this host's loopback
VM_LIMITS_REFUSED = (
    "n/a in a VM: Docker's limits (--cpus, --memory, --pids-limit, --device-write-bps, tc on a veth) do not reach a "
    f"QEMU guest; its own bounds hold in every run instead: 1 vCPU, {GUEST_MEMORY_MIB} MiB of RAM, its own kernel and "
    "pid space, its own disk image"
)


def vm_notes(cpuset: str | None) -> list[str]:
    placement = (
        f"all QEMU threads pinned with taskset to CPU(s) {cpuset}, as the containers are"
        if cpuset
        else "QEMU threads not pinned, as the containers are not"
    )
    return [
        f"VM instances: one QEMU guest each (Debian's kernel, 1 vCPU, {GUEST_MEMORY_MIB} MiB), {placement}; victim "
        "and aggressors write O_DIRECT to their own virtio-blk volume image (cache=none, so the writes reach this "
        "host's disk).",
        VM_NETWORK_NOTE,
    ]


VM_NETWORK_NOTE = (
    "VM instances: this host measures the victim's TCP through QEMU's user-mode (slirp) port forward on 127.0.0.1, "
    "and the net flood runs between two aggressor VMs through their forwards: the VMs share no bridge, only this "
    "host's loopback and CPU."
)
TCG_NOTE = (
    "vm-tcg is QEMU's TCG software emulation, not KVM: each guest's vCPU is one host thread translating every "
    "instruction, so its absolute numbers are far below a KVM guest's; its cells show what a separate guest kernel "
    "isolates, not what hardware virtualisation does."
)
RUNSC_DISK = (
    "n/a in runsc: gVisor ignores O_DIRECT, so the victim's writes land in the sandbox's file cache (200 MiB in 0.1 s "
    "even under --device-write-bps 20mb), a memory speed, not the disk's"
)


class NeighboursError(PipelineError):
    """The measurement cannot run (remote engine, unknown runtime, missing image…): one clear line."""


@dataclass(frozen=True)
class Plan:
    runtimes: tuple[str, ...] = ("runc",)
    aggressors: tuple[Aggressor, ...] = tuple(Aggressor)
    victims: tuple[Victim, ...] = tuple(Victim)
    limits: tuple[LimitsMode, ...] = tuple(LimitsMode)
    repeat: int = 3
    seconds: float = 3.0
    cpuset: str | None = None  # None: not pinned
    victim_image: str = VICTIM_IMAGE
    aggressor_image: str = AGGRESSOR_IMAGE


def default_cpuset() -> str:
    """The last CPU: victim and aggressor share one core, the way neighbours on a full host do."""
    return str((os.cpu_count() or 1) - 1)


def cpuset_size(cpuset: str | None) -> int:
    if not cpuset:
        return os.cpu_count() or 1
    size = 0
    for part in cpuset.split(","):
        low, _, high = part.partition("-")
        size += int(high) - int(low) + 1 if high else 1
    return size


# --- instances ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstanceSpec:
    role: str
    image: str
    command: list[str]
    cpuset: str | None
    limits: LimitValues | None  # None: the runtime's defaults
    pids_limit: int | None = None  # a cap that applies even without limits (the fork storm)
    victim: bool = False  # the CPU limits hold the aggressors, not the victim


@dataclass
class Instance:
    name: str
    address: str  # reachable from this host
    alive: Callable[[], bool]
    ports: Mapping[int, int] = field(default_factory=dict)  # port inside -> its port at `address`, where they differ
    neighbour_address: str = ""  # where another instance reaches it, when not at `address`

    def port(self, inside: int) -> int:
        return self.ports.get(inside, inside)

    def reached_by_neighbours_at(self, inside: int) -> tuple[str, int]:
        return self.neighbour_address or self.address, self.port(inside)


class Launcher(Protocol):
    """Starts instances of one runtime; what the matrix needs of a runtime (a VM launcher implements it too)."""

    runtime: str
    # Victim metrics this runtime cannot measure honestly, with the reason their cells carry instead of a number.
    unmeasurable: Mapping[Victim, str]
    # Where the disk victim and aggressor write: on the instance's own disk, never in its memory.
    scratch_dir: str
    # Why Docker's limits cannot reach this runtime's instances ("" when they can): its docker-mode cells say so.
    limits_refused: str

    def start(self, spec: InstanceSpec) -> Instance: ...

    def stop(self, instance: Instance) -> None: ...


def _veth_of(pid: int) -> str:
    """The host side of the instance's eth0: the host interface whose ifindex is eth0's peer. Asked inside the
    instance's network namespace, not through its root: a runsc sandbox process sees no /sys of its container."""
    command = ["nsenter", f"--net=/proc/{pid}/ns/net", "ip", "-o", "link", "show", "dev", "eth0"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except OSError as exc:
        raise NeighboursError(f"cannot run nsenter to find the instance's veth: {exc.strerror}") from None
    peer = re.search(r"eth0@if(\d+):", done.stdout)
    if done.returncode != 0 or peer is None:
        raise NeighboursError(f"the instance's eth0 has no veth peer: {done.stderr.strip() or done.stdout.strip()}")
    for entry in Path("/sys/class/net").iterdir():
        try:
            if (entry / "ifindex").read_text().strip() == peer.group(1):
                return entry.name
        except OSError:
            continue
    raise NeighboursError(f"no host interface pairs with the instance's eth0 (peer ifindex {peer.group(1)})")


def shape(interface: str, rate_mbit: int) -> None:
    """A token bucket on the host side of the veth: traffic into the instance is held to `rate_mbit`."""
    command = ["tc", "qdisc", "replace", "dev", interface, "root", "tbf", "rate", f"{rate_mbit}mbit",
               "burst", "256kb", "latency", "50ms"]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except OSError as exc:
        raise NeighboursError(f"cannot run tc for the network limit: {exc.strerror}") from None
    if done.returncode != 0:
        raise NeighboursError(f"tc refused the network limit on {interface}: {done.stderr.strip()}")


@dataclass
class DockerLauncher:
    box: Sandbox
    runtime: str
    blkio_weight_supported: bool
    unmeasurable: Mapping[Victim, str] = field(default_factory=dict)
    scratch_dir: str = SCRATCH_DIR
    limits_refused: str = ""

    def start(self, spec: InstanceSpec) -> Instance:
        options: dict[str, Any] = {
            "runtime": self.runtime,
            "init": True,  # reaps the fork storm's orphans, which would otherwise pile up as zombies
            "log_config": docker.types.LogConfig(type="none"),  # a fork storm's errors must not fill the disk
        }
        if spec.cpuset:
            options["cpuset_cpus"] = spec.cpuset
        if spec.pids_limit is not None:
            options["pids_limit"] = spec.pids_limit
        limits = spec.limits
        if limits is not None:
            if spec.victim:
                options["cpu_shares"] = limits.victim_cpu_shares
            else:
                options.update(nano_cpus=round(limits.aggressor_cpus * 1e9), cpu_shares=limits.aggressor_cpu_shares)
            options.update(
                mem_limit=f"{limits.memory_mib}m",
                memswap_limit=f"{limits.memory_mib}m",
                pids_limit=min(limits.pids, spec.pids_limit or limits.pids),
            )
            if self.blkio_weight_supported:
                options["blkio_weight"] = limits.blkio_weight
            if limits.device and limits.device_write_mib_per_s:
                options["device_write_bps"] = [
                    {"Path": limits.device, "Rate": limits.device_write_mib_per_s * (1 << 20)}
                ]
        container_id = self.box.create(spec.image, spec.command, **options)
        api = self.box.conn.api
        try:
            api.start(container_id)
        except docker.errors.APIError as exc:
            raise SandboxError(f"the {spec.role} instance did not start: {exc.explanation or exc}") from None
        state = api.inspect_container(container_id)
        address = (state["NetworkSettings"].get("Networks") or {}).get("bridge", {}).get("IPAddress")
        if not address:
            raise NeighboursError(f"the {spec.role} instance got no address on the default bridge")
        if limits is not None:
            shape(_veth_of(int(state["State"]["Pid"])), limits.tc_rate_mbit)

        def alive() -> bool:
            try:
                return bool(api.inspect_container(container_id)["State"].get("Running"))
            except docker.errors.NotFound:
                return False

        return Instance(str(state["Name"]).lstrip("/"), str(address), alive)

    def stop(self, instance: Instance) -> None:
        with suppress(docker.errors.NotFound):
            self.box.conn.api.remove_container(instance.name, force=True)


def plan_images(plan: Plan) -> list[str]:
    """The images the plan's instances run (the net aggressor runs the victim's image)."""
    images = {plan.victim_image}
    if set(plan.aggressors) - {Aggressor.net}:
        images.add(plan.aggressor_image)
    return sorted(images)


@contextmanager
def runsc_launcher(box: Sandbox, plan: Plan, progress: Callable[[str], None]) -> Iterator[Launcher]:
    """Victim and aggressors as gVisor sandboxes on a private dockerd (proofs.runtimes); the main engine is never
    reconfigured. Docker's limits apply as for runc: runsc puts its sandbox and gofer in the container's cgroups,
    and with --network=host the sandbox uses the host kernel's stack in the container's netns, so tc shapes its veth.
    The private dockerd, its containers and its bridge are gone when the block ends, on Ctrl-C and SIGTERM too."""
    ready = False  # failures inside the caller's block are the caller's
    try:
        with private_runsc(box.conn, plan_images(plan), progress) as private, sandbox(private.conn, box.purpose) as own:
            ready = True
            yield DockerLauncher(own, "runsc", blkio_weight_supported(), {Victim.disk: RUNSC_DISK})
    except (RuntimeUnavailable, PrivateDockerdError) as exc:
        if ready:
            raise
        raise NeighboursError(f"--runtime runsc cannot run here: {exc}") from None


LauncherFactory = Callable[[Sandbox, Plan, Callable[[str], None]], AbstractContextManager[Launcher]]


class RuntimeCannotRun(NeighboursError):
    """The runtime cannot start here at all: its cells carry the reason and the other runtimes still run."""


@dataclass
class VmLauncher:
    """Every instance a QEMU VM of its own: its own kernel, 1 vCPU, its own RAM and virtio-blk volume (written
    with cache=none, so O_DIRECT in the guest reaches this host's disk), every QEMU thread pinned to the plan's CPUs
    with taskset. This host reaches a guest through slirp forwards on 127.0.0.1; a neighbour reaches it the same
    way, through the slirp gateway address that stands for this host's loopback."""

    roots: GuestRoots
    accel: Accel
    runtime: str
    running: dict[str, ExitStack] = field(default_factory=dict)
    unmeasurable: Mapping[Victim, str] = field(default_factory=dict)
    scratch_dir: str = VM_VOLUME
    limits_refused: str = VM_LIMITS_REFUSED

    def start(self, spec: InstanceSpec) -> Instance:
        stack = ExitStack()
        try:
            vm = stack.enter_context(
                run_vm(
                    self.roots.root(spec.image), self.roots.kernel, self.accel, spec.command,
                    guest_ports=[VICTIM_PORT, SINK_PORT], cpuset=spec.cpuset, disk_cache="none",
                )
            )  # fmt: skip
            wait_for_command(vm, spec.role)
        except BaseException:
            stack.close()
            raise
        self.running[vm.work.name] = stack
        return Instance(vm.work.name, "127.0.0.1", vm.alive, ports=vm.forwards, neighbour_address=SLIRP_HOST)

    def stop(self, instance: Instance) -> None:
        stack = self.running.pop(instance.name, None)
        if stack is not None:
            stack.close()

    def stop_all(self) -> None:
        for name in list(self.running):
            self.running.pop(name).close()


def wait_for_command(vm: RunningVm, role: str) -> None:
    """Until the guest's init has started the instance's command (its aggressor must load the host before the
    victim measures, not still be booting)."""
    deadline = time.monotonic() + BOOT_TIMEOUT
    log = vm.work / "console.log"
    while True:
        with suppress(OSError):
            if COMMAND_STARTED in log.read_bytes():
                return
        if not vm.alive():
            raise NeighboursError(f"the {role} VM stopped while booting; console: {console_tail(log)}")
        if time.monotonic() > deadline:
            raise NeighboursError(
                f"the {role} VM did not boot within {BOOT_TIMEOUT:.0f} s; console: {console_tail(log)}"
            )
        time.sleep(0.2)


def vm_launcher(accel: Accel) -> LauncherFactory:
    runtime = "vm-tcg" if accel is Accel.tcg else "vm"

    @contextmanager
    def launcher(box: Sandbox, plan: Plan, progress: Callable[[str], None]) -> Iterator[Launcher]:
        if accel is Accel.kvm and (problem := kvm_problem()):
            raise RuntimeCannotRun(problem)
        ready = False  # failures inside the caller's block are the caller's
        try:
            with guest_roots(box.conn, progress) as roots:
                ready = True
                vms = VmLauncher(roots, accel, runtime)
                try:
                    yield vms
                finally:
                    vms.stop_all()
        except VmUnavailable as exc:
            if ready:
                raise NeighboursError(str(exc)) from None
            raise RuntimeCannotRun(str(exc)) from None

    return launcher


# Runtimes the engine does not run itself (a VM, a runsc behind a private dockerd): name -> a launcher built on the
# run's sandbox (its instances are labelled and removed with the rest), alive for the runtime's rows.
LAUNCHERS: dict[str, LauncherFactory] = {
    "runsc": runsc_launcher,
    "vm": vm_launcher(Accel.kvm),
    "vm-tcg": vm_launcher(Accel.tcg),
}


# --- the victim agent ---------------------------------------------------------------------------


class NoAnswer(NeighboursError):
    """The connection closed without a line: an agent not listening yet behind a port forward, or one that died."""


@dataclass
class VictimAgent:
    host: str
    port: int
    scratch_dir: str

    def _connect(self, timeout: float) -> socket.socket:
        conn = socket.create_connection((self.host, self.port), timeout=timeout)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def call(self, seconds: float, *words: str | float) -> dict[str, Any]:
        with self._connect(seconds + CALL_SLACK) as conn:
            conn.sendall((" ".join(str(w) for w in words) + "\n").encode())
            reply = conn.makefile("rb").readline()
        if not reply:
            raise NoAnswer(f"the victim agent gave no answer to {words[0]!r}")
        try:
            answer = json.loads(reply)
        except json.JSONDecodeError:
            raise NeighboursError(f"the victim agent answered {words[0]!r} with something not JSON") from None
        if not isinstance(answer, dict) or "error" in answer:
            raise NeighboursError(f"the victim agent failed {words[0]!r}: {answer}")
        return answer

    def wait_ready(self, alive: Callable[[], bool]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                self.call(0, "info")
                return
            except (OSError, NoAnswer):  # a VM's port forward takes the connection before the guest listens
                if not alive():
                    raise NeighboursError("the victim instance exited before its agent answered") from None
                if time.monotonic() > deadline:
                    raise NeighboursError(f"the victim agent did not answer within {READY_TIMEOUT:.0f} s") from None
                time.sleep(0.2)

    def rtt_us(self, seconds: float) -> float:
        """1-byte ping-pong for `seconds`; the median round trip in microseconds."""
        with self._connect(seconds + CALL_SLACK) as conn:
            conn.sendall(b"echo\n")
            if conn.makefile("rb").readline() != b"ready\n":
                raise NeighboursError("the victim agent refused the echo mode")
            times: list[int] = []
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                start = time.perf_counter_ns()
                conn.sendall(b"x")
                if not conn.recv(1):
                    raise NeighboursError("the victim agent closed the echo connection")
                times.append(time.perf_counter_ns() - start)
        return statistics.median(times) / 1000.0

    def throughput_mib_s(self, seconds: float) -> float:
        """Bytes the victim streams to this process in `seconds`, per second, in MiB/s."""
        with self._connect(seconds + CALL_SLACK) as conn:
            received = 0
            start = time.perf_counter()
            conn.sendall(f"stream {seconds}\n".encode())
            while chunk := conn.recv(1 << 16):
                received += len(chunk)
            elapsed = time.perf_counter() - start
        return received / elapsed / (1 << 20)

    def measure(self, victim: Victim, seconds: float) -> float:
        if victim is Victim.cpu:
            return float(self.call(seconds, "cpu", seconds)["rate"])
        if victim is Victim.membw:
            return float(self.call(seconds, "membw", seconds, MEMBW_MIB)["rate"])
        if victim is Victim.disk:
            return float(self.call(seconds, "disk", self.scratch_dir, seconds)["rate"])
        if victim is Victim.tcp_latency:
            return self.rtt_us(seconds)
        return self.throughput_mib_s(seconds)


# --- aggressors ---------------------------------------------------------------------------------


def probe_source() -> str:
    return resources.files("portcullis.proofs").joinpath("neighbours_probe.py").read_text(encoding="utf-8")


def aggressor_command(aggressor: Aggressor, scratch_dir: str) -> list[str]:
    if aggressor is Aggressor.cpu:
        return ["sh", "-c", "while :; do :; done"]
    if aggressor is Aggressor.membw:
        # Every 64 MiB block read from /dev/zero is cleared by the kernel: a stream of memory writes, no disk.
        return ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M"]
    if aggressor is Aggressor.fork:
        # Each f forks two more and returns: constant fork/exit churn, bounded by the instance's pids limit.
        return ["sh", "-c", "f() { f | f & }; f; exec sleep 86400"]
    if aggressor is Aggressor.disk:
        return [
            "sh",
            "-c",
            f"mkdir -p {scratch_dir}; while :; do dd if=/dev/zero of={scratch_dir}/storm bs=1M count=256 oflag=direct "
            "2>/dev/null; done",
        ]
    raise ValueError(f"the {aggressor} aggressor is a pair of instances (start_aggressor)")


def bounded(command: list[str], seconds: float) -> list[str]:
    """The command killed inside its instance after `seconds`, whatever happens to this process."""
    return ["timeout", "-s", "KILL", str(max(1, round(seconds))), *command]


def start_aggressor(
    launcher: Launcher, aggressor: Aggressor, plan: Plan, limits: LimitValues | None, lifetime: float
) -> list[Instance]:
    if aggressor is Aggressor.net:
        # The aggressor receives a flood from its partner over the bridge; its veth is what tc shapes.
        source = probe_source()
        sink = launcher.start(
            InstanceSpec(
                "net aggressor",
                plan.victim_image,
                bounded(["python3", "-c", source, "sink", str(SINK_PORT)], lifetime),
                plan.cpuset,
                limits,
            )
        )
        address, port = sink.reached_by_neighbours_at(SINK_PORT)
        sender = InstanceSpec(
            "net flood", plan.victim_image,
            bounded(["python3", "-c", source, "flood", address, str(port)], lifetime), plan.cpuset, limits,
        )  # fmt: skip
        return [sink, launcher.start(sender)]
    pids = FORK_PIDS_CAP if aggressor is Aggressor.fork else None
    command = bounded(aggressor_command(aggressor, launcher.scratch_dir), lifetime)
    return [
        launcher.start(InstanceSpec(f"{aggressor} aggressor", plan.aggressor_image, command, plan.cpuset, limits, pids))
    ]


# --- the matrix ---------------------------------------------------------------------------------


def _rotated(items: Sequence[Any], by: int) -> list[Any]:
    by %= len(items)
    return [*items[by:], *items[:by]]


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


@dataclass
class Recorder:
    alone: dict[Victim, list[float]] = field(default_factory=dict)
    beside: dict[tuple[Aggressor, Victim], list[float]] = field(default_factory=dict)
    notes: dict[Aggressor, str] = field(default_factory=dict)
    kernel: str = ""  # the kernel the victim saw: gVisor's own under runsc


def measure_mode(
    launcher: Launcher, plan: Plan, limits: LimitValues | None, progress: Callable[[str], None]
) -> Recorder:
    """Every repetition of one (runtime, limits) pair: alone, then beside each aggressor."""
    record = Recorder()
    mode = "docker limits" if limits else "no limits"
    victim_spec = InstanceSpec(
        "victim",
        plan.victim_image,
        ["python3", "-c", probe_source(), "serve", str(VICTIM_PORT)],
        plan.cpuset,
        limits,
        victim=True,
    )
    progress(f"{launcher.runtime}, {mode}: starting the victim…")
    victim = launcher.start(victim_spec)
    try:
        agent = VictimAgent(victim.address, victim.port(VICTIM_PORT), launcher.scratch_dir)
        agent.wait_ready(victim.alive)
        record.kernel = str(agent.call(0, "info").get("kernel", ""))
        victims = [v for v in plan.victims if v not in launcher.unmeasurable]
        # A cell lives for its victim runs plus start-up; past that the aggressor kills itself.
        lifetime = len(plan.victims) * (plan.seconds + CALL_SLACK) + READY_TIMEOUT
        for index in range(plan.repeat):
            progress(f"{launcher.runtime}, {mode}: repetition {index + 1}/{plan.repeat}, victim alone…")
            for victim_metric in _rotated(victims, index):
                record.alone.setdefault(victim_metric, []).append(agent.measure(victim_metric, plan.seconds))
            for aggressor in _rotated(plan.aggressors, index):
                progress(f"{launcher.runtime}, {mode}: repetition {index + 1}/{plan.repeat}, beside {aggressor}…")
                instances = start_aggressor(launcher, aggressor, plan, limits, lifetime)
                try:
                    time.sleep(min(1.0, plan.seconds))  # let the aggressor reach full swing
                    values = {v: agent.measure(v, plan.seconds) for v in _rotated(victims, index)}
                    if all(instance.alive() for instance in instances):
                        for victim_metric, value in values.items():
                            record.beside.setdefault((aggressor, victim_metric), []).append(value)
                    else:
                        record.notes[aggressor] = "the aggressor exited before the victim's runs ended; runs dropped"
                finally:
                    for instance in instances:
                        launcher.stop(instance)
    finally:
        launcher.stop(victim)
    return record


def blkio_weight_supported() -> bool:
    """cgroup v1 has a weight file only under the CFQ or BFQ schedulers; without it Docker discards the weight."""
    root = Path("/sys/fs/cgroup/blkio")
    return (root / "blkio.weight").exists() or (root / "blkio.bfq.weight").exists()


def data_root_device(root: str) -> str | None:
    """The whole-disk device node holding Docker's data root (device-write-bps needs a disk, not a partition)."""
    try:
        device = os.stat(root).st_dev
        sys_entry = Path(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}").resolve()
    except OSError:
        return None
    if (sys_entry / "partition").exists():
        sys_entry = sys_entry.parent
    node = Path("/dev") / sys_entry.name
    return str(node) if node.exists() else None


def docker_limits(cpuset: str | None, device: str | None) -> LimitValues:
    return LimitValues(
        aggressor_cpus=cpuset_size(cpuset) / 4,  # a quarter of the CPUs it shares with the victim
        aggressor_cpu_shares=256,
        victim_cpu_shares=1024,
        memory_mib=512,
        pids=200,
        blkio_weight=500,
        device_write_mib_per_s=50 if device else None,
        device=device,
        tc_rate_mbit=100,
    )


def notes_for(plan: Plan, values: LimitValues, weight_supported: bool) -> list[str]:
    notes = [
        f"Victim and aggressors were pinned to CPU(s) {plan.cpuset} in both limit modes (a placement, not a limit): "
        "they compete for the same core, as neighbours on a full host do."
        if plan.cpuset
        else "Victim and aggressors were not pinned: the scheduler spread them over every CPU.",
        f"The fork storm runs with --pids-limit {FORK_PIDS_CAP} even without limits, and every aggressor is killed "
        "inside its instance by `timeout -s KILL` at the latest, so the host survives the 'none' case.",
        "TCP latency and throughput are measured from this host to the victim's bridge address (docker0 and a veth); "
        "the host side is not pinned.",
        "The memory-bandwidth aggressor is dd from /dev/zero with 64 MiB blocks (the kernel clears each block); "
        "Docker offers no memory-bandwidth limit, only --memory (capacity) and --cpus.",
    ]
    if LimitsMode.docker not in plan.limits:
        return notes
    notes.append(
        f"--limits docker holds every aggressor instance to --cpus {values.aggressor_cpus:g} and --cpu-shares "
        f"{values.aggressor_cpu_shares} (the victim: --cpu-shares {values.victim_cpu_shares}, no quota), and gives "
        f"victim and aggressor alike --memory {values.memory_mib} MiB, "
        f"--pids-limit {values.pids}, "
        + (f"--device-write-bps {values.device}:{values.device_write_mib_per_s}mb, " if values.device else "")
        + f"and a {values.tc_rate_mbit} Mbit/s tc token bucket on the host side of its veth (traffic into the "
        "instance); the victim's baseline is measured under the same limits."
    )
    if not weight_supported:
        notes.append(
            "--blkio-weight is not applied: this kernel's I/O scheduler has no cgroup v1 weight file "
            "(Docker would discard it); only --device-write-bps limits the disk."
        )
    if not values.device:
        notes.append("The data root's block device was not found, so no --device-write-bps limit was set.")
    return notes


def measure_cells(
    runtime: str,
    launcher: Launcher,
    plan: Plan,
    limits: LimitsMode,
    values: LimitValues,
    kernels: dict[str, str],
    progress: Callable[[str], None],
) -> list[Cell]:
    """One (runtime, limits) block of the matrix, named as the plan names the runtime; the kernel the victim saw
    goes into `kernels`."""
    if limits is LimitsMode.docker and launcher.limits_refused:
        return [
            cell(runtime, limits, aggressor, victim, [], [], launcher.limits_refused)
            for aggressor in plan.aggressors
            for victim in plan.victims
        ]
    record = measure_mode(launcher, plan, values if limits is LimitsMode.docker else None, progress)
    kernels[runtime] = record.kernel
    return [
        cell(runtime, limits, aggressor, victim, record.alone.get(victim, []),
             record.beside.get((aggressor, victim), []),
             launcher.unmeasurable.get(victim) or record.notes.get(aggressor, ""))
        for aggressor in plan.aggressors
        for victim in plan.victims
    ]  # fmt: skip


def measure_neighbours(conn: EngineConnection, plan: Plan, progress: Callable[[str], None]) -> NeighboursReport:
    if not conn.local:
        raise NeighboursError(
            f"the engine at {conn.endpoint} is remote: neighbours shapes the instances' veths with tc on this host, "
            "so it needs the local engine"
        )
    info = conn.api.info()
    known = sorted(info.get("Runtimes") or {})
    for runtime in plan.runtimes:
        if runtime not in known and runtime not in LAUNCHERS:
            raise NeighboursError(
                f"--runtime {runtime}: the engine has no such runtime (it has {', '.join(known)}) and no launcher "
                "is registered for it"
            )
    for image in plan_images(plan):
        try:
            conn.api.inspect_image(image)
        except docker.errors.ImageNotFound:
            raise NeighboursError(f"image {image} is not in the engine (build it with `make test-images`)") from None
    started, started_at = time.monotonic(), datetime.now(UTC).isoformat(timespec="seconds")
    loads = [load_average()]
    values = docker_limits(plan.cpuset, data_root_device(str(info.get("DockerRootDir") or "/var/lib/docker")))
    weight = blkio_weight_supported()
    cells: list[Cell] = []
    kernels: dict[str, str] = {}
    cannot_run: dict[str, str] = {}
    with sandbox(conn, "neighbours") as box:
        for runtime in plan.runtimes:
            # An engine that runs the runtime itself is used as is; a launcher serves only what it lacks.
            factory = LAUNCHERS.get(runtime) if runtime not in known else None
            try:
                with (
                    factory(box, plan, progress)
                    if factory
                    else nullcontext(DockerLauncher(box, runtime, weight)) as launcher
                ):
                    for limits in plan.limits:
                        cells += measure_cells(runtime, launcher, plan, limits, values, kernels, progress)
            except RuntimeCannotRun as exc:
                cannot_run[runtime] = str(exc)
                cells += [
                    cell(runtime, limits, aggressor, victim, [], [], f"{runtime} cannot run here: {exc}")
                    for limits in plan.limits
                    for aggressor in plan.aggressors
                    for victim in plan.victims
                ]
    loads.append(load_average())
    settings = NeighboursSettings(
        runtimes=list(plan.runtimes), aggressors=list(plan.aggressors), victims=list(plan.victims),
        limits=list(plan.limits), repeat=plan.repeat, seconds=plan.seconds, cpuset_cpus=plan.cpuset,
        fork_pids_cap=FORK_PIDS_CAP, docker_limits=values,
    )  # fmt: skip
    environment = NeighboursEnvironment(
        engine_version=conn.api.version().get("Version"), storage_driver=info.get("Driver"),
        cgroup_version=info.get("CgroupVersion"), kernel=platform.release(), cpus=os.cpu_count(),
        victim_image=plan.victim_image, aggressor_image=plan.aggressor_image, load_average=loads,
    )  # fmt: skip
    notes = notes_for(plan, values, weight)
    notes += [f"{runtime}: the victim saw kernel {kernel}" for runtime, kernel in kernels.items()]
    notes += [f"{runtime} did not run: {reason}" for runtime, reason in cannot_run.items()]
    if any(runtime in VM_RUNTIMES for runtime in kernels):
        notes += vm_notes(plan.cpuset)
    if "vm-tcg" in kernels:
        notes.append(TCG_NOTE)
    if "runsc" in kernels and "runsc" not in known:
        notes.append(
            f"runsc ran as a runtime of a private dockerd ({' '.join(RUNSC_ARGS)}): the sandboxes use the host "
            "kernel's network stack inside each container's network namespace, so the tc limit shapes their veths."
        )
    if max(loads) > (os.cpu_count() or 1) * 0.5:
        notes.append(f"Other work shared the machine (load average {loads[0]:.2f} → {loads[-1]:.2f}): expect spread.")
    return NeighboursReport(
        version=__version__, started_at=started_at, duration_seconds=round(time.monotonic() - started, 1),
        settings=settings, environment=environment, cells=cells, claims=check_claims(cells, plan.runtimes),
        notes=notes,
    )  # fmt: skip


def _silent(message: str) -> None:
    """The default progress sink for callers that show no progress (tests)."""


def neighbours_report(plan: Plan, host: str | None = None, log: Callable[[str], None] = _silent) -> NeighboursReport:
    """The whole `portcullis neighbours` flow. Failures raise NeighboursError; Ctrl-C or SIGTERM raises
    ExperimentsInterrupted once every instance is gone."""
    try:
        conn = connect(host, timeout=180)  # creating a python instance on the vfs driver copies the whole image
    except CollectionError as exc:
        raise NeighboursError(str(exc)) from exc
    try:
        return measure_neighbours(conn, plan, log)
    except KeyboardInterrupt as exc:
        raise ExperimentsInterrupted(*exc.args) from exc
    except NeighboursError:
        raise
    except SandboxError as exc:
        raise NeighboursError(str(exc)) from exc
    except OSError as exc:  # requests' exceptions are OSErrors too
        raise NeighboursError(f"an instance connection failed: {exc}") from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise NeighboursError(str(getattr(exc, "explanation", None) or exc)) from exc
    finally:
        conn.close()
