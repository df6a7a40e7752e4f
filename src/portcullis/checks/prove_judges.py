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
    "DKR-PRV-009": (
        "The device write rate limit really caps a writer",
        "medium",
        "Without a working --device-write-bps one container's writes can saturate the disk every other container "
        "and the host write to.",
        "Set --device-write-bps on the device backing the engine's data root; on cgroup v1 it caps direct "
        "(O_DIRECT) and synchronous writes, so pair it with a memory limit for buffered ones.",
    ),
    "DKR-PRV-010": (
        "The device read rate limit really caps a reader",
        "low",
        "Without a working --device-read-bps one container's reads can starve the others' disk access.",
        "Set --device-read-bps on the device backing the engine's data root.",
    ),
    "DKR-PRV-011": (
        "The storage quota really stops a container filling the disk",
        "medium",
        "A container writing without a quota can fill the engine's data root and stop every container on it.",
        "Use a storage driver that supports --storage-opt size (overlay2 on xfs with pquota, btrfs, zfs) and set "
        "it; with vfs or overlay2 on ext4, put the data root on its own filesystem instead.",
    ),
    "DKR-PRV-012": (
        "A tc qdisc on a container's interface really shapes its egress",
        "low",
        "Bandwidth shaping is the only guard against one container saturating the host's link; a qdisc that does "
        "not bite gives false comfort.",
        "Shape the container's interface with tc (tbf or htb) or use a CNI bandwidth plugin; check the kernel has "
        "the sch_tbf module.",
    ),
    "DKR-PRV-013": (
        "Containers on different user networks cannot reach each other",
        "high",
        "Separate user networks are meant to isolate workloads; Docker enforces it with iptables rules, so an "
        "engine run with --iptables=false (or a host forwarding between bridges) lets any container reach the "
        "others through the host's routing.",
        "Run dockerd with iptables enabled (the default) or add host firewall rules that drop traffic between "
        "Docker bridges; keep net.ipv4.ip_forward off where routing is not needed.",
    ),
    "DKR-PRV-014": (
        "Containers on the default bridge cannot reach each other (icc off)",
        "medium",
        "With inter-container communication on the default bridge, every container can talk to every other one's "
        "ports (CIS 2.2); icc=false is enforced by iptables, so it does not hold with --iptables=false.",
        'Set "icc": false in daemon.json with iptables enabled, and link containers through user networks.',
    ),
    "DKR-PRV-015": (
        "A published port does not answer on the host's external address",
        "medium",
        "A port published on 0.0.0.0 (the default) is open to every network the host is on, bypassing host "
        "firewalls that do not see Docker's rules (CIS 5.14).",
        "Publish on a specific address (-p 127.0.0.1:8080:80) or set the daemon's default bind address "
        '("ip": "127.0.0.1" in daemon.json).',
    ),
    "DKR-PRV-016": (
        "Live restore (CIS 2.16) really keeps containers running when dockerd dies",
        "medium",
        "Without live restore, containers stop whenever dockerd stops, crashes or is upgraded; with it they keep "
        "running and the restarted daemon reattaches them.",
        'Set "live-restore": true in daemon.json and reload dockerd (SIGHUP).',
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


def parse_dd_rate(output: str) -> tuple[int, float] | None:
    """(bytes, seconds) from GNU dd's summary line: "4194304 bytes (4.2 MB, 4.0 MiB) copied, 2.0 s, 2.1 MB/s"."""
    match = re.search(r"^(\d+) bytes .*copied, ([\d.e+-]+) s", output, re.MULTILINE)
    if not match or float(match.group(2)) <= 0:
        return None
    return int(match.group(1)), float(match.group(2))


# A measured rate up to 20 % over a cap still counts as capped (bursts, timer granularity).
RATE_TOLERANCE = 1.2


def _mib(rate: float) -> str:
    return f"{rate / (1 << 20):.2f} MiB/s"


def _judge_device_rate(m: Measurement, verb: str) -> Verdict:
    measured, control = parse_dd_rate(m["run"]["output"]), parse_dd_rate(m["control"]["output"])
    if measured is None:
        return Status.SKIP, f"the throttled {verb} did not report its rate: {m['run']['output'][-200:]}"
    rate, cap = measured[0] / measured[1], m["rate"]
    m["measured_bps"] = round(rate)
    m["unthrottled_bps"] = round(control[0] / control[1]) if control else None
    if rate > cap * RATE_TOLERANCE:
        return Status.FAIL, f"a direct {verb} ran at {_mib(rate)} on {m['device']}, above the cap of {_mib(cap)}"
    if control is None or control[0] / control[1] <= cap * RATE_TOLERANCE:
        return Status.SKIP, (
            f"the {verb} ran at {_mib(rate)} under the cap, but the device is no faster without it: "
            "the cap is not what held it back"
        )
    return Status.PASS, (
        f"a direct {verb} ran at {_mib(rate)} under a cap of {_mib(cap)} on {m['device']} "
        f"({_mib(control[0] / control[1])} without)"
    )


def _judge_storage_quota(m: Measurement) -> Verdict:
    if "refused" in m:
        return Status.NOT_APPLICABLE, (
            f"storage driver {m.get('storage_driver') or '?'} does not support --storage-opt size here: {m['refused']}"
        )
    written = re.search(r"^(\d+)\s*$", m["run"]["output"], re.MULTILINE)
    if written is None:
        return Status.SKIP, "the writer did not report how much it wrote"
    size, wrote = m["size"], int(written.group(1))
    m["written"] = wrote
    if wrote > size:
        return Status.FAIL, f"{wrote >> 20} MiB were written under a quota of {size >> 20} MiB"
    return Status.PASS, f"writing {m['attempted'] >> 20} MiB stopped at {wrote >> 20} MiB (quota {size >> 20} MiB)"


def _judge_egress(m: Measurement) -> Verdict:
    transfers = [re.search(r"SENT (\d+) ([\d.e+-]+)", m[key]["output"]) for key in ("unshaped", "shaped")]
    if not all(t and int(t.group(1)) == m["bytes"] for t in transfers):
        return Status.SKIP, "the two transfers did not both complete"
    free, shaped = (int(t.group(1)) * 8 / max(float(t.group(2)), 1e-6) for t in transfers if t)
    m["unshaped_bits"], m["shaped_bits"] = round(free), round(shaped)
    rate = m["rate_bits"]
    what = m["qdisc"] or "no qdisc"
    if shaped > rate * RATE_TOLERANCE:
        return Status.FAIL, f"with {what} the container sent {shaped / 1e6:.2f} Mbit/s, above {rate / 1e6:.2f} Mbit/s"
    if free <= rate * RATE_TOLERANCE:
        return Status.SKIP, f"even unshaped the container sent only {free / 1e6:.2f} Mbit/s: the link is the limit"
    return Status.PASS, (f"with {what} the container sent {shaped / 1e6:.2f} Mbit/s ({free / 1e6:.0f} Mbit/s unshaped)")


def _judge_cross_network(m: Measurement) -> Verdict:
    if not m["same_network_reached"]:
        return Status.SKIP, "the web server did not answer even on its own network"
    if m["other_network_reached"]:
        return Status.FAIL, (
            f"a container on another user network fetched from {m['server_address']}: the networks are not isolated "
            "(with --iptables=false the host routes between Docker bridges)"
        )
    return Status.PASS, "a container on another user network could not reach the server; one on its network could"


def _judge_default_bridge(m: Measurement) -> Verdict:
    if not m["control_reached"]:
        return Status.SKIP, "the web server did not answer inside its own container"
    if m["neighbour_reached"]:
        return Status.FAIL, (
            f"a neighbour on the default bridge fetched from the server (icc option {m['icc_option']}): "
            "every container there can reach the others' ports"
        )
    return Status.PASS, f"a neighbour on the default bridge could not reach the server (icc option {m['icc_option']})"


def _judge_published_port(m: Measurement) -> Verdict:
    if not m["control_answered"]:
        return Status.SKIP, f"the port published on {m['host_ip']} did not answer there"
    where = f"{m['external_address']}:{m['host_port']}"
    if m["external_answered"]:
        return Status.FAIL, f"a port published on {m['host_ip']} answers on the host's external address {where}"
    return Status.PASS, f"a port published on {m['host_ip']} does not answer on the external address {where}"


def _judge_daemon_death(m: Measurement) -> Verdict:
    live = bool(m["engine_live_restore"])
    trial, other = m["trials"]["on" if live else "off"], m["trials"]["off" if live else "on"]
    setting = "on" if live else "off"
    m["running_after_restart"] = trial["running_after_restart"]
    contrast = f"; with it {'off' if live else 'on'} the container was {other['state_after_restart']}" if other else ""
    if trial["running_after_restart"] and trial["same_process"]:
        return Status.PASS, (
            f"with live-restore {setting}, as this engine runs, a container kept running (pid {trial['pid_before']}) "
            f"while a private dockerd was killed and restarted{contrast}"
        )
    return Status.FAIL, (
        f"with live-restore {setting}, as this engine runs, killing a private dockerd left its container "
        f"{trial['state_after_restart']} after the restart{contrast}"
    )


JUDGES: dict[str, Callable[[Measurement], Verdict]] = {
    "DKR-PRV-001": _judge_memory,
    "DKR-PRV-002": _judge_pids,
    "DKR-PRV-003": _judge_cpu,
    "DKR-PRV-004": _judge_read_only,
    "DKR-PRV-005": _judge_capabilities,
    "DKR-PRV-006": _judge_seccomp,
    "DKR-PRV-007": _judge_no_new_privileges,
    "DKR-PRV-008": _judge_userns,
    "DKR-PRV-009": lambda m: _judge_device_rate(m, "write"),
    "DKR-PRV-010": lambda m: _judge_device_rate(m, "read"),
    "DKR-PRV-011": _judge_storage_quota,
    "DKR-PRV-012": _judge_egress,
    "DKR-PRV-013": _judge_cross_network,
    "DKR-PRV-014": _judge_default_bridge,
    "DKR-PRV-015": _judge_published_port,
    "DKR-PRV-016": _judge_daemon_death,
}


def judge(rule_id: str, measurement: Measurement) -> Verdict:
    """The verdict on one recorded measurement; `{"absent": reason}` means the setting is not there."""
    if "absent" in measurement:
        return Status.NOT_APPLICABLE, str(measurement["absent"])
    if "error" in measurement:
        return Status.SKIP, str(measurement["error"])
    return JUDGES[rule_id](measurement)
