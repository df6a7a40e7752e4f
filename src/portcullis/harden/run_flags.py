"""A hardened run configuration for one container, and how to write it as `docker run` flags or a HostConfig.

Pure: the observations (stats, writable-layer changes, logs, /etc/passwd) are gathered by `container_trial`.
"""

from __future__ import annotations

import math
import posixpath
import re
from dataclasses import dataclass, field, replace
from typing import Any

MIB = 1024 * 1024
MEMORY_FLOOR = 32 * MIB
PIDS_FLOOR = 32
CPU_FLOOR = 0.25
HEADROOM = 2.0  # limits are twice the observed peak
# Below the default weight of 1024: under contention the container yields; raise it for critical services.
CPU_SHARES = 512
RESTART = "on-failure:5"
TMPFS_OPTIONS = "rw,noexec,nosuid,nodev,size=64m"
# Docker's default capability set (moby oci/caps/defaults.go), the order a bisection tries them in.
DEFAULT_CAPABILITIES = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "SETUID",
    "SETGID",
    "NET_BIND_SERVICE",
    "KILL",
    "SETPCAP",
    "SETFCAP",
    "SYS_CHROOT",
    "MKNOD",
    "AUDIT_WRITE",
    "NET_RAW",
)
# Paths the engine itself writes or mounts over; a workload writing there needs no tmpfs of ours.
ENGINE_PATHS = ("/dev", "/proc", "/sys", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/run/secrets")


@dataclass(frozen=True)
class Limits:
    memory: int
    pids: int
    cpus: float
    observed: dict[str, Any]


@dataclass(frozen=True)
class RunProposal:
    cap_add: tuple[str, ...] = ()
    read_only: bool = True
    tmpfs: tuple[str, ...] = ()
    no_new_privileges: bool = True
    memory: int = 0
    pids_limit: int = 0
    cpus: float = 0.0
    cpu_shares: int = CPU_SHARES
    restart: str = RESTART
    user: str | None = None  # None: keep the container's user
    notes: tuple[str, ...] = field(default=(), compare=False)

    def with_caps(self, caps: set[str] | tuple[str, ...]) -> RunProposal:
        ordered = [c for c in DEFAULT_CAPABILITIES if c in caps] + sorted(set(caps) - set(DEFAULT_CAPABILITIES))
        return replace(self, cap_add=tuple(ordered))

    def flags(self) -> list[str]:
        """The `docker run` options, one option and its value per item."""
        out = ["--cap-drop ALL", *(f"--cap-add {cap}" for cap in self.cap_add)]
        if self.no_new_privileges:
            out.append("--security-opt no-new-privileges")
        if self.read_only:
            out.append("--read-only")
            out += [f"--tmpfs {path}:{TMPFS_OPTIONS}" for path in self.tmpfs]
        if self.user is not None:
            out.append(f"--user {self.user}")
        if self.memory:
            out.append(f"--memory {self.memory // MIB}m --memory-swap {self.memory // MIB}m")
        if self.pids_limit:
            out.append(f"--pids-limit {self.pids_limit}")
        if self.cpus:
            out.append(f"--cpus {self.cpus:g}")
        out.append(f"--cpu-shares {self.cpu_shares}")
        out.append(f"--restart {self.restart}")
        return out

    def apply_to(self, host_config: dict[str, Any], config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Copies of a container's inspect HostConfig and Config with this proposal written over them."""
        host = dict(host_config)
        host["CapDrop"] = ["ALL"]
        host["CapAdd"] = list(self.cap_add)
        host["Privileged"] = False
        options = [o for o in host.get("SecurityOpt") or [] if not o.startswith("no-new-privileges")]
        if self.no_new_privileges:
            options.append("no-new-privileges:true")
        host["SecurityOpt"] = options
        host["ReadonlyRootfs"] = self.read_only
        tmpfs = dict(host.get("Tmpfs") or {})
        if self.read_only:
            tmpfs.update({path: TMPFS_OPTIONS.removeprefix("rw,") for path in self.tmpfs})
        host["Tmpfs"] = tmpfs
        if self.memory:
            host["Memory"] = self.memory
            host["MemorySwap"] = self.memory
        if self.pids_limit:
            host["PidsLimit"] = self.pids_limit
        if self.cpus:
            host["NanoCpus"] = int(self.cpus * 1e9)
        host["CpuShares"] = self.cpu_shares
        name, _, retries = self.restart.partition(":")
        host["RestartPolicy"] = {"Name": name, "MaximumRetryCount": int(retries or 0)}
        cfg = dict(config)
        if self.user is not None:
            cfg["User"] = self.user
        return host, cfg

    def to_json(self) -> dict[str, Any]:
        return {
            "cap_drop": ["ALL"],
            "cap_add": list(self.cap_add),
            "read_only": self.read_only,
            "tmpfs": list(self.tmpfs),
            "no_new_privileges": self.no_new_privileges,
            "user": self.user,
            "memory": self.memory,
            "pids_limit": self.pids_limit,
            "cpus": self.cpus,
            "cpu_shares": self.cpu_shares,
            "restart": self.restart,
            "flags": self.flags(),
            "notes": list(self.notes),
        }


def _round_up_mib(value: float) -> int:
    """Round up to a power-of-two-ish step so the limit reads well (48m, 64m, 96m, 128m…)."""
    mib = max(1, math.ceil(value / MIB))
    step = 2 ** max(0, mib.bit_length() - 2)
    return int(math.ceil(mib / step) * step * MIB)


def limits_from_stats(stats: dict[str, Any] | None) -> Limits:
    """Limits with headroom from one `GET /containers/{id}/stats?stream=false` sample (cgroup v1 or v2 shape)."""
    observed: dict[str, Any] = {}
    memory_stats = (stats or {}).get("memory_stats") or {}
    peak = memory_stats.get("max_usage") or memory_stats.get("usage")
    if peak:
        observed["memory_peak"] = int(peak)
    pids = ((stats or {}).get("pids_stats") or {}).get("current")
    if pids:
        observed["pids"] = int(pids)
    cpu = (stats or {}).get("cpu_stats") or {}
    precpu = (stats or {}).get("precpu_stats") or {}
    used = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (precpu.get("cpu_usage") or {}).get("total_usage", 0)
    system = (cpu.get("system_cpu_usage") or 0) - (precpu.get("system_cpu_usage") or 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    cpus_used = used / system * online if system > 0 and used > 0 else 0.0
    observed["cpus"] = round(cpus_used, 4)
    memory = _round_up_mib(max(MEMORY_FLOOR, int(observed.get("memory_peak", 0) * HEADROOM)))
    pid_limit = max(PIDS_FLOOR, int(observed.get("pids", 0) * HEADROOM) + 8)
    cpus = max(CPU_FLOOR, math.ceil(cpus_used * HEADROOM * 4) / 4)
    return Limits(memory, pid_limit, cpus, observed)


def tmpfs_from_changes(changes: list[dict[str, Any]] | None) -> tuple[list[str], list[str]]:
    """Directories to mount as tmpfs so a read-only root still lets the workload write where it was seen writing.

    `changes` is `GET /containers/{id}/changes` (Kind 0 changed, 1 added, 2 deleted). Each written file asks for its
    directory; a directory the workload created itself is taken whole. Returns (tmpfs dirs, unresolved paths):
    a file written straight under / cannot be covered by a tmpfs.
    """
    entries = [(str(c.get("Path", "")), int(c.get("Kind", 0))) for c in changes or []]
    entries = [(p, k) for p, k in entries if p and not any(p == e or p.startswith(e + "/") for e in ENGINE_PATHS)]
    paths = {p for p, _ in entries}
    added = {p for p, k in entries if k == 1}
    # Leaves: changed paths with nothing changed below them (a changed directory shows up as `C /dir`).
    leaves = [p for p in paths if not any(other.startswith(p + "/") for other in paths)]
    wanted: set[str] = set()
    unresolved: list[str] = []
    for leaf in leaves:
        directory = posixpath.dirname(leaf)
        # Climb to the highest directory the workload created: tmpfs over it hides nothing from the image.
        while directory in added and posixpath.dirname(directory) in added:
            directory = posixpath.dirname(directory)
        if leaf in added and directory == "/" and not _is_file_hint(leaf, paths):
            directory = leaf  # a new top-level directory, empty or holding only new files
        if directory == "/":
            unresolved.append(leaf)
            continue
        wanted.add(directory)
    chosen = sorted(d for d in wanted if not any(d.startswith(o + "/") for o in wanted))
    return chosen, sorted(unresolved)


def _is_file_hint(path: str, paths: set[str]) -> bool:
    """A top-level added leaf with a dot in its name is most likely a file (`/out.txt`), not a directory."""
    return "." in posixpath.basename(path)


# Log lines that name the privilege a refused operation needed (EPERM/EACCES as tools print them).
_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"chown|changing ownership|lchown", re.I), "CHOWN"),
    (
        re.compile(r"bind.*(permission denied|eacces)|permission denied.*bind|cannot bind|address.*privileged", re.I),
        "NET_BIND_SERVICE",
    ),
    (re.compile(r"setgid|setgroups|initgroups", re.I), "SETGID"),
    (re.compile(r"setuid|can't set uid|set user id", re.I), "SETUID"),
    (re.compile(r"chmod|changing permissions", re.I), "FOWNER"),
    (re.compile(r"chroot", re.I), "SYS_CHROOT"),
    (re.compile(r"mknod", re.I), "MKNOD"),
    (re.compile(r"raw socket|socket: operation not permitted|ping: permission denied", re.I), "NET_RAW"),
    (re.compile(r"kill.*operation not permitted", re.I), "KILL"),
)
_REFUSED = re.compile(r"operation not permitted|permission denied|eperm|eacces", re.I)


def capability_hints(logs: str) -> tuple[set[str], list[str]]:
    """Capabilities suggested by refused operations in the logs, and the refusal lines themselves."""
    caps: set[str] = set()
    lines = [line.strip() for line in logs.splitlines() if _REFUSED.search(line)]
    for line in lines:
        caps.update(cap for pattern, cap in _HINTS if pattern.search(line))
    return caps, lines[:10]


def non_root_users(passwd: str) -> list[str]:
    """Non-root accounts worth trying, most likely first: the image's own users (uid ≥ 1000), then nobody."""
    own, fallback = [], []
    for line in passwd.splitlines():
        parts = line.split(":")
        if len(parts) < 7 or not parts[2].isdigit():
            continue
        uid = int(parts[2])
        if uid == 65534:
            fallback.append(parts[0])
        elif 1000 <= uid < 60000:
            own.append(parts[0])
    return own + fallback


def runs_as_root(user: str) -> bool:
    name = user.split(":", 1)[0]
    return name in ("", "0", "root")
