"""The host's engine components and kernel against the vulnerability database and the kernel-escape table.

A component installed from a distribution package is matched by that package's source name and full version, in the
host's release block: Debian backports fixes without changing the upstream number, so runc 1.1.5+ds1-1+deb12u1
carries the CVE-2024-21626 fix that upstream shipped in 1.1.12. Only a component no package owns is matched by the
upstream version the engine reports, against the Go module's OSV records. The kernel is judged by the distribution's
feed when a distribution package installed it, for the bugs of the curated table; a kernel no package vouches for is
left to a person, with the evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from portcullis.data.kernel_escapes import kernel_escapes
from portcullis.model.facts import EngineComponent, KernelBuild
from portcullis.model.findings import Severity
from portcullis.model.vuln import Ecosystem, FixState, OsRelease, Package
from portcullis.vuln.db import VulnDB
from portcullis.vuln.match import Affects, Matcher
from portcullis.vuln.severity import rate
from portcullis.vuln.sources import debian_tracker

# the Go module each component is built from (OSV's package name for an upstream build)
GO_MODULES = {
    "dockerd": "github.com/docker/docker",
    "containerd": "github.com/containerd/containerd",
    "containerd-shim": "github.com/containerd/containerd",
    "containerd-shim-runc-v1": "github.com/containerd/containerd",
    "containerd-shim-runc-v2": "github.com/containerd/containerd",
    "runc": "github.com/opencontainers/runc",
}
# what must happen before an installed fix protects the host
RESTART = {
    "dockerd": "restart dockerd (docker.service)",
    "containerd": "restart containerd (containerd.service)",
    "containerd-shim": "restart the containers (each keeps its shim process)",
    "containerd-shim-runc-v1": "restart the containers (each keeps its shim process)",
    "containerd-shim-runc-v2": "restart the containers (each keeps its shim process)",
    "runc": "none for the daemon: runc runs anew for each container start; restart containers started before",
    "kernel": "reboot into the fixed kernel",
}
_DEBIAN_KERNEL_SOURCES = ("linux", "linux-signed-")  # linux-signed-<arch> packages the `linux` source's build


@dataclass(frozen=True)
class Exposure:
    """One advisory that applies to an engine component or the kernel."""

    component: str
    installed: str
    advisory: str
    aliases: tuple[str, ...]
    summary: str
    fix_state: FixState
    fixed_version: str | None
    matched_by: str  # "debian package runc (source runc)", "upstream github.com/opencontainers/runc", "kernel table"
    restart: str
    severity: Severity  # the vendor's word, else the highest CVSS score, else medium (as image findings)


@dataclass(frozen=True)
class Unjudged:
    """A component or kernel that could not be matched, and why (a person must look)."""

    component: str
    reason: str
    evidence: dict[str, str] = field(default_factory=dict)


@dataclass
class EngineExposure:
    exposures: list[Exposure] = field(default_factory=list)
    unjudged: list[Unjudged] = field(default_factory=list)


def _exposures(component: str, installed: str, verdict: Affects | None, matched_by: str) -> list[Exposure]:
    if verdict is None:
        return []
    return [
        Exposure(
            component=component,
            installed=installed,
            advisory=hit.advisory_id,
            aliases=hit.aliases,
            summary=hit.summary,
            fix_state=hit.fix_state,
            fixed_version=hit.fixed_version,
            matched_by=matched_by,
            restart=RESTART.get(component, "restart the component"),
            severity=rate(hit.vendor_severity, list(hit.cvss)).level,
        )
        for hit in verdict.hits
    ]


def _deb(name: str, source: str, version: str) -> Package:
    return Package(
        ecosystem=Ecosystem.DEBIAN,
        name=name,
        version=version,
        purl=f"pkg:deb/debian/{name}@{version}",
        source_name=source if source != name else "",
    )


def _no_package_feed(release: OsRelease | None, matcher: Matcher) -> str | None:
    """Why the host's packages cannot be judged, or None: no match is only "not affected" when the database holds
    the feed of the host's distribution (a Debian-only database knows nothing of Ubuntu's packages)."""
    if release is None:
        return "the host's distribution release is unknown"
    if release.id != "debian":
        return f"the database holds no advisory feed for {release.id} packages"
    if matcher.db.source(debian_tracker.SOURCE_NAME) is None:
        return "the database holds no Debian security tracker feed: run `portcullis db update`"
    return None


def judge_components(components: list[EngineComponent], release: OsRelease | None, matcher: Matcher) -> EngineExposure:
    """Every advisory that applies to each found engine binary (by package where a package owns it)."""
    result = EngineExposure()
    packaged: list[tuple[EngineComponent, Package]] = []
    upstream: list[tuple[EngineComponent, Package]] = []
    for component in components:
        if component.path is None:
            continue
        if component.package and component.package_version and component.source and component.source_version:
            package = _deb(component.package, component.source, component.source_version)
            packaged.append((component, package))
        elif component.upstream_version and component.name in GO_MODULES:
            version = component.upstream_version.removeprefix("v")
            module = GO_MODULES[component.name]
            upstream.append(
                (
                    component,
                    Package(
                        ecosystem=Ecosystem.GO,
                        name=module,
                        version=f"v{version}",
                        purl=f"pkg:golang/{module}@v{version}",
                    ),
                )
            )
        else:
            result.unjudged.append(
                Unjudged(
                    component.name,
                    "no package owns the binary and the engine reports no version for it",
                    {"path": component.path},
                )
            )
    no_feed = _no_package_feed(release, matcher)
    if packaged and no_feed:
        result.unjudged += [Unjudged(c.name, no_feed, {"package": f"{p.name} {p.version}"}) for c, p in packaged]
        packaged = []
    verdicts = matcher.verdicts([p for _, p in packaged], release) if packaged else []
    for (component, _), verdict in zip(packaged, verdicts, strict=True):
        how = f"debian package {component.package} (source {component.source})"
        result.exposures += _exposures(component.name, component.package_version or "", verdict, how)
    verdicts = matcher.verdicts([p for _, p in upstream], None) if upstream else []
    for (component, package), verdict in zip(upstream, verdicts, strict=True):
        result.exposures += _exposures(component.name, package.version, verdict, f"upstream {package.name}")
    return result


def judge_kernel(kernel: KernelBuild, release: OsRelease | None, matcher: Matcher) -> EngineExposure:
    """The table's bugs for the running kernel: by the distribution's feed when a Debian kernel package installed
    it, else unjudged with the evidence (a custom build may carry any patch: its number proves nothing)."""
    table = {bug.cve: bug for bug in kernel_escapes()}
    evidence = {"release": kernel.release, "build": kernel.build}
    source = kernel.source or ""
    no_feed = _no_package_feed(release, matcher)
    if (
        kernel.package is None
        or kernel.package_version is None
        or not source.startswith(_DEBIAN_KERNEL_SOURCES)
        or no_feed
    ):
        why = (
            "no distribution package installed this kernel: its provenance cannot be known, so the bugs of the"
            " kernel-escape table are for a person to check against its build"
            if kernel.package is None
            else f"kernel package {kernel.package} is not judged: {no_feed or 'not a Debian linux build'}"
        )
        tabled = {bug.cve: f"fixed upstream in {', '.join(bug.fixed)}; {bug.sources[0]}" for bug in table.values()}
        return EngineExposure(unjudged=[Unjudged("kernel", why, evidence | tabled)])
    # linux-signed-amd64 carries the version of the `linux` source it signs in its binary version
    package = _deb(kernel.package, "linux", kernel.package_version)
    (verdict,) = matcher.verdicts([package], release)
    found = [
        e
        for e in _exposures(
            "kernel", kernel.package_version, verdict, f"debian package {kernel.package} (source linux)"
        )
        if e.advisory in table or table.keys() & set(e.aliases)
    ]
    return EngineExposure(exposures=found)


def judge_host(
    components: list[EngineComponent], kernel: KernelBuild | None, release: OsRelease | None, db: VulnDB
) -> EngineExposure:
    matcher = Matcher(db)
    result = judge_components(components, release, matcher)
    if kernel is not None:
        judged = judge_kernel(kernel, release, matcher)
        result.exposures += judged.exposures
        result.unjudged += judged.unjudged
    return result
