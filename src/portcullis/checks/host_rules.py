"""Host hardening beyond CIS (DKR-HOST-*): what a container host needs that CIS section 1 leaves out.

Kernel settings that change what a process in a container can learn about or do to the host kernel, a mandatory
access control system in enforcing mode, a host that runs nothing but the engine, no compilers or intruder tools
for everybody, time synchronisation and audit logging. All read from the host's own /proc and /sys
(`collect.hardening`); a snapshot recorded before these facts existed skips them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from portcullis.checks.cis.s1_host import remote_engine
from portcullis.checks.registry import CheckResult, failed, passed, rule, skipped
from portcullis.model.facts import Facts, HardeningFacts
from portcullis.model.findings import Severity, Status, TargetKind

STATUSES = (Status.PASS, Status.FAIL, Status.SKIP)
NOT_COLLECTED = (
    "host hardening facts were not collected: the audit ran outside the host's mount namespace (in a container), "
    "or the snapshot is from an older Portcullis; run the audit on the host to judge this"
)
SYSCTL_FIX = "Set it in a file under /etc/sysctl.d/ (e.g. 90-container-host.conf) and load it with `sysctl --system`."


def _hardening(facts: Facts) -> HardeningFacts | CheckResult:
    if (remote := remote_engine(facts)) is not None:
        return remote
    if facts.host.hardening is None:
        return skipped(NOT_COLLECTED)
    return facts.host.hardening


def _number(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Sysctl:
    """A kernel setting that passes at `minimum` or above (`exact`: only at that value)."""

    rule_id: str
    name: str
    minimum: int
    title: str
    severity: Severity
    rationale: str
    exact: bool = False
    absent: str = ""  # why the setting missing from this kernel passes; empty: missing fails

    def judge(self, facts: Facts) -> CheckResult:
        hardening = _hardening(facts)
        if not isinstance(hardening, HardeningFacts):
            return hardening
        raw = hardening.sysctls.get(self.name)
        wanted = f"{self.minimum}" if self.exact else f">= {self.minimum}"
        if raw is None:
            if self.absent:
                return passed(f"{self.name} is not in this kernel: {self.absent}", sysctl=self.name, value=None)
            return failed(
                f"{self.name} is not in this kernel, so the protection it controls is missing",
                sysctl=self.name,
                value=None,
                wanted=wanted,
            )
        value = _number(raw)
        good = value is not None and (value == self.minimum if self.exact else value >= self.minimum)
        if good:
            return passed(f"{self.name} = {raw}", sysctl=self.name, value=raw, wanted=wanted)
        return failed(f"{self.name} = {raw}, wanted {wanted}", sysctl=self.name, value=raw, wanted=wanted)


SYSCTLS = (
    Sysctl(
        "DKR-HOST-001",
        "kernel.kptr_restrict",
        1,
        "Kernel pointers are hidden from unprivileged processes",
        Severity.MEDIUM,
        """
With kptr_restrict at 0, /proc/kallsyms and other /proc files show kernel addresses to any process, including
those in containers; that defeats kernel address randomisation, the first step of most kernel exploits used
to escape a container.
""",
    ),
    Sysctl(
        "DKR-HOST-002",
        "kernel.dmesg_restrict",
        1,
        "The kernel log is readable by privileged processes only",
        Severity.LOW,
        """
The kernel ring buffer holds addresses, device and driver details and the traces of failed exploit attempts;
with dmesg_restrict at 0 every process on the host, and any container that can reach the syslog call, reads it.
""",
        exact=True,
    ),
    Sysctl(
        "DKR-HOST-003",
        "kernel.unprivileged_bpf_disabled",
        1,
        "Unprivileged users cannot load BPF programs",
        Severity.HIGH,
        """
The BPF verifier has been the entry point of a series of local privilege escalations. Unprivileged BPF lets any
user on the host, and a container whose seccomp profile allows bpf(), reach it; 1 or 2 limit it to CAP_SYS_ADMIN.
""",
    ),
    Sysctl(
        "DKR-HOST-004",
        "kernel.yama.ptrace_scope",
        1,
        "ptrace is restricted to a process's own descendants (Yama)",
        Severity.MEDIUM,
        """
Without Yama restrictions any process can attach to every other process of the same user and read its memory,
keys and tokens; on a container host that includes engine clients and the tools that drive them.
""",
    ),
    Sysctl(
        "DKR-HOST-007",
        "kernel.perf_event_paranoid",
        2,
        "Unprivileged users cannot profile the kernel (perf events)",
        Severity.MEDIUM,
        """
