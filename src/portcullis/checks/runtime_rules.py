"""Portcullis's own container runtime rules (DKR-RT-*), for what CIS leaves to the image level."""

from __future__ import annotations

from portcullis.checks.cis.s4_images import is_root_user
from portcullis.checks.registry import CheckResult, failed, passed, rule
from portcullis.model.facts import ContainerFacts, Facts
from portcullis.model.findings import Severity, TargetKind


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
