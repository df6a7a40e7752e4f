"""The engine's components and the running kernel against known vulnerabilities (DKR-ENGINE-001/002).

The matching itself happens before the rules run (the audit pipeline opens the vulnerability database and fills
`Facts.engine_exposure`): these rules only read its verdicts, so they stay pure and replayable. A component or kernel
nothing could judge is `manual` with the evidence; no database at all is a skip, or an error when a --fail-on gate
would otherwise pass what was never judged.
"""

from __future__ import annotations

from typing import Any

from portcullis.checks.cis.s1_host import remote_engine
from portcullis.checks.registry import CheckResult, Outcome, manual, passed, rule, skipped
from portcullis.model.facts import ComponentExposure, EngineExposureFacts, Facts, UnjudgedComponent
from portcullis.model.findings import Severity, Status, Target, TargetKind
from portcullis.model.vuln import FixState

STATUSES = (Status.PASS, Status.FAIL, Status.MANUAL, Status.SKIP, Status.ERROR)
KERNEL = "kernel"
NOT_COLLECTED = (
    "the engine's binaries and the kernel's package were not collected (an audit run in a container, or a snapshot"
    " from an older Portcullis); run the audit on the host to judge this"
)
NOT_MATCHED = "not matched against a vulnerability database (--no-vulns, or a flow that does not match, e.g. harden)"


def _not_collected(facts: Facts) -> Outcome:
    return remote_engine(facts) or skipped(NOT_COLLECTED)


def _exposure(facts: Facts) -> EngineExposureFacts | CheckResult:
    """The pipeline's verdicts, or the outcome that says why there are none."""
    if (remote := remote_engine(facts)) is not None:
        return remote
    exposure = facts.engine_exposure
    if exposure is None:
        return skipped(NOT_MATCHED)
    if exposure.undecided is not None:
        if exposure.fail_closed:  # a gate must not pass a host whose engine was never judged
            return Outcome(
                Status.ERROR,
                f"not judged, and a --fail-on gate cannot pass it: {exposure.undecided}",
                {"database": exposure.database},
            )
        return skipped(exposure.undecided, database=exposure.database)
    return exposure


def _database(exposure: EngineExposureFacts) -> dict[str, Any]:
    found = {"database": exposure.database, "database_date": exposure.database_date}
    return found | ({"database_warning": exposure.stale} if exposure.stale else {})


def _target(facts: Facts, *parts: str) -> Target:
    """One finding per component and advisory: the fingerprint is made of the target, so both are in its name."""
    return Target(kind=TargetKind.HOST, name=", ".join([facts.host.hostname or "localhost", *parts]))


def _exposed(facts: Facts, found: ComponentExposure, database: dict[str, Any]) -> Outcome:
    fix = (
        f"fixed in {found.fixed_version}"
        if found.fix_state is FixState.FIXED and found.fixed_version
        else f"no fix released ({found.fix_state.value})"
    )
    also = [a for a in found.aliases if a != found.advisory]
    named = found.advisory + (f" ({', '.join(also)})" if also else "")
    return Outcome(
        Status.FAIL,
        f"{found.component} {found.installed}: {named} {fix}; after upgrading: {found.restart}",
        {
            "component": found.component,
            "installed": found.installed,
            "advisory": found.advisory,
            "aliases": also,
            "fix_state": found.fix_state.value,
            "fixed_version": found.fixed_version,
            "restart": found.restart,
            "matched_by": found.matched_by,
            "summary": found.summary,
        }
        | database,
        target=_target(facts, found.component, found.advisory),
        severity=found.severity,
    )


def _unjudged(facts: Facts, left: UnjudgedComponent, database: dict[str, Any]) -> Outcome:
    return manual(
        f"{left.component}: {left.reason}",
        _target(facts, left.component),
        component=left.component,
        **left.evidence,
        **database,
    )


