"""CIS 5.6, 5.13, 5.20, 5.32: host paths, the engine socket, propagation and the root filesystem."""

from __future__ import annotations

from typing import Any

from portcullis.checks.registry import CheckResult, failed, passed, rule
from portcullis.inside.host_paths import SENSITIVE_HOST_PATHS, sensitive_root
from portcullis.model.facts import ContainerFacts, Facts, MountPoint
from portcullis.model.findings import Severity, TargetKind

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
