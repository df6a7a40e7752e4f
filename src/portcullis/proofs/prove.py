"""Dynamic proofs that a container's limits really hold, each demonstrated in a labelled, short-lived
container that carries the same setting (never in the user's own container).

The verdict logic (`judge_*`) is pure and unit-tested over recorded measurements; `run_proofs`
drives the experiments through `runtime.sandbox`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from portcullis.model.findings import Status

if TYPE_CHECKING:  # the docker SDK loads only when experiments run, not when the rules are listed
    from portcullis.collect.sandbox import RunResult, Sandbox

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
        )

    def host_options(self) -> dict[str, Any]:
        """The docker host-config options that reproduce this policy in an experiment container."""
        options: dict[str, Any] = {"cap_drop": self.cap_drop or None, "cap_add": self.cap_add or None}
        if self.seccomp_unconfined:
            options["security_opt"] = ["seccomp=unconfined"]
        return options


PROVE_RULES: dict[str, tuple[str, str, str, str]] = {
    # id: (title, severity when broken, rationale, remediation)
    "DKR-PRV-001": (
        "The memory limit really stops the container",
        "high",
        "A memory limit that does not hold lets one container exhaust the host's memory and trigger the host OOM "
        "killer against other workloads.",
        "Set --memory (and --memory-swap equal to it); check the cgroup memory controller is enabled on the host.",
    ),
    "DKR-PRV-002": (
        "The pids limit really stops a fork storm",
        "high",
        "Without a working pids limit, a fork bomb in one container exhausts the host's process table.",
        "Set --pids-limit; check the cgroup pids controller is enabled.",
    ),
    "DKR-PRV-003": (
        "The CPU quota really throttles",
        "medium",
        "A quota that is not enforced lets one container starve the others of CPU.",
        "Set --cpus (or --cpu-quota/--cpu-period); check the cgroup cpu controller and CFS bandwidth control.",
    ),
    "DKR-PRV-004": (
        "The read-only root filesystem really refuses writes",
        "medium",
        "A read-only root stops an intruder from planting binaries or changing the application in place.",
        "Run with --read-only and mount tmpfs only on the paths the workload must write.",
    ),
    "DKR-PRV-005": (
        "Dropped capabilities really refuse their operations",
        "high",
        "chown, mknod and raw sockets must fail once CHOWN, MKNOD and NET_RAW are dropped; if they do not, the "
        "capability drop is not in force.",
        "Drop capabilities with --cap-drop (ALL, then add back only what is needed).",
    ),
    "DKR-PRV-006": (
        "The seccomp filter really blocks unshare, keyctl and add_key",
        "medium",
        "Docker's default profile refuses user-namespace creation and the kernel keyring, two common kernel "
        "exploit entry points; a profile that lets them through widens the kernel attack surface.",
        "Keep the default seccomp profile, do not add SYS_ADMIN, and never run seccomp=unconfined.",
    ),
    "DKR-PRV-007": (
        "no-new-privileges really blocks setuid escalation",
        "medium",
        "With no-new-privileges a setuid-root binary must not raise the effective uid of a non-root process.",
        "Run with --security-opt no-new-privileges or set it as the daemon default.",
    ),
    "DKR-PRV-008": (
        "User-namespace remapping really makes container root unprivileged",
        "high",
        "With userns-remap, uid 0 in the container must be an unprivileged uid on the host, so an escape lands "
        "without root.",
        "Enable userns-remap on the daemon and do not opt containers out with --userns host.",
    ),
}

Measurement = dict[str, Any]
Verdict = tuple[Status, str]


def _judge_memory(m: Measurement) -> Verdict:
    limit, allocated, run = m["limit"], m["allocated"], m["run"]
    if run["oom_killed"] or run["exit_code"] == 137:
        return Status.PASS, f"allocating {allocated >> 20} MiB under a {limit >> 20} MiB limit was OOM-killed"
    if "survived" in run["output"]:
        return Status.FAIL, f"{allocated >> 20} MiB were allocated despite the {limit >> 20} MiB limit"
    return Status.SKIP, "the allocation neither finished nor was OOM-killed"


def _judge_pids(m: Measurement) -> Verdict:
    match = re.search(r"PROCS (\d+)", m["run"]["output"])
    if not match:
        return Status.SKIP, "the fork storm did not report"
    seen = int(match.group(1))
    m["processes_seen"] = seen
    if seen <= m["limit"]:
        return Status.PASS, f"a storm of {m['attempted']} forks stopped at {seen} processes (limit {m['limit']})"
    return Status.FAIL, f"{seen} processes ran under a limit of {m['limit']}"


def parse_busybox_time(output: str) -> tuple[float, float] | None:
    """(cpu seconds, wall seconds) from busybox `time` output."""

    def seconds(label: str) -> float | None:
        match = re.search(rf"^{label}\s+(\d+)m\s*([\d.]+)s", output, re.MULTILINE)
        return int(match.group(1)) * 60 + float(match.group(2)) if match else None

    real, user, system = seconds("real"), seconds("user"), seconds("sys")
    if real is None or user is None or system is None or real <= 0:
        return None
    return user + system, real


def _judge_cpu(m: Measurement) -> Verdict:
    measured = parse_busybox_time(m["run"]["output"])
    if measured is None:
        return Status.SKIP, "the spin loop did not report its times"
    cpu, wall = measured
    share = cpu / wall
    m["measured_cpus"] = round(share, 3)
    control = parse_busybox_time(m["control"]["output"])
    free_share = control[0] / control[1] if control else None
    m["unthrottled_cpus"] = round(free_share, 3) if free_share is not None else None
    cpus = m["cpus"]
    if cpus >= m["host_cpus"]:
        return Status.NOT_APPLICABLE, f"the quota ({cpus:g} CPUs) is not below the host's {m['host_cpus']} CPUs"
    # One spinning process uses at most one CPU, so the quota is only observable up to 1.
    ceiling = min(cpus, 1.0)
    if share > ceiling * 1.15 + 0.02:
        return Status.FAIL, f"a spinning process got {share:.2f} CPU, above the quota of {cpus:g}"
    if free_share is None or free_share < ceiling * 1.3:
        return Status.SKIP, (
            f"got {share:.2f} CPU under a quota of {cpus:g}, but without the quota it got only "
            f"{free_share or 0:.2f}: the host is too busy to show throttling"
        )
    return Status.PASS, f"a spinning process got {share:.2f} CPU under a quota of {cpus:g} ({free_share:.2f} without)"


def _judge_read_only(m: Measurement) -> Verdict:
    output = m["run"]["output"]
    if "WROTE" in output:
        return Status.FAIL, "a file was written to the read-only root filesystem"
    if "Read-only file system" in output:
        return Status.PASS, "writing to / fails with EROFS"
    return Status.SKIP, "the write attempt gave no clear answer"


def _judge_capabilities(m: Measurement) -> Verdict:
    broken = sorted(cap for cap, succeeded in m["operation_succeeded"].items() if succeeded)
    if broken:
        return Status.FAIL, "operations still allowed although dropped: " + ", ".join(broken)
    return Status.PASS, "refused as dropped: " + ", ".join(sorted(m["operation_succeeded"]))


def _judge_seccomp(m: Measurement) -> Verdict:
    probes = m.get("probes")
    if probes is None:
        return Status.SKIP, "the syscall probe did not report"
    allowed = sorted(name for name, outcome in probes.items() if outcome in ("ok", "EINVAL", "EDQUOT"))
    if allowed:
        if {"SYS_ADMIN", "ALL"} & set(m.get("cap_add") or []):
            m["note"] = "Docker's default profile opens unshare/mount/setns to containers with SYS_ADMIN"
        return Status.FAIL, "the seccomp filter let through: " + ", ".join(allowed)
    return Status.PASS, "unshare(CLONE_NEWUSER), keyctl and add_key are refused"


def euid_of(output: str) -> int | None:
    match = re.search(r"EUID (\d+)", output)
    return int(match.group(1)) if match else None


def _judge_no_new_privileges(m: Measurement) -> Verdict:
    control, guarded = euid_of(m["control"]["output"]), euid_of(m["guarded"]["output"])
    m["euid_without_nnp"], m["euid_with_nnp"] = control, guarded
    if control != 0:
        return Status.SKIP, "a setuid-root binary did not escalate even without no-new-privileges here"
    if guarded == 0:
        return Status.FAIL, "a setuid-root binary still ran as root"
    if guarded is None:
        return Status.SKIP, "the guarded run did not report"
    return Status.PASS, f"a setuid-root binary ran with euid {guarded} instead of 0"


def _judge_userns(m: Measurement) -> Verdict:
    uid = m.get("host_uid")
    if uid is None:
        return Status.SKIP, "the container's host uid could not be read"
    if uid == 0:
        return Status.FAIL, "container root is host root despite userns-remap"
    return Status.PASS, f"container root is uid {uid} on the host"


JUDGES: dict[str, Callable[[Measurement], Verdict]] = {
    "DKR-PRV-001": _judge_memory,
    "DKR-PRV-002": _judge_pids,
    "DKR-PRV-003": _judge_cpu,
    "DKR-PRV-004": _judge_read_only,
    "DKR-PRV-005": _judge_capabilities,
    "DKR-PRV-006": _judge_seccomp,
    "DKR-PRV-007": _judge_no_new_privileges,
    "DKR-PRV-008": _judge_userns,
}


def judge(rule_id: str, measurement: Measurement) -> Verdict:
    """The verdict on one recorded measurement; `{"absent": reason}` means the setting is not there."""
    if "absent" in measurement:
        return Status.NOT_APPLICABLE, str(measurement["absent"])
    if "error" in measurement:
        return Status.SKIP, str(measurement["error"])
    return JUDGES[rule_id](measurement)


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


def _attempt(experiment: Callable[[], Measurement]) -> Measurement:
    from portcullis.collect.sandbox import SandboxError

    try:
        return experiment()
    except SandboxError as exc:
        return {"error": str(exc)}


def run_proofs(
    box: Sandbox, policy: Policy, images: ProofImages, host_cpus: int, read_host_uid: Callable[[int], int | None]
) -> dict[str, Measurement]:
    """One measurement per proof, in a fresh labelled container each; pure judging happens in `judge`."""
    base = policy.host_options()
    found: dict[str, Measurement] = {}

    memory = policy.memory
    if memory:
        attempt = min(memory * 3, 1 << 30)
        script = f'a=$(head -c {attempt} /dev/zero | tr "\\0" x); echo survived ${{#a}}'
        found["DKR-PRV-001"] = _attempt(
            lambda: {
                "limit": memory,
                "allocated": attempt,
                "run": _run_record(
                    box.run(
                        images.busybox, ["sh", "-c", script], timeout=60, mem_limit=memory, memswap_limit=memory, **base
                    )
                ),
            }
        )
    else:
        found["DKR-PRV-001"] = {"absent": "the policy sets no memory limit"}

    pids = policy.pids_limit
    if pids:
        storm = min(pids + 50, 2000)
        # The storm runs in a child shell (a failed fork ends it); the parent counts by a glob, which needs
        # no fork while the table is full.
        script = (
            f'sh -c "for i in \\$(seq 1 {storm}); do sleep 5 & done" 2>/dev/null; set -- /proc/[0-9]*; echo PROCS $#'
        )
        found["DKR-PRV-002"] = _attempt(
            lambda: {
                "limit": pids,
                "attempted": storm,
                "run": _run_record(box.run(images.busybox, ["sh", "-c", script], timeout=60, pids_limit=pids, **base)),
            }
        )
    else:
        found["DKR-PRV-002"] = {"absent": "the policy sets no pids limit"}

    cpus = policy.cpus
    if cpus:
        script = 'time timeout 2 sh -c "while :; do :; done" 2>&1'
        found["DKR-PRV-003"] = _attempt(
            lambda: {
                "cpus": cpus,
                "host_cpus": host_cpus,
                "run": _run_record(
                    box.run(images.busybox, ["sh", "-c", script], timeout=30, nano_cpus=int(cpus * 1e9), **base)
                ),
                # The same spin without a quota shows what the host would give: throttling is the difference.
                "control": _run_record(box.run(images.busybox, ["sh", "-c", script], timeout=30, **base)),
            }
        )
    else:
        found["DKR-PRV-003"] = {"absent": "the policy sets no CPU quota"}

    if policy.read_only:
        script = "echo x > /portcullis-probe 2>&1 && echo WROTE"
        found["DKR-PRV-004"] = _attempt(
            lambda: {
                "run": _run_record(box.run(images.busybox, ["sh", "-c", script], timeout=30, read_only=True, **base))
            }
        )
    else:
        found["DKR-PRV-004"] = {"absent": "the policy does not make the root filesystem read-only"}

    dropped = sorted(
        {"CHOWN", "MKNOD", "NET_RAW"} if "ALL" in policy.cap_drop else set(policy.cap_drop) & set(CAPABILITY_PROBES)
    )
    if dropped:
        script = "; ".join(f"({CAPABILITY_PROBES[c]}) >/dev/null 2>&1 && echo OK_{c}" for c in dropped)

        def capabilities() -> Measurement:
            output = box.run(images.busybox, ["sh", "-c", script], timeout=30, **base).output
            return {"operation_succeeded": {cap: f"OK_{cap}" in output for cap in dropped}}

        found["DKR-PRV-005"] = _attempt(capabilities)
    else:
        found["DKR-PRV-005"] = {"absent": "the policy drops none of CHOWN, MKNOD, NET_RAW"}

    if policy.seccomp_unconfined:
        found["DKR-PRV-006"] = {"absent": "seccomp is unconfined: there is no filter to prove"}
    else:
        found["DKR-PRV-006"] = _attempt(
            lambda: {
                "cap_add": policy.cap_add,
                "probes": parse_probes(
                    box.run(images.python, ["python3", "-c", PYTHON_SYSCALL_PROBE], timeout=90, **base).output
                ),
            }
        )

    if policy.no_new_privileges:

        def no_new_privileges() -> Measurement:
            control = box.run(images.python, ["sh", "-c", SETUID_PROBE], timeout=90)
            guarded = box.run(images.python, ["sh", "-c", SETUID_PROBE], timeout=90, security_opt=["no-new-privileges"])
            return {"control": _run_record(control), "guarded": _run_record(guarded)}

        found["DKR-PRV-007"] = _attempt(no_new_privileges)
    else:
        found["DKR-PRV-007"] = {"absent": "the policy does not set no-new-privileges"}

    if policy.userns_remap:

        def userns() -> Measurement:
            started = box.start_detached(images.busybox, ["sleep", "30"])
            return {"host_uid": read_host_uid(started.host_pid) if started.host_pid else None}

        found["DKR-PRV-008"] = _attempt(userns)
    else:
        found["DKR-PRV-008"] = {"absent": "the daemon does not remap user namespaces"}
    return found


def parse_probes(output: str) -> dict[str, str] | None:
    for line in output.splitlines():
        if line.startswith("PROBES "):
            parsed: dict[str, str] = json.loads(line[len("PROBES ") :])
            return parsed
    return None
