"""CIS 5.10, 5.16, 5.17, 5.21, 5.31: the container does not share the host's namespaces."""

from __future__ import annotations

from typing import Any

from portcullis.checks.registry import CheckResult, failed, passed, rule
from portcullis.model.facts import ContainerFacts, Facts
from portcullis.model.findings import Severity, TargetKind


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
