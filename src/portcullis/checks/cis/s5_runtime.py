"""CIS section 5: container runtime.

Every container-scoped check covers stopped and created containers too (their HostConfig is what
they will run with); only checks about live state (processes, health, exec sessions) answer
not_applicable for a container that is not running.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from portcullis.checks.cis.s4_images import is_root_user
from portcullis.checks.registry import CheckResult, failed, manual, not_applicable, passed, rule, skipped
from portcullis.inside.host_paths import SENSITIVE_HOST_PATHS, sensitive_root
from portcullis.model.facts import ContainerFacts, Facts, MountPoint
from portcullis.model.findings import Severity, Status, TargetKind

NOT_RUNNING = "the container is not running ({state}); {what} exists only while it runs"


def _not_running(container: ContainerFacts, what: str) -> CheckResult:
    return not_applicable(NOT_RUNNING.format(state=container.state.status or "stopped", what=what))


def _security_opts(container: ContainerFacts) -> list[str]:
    return container.host_config.security_opt or []


def _opt_value(container: ContainerFacts, name: str) -> list[str]:
    """Values of `name=value` / `name:value` entries in SecurityOpt (Docker accepts both separators)."""
    values = []
    for opt in _security_opts(container):
        for separator in ("=", ":"):
            key, sep, value = opt.partition(separator)
            if sep and key == name:
                values.append(value)
                break
    return values


def _capability(name: str) -> str:
    return name.strip().upper().removeprefix("CAP_")


# --- published ports ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedPort:
    container_port: str
    host_ip: str
    host_port: str

    @property
    def host_port_number(self) -> int | None:
        """The first port of the binding; None when Docker picks one (empty HostPort)."""
        first = self.host_port.split("-", 1)[0]
        return int(first) if first.isdigit() else None

    def as_evidence(self) -> dict[str, str]:
        return {"container_port": self.container_port, "host_ip": self.host_ip, "host_port": self.host_port}


def pending_publish_all(container: ContainerFacts) -> list[str]:
    """Exposed ports a stopped `-P` container will publish on random host ports when it starts."""
    if container.state.running or not container.host_config.publish_all_ports:
        return []
    return sorted(container.config.exposed_ports or {})


def published_ports(container: ContainerFacts) -> tuple[list[PublishedPort], str]:
    """The host ports a container publishes, and where that came from.

    A running container's NetworkSettings.Ports is what the engine actually bound; a stopped one
    has none, so its HostConfig.PortBindings (what it will bind when started) is used.
    """
    if container.state.running:
        table, source = container.network_settings.ports, "NetworkSettings.Ports"
    else:
        table, source = container.host_config.port_bindings, "HostConfig.PortBindings"
    ports = [
        PublishedPort(container_port, binding.host_ip, binding.host_port)
        for container_port, bindings in (table or {}).items()
        for binding in bindings or []
    ]
    return ports, source


# --- 5.1 -----------------------------------------------------------------------------------------


@rule(
    id="CIS-5.1",
    cis="CIS-5.1",
    title="Swarm mode is off unless needed",
    severity=Severity.MEDIUM,
    scope=TargetKind.DAEMON,
    rationale="""
An engine in swarm mode opens cluster ports (2377, 7946, 4789) and accepts work from the swarm
managers. A host that does not take part in a cluster should not carry that attack surface.
""",
    remediation="If this host is not meant to be a swarm node, run `docker swarm leave` (add --force on a manager).",
)
def swarm_off(facts: Facts) -> CheckResult:
    state = facts.engine.info.swarm.local_node_state or "inactive"
    if state == "inactive":
        return passed("swarm mode is not active", local_node_state=state)
    return failed(f"swarm mode is {state}; confirm this host must be a swarm node", local_node_state=state)


# --- 5.2, 5.3: LSM confinement ---------------------------------------------------------------------


@rule(
    id="CIS-5.2",
    cis="CIS-5.2",
    title="An AppArmor profile confines the container",
    severity=Severity.MEDIUM,
    scope=TargetKind.CONTAINER,
    rationale="""
AppArmor limits which files, mounts and capabilities a confined process may use even as root.
Docker applies its docker-default profile unless the container opts out, so `unconfined` removes a
layer that would otherwise contain a compromised process.
""",
    remediation="Drop `--security-opt apparmor=unconfined` (and --privileged); use docker-default or a "
    "tailored profile.",
    statuses=(Status.PASS, Status.FAIL, Status.NOT_APPLICABLE),
)
def apparmor_profile(container: ContainerFacts, facts: Facts) -> CheckResult:
    daemon_uses_apparmor = facts.engine.info.security_option("apparmor") is not None
    if not daemon_uses_apparmor:
        if facts.host.apparmor_enabled:
            return failed(
                "the host kernel has AppArmor but the engine applies no profile (no name=apparmor in SecurityOptions)",
                apparmor_profile=container.apparmor_profile,
            )
        reason = "the engine does not use AppArmor (no name=apparmor in SecurityOptions)"
        if facts.host.apparmor_enabled is False:
            reason = "AppArmor is not enabled on this host"
        return not_applicable(reason, host_apparmor_enabled=facts.host.apparmor_enabled)
    profile = container.apparmor_profile
    if profile in ("", "unconfined"):
        shown = profile or "none"
        return failed(f"the container runs without an AppArmor profile ({shown})", apparmor_profile=profile)
    return passed(f"the container runs under AppArmor profile {profile}", apparmor_profile=profile)


@rule(
    id="CIS-5.3",
    cis="CIS-5.3",
    title="SELinux labels confine the container",
    severity=Severity.MEDIUM,
    scope=TargetKind.CONTAINER,
    rationale="""
