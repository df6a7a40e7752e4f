"""Compose lint rules (DKR-CMP-*): risky service settings, reported at the line that sets them.

Each check is called as ``check(compose_facts)`` on a project already interpolated and merged; a finding
points at the file (base or override) and line where the value was written, or at the service's line
when the problem is a missing setting.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from portcullis.checks.cis.s4_images import names_uid_zero
from portcullis.checks.registry import CheckResult, Outcome, failed, passed, rule
from portcullis.inside.host_paths import sensitive_root
from portcullis.model.findings import Location, Severity, TargetKind
from portcullis.model.lint import ComposeFacts, SourceRef


def _at(ref: SourceRef) -> Location:
    return Location(path=ref.path, line=ref.line)


def _verdict(failures: list[Outcome], all_clear: str) -> CheckResult:
    return failures or passed(all_clear)


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# --- normalised ports and mounts ----------------------------------------------------------------


@dataclass(frozen=True)
class PublishedPort:
    index: int
    host_ip: str | None
    published: str | None  # host port or range; None: an ephemeral port
    target: str
    spec: str

    @property
    def lowest_host_port(self) -> int | None:
        low = (self.published or "").split("-", 1)[0]
        return int(low) if low.isdigit() else None


def parse_port(index: int, entry: Any) -> PublishedPort:
    """Short (`[ip:][host:]container[/proto]`) or long (`{target, published, host_ip}`) syntax."""
    if isinstance(entry, dict):
        published = entry.get("published")
        return PublishedPort(
            index,
            entry.get("host_ip") or None,
            str(published) if published not in (None, "") else None,
            str(entry.get("target", "")),
            str(entry),
        )
    spec = str(entry)
    text = spec.split("/", 1)[0]
    host_ip = None
    if text.startswith("["):  # [::1]:8080:80
        host_ip, _, text = text[1:].partition("]")
        text = text.lstrip(":")
        parts = text.split(":")
    else:
        parts = text.split(":")
        if len(parts) == 3:
            host_ip = parts.pop(0)
    if len(parts) == 1:
        return PublishedPort(index, host_ip or None, None, parts[0], spec)
    return PublishedPort(index, host_ip or None, parts[0] or None, parts[1], spec)


@dataclass(frozen=True)
class Mount:
    index: int
    kind: str  # bind, volume, tmpfs, ...
    source: str | None
    target: str
    read_only: bool
    long_syntax: bool = False

    def pointer(self, service: str) -> tuple[str | int, ...]:
        """Where the host path is written: the entry, or its `source:` line in the long syntax."""
        base: tuple[str | int, ...] = ("services", service, "volumes", self.index)
        return (*base, "source") if self.long_syntax else base


def parse_mount(index: int, entry: Any) -> Mount:
    if isinstance(entry, dict):
        return Mount(
            index,
            str(entry.get("type", "volume")),
            entry.get("source"),
            str(entry.get("target", "")),
            bool(entry.get("read_only", False)),
            long_syntax=True,
        )
    parts = str(entry).split(":")
    if len(parts) == 1:
        return Mount(index, "volume", None, parts[0], False)
    source, target = parts[0], parts[1]
    options = parts[2].split(",") if len(parts) > 2 else []
    is_path = source.startswith(("/", ".", "~"))
    return Mount(index, "bind" if is_path else "volume", source, target, "ro" in options)


def _mounts(service: dict[str, Any]) -> list[Mount]:
    return [parse_mount(i, entry) for i, entry in enumerate(_items(service.get("volumes")))]


def _services(facts: ComposeFacts) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from facts.services.items()


# --- DKR-CMP-001 privileged ---------------------------------------------------------------------


@rule(
    id="DKR-CMP-001",
    title="Services do not run privileged",
    severity=Severity.CRITICAL,
    scope=TargetKind.COMPOSE,
    rationale="""
`privileged: true` gives the container every capability and every host device, and lifts seccomp and LSM
confinement: root in the service is effectively root on the host.
""",
    remediation="Remove `privileged: true`; grant only the specific capabilities or devices the service needs.",
)
def no_privileged(facts: ComposeFacts) -> CheckResult:
    failures = [
        failed(f"service {name} is privileged", location=_at(facts.where("services", name, "privileged")), service=name)
        for name, service in _services(facts)
        if service.get("privileged") is True
    ]
    return _verdict(failures, "no service is privileged")


@rule(
    id="DKR-CMP-002",
    title="Services add no Linux capabilities",
    severity=Severity.HIGH,
    scope=TargetKind.COMPOSE,
    rationale="""