perf_event_open() exposes kernel activity and has been used both to leak kernel addresses and for privilege
escalation; at 2 or more unprivileged users may only observe their own user-space code.
""",
    ),
    Sysctl(
        "DKR-HOST-009",
        "fs.suid_dumpable",
        0,
        "Set-uid programs do not dump core",
        Severity.LOW,
        """
A core file of a set-uid program holds the memory of a privileged process (password hashes, keys). With
suid_dumpable at 1 or 2 such dumps are written, on a container host possibly through a core pattern pipe that
a container can trigger.
""",
        exact=True,
    ),
    Sysctl(
        "DKR-HOST-010",
        "kernel.randomize_va_space",
        2,
        "Address space layout randomisation is fully on",
        Severity.MEDIUM,
        """
Containers share the host kernel but each process gets its own address space; full randomisation (2: stack,
mappings, heap) makes memory-corruption exploits against the engine and other host processes much harder.
""",
        exact=True,
    ),
    Sysctl(
        "DKR-HOST-011",
        "net.core.bpf_jit_harden",
        2,
        "The BPF JIT is hardened against JIT spraying",
        Severity.LOW,
        """
Containers load BPF programs every time seccomp filters are installed; a JIT that is not hardened lets crafted
programs place chosen machine code in kernel memory (JIT spraying). 2 hardens it for every user.
""",
        exact=True,
        absent="the kernel has no BPF JIT, so there is nothing to spray",
    ),
)


def _declare_sysctl(setting: Sysctl) -> None:
    def check(facts: Facts) -> CheckResult:
        return setting.judge(facts)

    check.__name__ = "sysctl_" + setting.name.replace(".", "_")
    rule(
        id=setting.rule_id,
        title=setting.title,
        severity=setting.severity,
        scope=TargetKind.HOST,
        statuses=STATUSES,
        rationale=setting.rationale,
        remediation=f"Set {setting.name} = {setting.minimum}. {SYSCTL_FIX}",
        references=("https://docs.kernel.org/admin-guide/sysctl/index.html",),
    )(check)


for _setting in SYSCTLS:
    _declare_sysctl(_setting)


@rule(
    id="DKR-HOST-005",
    title="Unprivileged users cannot create user namespaces",
    severity=Severity.MEDIUM,
    scope=TargetKind.HOST,
    statuses=STATUSES,
    rationale="""
Inside a new user namespace an unprivileged process holds every capability over the namespaces it creates, which
opens kernel code (netfilter, filesystems, io_uring) otherwise reserved for root; many recent kernel privilege
escalations start there. Root (dockerd, also with userns-remap) can still create them when unprivileged users cannot.
""",
    remediation="""
Set kernel.unprivileged_userns_clone = 0 (Debian and Ubuntu kernels) or kernel.apparmor_restrict_unprivileged_userns
= 1 (Ubuntu with AppArmor) in /etc/sysctl.d/. Not on a host that runs rootless Docker or Podman, which need them.
""",
)
def unprivileged_userns(facts: Facts) -> CheckResult:
    hardening = _hardening(facts)
    if not isinstance(hardening, HardeningFacts):
        return hardening
    settings = {
        name: hardening.sysctls.get(name)
        for name in (
            "kernel.unprivileged_userns_clone",
            "kernel.apparmor_restrict_unprivileged_userns",
            "user.max_user_namespaces",
        )
    }
    if settings["kernel.unprivileged_userns_clone"] == "0":
        return passed("kernel.unprivileged_userns_clone = 0", sysctls=settings)
    if settings["kernel.apparmor_restrict_unprivileged_userns"] == "1":
        return passed("AppArmor restricts unprivileged user namespaces", sysctls=settings)
    if settings["user.max_user_namespaces"] == "0":
        return passed("user.max_user_namespaces = 0: nobody can create user namespaces", sysctls=settings)
    return failed(
        "any user can create user namespaces (no unprivileged_userns_clone = 0 or AppArmor restriction)",
        sysctls=settings,
    )


PROTECTED = {
    "fs.protected_hardlinks": 1,
    "fs.protected_symlinks": 1,
    "fs.protected_fifos": 1,
    "fs.protected_regular": 1,
}


@rule(
    id="DKR-HOST-006",
    title="Links, FIFOs and files in shared directories are protected (fs.protected_*)",
    severity=Severity.MEDIUM,
    scope=TargetKind.HOST,
    statuses=STATUSES,
    rationale="""