With SELinux, each container process and its files carry a label that keeps it away from the host's
and other containers' files. `label=disable`, which Docker also sets by itself for privileged and
host-namespace containers, turns that separation off.
""",
    remediation="Start dockerd with --selinux-enabled and run containers without `--security-opt label=disable`, "
    "--privileged or host namespaces; set a specific type with `--security-opt label=type:...` if needed.",
    statuses=(Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.SKIP),
)
def selinux_labels(container: ContainerFacts, facts: Facts) -> CheckResult:
    daemon_uses_selinux = facts.engine.info.security_option("selinux") is not None
    host_selinux = facts.host.selinux_enabled
    if not daemon_uses_selinux:
        if host_selinux is False:
            return not_applicable("SELinux is not enabled on this host", host_selinux_enabled=False)
        if host_selinux is None:
            return skipped("whether the host runs SELinux was not collected; the engine does not use it")
        return failed(
            "the host has SELinux enabled but dockerd runs without --selinux-enabled",
            host_selinux_enabled=True,
        )
    labels = _opt_value(container, "label")
    evidence: dict[str, Any] = {
        "label_options": labels,
        "process_label": container.process_label,
        "mount_label": container.mount_label,
    }
    if "disable" in labels:
        return failed("SELinux separation is switched off for the container (label=disable)", **evidence)
    if not container.process_label:
        return failed("the container has no SELinux process label", **evidence)
    return passed(f"the container runs with SELinux label {container.process_label}", **evidence)


# --- 5.4 -----------------------------------------------------------------------------------------


@rule(
    id="CIS-5.4",
    cis="CIS-5.4",
    title="Capabilities are trimmed and NET_RAW is dropped",
    severity=Severity.HIGH,
    scope=TargetKind.CONTAINER,
    rationale="""
Capabilities split root's power into pieces. Each one added (SYS_ADMIN, NET_ADMIN, SYS_PTRACE…) widens
what a compromised process can do to the kernel and host; NET_RAW, granted by default, lets it forge
packets and spoof other containers on the same network.
""",
    remediation="Remove --cap-add entries the application does not need and run with `--cap-drop NET_RAW` "
    "(better: `--cap-drop ALL` then add back the few required).",
)
def capabilities(container: ContainerFacts, facts: Facts) -> CheckResult:
    host_config = container.host_config
    added = sorted({_capability(c) for c in host_config.cap_add or []})
    dropped = sorted({_capability(c) for c in host_config.cap_drop or []})
    net_raw_dropped = "NET_RAW" in dropped or "ALL" in dropped
    evidence: dict[str, Any] = {
        "cap_add": added,
        "cap_drop": dropped,
        "net_raw_dropped": net_raw_dropped and not host_config.privileged,
        "privileged": host_config.privileged,
    }
    problems = []
    if host_config.privileged:
        problems.append("privileged: every capability is granted")
    if added:
        problems.append(f"capabilities added: {', '.join(added)}")
    if not net_raw_dropped and not host_config.privileged:
        problems.append("NET_RAW is not dropped")
    if problems:
        return failed("; ".join(problems), **evidence)
    return passed("no capability is added and NET_RAW is dropped", **evidence)


# --- 5.5 -----------------------------------------------------------------------------------------


@rule(
    id="CIS-5.5",
    cis="CIS-5.5",
    title="Containers do not run privileged",
    severity=Severity.CRITICAL,
    scope=TargetKind.CONTAINER,
    rationale="""
A privileged container gets every capability, all host devices and no seccomp or LSM confinement:
root inside it is root on the host for most practical purposes.
""",
    remediation="Run the container without --privileged; add only the specific capabilities it needs.",
    references=("https://docs.docker.com/engine/containers/run/#runtime-privilege-and-linux-capabilities",),
)
def no_privileged(container: ContainerFacts, facts: Facts) -> CheckResult:
    if container.host_config.privileged:
        return failed("the container is privileged", privileged=True, state=container.state.status)
    return passed("the container is not privileged", privileged=False)


# --- 5.6 -----------------------------------------------------------------------------------------


def _normalise(path: str) -> str:
    parts = [p for p in path.split("/") if p not in ("", ".")]
    return "/" + "/".join(parts)


@rule(
    id="CIS-5.6",
    cis="CIS-5.6",
    title="Sensitive host directories are not mounted",
    severity=Severity.HIGH,
    scope=TargetKind.CONTAINER,
    rationale="""
