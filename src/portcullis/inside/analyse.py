"""Judge the signals of `collect.inside`: each exposure a `fail`, each protection confirmed a `pass`.

Standard library only and valid on Python 3.8, like its collector: it runs inside containers
from the zipapp. Each rule's metadata lives in `INSIDE_RULES`; `checks.inside_rules` registers
the same table with the rule registry so `portcullis rules DKR-IN-…` explains them. The escape
technique a finding enables is named as CDK/deepce name it, as evidence only: nothing is exploited.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from portcullis.inside.host_paths import sensitive_root

CAPABILITIES = (
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
)
# Capability -> (severity, the escape or abuse technique it enables)
DANGEROUS_CAPS = {
    "SYS_ADMIN": ("critical", "mount-cgroup / release_agent escape, mount host block devices"),
    "SYS_MODULE": ("critical", "load a kernel module (exploitSysModule)"),
    "SYS_PTRACE": ("high", "inject into processes it can see (check-ptrace); with --pid host, into the host"),
    "DAC_READ_SEARCH": ("high", "open_by_handle_at host file read (cap-dac-read-search, 'shocker')"),
    "SYS_RAWIO": ("high", "raw I/O port and memory access"),
    "SYS_BOOT": ("high", "reboot the host kernel"),
    "NET_ADMIN": ("medium", "reconfigure networking, sniff or redirect traffic"),
    "BPF": ("high", "load eBPF programs into the kernel"),
    "PERFMON": ("medium", "kernel performance monitoring and address leaks"),
    "SYS_TIME": ("medium", "set the host clock"),
    "MAC_ADMIN": ("high", "reconfigure the LSM"),
    "MAC_OVERRIDE": ("high", "bypass the LSM"),
    "SYSLOG": ("medium", "read kernel addresses from the kernel log"),
    "LINUX_IMMUTABLE": ("low", "change immutable files"),
}
DANGEROUS_DEVICE_MAJORS = {
    1: "memory devices",
    8: "SCSI disk",
    179: "MMC",
    254: "virtio block",
    259: "NVMe",
    253: "device-mapper",
    10: "misc",
}
HARMLESS_CHAR_DEVICES = {(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2), (136, 0)}
# Initial namespaces have fixed inode numbers in the kernel (PROC_*_INIT_INO).
INITIAL_NS_INODES = {
    "ipc": 0xEFFFFFFF,
    "uts": 0xEFFFFFFE,
    "user": 0xEFFFFFFD,
    "pid": 0xEFFFFFFC,
    "cgroup": 0xEFFFFFFB,
    "time": 0xEFFFFFFA,
    "net": 0xEFFFFFF9,
}

Finding = Dict[str, Any]
Signals = Dict[str, Any]

# id -> (title, severity when failing, rationale, remediation)
INSIDE_RULES: Dict[str, Tuple[str, str, str, str]] = {
    "DKR-IN-001": (
        "No dangerous capability in the effective set",
        "critical",
        "Capabilities such as SYS_ADMIN, SYS_MODULE or DAC_READ_SEARCH let root in the container reach the host "
        "kernel or host files; most known container escapes start from one of them.",
        "Run with --cap-drop ALL and add back only what the workload needs; never add SYS_ADMIN or SYS_MODULE.",
    ),
    "DKR-IN-002": (
        "No raw-socket or device-node capability",
        "low",
        "NET_RAW allows packet spoofing and sniffing on the container's network; MKNOD allows creating device "
        "nodes. Docker grants both by default, and few workloads need them.",
        "Drop them: --cap-drop NET_RAW --cap-drop MKNOD (or --cap-drop ALL).",
    ),
    "DKR-IN-003": (
        "A seccomp filter really blocks dangerous syscalls",
        "medium",
        "Without seccomp every syscall of the kernel is reachable, including user-namespace creation and keyctl, "
        "which widen the kernel attack surface. Live probes confirm what the filter really blocks.",
        "Keep Docker's default seccomp profile (never seccomp=unconfined) or use a stricter custom profile.",
    ),
    "DKR-IN-004": (
        "no_new_privs is set",
        "low",
        "With no_new_privs, setuid binaries and file capabilities cannot raise the privileges of the process.",
        "Run with --security-opt no-new-privileges (or make it the daemon default).",
    ),
    "DKR-IN-005": (
        "An LSM profile confines the process",
        "medium",
        "AppArmor or SELinux confinement blocks mounts and writes to sensitive kernel files even when other "
        "defences fail.",
        "Run with an AppArmor profile (docker-default or your own) or SELinux labels where the host supports them.",
    ),
    "DKR-IN-006": (
        "Host namespaces are not shared",
        "high",
        "Sharing the host's pid, network, ipc, uts or user namespace exposes host processes, host-local "
        "services or host identity to the container.",
        "Do not use --pid host, --network host, --ipc host, --uts host or --userns host.",
    ),
    "DKR-IN-007": (
        "No container-engine API socket is reachable",
        "critical",
        "A reachable Docker or containerd socket gives full control of the host: start a privileged container "
        "that mounts the host root.",
        "Never mount the engine socket into a container; use a narrowly scoped proxy if an API is required.",
    ),
    "DKR-IN-008": (
        "Host root and sensitive host paths are not mounted",
        "high",
        "A bind mount of the host root or of /etc, /proc, /sys, /var/lib/docker… exposes host secrets and, "
        "when writable, lets the container change the host.",
        "Mount only the specific data directories the workload needs, read-only where possible.",
    ),
    "DKR-IN-009": (
        "Kernel escape hooks are not writable",
        "critical",
        "A writable core_pattern, release_agent, uevent_helper, modprobe path or sysrq-trigger lets the "
        "container make the host kernel run a program of its choice or crash the host.",
        "Keep /proc/sys and /sys read-only (no systempaths=unconfined, no --privileged).",
    ),
    "DKR-IN-010": (
        "/proc/sys is read-only",
        "high",
        "A writable /proc/sys lets the container change host kernel settings.",
        "Do not run with --privileged or systempaths=unconfined.",
    ),
    "DKR-IN-011": (
        "No dangerous host devices are present",
        "high",
        "Host block devices, /dev/mem or /dev/kmsg inside the container allow reading or writing the host's "
        "disks and memory (mount-disk).",
        "Do not pass host devices (--device) or run privileged.",
    ),
    "DKR-IN-012": (
        "cgroup v1 hierarchies cannot be mounted",
        "critical",
        "Mounting a cgroup v1 hierarchy gives a writable release_agent: the classic mount-cgroup escape.",
        "Drop SYS_ADMIN, keep the default seccomp profile and an LSM profile.",
    ),
    "DKR-IN-013": (
        "Container root is not host root",
        "medium",
        "Without a user namespace, uid 0 in the container is uid 0 on the host: any escape lands as host root.",
        "Enable userns-remap on the daemon, run rootless Docker, or run the process as a non-root user.",
    ),
}


def _result(
    rule_id: str,
    status: str,
    message: str,
    evidence: Dict[str, Any],
    severity: Optional[str] = None,
    technique: Optional[str] = None,
) -> Finding:
    title, default_severity, _, remediation = INSIDE_RULES[rule_id]
    if technique:
        evidence = dict(evidence, technique=technique)
    return {
        "rule_id": rule_id,
        "title": title,
        "status": status,
        "severity": severity or default_severity,
        "message": message,
        "evidence": evidence,
        "remediation": remediation if status == "fail" else "",
    }


def decode_caps(mask: Optional[str]) -> Optional[List[str]]:
    if mask is None:
        return None
    value = int(mask, 16)
    return [name for bit, name in enumerate(CAPABILITIES) if value >> bit & 1]


def _worst(severities: List[str]) -> str:
    order = ["info", "low", "medium", "high", "critical"]
    return max(severities, key=order.index) if severities else "info"


def _ns_inode(link: Optional[str]) -> Optional[int]:
    if not link or "[" not in link:
        return None
    return int(link.split("[", 1)[1].rstrip("]"))


def shared_namespaces(signals: Signals) -> Dict[str, str]:
    """Namespace name -> how it was established (host comparison or the kernel's initial inode)."""
    shared: Dict[str, str] = {}
    own = signals.get("namespaces") or {}
    host = signals.get("host_namespaces")
    for name in ("pid", "net", "ipc", "uts", "user", "cgroup"):
        mine = own.get(name)
        if mine is None:
            continue
        if host and host.get(name):
            if host[name] == mine:
                shared[name] = "same inode as the auditing host process"
        elif _ns_inode(mine) == INITIAL_NS_INODES.get(name):
            shared[name] = "the kernel's initial namespace"
    if "net" not in shared and not host and "docker0" in (signals.get("interfaces") or []):
        shared["net"] = "the host's docker0 bridge is visible"
    return shared


def _mask_caps(mask: Optional[int]) -> List[str]:
    return [name for bit, name in enumerate(CAPABILITIES) if (mask or 0) >> bit & 1]


def capability_reach(signals: Signals) -> Optional[List[Dict[str, Any]]]:
    """Every capability of the bounding set and whether the container's process can use it, with the reason.

    `via` is "process" when the process itself holds or can gain it, "engine_api" when only a new process
    started through the API (`docker exec -u 0`) would get it, "engine_api_privileged" when under no_new_privs
    only `docker exec --privileged` would;
    `reachable` is None when it cannot be told.
    """
    caps = signals.get("caps") or {}
    bounding = decode_caps(caps.get("CapBnd"))
    if bounding is None:
        return None
    effective = decode_caps(caps.get("CapEff")) or []
    permitted = decode_caps(caps.get("CapPrm")) or []
    ambient = decode_caps(caps.get("CapAmb")) or []
    uid = signals.get("uid")
    nnp = signals.get("no_new_privs")
    files = signals.get("privilege_files")
    setuid = [f["path"] for f in files or [] if f["setuid_root"]]
    reach = []
    for cap in bounding:
        with_file_cap = [f["path"] for f in files or [] if cap in _mask_caps(f.get("file_caps"))]
        reachable: Optional[bool] = True
        via = "process"
        if cap in effective:
            why = "in the effective set"
        elif cap in permitted or cap in ambient:
            why = "in the permitted/ambient set: the process can raise it"
        elif uid == 0 and nnp is False:
            why = "uid 0 without no_new_privs: any program it executes gets the bounding set"
        elif nnp is False and setuid:
            why = "no_new_privs is off and setuid-root %s is present" % setuid[0]
        elif nnp is False and with_file_cap:
            why = "no_new_privs is off and %s carries it as a file capability" % with_file_cap[0]
        elif nnp is None or (nnp is False and files is None):
            reachable, why = None, "uid %s; whether setuid-root or file-capability programs exist is unknown" % uid
        elif nnp:
            # measured: with no_new_privs even `docker exec -u 0` starts with an empty effective set
            reachable, via = False, "engine_api_privileged"
            why = "uid %s and no_new_privs is set: no execve gains it, not even `docker exec -u 0`; " % uid
            why += "only `docker exec --privileged` through the engine API"
        else:
            reachable, via = False, "engine_api"
            why = "uid %s, no setuid-root or file-capability program; `docker exec -u 0` through the engine API" % uid
        reach.append({"capability": cap, "reachable": reachable, "why": why, "via": via})
    return reach


def reach_lines(reach: Optional[List[Dict[str, Any]]]) -> List[str]:
    """The bounding set as text, one capability a line: can the container's process use it, and why."""
    if not reach:
        return []
    lines = ["", "Bounding set (%d): reachable by the container's process?" % len(reach)]
    for entry in reach:
        verdict = {True: "yes", False: "no", None: "unknown"}[entry["reachable"]]
        lines.append("  %-18s %-8s %s" % (entry["capability"], verdict, entry["why"]))
    return lines


def check_capabilities(signals: Signals) -> List[Finding]:
    effective = decode_caps(signals["caps"].get("CapEff"))
    if effective is None:
        unreadable = "the capability sets could not be read"
        return [_result("DKR-IN-001", "skip", unreadable, {}), _result("DKR-IN-002", "skip", unreadable, {})]
    # The bounding set and each capability's reachability travel as evidence: `paths` builds on them.
    reach = {"bounding": decode_caps(signals["caps"].get("CapBnd")), "reach": capability_reach(signals)}
    dangerous = {cap: DANGEROUS_CAPS[cap] for cap in effective if cap in DANGEROUS_CAPS}
    everything = len(effective) >= len(CAPABILITIES) - 2
    findings = []
    if dangerous:
        severity = "critical" if everything else _worst([sev for sev, _ in dangerous.values()])
        findings.append(
            _result(
                "DKR-IN-001",
                "fail",
                "dangerous capabilities are effective: " + ", ".join(sorted(dangerous)),
                dict(reach, effective=effective, dangerous=sorted(dangerous), near_full_set=everything),
                severity,
                "; ".join(technique for _, technique in dangerous.values()),
            )
        )
    else:
        findings.append(
            _result("DKR-IN-001", "pass", "no dangerous capability is effective", dict(reach, effective=effective))
        )
    baseline = [cap for cap in ("NET_RAW", "MKNOD") if cap in effective]
    if baseline:
        findings.append(
            _result(
                "DKR-IN-002",
                "fail",
                "effective: " + ", ".join(baseline),
                {"present": baseline},
                None,
                "raw packets (ARP/DNS spoofing on the bridge)" if "NET_RAW" in baseline else "mknod",
            )
        )
    else:
        findings.append(_result("DKR-IN-002", "pass", "NET_RAW and MKNOD are not effective", {}))
    return findings


def check_seccomp(signals: Signals) -> Finding:
    mode = signals.get("seccomp_mode")
    probes = signals.get("probes") or {}
    evidence: Dict[str, Any] = {"seccomp_mode": mode, "probes": probes or None}
    if mode is None:
        return _result("DKR-IN-003", "skip", "the seccomp mode could not be read", evidence)
    if mode == 0:
        return _result(
            "DKR-IN-003",
            "fail",
            "no seccomp filter is applied (Seccomp: 0)",
            evidence,
            None,
            "abuse-unpriv-userns and keyctl-based kernel exploits",
        )
    if not probes:
        return _result(
            "DKR-IN-003", "pass", "a seccomp filter is applied (mode %d); live probes not run" % mode, evidence
        )
    # A filter that lets these through is a filter in name only.
    leaks = [name for name in ("unshare_user", "keyctl") if probes.get(name) == "ok"]
    if probes.get("clock_settime_invalid") == "EINVAL":
        leaks.append("clock_settime")
    if leaks:
        return _result(
            "DKR-IN-003",
            "fail",
            "a filter is applied but lets through: " + ", ".join(leaks),
            evidence,
            None,
            "abuse-unpriv-userns",
        )
    return _result(
        "DKR-IN-003",
        "pass",
        "the seccomp filter blocks unshare(CLONE_NEWUSER), keyctl and clock_settime (probed live)",
        evidence,
    )


def check_no_new_privs(signals: Signals) -> Finding:
    value = signals.get("no_new_privs")
    if value is None:
        return _result("DKR-IN-004", "skip", "NoNewPrivs is not reported by this kernel", {})
    if value:
        return _result("DKR-IN-004", "pass", "no_new_privs is set", {"no_new_privs": True})
    return _result(
        "DKR-IN-004",
        "fail",
        "no_new_privs is not set: setuid binaries can raise privileges",
        {"no_new_privs": False},
        None,
        "setuid escalation inside the container",
    )


def check_lsm(signals: Signals) -> Finding:
    lsm = signals.get("lsm") or {}
    if lsm.get("state") == "none":
        return _result("DKR-IN-005", "not_applicable", "no LSM is active on this kernel (attr/current: EINVAL)", lsm)
    if lsm.get("state") != "labelled":
        return _result("DKR-IN-005", "skip", "the LSM label could not be read", lsm)
    label = lsm.get("label") or ""
    if label in ("unconfined", "") or label.startswith("unconfined") or ":spc_t:" in label:
        return _result("DKR-IN-005", "fail", "the process is not confined (%s)" % (label or "empty label"), lsm)
    return _result("DKR-IN-005", "pass", "confined by " + label, lsm)


def check_namespaces(signals: Signals) -> Finding:
    if not any((signals.get("namespaces") or {}).values()):
        return _result("DKR-IN-006", "skip", "the namespace links could not be read", {})
    shared = shared_namespaces(signals)
    # With cgroup v1 Docker always leaves the cgroup namespace shared, and a shared user namespace is
    # DKR-IN-013's concern: both are reported here as evidence but do not fail this rule.
    serious = {name: how for name, how in shared.items() if name not in ("cgroup", "user")}
    evidence = {"shared": shared, "namespaces": signals.get("namespaces")}
    if not serious:
        return _result("DKR-IN-006", "pass", "no pid/net/ipc/uts namespace is shared with the host", evidence)
    techniques = {
        "pid": "see and signal host processes; with SYS_PTRACE, inject into them",
        "net": "reach host-local services (localhost-bound APIs, metadata)",
        "ipc": "read host shared memory",
        "uts": "change the host name",
    }
    severity = "high" if {"pid", "net"} & set(serious) else "medium"
    return _result(
        "DKR-IN-006",
        "fail",
        "shares the host's " + ", ".join(sorted(serious)) + " namespace(s)",
        evidence,
        severity,
        "; ".join(techniques[n] for n in sorted(serious)),
    )


def check_sockets(signals: Signals) -> Finding:
    sockets = signals.get("sockets")
    if sockets is None:
        return _result("DKR-IN-007", "skip", "the engine sockets were not looked for", {})
    if not sockets:
        return _result("DKR-IN-007", "pass", "no Docker, containerd, podman or CRI-O socket is present", {})
    evidence = {"sockets": [{k: v for k, v in s.items() if k != "host_path"} for s in sockets]}
    answering = [s["path"] for s in sockets if s.get("answers_ping")]
    message = "engine socket present: " + ", ".join(s["path"] for s in sockets)
    if answering:
        message += " (answers /_ping)"
    return _result("DKR-IN-007", "fail", message, evidence, None, "docker-sock-pwn: run a privileged container")


def _is_docker_plumbing(mount: Dict[str, Any]) -> bool:
    root = mount["root"]
    return "/containers/" in root and root.rsplit("/", 1)[-1] in ("resolv.conf", "hostname", "hosts")


def check_host_mounts(signals: Signals) -> Finding:
    if signals.get("mounts") is None:
        return _result("DKR-IN-008", "skip", "the mount table could not be read", {})
    offending = []
    for mount in signals["mounts"]:
        if mount["mountpoint"] == "/" or mount["fstype"] in (
            "proc",
            "sysfs",
            "tmpfs",
            "devpts",
            "mqueue",
            "cgroup",
            "cgroup2",
            "overlay",
        ):
            continue
        # Engine sockets are DKR-IN-007's finding; Docker's own resolv.conf/hosts binds are plumbing.
        if _is_docker_plumbing(mount) or mount["mountpoint"].endswith(".sock"):
            continue
        if not mount["source"].startswith("/dev/"):
            continue
        root = mount["root"]
        if sensitive_root(root) is None:
            continue
        writable = "rw" in mount["options"]
        offending.append({"host_path": root, "mountpoint": mount["mountpoint"], "rw": writable})
    if not offending:
        return _result("DKR-IN-008", "pass", "no host root or sensitive host path is mounted", {})
    severity = "critical" if any(o["rw"] and o["host_path"] in ("/", "/etc", "/root") for o in offending) else "high"
    names = ", ".join("%s at %s (%s)" % (o["host_path"], o["mountpoint"], "rw" if o["rw"] else "ro") for o in offending)
    return _result(
        "DKR-IN-008",
        "fail",
        "host paths mounted: " + names,
        {"mounts": offending},
        severity,
        "read host secrets (/etc/shadow, keys); when rw, plant cron jobs or binaries on the host",
    )


def _container_root_is_host_root(signals: Signals) -> bool:
    mapping = signals.get("uid_map") or []
    return signals.get("uid") == 0 and any(row[0] == 0 and row[1] == 0 for row in mapping)


def _mount_covering(mounts: List[Dict[str, Any]], path: str) -> Optional[Dict[str, Any]]:
    """The mount whose mount point is the longest prefix of `path` (the one that decides its flags)."""
    best = None
    for mount in mounts:
        point = mount["mountpoint"].rstrip("/") or "/"
        covers = path == point or path.startswith(point.rstrip("/") + "/")
        if covers and (best is None or len(point) >= len(best["mountpoint"])):
            best = mount
    return best


def check_escape_hooks(signals: Signals) -> List[Finding]:
    writable = signals.get("writable") or {}
    # From the host, access() runs with the host's credentials: only trust it for a container whose root
    # is host root (no user namespace), for which the mount flags are then what decides.
    trusted = signals.get("mode") == "inside" or _container_root_is_host_root(signals)
    hooks = sorted(p for p, ok in writable.items() if ok)
    findings = []
    if not trusted and hooks:
        findings.append(
            _result(
                "DKR-IN-009",
                "skip",
                "container root is not host root; writability from the host does not tell",
                {"writable_from_host": hooks},
            )
        )
    elif hooks:
        findings.append(
            _result(
                "DKR-IN-009",
                "fail",
                "writable: " + ", ".join(hooks),
                {"writable": hooks},
                None,
                "core_pattern / release_agent / uevent_helper host code execution",
            )
        )
    else:
        findings.append(
            _result(
                "DKR-IN-009",
                "pass",
                "core_pattern, release_agent, uevent_helper, modprobe and sysrq-trigger are not writable",
                {"checked": sorted(writable)},
            )
        )
    proc_sys = _mount_covering(signals.get("mounts") or [], "/proc/sys")
    if proc_sys is None:
        findings.append(_result("DKR-IN-010", "skip", "no mount covers /proc/sys", {}))
    elif "ro" in proc_sys["options"]:
        findings.append(_result("DKR-IN-010", "pass", "/proc/sys is mounted read-only", {"mount": proc_sys}))
    else:
        findings.append(
            _result(
                "DKR-IN-010",
                "fail",
                "/proc/sys is mounted read-write",
                {"mount": proc_sys},
                None,
                "sysctl tampering (core_pattern, modprobe) from the container",
            )
        )
    return findings


def check_devices(signals: Signals) -> Finding:
    if signals.get("devices") is None:
        return _result("DKR-IN-011", "skip", "/dev could not be listed", {})
    risky = []
    for device in signals["devices"]:
        key = (device["major"], device["minor"])
        if device["type"] == "char" and key in HARMLESS_CHAR_DEVICES:
            continue
        if (
            device["type"] == "block"
            or key in ((1, 1), (1, 2), (1, 4), (1, 11))
            or device["name"] == "/dev/kmsg"
            or (device["type"] == "char" and device["major"] in (10, 13, 189, 226, 29))
        ):
            risky.append(device)
    if not risky:
        return _result(
            "DKR-IN-011",
            "pass",
            "only the harmless standard devices are present",
            {"devices": [d["name"] for d in signals.get("devices") or []]},
        )
    severity = "critical" if any(d["type"] == "block" for d in risky) else "high"
    return _result(
        "DKR-IN-011",
        "fail",
        "host devices present: " + ", ".join(d["name"] for d in risky[:20]),
        {"devices": risky[:50]},
        severity,
        "mount-disk: mount the host's block device",
    )


def check_cgroup_mount(signals: Signals) -> Finding:
    probes = signals.get("probes") or {}
    outcome = probes.get("cgroup_v1_mount")
    if outcome is None:
        caps = decode_caps(signals["caps"].get("CapEff")) or []
        inferred = "SYS_ADMIN" in caps and (signals.get("lsm") or {}).get("state") != "labelled"
        if inferred:
            return _result(
                "DKR-IN-012",
                "fail",
                "not probed (read from the host), but SYS_ADMIN without an LSM allows it",
                {"inferred": True},
                None,
                "mount-cgroup release_agent escape",
            )
        return _result("DKR-IN-012", "skip", "the mount probe runs only inside the container", {})
    if outcome == "ok":
        return _result(
            "DKR-IN-012",
            "fail",
            "a cgroup v1 hierarchy was mounted (in a private namespace, then dropped)",
            {"probe": outcome},
            None,
            "mount-cgroup release_agent escape",
        )
    return _result("DKR-IN-012", "pass", "mounting a cgroup v1 hierarchy is refused (%s)" % outcome, {"probe": outcome})


def check_user_namespace(signals: Signals) -> Finding:
    mapping = signals.get("uid_map") or []
    evidence = {"uid": signals.get("uid"), "uid_map": mapping}
    if not mapping:
        return _result("DKR-IN-013", "skip", "uid_map could not be read", evidence)
    if signals.get("uid") != 0:
        return _result("DKR-IN-013", "pass", "the process runs as uid %s, not root" % signals.get("uid"), evidence)
    if _container_root_is_host_root(signals):
        return _result(
            "DKR-IN-013", "fail", "uid 0 in the container is uid 0 on the host (no user namespace)", evidence
        )
    host_uid = next((row[1] for row in mapping if row[0] == 0), None)
    return _result("DKR-IN-013", "pass", "container root maps to host uid %s" % host_uid, evidence)


CHECKS: Tuple[Callable[[Signals], Any], ...] = (
    check_capabilities,
    check_seccomp,
    check_no_new_privs,
    check_lsm,
    check_namespaces,
    check_sockets,
    check_host_mounts,
    check_escape_hooks,
    check_devices,
    check_cgroup_mount,
    check_user_namespace,
)


def analyse(signals: Signals) -> List[Finding]:
    findings: List[Finding] = []
    for check in CHECKS:
        result = check(signals)
        findings.extend(result if isinstance(result, list) else [result])
    return findings