Bind-mounted and shared world-writable directories (/tmp, volumes) are where a container and the host meet. Without
fs.protected_hardlinks and protected_symlinks a process can plant links there that make a privileged host process
read or overwrite a file of its choosing; protected_fifos and protected_regular stop the same with FIFOs and files.
""",
    remediation=f"Set fs.protected_hardlinks = 1, fs.protected_symlinks = 1, fs.protected_fifos = 1 (or 2) and "
    f"fs.protected_regular = 1 (or 2). {SYSCTL_FIX}",
    references=("https://docs.kernel.org/admin-guide/sysctl/fs.html",),
)
def protected_links(facts: Facts) -> CheckResult:
    hardening = _hardening(facts)
    if not isinstance(hardening, HardeningFacts):
        return hardening
    values = {name: hardening.sysctls.get(name) for name in PROTECTED}
    weak = [name for name, minimum in PROTECTED.items() if (_number(values[name]) or 0) < minimum]
    if weak:
        shown = ", ".join(f"{name} = {values[name] if values[name] is not None else 'absent'}" for name in weak)
        return failed(f"{len(weak)} protection(s) off: {shown}", sysctls=values, weak=weak)
    return passed("hard links, symlinks, FIFOs and regular files in sticky directories are protected", sysctls=values)


@rule(
    id="DKR-HOST-008",
    title="The kernel cannot load modules at run time",
    severity=Severity.LOW,
    scope=TargetKind.HOST,
    statuses=STATUSES,
    rationale="""
A container given CAP_SYS_MODULE, or an attacker who reaches root on the host, loads a module and owns the kernel.
A kernel built without module support, or with kernel.modules_disabled = 1 set after boot, closes that path.
""",
    remediation="""
After boot has loaded every module the host needs (overlay, br_netfilter, veth, the network drivers), set
kernel.modules_disabled = 1 (it cannot be unset until reboot), e.g. from a late systemd unit or /etc/sysctl.d/.
""",
)
def module_loading(facts: Facts) -> CheckResult:
    hardening = _hardening(facts)
    if not isinstance(hardening, HardeningFacts):
        return hardening
    disabled = hardening.sysctls.get("kernel.modules_disabled")
    if hardening.modules_supported is False:
        return passed("the kernel is built without module support", modules_supported=False)
    if disabled == "1":
        return passed("kernel.modules_disabled = 1", modules_supported=True, modules_disabled=disabled)
    return failed(
        f"the kernel loads modules (kernel.modules_disabled = {disabled})",
        modules_supported=hardening.modules_supported,
        modules_disabled=disabled,
    )


@rule(
    id="DKR-HOST-012",
    title="A mandatory access control system is enforcing (AppArmor or SELinux)",
    severity=Severity.HIGH,
    scope=TargetKind.HOST,
    statuses=STATUSES,
    rationale="""
Docker confines containers with an AppArmor profile (docker-default) or SELinux labels only when the host runs one
in enforcing mode; without it, a process that escapes its namespaces meets no second wall.
""",
    remediation="""
Enable AppArmor (Debian/Ubuntu: apparmor package, `apparmor=1 security=apparmor` on the kernel command line) or
SELinux in enforcing mode (`SELINUX=enforcing` in /etc/selinux/config), then restart dockerd so containers get it.
""",
)
def lsm_enforcing(facts: Facts) -> CheckResult:
    hardening = _hardening(facts)
    if not isinstance(hardening, HardeningFacts):
        return hardening
    evidence: dict[str, Any] = {
        "lsms": hardening.lsms,
        "apparmor_enforcing_profiles": hardening.apparmor_enforcing_profiles,
        "selinux_enforce": hardening.selinux_enforce,
    }
    if hardening.selinux_enforce == "1":
        return passed("SELinux is enforcing", **evidence)
    if hardening.apparmor_enforcing_profiles:
        return passed(f"AppArmor enforces {hardening.apparmor_enforcing_profiles} profile(s)", **evidence)
    if hardening.selinux_enforce == "0":
        return failed("SELinux is permissive", **evidence)
    if hardening.apparmor_enforcing_profiles == 0:
        return failed("AppArmor is enabled but enforces no profile", **evidence)
    return failed("neither AppArmor nor SELinux is active", **evidence)


# Processes that may hold sockets on a dedicated container host: the engine, its port proxies, and remote management.
HOST_SERVICES = ("dockerd", "docker-proxy", "containerd", "sshd", "chronyd", "systemd-resolve", "systemd-timesyn")
LOOPBACK = ("127.", "::1", "::ffff:127.")


@rule(
    id="DKR-HOST-013",
    title="The host runs no network services besides the engine",
    severity=Severity.MEDIUM,
    scope=TargetKind.HOST,
    statuses=STATUSES,
    rationale="""