A bind mount of a system directory lets the container read host secrets (/etc/shadow, keys) and,
when writable, change the host's binaries, configuration or devices. Read-only mounts and
sub-directories still expose that data, so they count too.
""",
    remediation="Mount only application data directories; if a host file is truly needed, mount that single file "
    "read-only and document why.",
)
def sensitive_mounts(container: ContainerFacts, facts: Facts) -> CheckResult:
    offending = []
    for mount in container.mounts:
        if mount.type not in ("bind", ""):
            continue  # volumes and tmpfs live under Docker's own storage, not a host system directory
        source = _normalise(mount.source)
        # A socket is not a directory: the engine's, under /run, is CIS-5.32's finding.
        root = None if source.endswith(".sock") else sensitive_root(source)
        if root is not None:
            offending.append(
                {"source": mount.source, "destination": mount.destination, "rw": mount.rw, "sensitive_root": root}
            )
    evidence: dict[str, Any] = {"sensitive_paths": list(SENSITIVE_HOST_PATHS), "mounts": offending}
    if offending:
        writable = sum(1 for m in offending if m["rw"])
        return failed(
            f"{len(offending)} sensitive host path(s) mounted ({writable} writable): "
            + ", ".join(str(m["source"]) for m in offending),
            **evidence,
        )
    return passed("no sensitive host directory is mounted", **evidence)


# --- 5.7 -----------------------------------------------------------------------------------------

SSH_SERVERS = frozenset({"sshd", "dropbear", "tinysshd"})


@rule(
    id="CIS-5.7",
    cis="CIS-5.7",
    title="No SSH server runs inside containers",
    severity=Severity.MEDIUM,
    scope=TargetKind.CONTAINER,
    rationale="""
An SSH daemon inside a container is one more network service, key set and account database to
secure and patch, and a way around the engine's access control; `docker exec` already gives
operators a shell.
""",
    remediation="Remove the SSH server from the image and use `docker exec` for interactive access.",
    statuses=(Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.SKIP),
)
def no_sshd(container: ContainerFacts, facts: Facts) -> CheckResult:
    if not container.state.running:
        return _not_running(container, "a process list")
    if container.processes is None:
        reason = container.processes_error or "not collected"
        return skipped(f"the container's processes could not be listed: {reason}")
    servers = [
        {"pid": p.pid, "comm": p.comm, "cmdline": p.cmdline}
        for p in container.processes
        if p.comm in SSH_SERVERS or (p.cmdline and p.cmdline[0].rsplit("/", 1)[-1] in SSH_SERVERS)
    ]
    evidence: dict[str, Any] = {
        "processes_source": container.processes_source,
        "process_count": len(container.processes),
    }
    if servers:
        return failed(f"an SSH server runs in the container (pid {servers[0]['pid']})", ssh_servers=servers, **evidence)
    return passed("no SSH server among the container's processes", ssh_servers=[], **evidence)


# --- 5.8, 5.9, 5.14: published ports ---------------------------------------------------------------


@rule(
    id="CIS-5.8",
    cis="CIS-5.8",
    title="No privileged host ports are published",
    severity=Severity.MEDIUM,
    scope=TargetKind.CONTAINER,
    rationale="""
Ports below 1024 are reserved for services started by root. Publishing a container on one lets it
pose as a trusted system service such as SSH, DNS or HTTP on the host's address.
""",
    remediation="Publish the container on a host port of 1024 or above (e.g. `-p 8080:80`) or put a proxy in front.",
)
def privileged_host_ports(container: ContainerFacts, facts: Facts) -> CheckResult:
    ports, source = published_ports(container)
    low = [p.as_evidence() for p in ports if p.host_port_number is not None and 0 < p.host_port_number < 1024]
    if low:
        shown = ", ".join(sorted({p["host_port"] for p in low}))
        return failed(f"host port(s) below 1024 published: {shown}", ports=low, source=source)
    return passed("no host port below 1024 is published", ports=[], source=source)


@rule(
    id="CIS-5.9",
    cis="CIS-5.9",
    title="Only needed ports are published",
    severity=Severity.INFO,
    scope=TargetKind.CONTAINER,
    rationale="""
Every published port is reachable from outside the host. Only the application owner knows which of
them the service needs, so the list is given for review.
""",
    remediation="Publish only the ports clients must reach; avoid -P (publish all) and remove EXPOSE lines "
    "that are not used.",
    statuses=(Status.PASS, Status.MANUAL),
)
def needed_ports(container: ContainerFacts, facts: Facts) -> CheckResult:
    ports, source = published_ports(container)
    listed = [p.as_evidence() for p in ports]
    listed += [{"container_port": port, "host_ip": "", "host_port": ""} for port in pending_publish_all(container)]
    if not listed:
        return passed("the container publishes no ports", ports=[], source=source)
    return manual(
        f"confirm the {len(listed)} published port(s) are needed",
        ports=listed,
        source=source,
        publish_all_ports=container.host_config.publish_all_ports,
    )


WILDCARD_ADDRESSES = ("", "0.0.0.0", "::", "[::]")


def _address(host_ip: str, host_port: str) -> str:
    host = "*" if not host_ip else f"[{host_ip.strip('[]')}]" if ":" in host_ip else host_ip
    return f"{host}:{host_port or 'random'}"


@rule(
    id="CIS-5.14",
    cis="CIS-5.14",
    title="Published ports are bound to a specific host address",
    severity=Severity.MEDIUM,
    scope=TargetKind.CONTAINER,
    rationale="""