def _judge(facts: Facts, exposure: EngineExposureFacts, kernel: bool) -> list[Outcome]:
    database = _database(exposure)
    mine = [e for e in exposure.exposures if (e.component == KERNEL) is kernel]
    left = [u for u in exposure.unjudged if (u.component == KERNEL) is kernel]
    return [_exposed(facts, e, database) for e in mine] + [_unjudged(facts, u, database) for u in left]


@rule(
    id="DKR-ENGINE-001",
    title="The engine's components (dockerd, containerd, runc, shims) have no known vulnerability",
    severity=Severity.HIGH,
    scope=TargetKind.HOST,
    statuses=STATUSES,
    rationale="""
dockerd, containerd, the shims and runc run as root and stand between every container and the host: a flaw in them
(runc's leaked file descriptor CVE-2024-21626, containerd's CVE-2022-23648) is a container escape. Each binary a
distribution package installed is matched by that package's source and full version in the host's release, because
distributions backport fixes without changing the upstream number (Debian's runc 1.1.5+ds1-1+deb12u1 carries the
fix upstream shipped in 1.1.12); a binary no package owns is matched by the upstream version the engine reports.
One finding per component and advisory names the installed and fixed versions and what must restart.
""",
    remediation="""
Upgrade the package (or the upstream build) to the fixed version, then restart what still runs the old code: dockerd
and containerd are long-running daemons, each running container keeps its own shim, and runc runs anew for each
container start, so only containers started before the upgrade still ran the old runc.
""",
    references=("https://security-tracker.debian.org/tracker/CVE-2024-21626", "https://osv.dev/list?ecosystem=Go"),
)
def engine_components_exposure(facts: Facts) -> CheckResult:
    if facts.host.engine_components is None:
        return _not_collected(facts)
    exposure = _exposure(facts)
    if not isinstance(exposure, EngineExposureFacts):
        return exposure
    found = [c for c in facts.host.engine_components if c.path is not None]
    if not found:
        return skipped("no engine binary was found on the host's PATH or the daemon's configured paths")
    outcomes = _judge(facts, exposure, kernel=False)
    if outcomes:
        return outcomes
    versions = {c.name: c.package_version or c.upstream_version or "" for c in found}
    return passed(
        f"no advisory applies to {', '.join(f'{n} {v}' for n, v in versions.items())}",
        components=versions,
        **_database(exposure),
    )


@rule(
    id="DKR-ENGINE-002",
    title="The running kernel has none of the known container-escape bugs",
    severity=Severity.HIGH,
    scope=TargetKind.HOST,
    statuses=STATUSES,
    rationale="""
Containers share the host's kernel, so a kernel bug reachable from a container is an escape whatever the engine's
settings: the cgroup-v1 release_agent bug (CVE-2022-0492), Dirty Pipe (CVE-2022-0847), the fsconfig heap overflow
(CVE-2022-0185) and the others of Portcullis' curated kernel-escape table. A distribution kernel is judged by its
distribution's feed (its version carries backported fixes the upstream number does not show); a kernel no package
installed may carry any patch, so it is left to a person with its build string and the table's fixed versions.
""",
    remediation="""
Install the distribution's fixed kernel package and reboot into it (a running kernel is replaced only by a reboot or
a live patch). For a custom kernel, check its source tree against each listed bug's upstream fix.
""",
    references=("https://security-tracker.debian.org/tracker/source-package/linux",),
)
def kernel_escape_exposure(facts: Facts) -> CheckResult:
    kernel = facts.host.kernel_build
    if kernel is None:
        return _not_collected(facts)
    exposure = _exposure(facts)
    if not isinstance(exposure, EngineExposureFacts):
        return exposure
    outcomes = _judge(facts, exposure, kernel=True)
    if outcomes:
        return outcomes
    return passed(
        f"kernel {kernel.release} ({kernel.package} {kernel.package_version}): none of the table's bugs applies"
        " by the distribution's feed",
        release=kernel.release,
        package=kernel.package,
        package_version=kernel.package_version,
        **_database(exposure),
    )
