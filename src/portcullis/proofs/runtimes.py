"""Start the overhead workload agent in a given runtime: `start(runtime, conn, image)` → an `Instance`.

One place decides how each runtime runs here, so every experiment (overhead, a noisy-neighbour matrix…) that
needs "an instance of runtime X" gets the same one:
- runc: two containers on the engine `conn` points at (bridge network with a published port and a fresh volume;
  host network), exactly what `portcullis overhead` measures;
- runsc (gVisor): the same two containers on a private second dockerd that has `runsc` as a runtime. The main
  engine is never reconfigured. runsc's own network stack cannot start here (see RUNSC_ARGS), so the sandbox
  uses the host kernel's stack inside the container's network namespace;
- vm: a KVM virtual machine, when this host can run one; otherwise `RuntimeUnavailable` says why.

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
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
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


class RuntimeUnavailable(Exception):
    """This runtime cannot run on this host; the message says why."""


@dataclass
class Instance:
    """A running workload agent in one runtime, reachable from this process on three network paths."""

    runtime: Runtime
    bridge: Agent  # over the engine's bridge to the instance's own address
    published: Agent  # through a port published on 127.0.0.1
    host_network: Agent  # an agent sharing the host's network namespace
    python: PythonInfo
    layer_dir: str  # inside the instance: its writable root
    volume_dir: str  # inside the instance: a volume
    how: str  # one line saying what runs it, for reports


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
    if not any((modules / name).exists() for name in KVM_MODULES) and (modules / "kvm_pvm").exists():
        return (
            "/dev/kvm here is kvm_pvm, not hardware KVM: this host is itself a guest whose CPU has no vmx/svm, and "
            "PVM runs only guest kernels built as PVM guests; Debian's kernel stops after its decompressor "
            "('KASLR disabled', then nothing; tried -cpu host,-arch-capabilities, max and qemu64, -M pc and microvm)"
        )
    return None


def vm_problem() -> str:
    """Why no measuring VM runs here."""
    return kvm_problem() or (
        "KVM looks usable here, but Portcullis cannot boot a measuring VM yet (only a PVM-only host was available "
        "to build it on)"
    )


@contextmanager
def start(
    runtime: Runtime, conn: EngineConnection, image: str, progress: Callable[[str], None] = lambda message: None
) -> Iterator[Instance]:
    """An instance of `runtime` running the workload agent from `image` (it needs python3); removed when the
    block ends. Raises RuntimeUnavailable (with the reason) when the runtime cannot run on this host, and
    OverheadError when the instance started but its agent does not answer."""
    if not conn.local:
        raise OverheadError(f"the engine at {conn.endpoint} is remote: runtimes are compared on this host")
    if runtime is Runtime.vm:
        raise RuntimeUnavailable(vm_problem())
    started = False  # failures of the caller's block are the caller's, not this runtime's
    try:
        with _runc(conn, image) if runtime is Runtime.runc else _runsc(conn, image, progress) as instance:
            started = True
            yield instance
    except PrivateDockerdError as exc:
        if started:
            raise
        raise RuntimeUnavailable(f"the private dockerd for {runtime.value} did not run: {exc}") from None
    except CollectionError as exc:
        if started:
            raise
        raise OverheadError(str(exc)) from None