A port published without an address listens on every interface of the host, including ones facing
networks the service was never meant for. Binding to one address limits who can connect.
""",
    remediation="Publish with an explicit address, e.g. `-p 10.0.0.5:8080:80` or `-p 127.0.0.1:8080:80`.",
)
def ports_on_specific_address(container: ContainerFacts, facts: Facts) -> CheckResult:
    ports, source = published_ports(container)
    wildcard = [p.as_evidence() for p in ports if p.host_ip in WILDCARD_ADDRESSES]
    # -P binds every exposed port on all addresses once a stopped container starts
    wildcard += [{"container_port": port, "host_ip": "", "host_port": ""} for port in pending_publish_all(container)]
    if wildcard:
        shown = ", ".join(sorted({_address(p["host_ip"], p["host_port"]) for p in wildcard}))
        return failed(f"port(s) published on all host addresses: {shown}", ports=wildcard, source=source)
    return passed("every published port is bound to a specific host address", ports=[], source=source)


# --- namespaces: 5.10, 5.16, 5.17, 5.21, 5.31 --------------------------------------------------------


def _host_namespace(kind: str, mode: str, flag: str, **evidence: Any) -> CheckResult:
    if mode == "host":
        return failed(f"the container shares the host's {kind} namespace ({flag}=host)", mode=mode, **evidence)
    return passed(f"the container has its own {kind} namespace", mode=mode or "default", **evidence)


@rule(
    id="CIS-5.10",
    cis="CIS-5.10",
    title="The host network namespace is not shared",
    severity=Severity.HIGH,
    scope=TargetKind.CONTAINER,
    rationale="""
With --network host the container sees and can bind every host interface, reach services listening
on localhost and, with NET_ADMIN, reconfigure the host's network.
""",
    remediation="Run the container on a user-defined bridge network and publish only the ports it needs.",
)
def network_namespace(container: ContainerFacts, facts: Facts) -> CheckResult:
    return _host_namespace("network", container.host_config.network_mode, "--network")


@rule(
    id="CIS-5.16",
    cis="CIS-5.16",
    title="The host PID namespace is not shared",
    severity=Severity.HIGH,
    scope=TargetKind.CONTAINER,
    rationale="""
With --pid host the container sees every host process, their command lines and environments, and can
signal or trace them when it holds the matching capabilities.
""",
    remediation="Run the container without --pid host.",
)
def pid_namespace(container: ContainerFacts, facts: Facts) -> CheckResult:
    return _host_namespace("PID", container.host_config.pid_mode, "--pid")


@rule(
    id="CIS-5.17",
    cis="CIS-5.17",
    title="The host IPC namespace is not shared",
    severity=Severity.MEDIUM,
    scope=TargetKind.CONTAINER,
    rationale="""
With --ipc host the container can read and write the host's shared memory segments, semaphores and
message queues, which other processes use to exchange data.
""",
    remediation="Run the container without --ipc host; share IPC only between containers that need it "
    "(`--ipc container:NAME`).",
)
def ipc_namespace(container: ContainerFacts, facts: Facts) -> CheckResult:
    return _host_namespace("IPC", container.host_config.ipc_mode, "--ipc")


@rule(
    id="CIS-5.21",
    cis="CIS-5.21",
    title="The host UTS namespace is not shared",
    severity=Severity.LOW,
    scope=TargetKind.CONTAINER,
    rationale="""
With --uts host the container shares the host's hostname and domain name and, with SYS_ADMIN, can
change them for the whole host.
""",
    remediation="Run the container without --uts host.",
)
def uts_namespace(container: ContainerFacts, facts: Facts) -> CheckResult:
    return _host_namespace("UTS", container.host_config.uts_mode, "--uts")


@rule(
    id="CIS-5.31",
    cis="CIS-5.31",
    title="The host user namespace is not shared",
    severity=Severity.MEDIUM,
    scope=TargetKind.CONTAINER,
    rationale="""
When the daemon remaps users, `--userns host` opts a container out: its root is the host's root
again instead of an unprivileged uid.
""",
    remediation="Run the container without --userns host.",
)
def user_namespace(container: ContainerFacts, facts: Facts) -> CheckResult:
    remap = facts.engine.info.security_option("userns") is not None
    return _host_namespace("user", container.host_config.userns_mode, "--userns", daemon_userns_remap=remap)


# --- resources: 5.11, 5.12, 5.29, 5.19, 5.25 -------------------------------------------------------


@rule(
    id="CIS-5.11",
    cis="CIS-5.11",
    title="Memory is limited per container",
    severity=Severity.MEDIUM,
    scope=TargetKind.CONTAINER,
    rationale="""
