"""Start the overhead workload agent in a given runtime: `start(runtime, conn, image)` → an `Instance`.

One place decides how each runtime runs here, so every experiment (overhead, a noisy-neighbour matrix…) that
needs "an instance of runtime X" gets the same one:
- runc: two containers on the engine `conn` points at (bridge network with a published port and a fresh volume;
  host network), exactly what `portcullis overhead` measures;
- runsc (gVisor): the same two containers on a private second dockerd that has `runsc` as a runtime. The main
  engine is never reconfigured. runsc's own network stack cannot start here (see RUNSC_ARGS), so the sandbox
  uses the host kernel's stack inside the container's network namespace;
- vm: a KVM virtual machine (proofs.vm), when this host can boot one; otherwise `RuntimeUnavailable` says why;
- vm-tcg: the same virtual machine under QEMU's TCG software emulation: a separately named runtime, so no one reads
  emulation cost as KVM overhead.

A runtime that cannot run raises `RuntimeUnavailable` with the reason found on this host (a missing program, the
engine's own refusal), never a guess. Everything an instance started is removed when its block ends, on Ctrl-C
and SIGTERM too (the sandbox's signal handling covers the block).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from portcullis.collect import CollectionError
from portcullis.collect.engine import EngineConnection, connect
from portcullis.collect.private_dockerd import PrivateDockerdError, TrialDaemon, copy_image, missing_requirement
from portcullis.collect.sandbox import SandboxError, sandbox
from portcullis.proofs.overhead import (
    Agent,
    ContainerAgents,
    OverheadError,
    scratch_volume,
    start_container_agents,
)
from portcullis.proofs.overhead_results import PythonInfo
from portcullis.proofs.vm import Accel, VmUnavailable, boot

# runsc 20221219 (Debian bookworm) refuses its own network stack on this kernel: "cannot run with network enabled
# in root network namespace" for every container, even --network none (gVisor issue #10704, fixed in later
# releases). With --network=host the sandbox uses the host kernel's stack, still inside the network namespace
# dockerd made for the container, so bridge, published port and host network all work. ptrace is named because
# it is the platform this release defaults to and the one that starts here (the kvm platform hangs on this host).
RUNSC_ARGS = ["--network=host", "--platform=ptrace"]
KVM_MODULES = ("kvm_intel", "kvm_amd")


class Runtime(StrEnum):
    runc = "runc"
    runsc = "runsc"
    vm = "vm"
    vm_tcg = "vm-tcg"


class RuntimeUnavailable(Exception):
    """This runtime cannot run on this host; the message says why."""


@dataclass
class Instance:
    """A running workload agent in one runtime, reachable from this process on up to three network paths."""

    runtime: Runtime
    bridge: Agent | None  # over the engine's bridge to the instance's own address; None: the runtime has no such path
    published: Agent  # through a port published (forwarded) on 127.0.0.1
    host_network: Agent | None  # an agent sharing the host's network namespace; None: the runtime cannot
    python: PythonInfo
    layer_dir: str  # inside the instance: its writable root
    volume_dir: str  # inside the instance: a volume
    how: str  # one line saying what runs it, for reports
    notes: list[str] = field(default_factory=list)  # what a reader must know to read this runtime's numbers

    @property
    def agent(self) -> Agent:
        """The agent that runs the CPU, memory and disk workloads."""
        return self.bridge or self.published


def _version(program: str) -> str:
    try:
        result = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return "unknown version"
    first = result.stdout.strip().splitlines()
    return first[0] if first else "unknown version"


@contextmanager
def _containers(conn: EngineConnection, image: str, runtime: str | None) -> Iterator[ContainerAgents]:
    """The bridge and host-network agent containers (and their volume) of `runtime` on the engine at `conn`."""
    with sandbox(conn, "runtimes") as box, scratch_volume(conn, uuid.uuid4().hex[:12]) as volume:
        try:
            yield start_container_agents(box, image, volume, runtime)
        finally:
            box.close()  # containers first: the volume cannot go while one still uses it


def _instance(runtime: Runtime, agents: ContainerAgents, how: str) -> Instance:
    # Not /tmp: runsc mounts its own tmpfs there (memory, not the container's writable layer).
    return Instance(
        runtime, agents.bridge, agents.published, agents.host_network, agents.bridge_python, "/var/tmp", "/vol", how
    )


@contextmanager
def _runc(conn: EngineConnection, image: str) -> Iterator[Instance]:
    version = conn.api.version().get("Version")
    with _containers(conn, image, None) as agents:
        yield _instance(Runtime.runc, agents, f"runc containers on the engine (Docker {version})")


@dataclass
class PrivateRunsc:
    """A private dockerd that runs runsc, with the images it needs copied in from the main engine."""

    conn: EngineConnection
    how: str  # one line saying what runs the sandboxes, for reports


@contextmanager
def private_runsc(
    conn: EngineConnection, images: Iterable[str], progress: Callable[[str], None] = lambda message: None
) -> Iterator[PrivateRunsc]:
    """A private dockerd with runsc as a runtime and `images` loaded; stopped with everything it ran when the block
    ends. Raises RuntimeUnavailable when runsc or a second dockerd cannot run here."""
    runsc = shutil.which("runsc")
    if runsc is None:
        raise RuntimeUnavailable("runsc is not installed (Debian package runsc)")
    missing = missing_requirement()
    if missing:
        raise RuntimeUnavailable(missing)
    with ExitStack() as stack:
        daemon = TrialDaemon({"runtimes": {"runsc": {"path": runsc, "runtimeArgs": RUNSC_ARGS}}})
        stack.callback(daemon.stop)
        progress("starting a private dockerd with runsc and copying the images into it…")
        daemon.start()
        client = daemon.client(timeout=300)
        stack.callback(client.close)
        for image in images:
            copy_image(image, conn.api, client)
        private = connect(host=daemon.host, timeout=180)
        stack.callback(private.close)
        yield PrivateRunsc(private, f"{_version(runsc)} ({' '.join(RUNSC_ARGS)}) as a runtime of a private dockerd")


@contextmanager
def _runsc(conn: EngineConnection, image: str, progress: Callable[[str], None]) -> Iterator[Instance]:
    with private_runsc(conn, [image], progress) as private, ExitStack() as stack:
        try:
            agents = stack.enter_context(_containers(private.conn, image, "runsc"))
        except SandboxError as exc:
            raise RuntimeUnavailable(f"runsc containers do not start here: {exc}") from None
        yield _instance(Runtime.runsc, agents, private.how)


def kvm_problem() -> str | None:
    """Why a KVM virtual machine cannot boot a stock kernel here, from what this host shows; None when it can."""
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 is not installed (Debian package qemu-system-x86)"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "/dev/kvm is missing or not usable by this user: no KVM on this host"
    modules = Path("/sys/module")
    if any((modules / name).exists() for name in KVM_MODULES):
        return None
    if (modules / "kvm_pvm").exists():
        return (
            "/dev/kvm here is kvm_pvm, not hardware KVM: this host is itself a guest whose CPU has no vmx/svm, and "
            "PVM runs only guest kernels built as PVM guests; Debian's kernel stops after its decompressor "
            "('KASLR disabled', then nothing; tried -cpu host,-arch-capabilities, max and qemu64, -M pc and microvm). "
            "The same VM runs under TCG software emulation as the vm-tcg runtime"
        )
    return f"/dev/kvm exists but neither {' nor '.join(KVM_MODULES)} is loaded: no hardware KVM here"


VM_NOTES = [
    "{runtime}: 'layer' is the guest's root, an initramfs held in the guest's RAM (no disk under it); 'volume' is an "
    "ext4 image on this host's disk attached with virtio-blk.",
    "{runtime}: reached only through QEMU's user-mode (slirp) port forward on 127.0.0.1, its published-port row: a "
    "user-mode NIC has no address this host can reach and a guest cannot share the host's network, so it has no "
    "bridge-ip or host-network row.",
]
TCG_NOTE = (
    "vm-tcg is QEMU's TCG software emulation, not KVM: every guest instruction is translated in software, so its "
    "numbers show the cost of emulation, far above a KVM VM's; do not read them as VM overhead."
)


@contextmanager
def _vm(runtime: Runtime, conn: EngineConnection, image: str, progress: Callable[[str], None]) -> Iterator[Instance]:
    accel = Accel.tcg if runtime is Runtime.vm_tcg else Accel.kvm
    if accel is Accel.kvm and (problem := kvm_problem()):
        raise RuntimeUnavailable(problem)
    with boot(conn, image, accel, progress) as guest:
        kind = "TCG software emulation, not KVM" if accel is Accel.tcg else "KVM"
        how = (
            f"{guest.qemu_version}, -accel {accel.value} ({kind}), Debian kernel {guest.kernel.version}, 1 vCPU, "
            f"{guest.memory_mib} MiB"
        )
        notes = [note.format(runtime=runtime.value) for note in VM_NOTES] + ([TCG_NOTE] if accel is Accel.tcg else [])
        yield Instance(runtime, None, guest.agent, None, guest.python, "/var/tmp", "/vol", how, notes)


def _runtime(
    runtime: Runtime, conn: EngineConnection, image: str, progress: Callable[[str], None]
) -> AbstractContextManager[Instance]:
    if runtime is Runtime.runc:
        return _runc(conn, image)
    if runtime is Runtime.runsc:
        return _runsc(conn, image, progress)
    return _vm(runtime, conn, image, progress)


@contextmanager
def start(
    runtime: Runtime, conn: EngineConnection, image: str, progress: Callable[[str], None] = lambda message: None
) -> Iterator[Instance]:
    """An instance of `runtime` running the workload agent from `image` (it needs python3); removed when the
    block ends. Raises RuntimeUnavailable (with the reason) when the runtime cannot run on this host, and
    OverheadError when the instance started but its agent does not answer."""
    if not conn.local:
        raise OverheadError(f"the engine at {conn.endpoint} is remote: runtimes are compared on this host")
    started = False  # failures of the caller's block are the caller's, not this runtime's
    try:
        with _runtime(runtime, conn, image, progress) as instance:
            started = True
            yield instance
    except VmUnavailable as exc:
        if started:
            raise
        raise RuntimeUnavailable(str(exc)) from None
    except PrivateDockerdError as exc:
        if started:
            raise
        raise RuntimeUnavailable(f"the private dockerd for {runtime.value} did not run: {exc}") from None
    except CollectionError as exc:
        if started:
            raise
        raise OverheadError(str(exc)) from None
