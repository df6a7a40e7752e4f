"""CIS 5.7, 5.15, 5.27, 5.28: what runs in the container, its restarts, health and image freshness."""

from __future__ import annotations

from typing import Any

from portcullis.checks.cis.s5_runtime.common import not_running
from portcullis.checks.registry import CheckResult, failed, passed, rule, skipped
from portcullis.model.facts import ContainerFacts, Facts
from portcullis.model.findings import Severity, Status, TargetKind

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
        return not_running(container, "a process list")
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
        return not_running(container, "a health status")
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