Without a memory limit one container can use all of the host's memory, starving the others and
pushing the kernel's OOM killer onto unrelated processes.
""",
    remediation="Set a limit suited to the workload, e.g. `--memory 512m`.",
)
def memory_limit(container: ContainerFacts, facts: Facts) -> CheckResult:
    memory = container.host_config.memory
    if memory <= 0:
        return failed("the container has no memory limit", memory=memory)
    return passed(f"memory is limited to {memory} bytes", memory=memory)


@rule(
    id="CIS-5.12",
    cis="CIS-5.12",
    title="CPU priority is set per container",
    severity=Severity.LOW,
    scope=TargetKind.CONTAINER,
    rationale="""
With the default CPU share (1024, shown as 0) every container weighs the same under contention, so
a busy or hostile container takes CPU time from the ones that matter.
""",
    remediation="Give each container a relative weight with --cpu-shares (and a hard cap with --cpus if needed).",
)
def cpu_shares(container: ContainerFacts, facts: Facts) -> CheckResult:
    host_config = container.host_config
    evidence: dict[str, Any] = {"cpu_shares": host_config.cpu_shares, "nano_cpus": host_config.nano_cpus}
    if host_config.cpu_shares in (0, 1024):
        return failed("CPU shares are left at the default weight", **evidence)
    return passed(f"CPU shares are set to {host_config.cpu_shares}", **evidence)


@rule(
    id="CIS-5.29",
    cis="CIS-5.29",
    title="The number of processes is limited per container",
    severity=Severity.MEDIUM,
    scope=TargetKind.CONTAINER,
    rationale="""
Without a PIDs limit a fork bomb or runaway worker pool in one container exhausts the host's process
table and stops everything else, the daemon included, from starting processes.
""",
    remediation="Set a limit with `--pids-limit N` (e.g. 100) suited to the workload.",
)
def pids_limit(container: ContainerFacts, facts: Facts) -> CheckResult:
    limit = container.host_config.pids_limit
    if limit is None or limit <= 0:
        return failed("the container has no PIDs limit", pids_limit=limit)
    return passed(f"processes are limited to {limit}", pids_limit=limit)


@rule(
    id="CIS-5.19",
    cis="CIS-5.19",
    title="Default ulimits are overridden only when needed",
    severity=Severity.INFO,
    scope=TargetKind.CONTAINER,
    rationale="""
The daemon's default ulimits are set once for all containers; a per-container override can raise
them. Whether each override is needed is for a person to confirm.
""",
    remediation="Remove --ulimit options the container does not need and rely on the daemon's --default-ulimit.",
    statuses=(Status.PASS, Status.MANUAL),
)
def ulimit_overrides(container: ContainerFacts, facts: Facts) -> CheckResult:
    ulimits = container.host_config.ulimits or []
    if not ulimits:
        return passed("the container uses the daemon's default ulimits", ulimits=[])
    listed = [{"name": u.name, "soft": u.soft, "hard": u.hard} for u in ulimits]
    names = ", ".join(u.name for u in ulimits)
    return manual(f"confirm the ulimit override(s) are needed: {names}", ulimits=listed)


@rule(
    id="CIS-5.25",
    cis="CIS-5.25",
    title="The container's cgroup placement is confirmed",
    severity=Severity.INFO,
    scope=TargetKind.CONTAINER,
    rationale="""
A custom --cgroup-parent moves the container out of the cgroup tree Docker manages, so it may escape
the limits and accounting set for containers. Only an administrator knows whether the placement is
intended.
""",
    remediation="Leave --cgroup-parent unset unless the placement is deliberate and its limits are reviewed.",
    statuses=(Status.PASS, Status.MANUAL),
)
def cgroup_parent(container: ContainerFacts, facts: Facts) -> CheckResult:
    parent = container.host_config.cgroup_parent
    if not parent:
        return passed("the container uses the default cgroup parent", cgroup_parent="")
    return manual(f"confirm the custom cgroup parent {parent} is intended", cgroup_parent=parent)


# --- 5.13 ----------------------------------------------------------------------------------------


@rule(
    id="CIS-5.13",
    cis="CIS-5.13",
    title="The root filesystem is mounted read-only",
    severity=Severity.LOW,
    scope=TargetKind.CONTAINER,
    rationale="""
A writable root filesystem lets an intruder drop tools, change binaries and persist in the container.
Read-only root with explicit writable volumes or tmpfs for data keeps the image as built.
""",
    remediation="Run with --read-only and mount writable volumes or --tmpfs only where the application writes.",
)
def readonly_rootfs(container: ContainerFacts, facts: Facts) -> CheckResult:
    if container.host_config.readonly_rootfs:
        return passed("the root filesystem is read-only", readonly_rootfs=True)
    return failed("the root filesystem is writable", readonly_rootfs=False)


# --- 5.15 ----------------------------------------------------------------------------------------

MAX_RESTART_RETRIES = 5


@rule(
    id="CIS-5.15",
    cis="CIS-5.15",
    title="Restart policy is on-failure with at most 5 retries",
    severity=Severity.LOW,
    scope=TargetKind.CONTAINER,
    rationale="""
