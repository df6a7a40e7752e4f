"""Portcullis's own container runtime rules (DKR-RT-*), for what CIS leaves to the image level."""

from __future__ import annotations

from typing import Any

from portcullis.checks.cis.s4_images import is_root_user
from portcullis.checks.registry import CheckResult, failed, manual, passed, rule
from portcullis.model.facts import ContainerFacts, Facts
from portcullis.model.findings import Severity, Status, TargetKind


@rule(
    id="DKR-RT-001",
    title="Containers do not run as root",
    severity=Severity.MEDIUM,
    scope=TargetKind.CONTAINER,
    rationale="""
CIS 4.1 judges the image's USER, but `docker run --user` decides what actually runs: a non-root
image can be started as root and a root image as an unprivileged user. A container whose main process
is uid 0 turns any flaw in it into root inside the container, one kernel bug away from the host
(less so under a daemon with user-namespace remapping, where that uid maps to an unprivileged one).
""",
    remediation="Start the container with `--user UID:GID` of an unprivileged account, or set USER in the image "
    "and do not override it with --user 0/root.",
)
def container_user(container: ContainerFacts, facts: Facts) -> CheckResult:
    user = container.config.user
    remap = facts.engine.info.security_option("userns") is not None
    if is_root_user(user):
        shown = user or "(empty: defaults to root)"
        return failed(f"the container runs as root (User={shown})", user=user, daemon_userns_remap=remap)
    return passed(f"the container runs as {user}", user=user, daemon_userns_remap=remap)


# Kernel parameters runc lets a container set because they live in one of its own namespaces (the rest are host-wide
# and refused by runc): the namespace each belongs to, and the HostConfig mode that would make it the host's.
IPC_SYSCTLS = frozenset(
    ["kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
     "kernel.shm_rmid_forced"]
)  # fmt: skip
UTS_SYSCTLS = frozenset(["kernel.domainname", "kernel.hostname"])


def _sysctl_namespace(name: str) -> str | None:
    """'network', 'ipc' or 'uts' for a namespaced kernel parameter; None for a host-wide one."""
    if name.startswith("net."):
        return "network"
    if name in IPC_SYSCTLS or name.startswith("fs.mqueue."):
        return "ipc"
    if name in UTS_SYSCTLS:
        return "uts"
    return None


@rule(
    id="DKR-RT-002",
    title="Containers set kernel parameters only inside their own namespaces",
    severity=Severity.HIGH,
    scope=TargetKind.CONTAINER,
    rationale="""
`--sysctl` writes kernel parameters as the container starts. In the container's own network, IPC or UTS
namespace that stays inside it; a net.* parameter with --network host (kernel.shm* with --ipc host,
kernel.hostname with --uts host), or a parameter no namespace holds, changes the host's kernel for every
process on it.
""",
    remediation="Drop the --sysctl options that reach the host, or give the container its own namespace for them.",
    references=("https://docs.docker.com/reference/cli/docker/container/run/#sysctl",),
)
def kernel_parameters(container: ContainerFacts, facts: Facts) -> CheckResult:
    host = container.host_config
    shared = {"network": host.network_mode == "host", "ipc": host.ipc_mode == "host", "uts": host.uts_mode == "host"}
    sysctls = {name.replace("/", "."): value for name, value in (host.sysctls or {}).items()}
    reaching = sorted(name for name in sysctls if (namespace := _sysctl_namespace(name)) is None or shared[namespace])
    if reaching:
        return failed(f"kernel parameters set on the host: {', '.join(reaching)}", sysctls=sysctls, host=reaching)
    if sysctls:
        return passed(f"kernel parameters set in the container's own namespaces: {', '.join(sorted(sysctls))}",
                      sysctls=sysctls, host=[])  # fmt: skip
    return passed("the container sets no kernel parameter", sysctls={}, host=[])


@rule(
    id="DKR-RT-003",
    title="The kernel's /proc and /sys paths stay masked",
    severity=Severity.HIGH,
    scope=TargetKind.CONTAINER,
    rationale="""
Docker masks kernel interfaces such as /proc/kcore, /proc/keys and /sys/firmware, and mounts /proc/sys,
/proc/sysrq-trigger and /proc/irq read-only. `--security-opt systempaths=unconfined` sends both lists
empty: the container can read kernel memory and keys and write kernel settings its capabilities allow.
""",
    remediation="Remove --security-opt systempaths=unconfined.",
    references=("https://docs.docker.com/reference/cli/docker/container/run/#security-opt",),
)
def masked_paths(container: ContainerFacts, facts: Facts) -> CheckResult:
    host = container.host_config
    emptied = [name for name, paths in (("MaskedPaths", host.masked_paths), ("ReadonlyPaths", host.readonly_paths))
               if paths is not None and not paths]  # fmt: skip
    evidence: dict[str, Any] = {"masked_paths": host.masked_paths, "readonly_paths": host.readonly_paths}
    if emptied:
        return failed(f"{' and '.join(emptied)} emptied (systempaths=unconfined)", **evidence)
    return passed("the engine's masked and read-only kernel paths are kept", **evidence)


@rule(
    id="DKR-RT-004",
    title="Containers run under the engine's default runtime",
    severity=Severity.INFO,
    scope=TargetKind.CONTAINER,
    rationale="""
The OCI runtime (`--runtime`) decides how a container is isolated: a sandboxing runtime such as gVisor or
Kata isolates more than runc, a custom or debugging one may isolate less or nothing. Only an administrator
knows which runtimes an engine was given and why.
""",
    remediation="Use the default runtime, or confirm the runtime is one the engine's operators intend to offer.",
    references=("https://docs.docker.com/reference/cli/dockerd/#configure-container-runtimes",),
    statuses=(Status.PASS, Status.MANUAL),
)
def container_runtime(container: ContainerFacts, facts: Facts) -> CheckResult:
    runtime, default = container.host_config.runtime, facts.engine.info.default_runtime
    if runtime in ("", default):
        return passed(f"the container runs under the default runtime {default}", runtime=runtime or default)
    return manual(f"confirm the runtime {runtime} is intended (the default is {default})", runtime=runtime)