A container host should be dedicated: every other service reachable from the network is a way in that leads to
the engine's socket and so to root on every container. Services bound to loopback only are listed but not failed.
""",
    remediation="""
Move the listed services to their own hosts or containers (published through the engine), or bind them to
127.0.0.1; keep only the engine, its port proxies and remote administration (sshd) listening on the host.
""",
)
def dedicated_host(facts: Facts) -> CheckResult:
    hardening = _hardening(facts)
    if not isinstance(hardening, HardeningFacts):
        return hardening
    if hardening.sockets is None:
        return skipped("the host's sockets could not be read")
    others: list[str] = []
    local: list[str] = []
    for sock in hardening.sockets:
        if sock.processes and all(p.startswith(HOST_SERVICES) for p in sock.processes):
            continue
        shown = f"{sock.protocol} {sock.address}:{sock.port} ({', '.join(sock.processes) or 'unknown process'})"
        (local if sock.address.startswith(LOOPBACK) else others).append(shown)
    if others:
        return failed(
            f"{len(others)} other service(s) listening: {', '.join(others[:5])}", services=others, local=local
        )
    return passed("only the engine and host management listen on the network", services=[], local=local)


@rule(
    id="DKR-HOST-014",
    title="Compilers and intruder tools are absent or restricted to root",
    severity=Severity.LOW,
    scope=TargetKind.HOST,
    statuses=STATUSES,
    rationale="""
A minimal host gives an intruder who lands on it (or escapes a container) nothing to build or probe with: compilers
turn downloaded exploit source into binaries, debuggers and tracers read other processes, netcat and nmap pivot.
""",
    remediation="""
Remove the packages (build-essential, gcc, gdb, strace, netcat, nmap, tcpdump) from the host and build in
containers; where a tool must stay, make it executable by root only (chmod 0750 or 0700, owner root).
""",
)
def minimal_os(facts: Facts) -> CheckResult:
    hardening = _hardening(facts)
    if not isinstance(hardening, HardeningFacts):
        return hardening
    open_to_all = [t.path for t in hardening.tools if t.exists and t.mode is not None and t.mode & 0o011]
    present = [t.path for t in hardening.tools if t.exists]
    if open_to_all:
        return failed(
            f"{len(open_to_all)} tool(s) any user can run: {', '.join(open_to_all[:6])}",
            tools=open_to_all,
            present=present,
        )
    return passed("no compiler or intruder tool is executable by non-root users", tools=[], present=present)


TIME_DAEMONS = ("chronyd", "ntpd", "openntpd", "systemd-timesyn", "timesyncd", "ntpsec")


@rule(
    id="DKR-HOST-015",
    title="The host's clock is synchronised by a time daemon",
    severity=Severity.LOW,
    scope=TargetKind.HOST,
    statuses=STATUSES,
    rationale="""
Containers read the host's clock. TLS certificate checks (registry, daemon API, swarm), token expiry and the order
of audit and container logs across hosts all depend on it being right.
""",
    remediation="Install and enable a time daemon: `apt-get install chrony` (or systemd-timesyncd, ntpsec).",
)
def time_sync(facts: Facts) -> CheckResult:
    hardening = _hardening(facts)
    if not isinstance(hardening, HardeningFacts):
        return hardening
    if hardening.processes is None:
        return skipped("the host's processes could not be listed")
    running = [p for p in hardening.processes if p.startswith(TIME_DAEMONS)]
    if running:
        return passed(f"time daemon running: {', '.join(running)}", daemons=running)
    return failed("no time synchronisation daemon is running", daemons=[])


@rule(
    id="DKR-HOST-016",
    title="The audit daemon is running",
    severity=Severity.MEDIUM,
    scope=TargetKind.HOST,
    statuses=STATUSES,
    rationale="""
CIS 1.1.3-1.1.18 ask for audit rules on Docker's files, but rules record nothing unless auditd runs and writes the
events somewhere; without it there is no trail of who changed the engine or ran privileged containers.
""",
    remediation="`apt-get install auditd` (or your distribution's audit package), enable and start it, and load the "
    "CIS rules from /etc/audit/rules.d/.",
)
def audit_daemon(facts: Facts) -> CheckResult:
    hardening = _hardening(facts)
    if not isinstance(hardening, HardeningFacts):
        return hardening
    if hardening.processes is None:
        return skipped("the host's processes could not be listed")
    rules = facts.host.audit.rules
    if "auditd" in hardening.processes:
        return passed("auditd is running", auditd=True, loaded_rules=len(rules) if rules is not None else None)
    return failed("auditd is not running: no audit events are recorded", auditd=False)