A container restarted without limit (`always`, `unless-stopped`, or on-failure without a cap) can
crash-loop forever, burning resources and hiding the failure; an attacker can also use repeated
restarts to retry an exploit.
""",
    remediation="Use `--restart on-failure:5` (or fewer retries), or no restart policy.",
)
def restart_policy(container: ContainerFacts, facts: Facts) -> CheckResult:
    policy = container.host_config.restart_policy
    name, retries = policy.name or "no", policy.maximum_retry_count
    evidence: dict[str, Any] = {"name": name, "maximum_retry_count": retries}
    if name in ("always", "unless-stopped"):
        return failed(f"restart policy {name} restarts the container without limit", **evidence)
    if name == "on-failure":
        if retries <= 0:
            return failed("restart policy on-failure has no retry cap (unlimited)", **evidence)
        if retries > MAX_RESTART_RETRIES:
            return failed(f"restart policy on-failure allows {retries} retries (more than 5)", **evidence)
        return passed(f"restart policy on-failure:{retries}", **evidence)
    evidence["note"] = "no restart policy: the container is never restarted automatically"
    return passed("the container has no restart policy", **evidence)


# --- 5.18 ----------------------------------------------------------------------------------------


@rule(
    id="CIS-5.18",
    cis="CIS-5.18",
    title="Host devices are not passed to containers",
    severity=Severity.HIGH,
    scope=TargetKind.CONTAINER,
    rationale="""
A host device node inside a container gives direct access to hardware or kernel interfaces (disks,
/dev/mem, GPUs); with write access a container can read or destroy data outside its own filesystem.
""",
    remediation="Remove --device options that are not required; when one is, grant only the needed permissions "
    "(e.g. `--device /dev/x:/dev/x:r`).",
)
def host_devices(container: ContainerFacts, facts: Facts) -> CheckResult:
    devices = [
        {"path_on_host": d.path_on_host, "path_in_container": d.path_in_container, "permissions": d.cgroup_permissions}
        for d in container.host_config.devices or []
    ]
    if container.host_config.privileged:
        return failed("the container is privileged: every host device is available", devices=devices, privileged=True)
    if devices:
        shown = ", ".join(d["path_on_host"] for d in devices)
        return failed(f"host device(s) passed to the container: {shown}", devices=devices, privileged=False)
    return passed("no host device is passed to the container", devices=[], privileged=False)


# --- 5.20 ----------------------------------------------------------------------------------------

SHARED_PROPAGATION = ("shared", "rshared")


@rule(
    id="CIS-5.20",
    cis="CIS-5.20",
    title="Mount propagation is not shared",
    severity=Severity.MEDIUM,
    scope=TargetKind.CONTAINER,
    rationale="""
A shared mount propagates mounts both ways: what the container mounts under it appears on the host,
and host mounts appear in the container.
""",
    remediation="Use the default private propagation; if a mount must follow host changes, use (r)slave.",
)
def mount_propagation(container: ContainerFacts, facts: Facts) -> CheckResult:
    shared = [
        {"source": m.source, "destination": m.destination, "propagation": m.propagation}
        for m in container.mounts
        if m.propagation in SHARED_PROPAGATION
    ]
    if shared:
        return failed(f"{len(shared)} mount(s) use shared propagation", mounts=shared)
    return passed("no mount uses shared propagation", mounts=[])


# --- 5.22 ----------------------------------------------------------------------------------------


@rule(
    id="CIS-5.22",
    cis="CIS-5.22",
    title="Seccomp filtering is not disabled",
    severity=Severity.HIGH,
    scope=TargetKind.CONTAINER,
    rationale="""
Docker's default seccomp profile blocks dozens of rarely needed system calls that often carry kernel
exploits (keyctl, unshare, mount, bpf…). Running unconfined exposes all of them.
""",
    remediation="Drop `--security-opt seccomp=unconfined` (and --privileged); if a call is missing, use a custom "
    "profile that allows just that call.",
)
def seccomp_enabled(container: ContainerFacts, facts: Facts) -> CheckResult:
    profiles = _opt_value(container, "seccomp")
    evidence: dict[str, Any] = {"seccomp_options": profiles, "privileged": container.host_config.privileged}
    if "unconfined" in profiles:
        return failed("seccomp is disabled for the container (seccomp=unconfined)", **evidence)
    if container.host_config.privileged:
        return failed("the container is privileged, which runs it without seccomp", **evidence)
    daemon_seccomp = facts.engine.info.security_option("seccomp")
    if daemon_seccomp is None:
        return failed("the engine has no seccomp support, so no container is filtered", **evidence)
    if "profile=unconfined" in daemon_seccomp.split(",") and not profiles:
        return failed("the daemon's default seccomp profile is unconfined", daemon_seccomp=daemon_seccomp, **evidence)
    shown = profiles[0] if profiles else "the daemon's default profile"
    return passed(f"seccomp filters the container ({shown})", **evidence)


# --- 5.23, 5.24: exec sessions --------------------------------------------------------------------

EXEC_MEMORY = (
    "Docker keeps an exec record only while the exec (or, if never started, its container) is alive, so this sees "
    "open sessions only; past ones are visible only in an audit log of docker commands."
)


def _exec_sessions(container: ContainerFacts) -> CheckResult | None:
    """N/A or skip when exec sessions cannot be judged; None when they can."""
    if not container.state.running:
        return _not_running(container, "the engine's record of exec sessions")
    if container.exec_sessions is None:
        reason = container.exec_sessions_error or "not collected"
        return skipped(f"the container's exec sessions could not be read: {reason}")
    return None


@rule(
    id="CIS-5.23",
    cis="CIS-5.23",
    title="docker exec is not run with --privileged",
    severity=Severity.HIGH,
    scope=TargetKind.CONTAINER,
    rationale=f"""
