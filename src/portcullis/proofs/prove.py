"""Dynamic proofs that a container's limits really hold, each demonstrated in a labelled, short-lived
container that carries the same setting (never in the user's own container).

`run_proofs` records one measurement per proof through `collect.sandbox`; the pure verdicts on
those measurements are `checks.prove_judges`; `prove_report` is the whole `portcullis prove` flow.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from portcullis import __version__
from portcullis.checks.prove_judges import PROVE_RULES, Measurement
from portcullis.checks.registry import all_rules, select_rules
from portcullis.checks.runner import evaluate_on
from portcullis.collect import CollectionError
from portcullis.collect.engine import connect
from portcullis.collect.host import read_text
from portcullis.collect.host_limits import block_device_of, external_ipv4
from portcullis.collect.sandbox import RunResult, Sandbox, SandboxError, sandbox
from portcullis.model.findings import Report, Summary, Target, TargetKind, ToolInfo
from portcullis.pipelines.errors import ExperimentsInterrupted, SubjectError, UsageError
from portcullis.proofs import limits
from portcullis.proofs.limits import EngineView

# Capabilities whose absence a proof can demonstrate with a busybox one-liner.
CAPABILITY_PROBES = {
    "CHOWN": "touch /tmp/p && chown 1000 /tmp/p",
    "MKNOD": "mknod /tmp/n c 1 3",
    "NET_RAW": "ping -c1 -W1 127.0.0.1",
}
PYTHON_SYSCALL_PROBE = r"""
import ctypes, errno, json, os, platform
NUMBERS = {"x86_64": {"keyctl": 250, "add_key": 248}, "aarch64": {"keyctl": 219, "add_key": 217}}
numbers = NUMBERS[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)
L = ctypes.c_long
def outcome(result):
    return "ok" if result >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")
found = {}
pid = os.fork()
if pid == 0:
    os._exit(0 if libc.unshare(0x10000000) == 0 else ctypes.get_errno())