Each added capability (SYS_ADMIN, NET_ADMIN, SYS_PTRACE, ALL…) widens what a compromised process can do to
the kernel and the host; several are known container-escape primitives.
""",
    remediation="Drop `cap_add` entries the service does not strictly need; prefer `cap_drop: [ALL]` plus a minimum.",
)
def no_cap_add(facts: ComposeFacts) -> CheckResult:
    failures = [
        failed(
            f"service {name} adds capability {capability}",
            location=_at(facts.where("services", name, "cap_add", index)),
            service=name,
            capability=str(capability),
        )
        for name, service in _services(facts)
        for index, capability in enumerate(_items(service.get("cap_add")))
    ]
    return _verdict(failures, "no service adds capabilities")


HOST_NAMESPACE_KEYS = ("network_mode", "pid", "ipc", "uts", "userns_mode", "cgroup")


@rule(
    id="DKR-CMP-003",
    title="Services do not share the host's namespaces",
    severity=Severity.HIGH,
    scope=TargetKind.COMPOSE,
    rationale="""
`network_mode: host`, `pid: host`, `ipc: host`, `uts: host` (and `userns_mode`/`cgroup: host`) remove a layer
of isolation: the service sees and can act on host interfaces, processes, shared memory or hostname.
""",
    remediation="Remove the `host` setting; publish ports or use a dedicated network instead of the host network.",
)
def no_host_namespaces(facts: ComposeFacts) -> CheckResult:
    failures = [
        failed(
            f"service {name} uses the host's {key.removesuffix('_mode')} namespace",
            location=_at(facts.where("services", name, key)),
            service=name,
            setting=f"{key}: host",
        )
        for name, service in _services(facts)
        for key in HOST_NAMESPACE_KEYS
        if str(service.get(key, "")).lower() == "host"
    ]
    return _verdict(failures, "no service shares a host namespace")


# --- mounts -------------------------------------------------------------------------------------

RUNTIME_SOCKETS = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock",
    "/var/run/crio/crio.sock",
    "/run/podman/podman.sock",
)


def _host_path(mount: Mount) -> str | None:
    if mount.kind != "bind" or not mount.source:
        return None
    source = mount.source
    return posixpath.normpath(source) if source.startswith("/") else None


def _is_runtime_socket(path: str) -> bool:
    return path in RUNTIME_SOCKETS or path.endswith(("/docker.sock", "/containerd.sock", "/podman.sock"))


@rule(
    id="DKR-CMP-004",
    title="No service mounts the container runtime's socket",
    severity=Severity.CRITICAL,
    scope=TargetKind.COMPOSE,
    rationale="""
Whoever can talk to /var/run/docker.sock (or containerd's, podman's socket) can start a privileged container
with the host's root filesystem mounted: mounting it, even read-only, hands the service root on the host.
""",
    remediation="Remove the socket mount; if a tool needs the API, put a filtering proxy with an allow-list in front.",
)
def no_runtime_socket(facts: ComposeFacts) -> CheckResult:
    failures = [
        failed(
            f"service {name} mounts the runtime socket {path}",
            location=_at(facts.where(*mount.pointer(name))),
            service=name,
            source=path,
            read_only=mount.read_only,
        )
        for name, service in _services(facts)
        for mount in _mounts(service)
        for path in [_host_path(mount)]
        if path and _is_runtime_socket(path)
    ]
    return _verdict(failures, "no service mounts a container runtime socket")


@rule(
    id="DKR-CMP-005",
    title="No service mounts sensitive host directories",
    severity=Severity.HIGH,
    scope=TargetKind.COMPOSE,
    rationale="""
