"""Host hardening beyond CIS, read from /proc and /sys: kernel settings, the LSM, listening services and their
processes, compilers and intruder tools on PATH. Read-only and without external commands."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from portcullis.collect.host import listening_sockets, read_text, stat_path
from portcullis.model.facts import FileStat, HardeningFacts, HostProcessSocket

PROC = Path("/proc")
# The kernel settings the DKR-HOST rules judge (a name the kernel lacks is simply absent from the facts).
SYSCTLS = (
    "kernel.kptr_restrict",
    "kernel.dmesg_restrict",
    "kernel.unprivileged_bpf_disabled",
    "kernel.yama.ptrace_scope",
    "kernel.unprivileged_userns_clone",
    "kernel.apparmor_restrict_unprivileged_userns",
    "user.max_user_namespaces",
    "fs.protected_hardlinks",
    "fs.protected_symlinks",
    "fs.protected_fifos",
    "fs.protected_regular",
    "fs.suid_dumpable",
    "kernel.perf_event_paranoid",
    "kernel.modules_disabled",
    "kernel.kexec_load_disabled",
    "kernel.randomize_va_space",
    "kernel.sysrq",
    "net.core.bpf_jit_harden",
)
# Compilers, debuggers and network tools an intruder would otherwise have to bring in.
TOOLS = (
    "as",
    "cc",
    "c++",
    "gcc",
    "g++",
    "clang",
    "tcc",
    "gdb",
    "strace",
    "ltrace",
    "nc",
    "ncat",
    "netcat",
    "socat",
    "nmap",
    "tcpdump",
)
PF_KTHREAD = 0x00200000  # the task flag of kernel threads, which hold no sockets and are no service
TOOL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _sysctls() -> dict[str, str]:
    values = {}
    for name in SYSCTLS:
        text = read_text(PROC / "sys" / name.replace(".", "/"))
        if text is not None:
            values[name] = " ".join(text.split())
    return values


def _udp_sockets(net_dir: Path) -> list[tuple[str, int, int]]:
    """(address, port, inode) of every unconnected bound UDP socket (state 07) in `net_dir`'s udp tables."""
    found: list[tuple[str, int, int]] = []
    for table, family in (("udp", socket.AF_INET), ("udp6", socket.AF_INET6)):
        text = read_text(net_dir / table, limit=16 << 20)
        for line in (text or "").splitlines()[1:]:
            fields = line.split()
            if len(fields) < 10 or fields[3] != "07" or fields[2].split(":")[0].strip("0"):
                continue  # connected sockets have a remote address
            address_hex, port_hex = fields[1].split(":")
            raw = bytes.fromhex(address_hex)
            if family == socket.AF_INET:
                address = socket.inet_ntop(family, raw[::-1])
            else:
                address = socket.inet_ntop(family, b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))
            found.append((address, int(port_hex, 16), int(fields[9])))
    return found


def _process_table() -> tuple[list[str], dict[int, set[str]]]:
    """Distinct names of the user-space processes, and the names of the processes holding each socket inode."""
    names: set[str] = set()
    holders: dict[int, set[str]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        stat = read_text(entry / "stat") or ""
        # pid (comm) state ppid pgrp session tty tpgid flags ...: comm may hold blanks and parentheses
        comm, _, rest = stat.partition("(")[2].rpartition(")")
        fields = rest.split()
        if len(fields) < 7 or int(fields[6]) & PF_KTHREAD:
            continue
        names.add(comm)
        try:
            fds = os.listdir(entry / "fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(entry / "fd" / fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                holders.setdefault(int(target[8:-1]), set()).add(comm)
    return sorted(names), holders


def _sockets(holders: dict[int, set[str]]) -> list[HostProcessSocket]:
    found = []
    for protocol, table in (("tcp", listening_sockets(PROC / "net")), ("udp", _udp_sockets(PROC / "net"))):
        for address, port, inode in table:
            found.append(
                HostProcessSocket(
                    address=address, port=port, protocol=protocol, processes=sorted(holders.get(inode, set()))
                )
            )
    return found


def _apparmor_enforcing() -> int | None:
    text = read_text("/sys/kernel/security/apparmor/profiles", limit=16 << 20)
    if text is None:
        return None
    return sum(1 for line in text.splitlines() if line.rstrip().endswith("(enforce)"))


def _tools() -> list[FileStat]:
    """Each tool found on the system PATH, by the name it is called (stat follows links to the real file)."""
    return [stat_path(located) for name in TOOLS if (located := shutil.which(name, path=TOOL_PATH))]


def on_the_host(dockerd_pid: int | None) -> bool:
    """Whether this process shares the engine host's mount namespace (dockerd's). An audit in a container sees the
    host's processes (--pid host) but the image's own PATH, /sys/kernel/security and capability-gated sysctls: there
    the host rules cannot be decided, and saying otherwise would be a guess. Without dockerd's pid (not running here,
    or hidden) it falls back to pid 1's namespace, and to "the host" when neither can be read."""
    for pid in (dockerd_pid, 1):
        if pid is None:
            continue
        try:
            return os.readlink(PROC / str(pid) / "ns" / "mnt") == os.readlink(PROC / "self" / "ns" / "mnt")
        except OSError:
            continue
    return True


def collect_hardening() -> HardeningFacts:
    names, holders = _process_table()
    lsm = read_text("/sys/kernel/security/lsm")
    enforce = read_text("/sys/fs/selinux/enforce")
    return HardeningFacts(
        sysctls=_sysctls(),
        modules_supported=(PROC / "modules").exists(),
        lsms=[part for part in lsm.strip().split(",") if part] if lsm is not None else None,
        apparmor_enforcing_profiles=_apparmor_enforcing(),
        selinux_enforce=enforce.strip() if enforce is not None else None,
        sockets=_sockets(holders),
        tools=_tools(),
        processes=names,
    )