code = os.WEXITSTATUS(os.waitpid(pid, 0)[1])
found["unshare(CLONE_NEWUSER)"] = "ok" if code == 0 else errno.errorcode.get(code, "?")
found["keyctl"] = outcome(libc.syscall(L(numbers["keyctl"]), L(0), L(-3), L(0)))
key = (b"user", b"portcullis-probe", b"x", ctypes.c_size_t(1), L(-3))
found["add_key"] = outcome(libc.syscall(L(numbers["add_key"]), *key))
print("PROBES " + json.dumps(found))
"""
# Run as uid 1000 through a setuid-root copy of python: does exec raise the effective uid?
SETUID_PROBE = (
    'cp "$(readlink -f /usr/bin/python3)" /tmp/suid-python && chmod 4755 /tmp/suid-python && '
    "python3 -c 'import os; os.setgid(1000); os.setuid(1000); "
    'os.execv("/tmp/suid-python", ["p", "-c", "import os; print(\\"EUID\\", os.geteuid())"])\''
)


@dataclass
class Policy:
    """The settings whose effect is proven; None/False means the setting is absent."""

    source: str
    memory: int | None = None
    pids_limit: int | None = None
    cpus: float | None = None
    read_only: bool = False
    cap_drop: list[str] = field(default_factory=list)
    cap_add: list[str] = field(default_factory=list)
    seccomp_unconfined: bool = False
    no_new_privileges: bool = False
    userns_remap: bool = False
    device_write_bps: int | None = None  # bytes/s
    device_read_bps: int | None = None
    blkio_device: str | None = None  # the device the container's own throttle names; None: the data root's
    storage_size: int | None = None
    publish_ip: str | None = None  # the host address a port is published on ("0.0.0.0": every address)
    # Opt-in proofs that load the host or start more than one container: requested, never read from a container.
    egress_rate_bits: int | None = None
    network: bool = False
    daemon_death: bool = False

    @classmethod
    def from_inspect(cls, inspect: dict[str, Any], daemon_security_options: list[str]) -> Policy:
        host = inspect.get("HostConfig") or {}
        security = host.get("SecurityOpt") or []
        cpus = None
        if host.get("NanoCpus"):
            cpus = host["NanoCpus"] / 1e9
        elif host.get("CpuQuota") and host["CpuQuota"] > 0:
            cpus = host["CpuQuota"] / (host.get("CpuPeriod") or 100_000)
        pids = host.get("PidsLimit")
        writes = host.get("BlkioDeviceWriteBps") or []
        reads = host.get("BlkioDeviceReadBps") or []
        size = (host.get("StorageOpt") or {}).get("size")
        host_ips = [b.get("HostIp") or "0.0.0.0" for bs in (host.get("PortBindings") or {}).values() for b in bs or []]
        return cls(
            source=f"container {str(inspect.get('Name', '')).lstrip('/')}",
            memory=host.get("Memory") or None,
            pids_limit=pids if pids and pids > 0 else None,
            cpus=cpus,
            read_only=bool(host.get("ReadonlyRootfs")),
            cap_drop=[c.upper().removeprefix("CAP_") for c in host.get("CapDrop") or []],
            cap_add=[c.upper().removeprefix("CAP_") for c in host.get("CapAdd") or []],
            seccomp_unconfined=any(o.replace(":", "=") == "seccomp=unconfined" for o in security),
            no_new_privileges=any(
                o.replace(":", "=").startswith("no-new-privileges") and not o.endswith("false") for o in security
            ),
            userns_remap=any("name=userns" in o for o in daemon_security_options) and host.get("UsernsMode") != "host",
            device_write_bps=writes[0]["Rate"] if writes else None,
            device_read_bps=reads[0]["Rate"] if reads else None,
            blkio_device=(writes or reads)[0]["Path"] if writes or reads else None,
            storage_size=parse_bytes(size) if size else None,
            publish_ip="0.0.0.0" if "0.0.0.0" in host_ips else (host_ips[0] if host_ips else None),
        )

    def host_options(self) -> dict[str, Any]:
        """The docker host-config options that reproduce this policy in an experiment container."""
        options: dict[str, Any] = {"cap_drop": self.cap_drop or None, "cap_add": self.cap_add or None}
        if self.seccomp_unconfined:
            options["security_opt"] = ["seccomp=unconfined"]
        return options


def _run_record(run: RunResult) -> dict[str, Any]:
    return {
        "exit_code": run.exit_code,
        "output": run.output[-2000:],
        "oom_killed": run.oom_killed,
        "timed_out": run.timed_out,
    }


# --- the experiments -----------------------------------------------------------------------------


@dataclass
class ProofImages:
    busybox: str = "portcullis-test/busybox:1"
    python: str = "portcullis-test/python:bookworm"


# (the user's engine API, to copy the probe image from; the image) -> the trials' measurement
DaemonDeath = Callable[[Any, str], Measurement]


@dataclass(frozen=True)
class Lab:
    """What every experiment needs: where to run it, the policy it proves, and the host's facts."""

    box: Sandbox
    policy: Policy
    images: ProofImages
    host_cpus: int
    read_host_uid: Callable[[int], int | None]
    engine: EngineView = field(default_factory=EngineView)
    # Kills and restarts private dockerds (never the user's); provided by the caller that can start one.
    daemon_death: DaemonDeath | None = None

    def run(self, image: str, command: list[str], timeout: float, **host_options: Any) -> RunResult:
        """Run in a container carrying the policy's capabilities and seccomp setting, plus `host_options`."""
        return self.box.run(image, command, timeout=timeout, **host_options, **self.policy.host_options())

    def shell(self, script: str, timeout: float, **host_options: Any) -> RunResult:
        return self.run(self.images.busybox, ["sh", "-c", script], timeout, **host_options)