Binding /, /etc, /proc, /sys, /dev, /boot, /usr, /lib, the Docker data root or their sub-directories exposes
host configuration, credentials, kernel interfaces or binaries; even read-only they leak secrets (shadow,
keys) and writable they allow taking over the host.
""",
    remediation="Mount only the application's own data directory, or use a named volume.",
)
def no_sensitive_mounts(facts: ComposeFacts) -> CheckResult:
    failures = [
        failed(
            f"service {name} mounts host path {path}" + (" (read-only)" if mount.read_only else ""),
            location=_at(facts.where(*mount.pointer(name))),
            service=name,
            source=path,
            sensitive=root,
            read_only=mount.read_only,
        )
        for name, service in _services(facts)
        for mount in _mounts(service)
        for path in [_host_path(mount)]
        if path and not _is_runtime_socket(path)
        for root in [sensitive_root(path)]
        if root
    ]
    return _verdict(failures, "no service mounts a sensitive host directory")


# --- limits -------------------------------------------------------------------------------------


def _limits(service: dict[str, Any]) -> dict[str, Any]:
    deploy = service.get("deploy") or {}
    resources = deploy.get("resources") or {} if isinstance(deploy, dict) else {}
    limits = resources.get("limits") or {} if isinstance(resources, dict) else {}
    return limits if isinstance(limits, dict) else {}


@rule(
    id="DKR-CMP-006",
    title="Services have a memory limit",
    severity=Severity.MEDIUM,
    scope=TargetKind.COMPOSE,
    rationale="""
Without a memory limit one service can consume all host memory, starving the others or triggering the
host OOM killer on unrelated processes.
""",
    remediation="Set `mem_limit` or `deploy.resources.limits.memory` for every service.",
)
def memory_limit(facts: ComposeFacts) -> CheckResult:
    failures = [
        failed(
            f"service {name} has no memory limit",
            location=_at(facts.where("services", name, "mem_limit")),
            service=name,
        )
        for name, service in _services(facts)
        if service.get("mem_limit") in (None, "", 0, "0", -1) and _limits(service).get("memory") in (None, "", 0, "0")
    ]
    return _verdict(failures, "every service has a memory limit")


@rule(
    id="DKR-CMP-007",
    title="Services have a process (pids) limit",
    severity=Severity.MEDIUM,
    scope=TargetKind.COMPOSE,
    rationale="""
Without a pids limit a fork bomb or runaway worker pool in one service exhausts the host's process table.
""",
    remediation="Set `pids_limit` (or `deploy.resources.limits.pids`) to a value suited to the service.",
)
def pids_limit(facts: ComposeFacts) -> CheckResult:
    def limited(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value > 0

    failures = [
        failed(
            f"service {name} has no pids limit",
            location=_at(facts.where("services", name, "pids_limit")),
            service=name,
        )
        for name, service in _services(facts)
        if not limited(service.get("pids_limit")) and not limited(_limits(service).get("pids"))
    ]
    return _verdict(failures, "every service has a pids limit")


# --- security_opt -------------------------------------------------------------------------------

_UNCONFINED = re.compile(r"^(seccomp[:=]unconfined|apparmor[:=]unconfined|label[:=]disable|systempaths=unconfined)$")


def _security_opts(service: dict[str, Any]) -> list[tuple[int, str]]:
    return [(i, str(o).strip()) for i, o in enumerate(_items(service.get("security_opt")))]


@rule(
    id="DKR-CMP-008",
    title="Services keep seccomp and AppArmor confinement",
    severity=Severity.HIGH,
    scope=TargetKind.COMPOSE,
    rationale="""
`seccomp:unconfined` removes the system-call filter and `apparmor:unconfined` (or `label:disable`) the LSM
profile: kernel attack surface blocked by default becomes reachable from the service.
""",
    remediation="Remove the unconfined option; if a syscall is missing, ship a custom seccomp profile allowing it.",
)
def keeps_confinement(facts: ComposeFacts) -> CheckResult:
    failures = [
        failed(
            f"service {name} runs with {option}",
            location=_at(facts.where("services", name, "security_opt", index)),
            service=name,
            option=option,
        )
        for name, service in _services(facts)
        for index, option in _security_opts(service)
        if _UNCONFINED.match(option.lower().replace(" ", ""))
    ]
    return _verdict(failures, "no service disables seccomp or LSM confinement")


# --- ports --------------------------------------------------------------------------------------


def _ports(service: dict[str, Any]) -> list[PublishedPort]:
    return [parse_port(i, entry) for i, entry in enumerate(_items(service.get("ports")))]


@rule(
    id="DKR-CMP-009",
    title="Published ports are bound to a specific host address",
    severity=Severity.MEDIUM,
    scope=TargetKind.COMPOSE,
    rationale="""
