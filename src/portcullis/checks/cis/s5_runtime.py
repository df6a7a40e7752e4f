"""CIS section 5: container runtime. Every check here covers stopped containers too."""

from __future__ import annotations

from portcullis.checks.registry import CheckResult, failed, passed, rule
from portcullis.model.facts import ContainerFacts, Facts
from portcullis.model.findings import Severity, TargetKind


@rule(
    id="CIS-5.5",
    cis="5.5",
    level=1,
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