def _prove_memory(lab: Lab) -> Measurement:
    memory = lab.policy.memory
    if not memory:
        return {"absent": "the policy sets no memory limit"}
    attempt = min(memory * 3, 1 << 30)
    script = f'a=$(head -c {attempt} /dev/zero | tr "\\0" x); echo survived ${{#a}}'
    run = lab.shell(script, 60, mem_limit=memory, memswap_limit=memory)
    return {"limit": memory, "allocated": attempt, "run": _run_record(run)}


def _prove_pids(lab: Lab) -> Measurement:
    pids = lab.policy.pids_limit
    if not pids:
        return {"absent": "the policy sets no pids limit"}
    storm = min(pids + 50, 2000)
    # The storm runs in a child shell (a failed fork ends it); the parent counts by a glob, which needs
    # no fork while the table is full.
    script = f'sh -c "for i in \\$(seq 1 {storm}); do sleep 5 & done" 2>/dev/null; set -- /proc/[0-9]*; echo PROCS $#'
    return {"limit": pids, "attempted": storm, "run": _run_record(lab.shell(script, 60, pids_limit=pids))}


def _prove_cpu(lab: Lab) -> Measurement:
    cpus = lab.policy.cpus
    if not cpus:
        return {"absent": "the policy sets no CPU quota"}
    script = 'time timeout 2 sh -c "while :; do :; done" 2>&1'
    run = lab.shell(script, 30, nano_cpus=int(cpus * 1e9))
    # The same spin without a quota shows what the host would give: throttling is the difference.
    control = lab.shell(script, 30)
    return {"cpus": cpus, "host_cpus": lab.host_cpus, "run": _run_record(run), "control": _run_record(control)}


def _prove_read_only(lab: Lab) -> Measurement:
    if not lab.policy.read_only:
        return {"absent": "the policy does not make the root filesystem read-only"}
    return {"run": _run_record(lab.shell("echo x > /portcullis-probe 2>&1 && echo WROTE", 30, read_only=True))}


def _prove_capabilities(lab: Lab) -> Measurement:
    dropped = lab.policy.cap_drop
    probed = sorted(set(CAPABILITY_PROBES) if "ALL" in dropped else set(dropped) & set(CAPABILITY_PROBES))
    if not probed:
        return {"absent": "the policy drops none of CHOWN, MKNOD, NET_RAW"}
    script = "; ".join(f"({CAPABILITY_PROBES[c]}) >/dev/null 2>&1 && echo OK_{c}" for c in probed)
    output = lab.shell(script, 30).output
    return {"operation_succeeded": {cap: f"OK_{cap}" in output for cap in probed}}


def _prove_seccomp(lab: Lab) -> Measurement:
    if lab.policy.seccomp_unconfined:
        return {"absent": "seccomp is unconfined: there is no filter to prove"}
    run = lab.run(lab.images.python, ["python3", "-c", PYTHON_SYSCALL_PROBE], 90)
    return {"cap_add": lab.policy.cap_add, "probes": parse_probes(run.output)}


def _prove_no_new_privileges(lab: Lab) -> Measurement:
    if not lab.policy.no_new_privileges:
        return {"absent": "the policy does not set no-new-privileges"}
    # Both runs leave out the policy's options: the setting alone must make the difference.
    command = ["sh", "-c", SETUID_PROBE]
    control = lab.box.run(lab.images.python, command, timeout=90)
    guarded = lab.box.run(lab.images.python, command, timeout=90, security_opt=["no-new-privileges"])
    return {"control": _run_record(control), "guarded": _run_record(guarded)}


def _prove_userns(lab: Lab) -> Measurement:
    if not lab.policy.userns_remap:
        return {"absent": "the daemon does not remap user namespaces"}
    started = lab.box.start_detached(lab.images.busybox, ["sleep", "30"])
    return {"host_uid": lab.read_host_uid(started.host_pid) if started.host_pid else None}