A port published without a host IP (or on 0.0.0.0 / ::) listens on every host interface, public ones
included; Docker's own iptables rules also bypass host firewalls such as ufw for it.
""",
    remediation="Prefix the port with the address it should listen on, e.g. `127.0.0.1:8080:80`.",
)
def ports_bound(facts: ComposeFacts) -> CheckResult:
    failures = [
        failed(
            f"service {name} publishes {port.spec} on all host interfaces",
            location=_at(facts.where("services", name, "ports", port.index)),
            service=name,
            port=port.spec,
        )
        for name, service in _services(facts)
        for port in _ports(service)
        if port.host_ip in (None, "0.0.0.0", "::")
    ]
    return _verdict(failures, "every published port names its host address")


@rule(
    id="DKR-CMP-010",
    title="Published host ports are not privileged ports (below 1024)",
    severity=Severity.LOW,
    scope=TargetKind.COMPOSE,
    rationale="""
Host ports below 1024 are reserved for system services; publishing one makes the container look like a
trusted system service and usually means it is meant to face the network directly.
""",
    remediation="Publish on a port of 1024 or above and let a reverse proxy own 80/443.",
)
def ports_unprivileged(facts: ComposeFacts) -> CheckResult:
    failures = [
        failed(
            f"service {name} publishes host port {port.published}",
            location=_at(facts.where("services", name, "ports", port.index)),
            service=name,
            port=port.spec,
        )
        for name, service in _services(facts)
        for port in _ports(service)
        if port.lowest_host_port is not None and port.lowest_host_port < 1024
    ]
    return _verdict(failures, "no service publishes a host port below 1024")


# --- hardening defaults -------------------------------------------------------------------------


@rule(
    id="DKR-CMP-011",
    title="Services run with a read-only root filesystem",
    severity=Severity.LOW,
    scope=TargetKind.COMPOSE,
    rationale="""
A writable root filesystem lets an intruder drop tools, alter binaries or persist changes for the life of
the container; `read_only: true` with explicit tmpfs or volumes for state closes that.
""",
    remediation="Set `read_only: true` and mount writable paths explicitly (`tmpfs: [/tmp]`, volumes).",
)
def read_only_root(facts: ComposeFacts) -> CheckResult:
    failures = [
        failed(
            f"service {name} has a writable root filesystem",
            location=_at(facts.where("services", name, "read_only")),
            service=name,
        )
        for name, service in _services(facts)
        if service.get("read_only") is not True
    ]
    return _verdict(failures, "every service has a read-only root filesystem")


_NO_NEW_PRIVILEGES = re.compile(r"^no-new-privileges(?:[:=](?:true|1))?$")


@rule(
    id="DKR-CMP-012",
    title="Services set no-new-privileges",
    severity=Severity.MEDIUM,
    scope=TargetKind.COMPOSE,
    rationale="""
Without no-new-privileges a process can gain privileges through setuid/setgid binaries or file capabilities
inside the image, turning an unprivileged foothold into root in the container.
""",
    remediation='Add `security_opt: ["no-new-privileges:true"]` to every service.',
)
def no_new_privileges(facts: ComposeFacts) -> CheckResult:
    failures = [
        failed(
            f"service {name} does not set no-new-privileges",
            location=_at(facts.where("services", name, "security_opt")),
            service=name,
        )
        for name, service in _services(facts)
        if not any(_NO_NEW_PRIVILEGES.match(o.lower().replace(" ", "")) for _, o in _security_opts(service))
    ]
    return _verdict(failures, "every service sets no-new-privileges")


@rule(
    id="DKR-CMP-013",
    title="Services do not set user root",
    severity=Severity.MEDIUM,
    scope=TargetKind.COMPOSE,
    rationale="""
`user: root` (or 0, 0:0) overrides a non-root USER the image may set and runs the service as uid 0.
Without `user:` the image's USER applies: lint its Dockerfile (DKR-DF-001) for that case.
""",
    remediation="Set `user:` to an unprivileged uid:gid, or remove `user: root`.",
)
def user_not_root(facts: ComposeFacts) -> CheckResult:
    failures = []
    for name, service in _services(facts):
        if names_uid_zero(str(service.get("user", ""))):
            failures.append(
                failed(
                    f"service {name} runs as {service['user']}",
                    location=_at(facts.where("services", name, "user")),
                    service=name,
                    user=str(service["user"]),
                )
            )
    return _verdict(failures, "no service sets user root")
