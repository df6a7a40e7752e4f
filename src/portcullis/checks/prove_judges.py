"""The verdicts of `portcullis prove`: its rule table and the pure judges of recorded measurements.

The experiments that record the measurements live in `proofs.prove`; judging needs none of them, so the
rules (`checks.prove_rules`) and the fixtures (tests/rules/DKR-PRV-*) run without an engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from portcullis.model.findings import Status

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