def _blkio_device(lab: Lab) -> str | None:
    return lab.policy.blkio_device or lab.engine.data_root_device


def _prove_device_write(lab: Lab) -> Measurement:
    rate = lab.policy.device_write_bps
    if not rate:
        return {"absent": "the policy sets no --device-write-bps"}
    device = _blkio_device(lab)
    if device is None:
        return {"absent": f"no block device to throttle: {lab.engine.device_reason}"}
    image = lab.images.python  # GNU dd reports bytes and seconds
    return {
        "device": device,
        "rate": rate,
        "run": limits.measure_device_write(lab.box, image, device, rate, rate),
        "control": limits.measure_device_write(lab.box, image, device, None, rate),
    }


def _prove_device_read(lab: Lab) -> Measurement:
    rate = lab.policy.device_read_bps
    if not rate:
        return {"absent": "the policy sets no --device-read-bps"}
    device = _blkio_device(lab)
    if device is None:
        return {"absent": f"no block device to throttle: {lab.engine.device_reason}"}
    image = lab.images.python
    return {
        "device": device,
        "rate": rate,
        "run": limits.measure_device_read(lab.box, image, device, rate, rate),
        "control": limits.measure_device_read(lab.box, image, device, None, rate),
    }


def _prove_storage_quota(lab: Lab) -> Measurement:
    size = lab.policy.storage_size
    if not size:
        return {"absent": "the policy sets no --storage-opt size"}
    if size > 1 << 30:
        return {"absent": f"a quota of {size >> 20} MiB is too large to fill in a proof (at most 1 GiB)"}
    return {
        "storage_driver": lab.engine.storage_driver,
        **limits.measure_storage_quota(lab.box, lab.images.busybox, size),
    }


def _prove_egress(lab: Lab) -> Measurement:
    rate = lab.policy.egress_rate_bits
    if not rate:
        return {"absent": "not requested (--egress-rate RATE shapes a probe container and measures it)"}
    if not lab.engine.local:
        return {"absent": "the engine is not on this machine: tc must run on the engine's host"}
    return limits.measure_egress(lab.box, lab.images.python, rate)


def _network_opt_in(lab: Lab) -> str | None:
    return None if lab.policy.network else "not requested (--network runs the reachability proofs)"


def _prove_cross_network(lab: Lab) -> Measurement:
    skipped = _network_opt_in(lab)
    return {"absent": skipped} if skipped else limits.measure_cross_network(lab.box, lab.images.busybox)


def _prove_default_bridge(lab: Lab) -> Measurement:
    skipped = _network_opt_in(lab)
    return {"absent": skipped} if skipped else limits.measure_default_bridge(lab.box, lab.images.busybox)


def _prove_published_port(lab: Lab) -> Measurement:
    skipped = _network_opt_in(lab)
    if skipped:
        return {"absent": skipped}
    if not lab.policy.publish_ip:
        return {"absent": "the policy publishes no port (--publish-ip ADDRESS proves one published there)"}
    if not lab.engine.local or not lab.engine.external_address:
        return {"absent": "the engine's host has no external address this machine can use"}
    return limits.measure_published_port(
        lab.box, lab.images.busybox, lab.policy.publish_ip, lab.engine.external_address
    )


def _prove_daemon_death(lab: Lab) -> Measurement:
    if not lab.policy.daemon_death or lab.daemon_death is None:
        return {"absent": "not requested (--daemon-death kills and restarts a private dockerd)"}
    measured = lab.daemon_death(lab.box.conn.api, lab.images.busybox)
    return {"engine_live_restore": lab.engine.live_restore, **measured}