`docker exec --privileged` starts a process with every capability and no seccomp or LSM confinement
inside a container that was deliberately started with less. {EXEC_MEMORY}
""",
    remediation="Do not use --privileged with docker exec; restrict who may call the Docker API "
    "(authorization plugin) and audit exec use.",
    statuses=(Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.SKIP),
)
def privileged_exec(container: ContainerFacts, facts: Facts) -> CheckResult:
    unknown = _exec_sessions(container)
    if unknown is not None:
        return unknown
    sessions = container.exec_sessions or []
    offending = [{"id": s.id, "command": s.command, "running": s.running} for s in sessions if s.privileged]
    if offending:
        return failed(f"{len(offending)} privileged exec session(s)", sessions=offending, exec_sessions=len(sessions))
    return passed(
        f"none of the {len(sessions)} open exec session(s) is privileged", sessions=[], exec_sessions=len(sessions)
    )


@rule(
    id="CIS-5.24",
    cis="CIS-5.24",
    title="docker exec is not run as root",
    severity=Severity.MEDIUM,
    scope=TargetKind.CONTAINER,
    rationale=f"""
An exec session as root (an explicit --user root/0, or no --user in a container whose user is root)
bypasses the unprivileged user the container was meant to run as. {EXEC_MEMORY}
""",
    remediation="Run docker exec with `--user` set to the container's unprivileged account; set a non-root USER "
    "in the image so sessions without --user are unprivileged too.",
    statuses=(Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.SKIP),
)
def root_exec(container: ContainerFacts, facts: Facts) -> CheckResult:
    unknown = _exec_sessions(container)
    if unknown is not None:
        return unknown
    sessions = container.exec_sessions or []
    offending = []
    for session in sessions:
        effective = session.user or container.config.user
        if is_root_user(effective):
            offending.append(
                {
                    "id": session.id,
                    "command": session.command,
                    "user": session.user,
                    "effective_user": effective or "root",
                    "user_from": "exec --user" if session.user else "container default",
                }
            )
    if offending:
        return failed(f"{len(offending)} exec session(s) run as root", sessions=offending, exec_sessions=len(sessions))
    return passed(
        f"none of the {len(sessions)} open exec session(s) runs as root", sessions=[], exec_sessions=len(sessions)
    )


# --- 5.26 ----------------------------------------------------------------------------------------


def _daemon_no_new_privileges(facts: Facts) -> str | None:
    """Where the daemon sets no-new-privileges for every container, if it does."""
    if any(v.lower() in ("true", "1") for v in facts.daemon.flag_values("--no-new-privileges")):
        return "dockerd --no-new-privileges"
    if (facts.daemon.daemon_json or {}).get("no-new-privileges") is True:
        return "daemon.json no-new-privileges"
    return None


@rule(
    id="CIS-5.26",
    cis="CIS-5.26",
    title="Containers cannot gain additional privileges",
    severity=Severity.MEDIUM,
    scope=TargetKind.CONTAINER,
    rationale="""
no-new-privileges stops setuid/setgid binaries and file capabilities from raising a process's rights
after start, closing the usual path from an unprivileged foothold to root inside the container.
""",
    remediation='Run containers with `--security-opt no-new-privileges` or set `"no-new-privileges": true` '
    "in daemon.json.",
)
def no_new_privileges(container: ContainerFacts, facts: Facts) -> CheckResult:
    values = []
    for opt in _security_opts(container):
        name, _, value = opt.replace(":", "=", 1).partition("=")
        if name == "no-new-privileges":
            values.append(value.lower() or "true")
    if "false" in values:
        return failed("the container turns no-new-privileges off", security_opt=_security_opts(container))
    if "true" in values:
        return passed("the container sets no-new-privileges", source="container")
    daemon_default = _daemon_no_new_privileges(facts)
    if daemon_default:
        return passed(f"no-new-privileges is the daemon default ({daemon_default})", source=daemon_default)
    return failed("no-new-privileges is not set for the container or as daemon default", source=None)


# --- 5.27 ----------------------------------------------------------------------------------------


@rule(
    id="CIS-5.27",
    cis="CIS-5.27",
    title="Container health is checked at runtime",
    severity=Severity.LOW,
    scope=TargetKind.CONTAINER,
    rationale="""
