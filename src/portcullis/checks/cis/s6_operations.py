"""CIS section 6: security operations, judged from the engine's inventory of images and containers.

CIS calls both controls "kept to a minimum" without a number. We fail as soon as one exists and list
them, because each is a concrete item to remove or to keep on purpose, not a statistic.
"""

from __future__ import annotations

from typing import Any

from portcullis.checks.registry import CheckResult, failed, passed, rule
from portcullis.model.facts import Facts, ImageFacts
from portcullis.model.findings import Severity, TargetKind

# Container states in which nothing runs: removable without stopping anything.
STOPPED_STATES = frozenset({"exited", "created", "dead"})


def _ancestors(image: ImageFacts) -> set[str]:
    """IDs of the local images this one was built on (history lists them; pulled layers show '<missing>')."""
    return {entry.id for entry in image.history or [] if entry.id.startswith("sha256:")}


@rule(
    id="CIS-6.1",
    cis="CIS-6.1",
    title="Unused images are kept to a minimum",
    severity=Severity.LOW,
    scope=TargetKind.DAEMON,
    rationale="""
Images no container uses still carry their vulnerabilities and secrets, and can be started by mistake
or by an attacker; they also make it hard to see which images actually matter.
""",
    remediation="Remove images nothing uses: `docker image rm IMAGE`, or `docker image prune -a` after review.",
    references=("https://docs.docker.com/reference/cli/docker/image/prune/",),
)
def unused_images(facts: Facts) -> CheckResult:
    by_id = {image.id: image for image in facts.images}
    used = {c.image_id for c in facts.containers if c.image_id}
    # An image that a used image was built on cannot be removed while its child exists: count it as used.
    for image_id in list(used):
        if image_id in by_id:
            used |= _ancestors(by_id[image_id])
    unused = sorted(image.display_name for image in facts.images if image.id not in used)
    evidence: dict[str, Any] = {"images": len(facts.images), "used": len(facts.images) - len(unused)}
    if unused:
        shown = ", ".join(unused[:5]) + (", …" if len(unused) > 5 else "")
        message = f"{len(unused)} of {len(facts.images)} images are used by no container: {shown}"
        return failed(message, unused=unused, **evidence)
    if not facts.images:
        return passed("the engine holds no images", **evidence)
    return passed(f"all {len(facts.images)} images are used by a container", **evidence)


@rule(
    id="CIS-6.2",
    cis="CIS-6.2",
    title="Stopped containers are kept to a minimum",
    severity=Severity.LOW,
    scope=TargetKind.DAEMON,
    rationale="""
A stopped container keeps its filesystem, its configuration and any secrets in it, and can be started
again with all its privileges; forgotten ones also hide among the containers that matter.
""",
    remediation="Remove containers that are no longer needed: `docker rm NAME`, or `docker container prune`.",
    references=("https://docs.docker.com/reference/cli/docker/container/prune/",),
)
def stopped_containers(facts: Facts) -> CheckResult:
    stopped = sorted(c.short_name for c in facts.containers if c.state.status in STOPPED_STATES)
    evidence: dict[str, Any] = {"containers": len(facts.containers), "stopped_count": len(stopped)}
    if stopped:
        return failed(f"{len(stopped)} containers are stopped: {', '.join(stopped)}", stopped=stopped, **evidence)
    return passed(f"no stopped container among {len(facts.containers)}", **evidence)