# Rule id -> its experiment; each returns {"absent": why} when the policy lacks the setting it proves.
EXPERIMENTS: dict[str, Callable[[Lab], Measurement]] = {
    "DKR-PRV-001": _prove_memory,
    "DKR-PRV-002": _prove_pids,
    "DKR-PRV-003": _prove_cpu,
    "DKR-PRV-004": _prove_read_only,
    "DKR-PRV-005": _prove_capabilities,
    "DKR-PRV-006": _prove_seccomp,
    "DKR-PRV-007": _prove_no_new_privileges,
    "DKR-PRV-008": _prove_userns,
    "DKR-PRV-009": _prove_device_write,
    "DKR-PRV-010": _prove_device_read,
    "DKR-PRV-011": _prove_storage_quota,
    "DKR-PRV-012": _prove_egress,
    "DKR-PRV-013": _prove_cross_network,
    "DKR-PRV-014": _prove_default_bridge,
    "DKR-PRV-015": _prove_published_port,
    "DKR-PRV-016": _prove_daemon_death,
}


def _attempt(experiment: Callable[[Lab], Measurement], lab: Lab) -> Measurement:
    try:
        return experiment(lab)
    except SandboxError as exc:
        return {"error": str(exc)}


def run_proofs(
    box: Sandbox,
    policy: Policy,
    images: ProofImages,
    host_cpus: int,
    read_host_uid: Callable[[int], int | None],
    progress: Callable[[str], None] = lambda message: None,
    engine: EngineView | None = None,
    daemon_death: DaemonDeath | None = None,
) -> dict[str, Measurement]:
    """One measurement per proof, in a fresh labelled container each; `checks.prove_judges.judge` judges them."""
    lab = Lab(box, policy, images, host_cpus, read_host_uid, engine or EngineView(), daemon_death)
    measurements: dict[str, Measurement] = {}
    for number, (rule_id, experiment) in enumerate(EXPERIMENTS.items(), 1):
        progress(f"proof {number}/{len(EXPERIMENTS)}: {PROVE_RULES[rule_id][0]}…")
        measurements[rule_id] = _attempt(experiment, lab)
    return measurements


def parse_probes(output: str) -> dict[str, str] | None:
    for line in output.splitlines():
        if line.startswith("PROBES "):
            parsed: dict[str, str] = json.loads(line[len("PROBES ") :])
            return parsed
    return None


# --- the flow: `portcullis prove` without the options and the printing -----------------------------


@dataclass(frozen=True)
class PolicyOptions:
    """An explicit policy as the user gave it; `prove_report` reads it only when no container is named."""

    memory: str | None = None  # a size as typed: 64m, 1g
    pids_limit: int | None = None
    cpus: float | None = None
    read_only: bool = False
    cap_drop: Sequence[str] = ()
    no_new_privileges: bool = False
    seccomp_unconfined: bool = False
    device_write_bps: str | None = None  # a rate as docker takes it: 1mb, 512k
    device_read_bps: str | None = None
    storage_size: str | None = None
    publish_ip: str | None = None


@dataclass(frozen=True)
class OptInProofs:
    """Proofs that load the host or start several containers: they run only when asked, for any target."""

    egress_rate: str | None = None  # as tc takes it: 8mbit, 500kbit
    network: bool = False
    daemon_death: DaemonDeath | None = None


