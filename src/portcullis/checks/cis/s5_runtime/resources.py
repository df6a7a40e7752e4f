"""CIS 5.11, 5.12, 5.19, 5.25, 5.29: memory, CPU, ulimits, cgroup placement and process limits."""

from __future__ import annotations

from typing import Any

from portcullis.checks.registry import CheckResult, failed, manual, passed, rule
from portcullis.model.facts import ContainerFacts, Facts
from portcullis.model.findings import Severity, Status, TargetKind


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