A health status tells the engine and orchestrators whether the service works, not merely whether its
process exists, so broken containers can be restarted or taken out of service.
""",
    remediation="Add a HEALTHCHECK to the image or start the container with --health-cmd; fix the service if it "
    "reports unhealthy.",
    statuses=(Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.SKIP),
)
def health_status(container: ContainerFacts, facts: Facts) -> CheckResult:
    if not container.state.running:
        return _not_running(container, "a health status")
    health = container.state.health
    if health is None or not health.status or health.status == "none":
        return failed("the container has no health check", health=None)
    evidence: dict[str, Any] = {"health": health.status, "failing_streak": health.failing_streak}
    if health.status == "healthy":
        return passed("the container reports healthy", **evidence)
    if health.status == "starting":
        return skipped("the health check has not reported yet (starting); audit again later", **evidence)
    return failed(f"the container reports {health.status}", **evidence)


# --- 5.28 ----------------------------------------------------------------------------------------


@rule(
    id="CIS-5.28",
    cis="CIS-5.28",
    title="Containers run the image their tag currently names",
    severity=Severity.LOW,
    scope=TargetKind.CONTAINER,
    rationale="""
A tag can move to a patched image while containers keep running the copy they were started from.
The engine can tell whether a container still runs the image its tag names locally; whether the
local tag itself matches the registry cannot be known offline, so the image's date and digests are
kept as evidence.
""",
    remediation="Pull images (`docker pull` or `--pull always`); recreate containers whose tag names a newer image.",
    statuses=(Status.PASS, Status.FAIL, Status.SKIP),
)
def fresh_images(container: ContainerFacts, facts: Facts) -> CheckResult:
    reference = container.config.image
    running = next((i for i in facts.images if i.id == container.image_id), None)
    if reference.startswith("sha256:") or "@sha256:" in reference:
        return passed(f"the container runs a pinned digest ({reference})", image=reference)
    wanted = reference if ":" in reference.rsplit("/", 1)[-1] else f"{reference}:latest"
    current = next((i for i in facts.images if wanted in i.repo_tags), None)
    evidence: dict[str, Any] = {
        "image": reference,
        "running_image_id": container.image_id,
        "tag_now_names": current.id if current else None,
        "created": running.created if running else None,
        "repo_digests": running.repo_digests if running else [],
    }
    if current is None:
        return skipped(f"{wanted} no longer names any local image, so freshness cannot be compared", **evidence)
    if current.id != container.image_id:
        return failed(f"the container runs an older image than {wanted} now names", **evidence)
    return passed(f"the container runs the image {wanted} names (registry freshness not checked offline)", **evidence)


# --- 5.30 ----------------------------------------------------------------------------------------


@rule(
    id="CIS-5.30",
    cis="CIS-5.30",
    title="The default bridge network is not used",
    severity=Severity.LOW,
    scope=TargetKind.CONTAINER,
    rationale="""
Containers on the default bridge can all reach each other and get no name-based isolation or
per-network policy. User-defined networks separate applications from one another.
""",
    remediation="Create a network per application (`docker network create app`) and attach containers with --network.",
)
def default_bridge(container: ContainerFacts, facts: Facts) -> CheckResult:
    networks = sorted(container.network_settings.networks)
    mode = container.host_config.network_mode
    on_bridge = "bridge" in networks or (not networks and mode in ("default", "bridge"))
    if on_bridge:
        return failed("the container is attached to the default bridge network", networks=networks, network_mode=mode)
    return passed("the container is not on the default bridge", networks=networks, network_mode=mode)


# --- 5.32 ----------------------------------------------------------------------------------------

ENGINE_SOCKETS = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock",
)


def _known_sockets(facts: Facts) -> set[str]:
    sockets = set(ENGINE_SOCKETS)
    if facts.engine.endpoint.startswith("unix://"):
        sockets.add(_normalise(facts.engine.endpoint.removeprefix("unix://")))
    if facts.host.containerd_socket:
        sockets.add(_normalise(facts.host.containerd_socket))
    return sockets


def _exposes_engine_socket(mount: MountPoint, sockets: set[str]) -> str | None:
    """Why the mount hands an engine socket to the container, or None."""
    source = _normalise(mount.source)
    name = source.rsplit("/", 1)[-1]
    if source in sockets:
        return "engine socket"
    if name.endswith(".sock") and ("docker" in source or "containerd" in source):
        return "docker/containerd socket"
    covered = sorted(s for s in sockets if source == "/" or s.startswith(source + "/"))
    if covered:
        return f"directory holding {covered[0]}"
    return None


@rule(
    id="CIS-5.32",
    cis="CIS-5.32",
    title="The Docker socket is not mounted into containers",
    severity=Severity.CRITICAL,
    scope=TargetKind.CONTAINER,
    rationale="""
Whoever can talk to the Docker or containerd socket can start a privileged container with the host's
root filesystem mounted: a container given that socket effectively owns the host.
""",
    remediation="Remove the socket mount; if a tool really needs the API, give it a filtering proxy with only the "
    "calls it requires.",
)
def engine_socket(container: ContainerFacts, facts: Facts) -> CheckResult:
    sockets = _known_sockets(facts)
    offending = []
    for mount in container.mounts:
        why = _exposes_engine_socket(mount, sockets)
        if why:
            offending.append({"source": mount.source, "destination": mount.destination, "rw": mount.rw, "why": why})
    if offending:
        shown = ", ".join(str(m["source"]) for m in offending)
        return failed(f"an engine socket is mounted into the container: {shown}", mounts=offending)
    return passed("no engine socket is mounted into the container", mounts=[])