def parse_bytes(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip().lower().removesuffix("b")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def parse_bits(text: str) -> int:
    """A tc-style rate in bits/s: 8mbit, 500kbit, 1gbit (decimal units, as tc reads them)."""
    units = {"k": 1000, "m": 1000_000, "g": 1000_000_000}
    text = text.strip().lower().removesuffix("bit")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def _size(option: str, text: str | None) -> int | None:
    if not text:
        return None
    try:
        return parse_bytes(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a size (examples: 64m, 1g)") from None


def engine_view(info: dict[str, Any], local: bool) -> EngineView:
    """The host facts the proofs need, read from the engine's info and (for a local engine) this host."""
    driver, live_restore = str(info.get("Driver") or ""), bool(info.get("LiveRestoreEnabled"))
    if not local:
        return EngineView(False, driver, None, "the engine is not on this machine", None, live_restore)
    device, reason = block_device_of(str(info.get("DockerRootDir") or "/var/lib/docker"))
    return EngineView(True, driver, device, reason, external_ipv4(), live_restore)


def _host_uid(pid: int) -> int | None:
    """The real uid that process `pid` has on this host (from /proc), or None when it cannot be read."""
    for line in (read_text(f"/proc/{pid}/status") or "").splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return None


def _silent(message: str) -> None:
    """The default progress sink: callers that show no progress (tests, a service) pass nothing."""


def prove_report(
    container: str | None,
    options: PolicyOptions,
    images: ProofImages,
    host: str | None = None,
    log: Callable[[str], None] = _silent,
    progress: Callable[[str], None] = _silent,
    opt_in: OptInProofs = OptInProofs(),
) -> Report:
    """Prove the limits of `container` (or of `options` when it is None) on the engine at `host`; one Report.

    An engine that does not answer or a container that cannot be inspected raises SubjectError, a size or
    rate that is not one UsageError; Ctrl-C or SIGTERM raises ExperimentsInterrupted once the containers are gone.
    """
    try:
        egress_bits = parse_bits(opt_in.egress_rate) if opt_in.egress_rate else None
    except ValueError:
        raise UsageError(f"--egress-rate {opt_in.egress_rate!r} is not a rate (examples: 8mbit, 500kbit)") from None
    try:
        conn = connect(host)
    except CollectionError as exc:
        raise SubjectError(str(exc)) from exc
    try:
        info = conn.api.info()
        security_options = list(info.get("SecurityOptions") or [])
        if container:
            try:
                inspect = conn.api.inspect_container(container)
            except Exception as exc:  # the SDK raises NotFound/APIError; either way one line
                message = f"cannot inspect container {container!r}: {getattr(exc, 'explanation', None) or exc}"
                raise SubjectError(message) from exc
            policy = Policy.from_inspect(inspect, security_options)
            target = Target(kind=TargetKind.CONTAINER, name=policy.source.removeprefix("container "), id=inspect["Id"])
        else:
            policy = Policy(
                source="explicit policy",
                memory=_size("--memory", options.memory),
                pids_limit=options.pids_limit,
                cpus=options.cpus,
                read_only=options.read_only,
                cap_drop=[c.upper().removeprefix("CAP_") for c in options.cap_drop],
                seccomp_unconfined=options.seccomp_unconfined,
                no_new_privileges=options.no_new_privileges,
                userns_remap=any("name=userns" in o for o in security_options),
                device_write_bps=_size("--device-write-bps", options.device_write_bps),
                device_read_bps=_size("--device-read-bps", options.device_read_bps),
                storage_size=_size("--storage-size", options.storage_size),
                publish_ip=options.publish_ip,
            )
            target = Target(kind=TargetKind.CONTAINER, name="explicit policy")
        policy.egress_rate_bits = egress_bits
        policy.network = opt_in.network
        policy.daemon_death = opt_in.daemon_death is not None
        engine = engine_view(info, local=conn.local)
        log(f"proving the limits of {policy.source} in labelled throw-away containers…")
        with sandbox(conn, "prove") as box:
            measurements = run_proofs(
                box, policy, images, os.cpu_count() or 1, _host_uid, progress, engine, opt_in.daemon_death
            )
    except KeyboardInterrupt as exc:  # once connected: an interrupt while connecting stays a plain one
        raise ExperimentsInterrupted(*exc.args) from exc
    finally:
        conn.close()
    findings = []
    for item in select_rules(all_rules(), command="prove"):
        findings.extend(evaluate_on(item, measurements[item.id], target))
    return Report(
        command="prove",
        tool=ToolInfo(version=__version__),
        subject=policy.source,
        findings=findings,
        summary=Summary.of(findings),
    )
