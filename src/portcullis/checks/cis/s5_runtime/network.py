"""CIS 5.1, 5.8, 5.9, 5.14, 5.30: swarm mode, published ports and the default bridge."""

from __future__ import annotations

from dataclasses import dataclass

from portcullis.checks.registry import CheckResult, failed, manual, passed, rule
from portcullis.model.facts import ContainerFacts, Facts
from portcullis.model.findings import Severity, Status, TargetKind

# --- 5.1 -----------------------------------------------------------------------------------------


@rule(
    id="CIS-5.1",
    cis="CIS-5.1",
    title="Swarm mode is off unless needed",
    severity=Severity.MEDIUM,
    scope=TargetKind.DAEMON,
    rationale="""
An engine in swarm mode opens cluster ports (2377, 7946, 4789) and accepts work from the swarm
managers. A host that does not take part in a cluster should not carry that attack surface.
""",
    remediation="If this host is not meant to be a swarm node, run `docker swarm leave` (add --force on a manager).",
)
def swarm_off(facts: Facts) -> CheckResult:
    state = facts.engine.info.swarm.local_node_state or "inactive"
    if state == "inactive":
        return passed("swarm mode is not active", local_node_state=state)
    return failed(f"swarm mode is {state}; confirm this host must be a swarm node", local_node_state=state)


# --- 5.8, 5.9, 5.14: published ports ---------------------------------------------------------------


@dataclass(frozen=True)
class PublishedPort:
    container_port: str
    host_ip: str
    host_port: str

    @property
    def host_port_number(self) -> int | None:
        """The first port of the binding; None when Docker picks one (empty HostPort)."""
        first = self.host_port.split("-", 1)[0]
        return int(first) if first.isdigit() else None

    def as_evidence(self) -> dict[str, str]:
        return {"container_port": self.container_port, "host_ip": self.host_ip, "host_port": self.host_port}


def pending_publish_all(container: ContainerFacts) -> list[str]:
    """Exposed ports a stopped `-P` container will publish on random host ports when it starts."""
    if container.state.running or not container.host_config.publish_all_ports:
        return []
    return sorted(container.config.exposed_ports or {})


def published_ports(container: ContainerFacts) -> tuple[list[PublishedPort], str]:
    """The host ports a container publishes, and where that came from.

    A running container's NetworkSettings.Ports is what the engine actually bound; a stopped one
    has none, so its HostConfig.PortBindings (what it will bind when started) is used.
    """
    if container.state.running:
        table, source = container.network_settings.ports, "NetworkSettings.Ports"
    else:
        table, source = container.host_config.port_bindings, "HostConfig.PortBindings"
    ports = [
        PublishedPort(container_port, binding.host_ip, binding.host_port)
        for container_port, bindings in (table or {}).items()
        for binding in bindings or []
    ]
    return ports, source


@rule(
    id="CIS-5.8",
    cis="CIS-5.8",
    title="No privileged host ports are published",
    severity=Severity.MEDIUM,
    scope=TargetKind.CONTAINER,
    rationale="""
Ports below 1024 are reserved for services started by root. Publishing a container on one lets it
pose as a trusted system service such as SSH, DNS or HTTP on the host's address.
""",
    remediation="Publish the container on a host port of 1024 or above (e.g. `-p 8080:80`) or put a proxy in front.",
)
def privileged_host_ports(container: ContainerFacts, facts: Facts) -> CheckResult:
    ports, source = published_ports(container)
    low = [p.as_evidence() for p in ports if p.host_port_number is not None and 0 < p.host_port_number < 1024]
    if low:
        shown = ", ".join(sorted({p["host_port"] for p in low}))
        return failed(f"host port(s) below 1024 published: {shown}", ports=low, source=source)
    return passed("no host port below 1024 is published", ports=[], source=source)


@rule(
    id="CIS-5.9",
    cis="CIS-5.9",
    title="Only needed ports are published",
    severity=Severity.INFO,
    scope=TargetKind.CONTAINER,
    rationale="""
Every published port is reachable from outside the host. Only the application owner knows which of
them the service needs, so the list is given for review.
""",
    remediation="Publish only the ports clients must reach; avoid -P (publish all) and remove EXPOSE lines "
    "that are not used.",
    statuses=(Status.PASS, Status.MANUAL),
)
def needed_ports(container: ContainerFacts, facts: Facts) -> CheckResult:
    ports, source = published_ports(container)
    listed = [p.as_evidence() for p in ports]
    listed += [{"container_port": port, "host_ip": "", "host_port": ""} for port in pending_publish_all(container)]
    if not listed:
        return passed("the container publishes no ports", ports=[], source=source)
    return manual(
        f"confirm the {len(listed)} published port(s) are needed",
        ports=listed,
        source=source,
        publish_all_ports=container.host_config.publish_all_ports,
    )


WILDCARD_ADDRESSES = ("", "0.0.0.0", "::", "[::]")


def _address(host_ip: str, host_port: str) -> str:
    host = "*" if not host_ip else f"[{host_ip.strip('[]')}]" if ":" in host_ip else host_ip
    return f"{host}:{host_port or 'random'}"


@rule(
    id="CIS-5.14",
    cis="CIS-5.14",
    title="Published ports are bound to a specific host address",
    severity=Severity.MEDIUM,
    scope=TargetKind.CONTAINER,
    rationale="""
A port published without an address listens on every interface of the host, including ones facing
networks the service was never meant for. Binding to one address limits who can connect.
""",
    remediation="Publish with an explicit address, e.g. `-p 10.0.0.5:8080:80` or `-p 127.0.0.1:8080:80`.",
)
def ports_on_specific_address(container: ContainerFacts, facts: Facts) -> CheckResult:
    ports, source = published_ports(container)
    wildcard = [p.as_evidence() for p in ports if p.host_ip in WILDCARD_ADDRESSES]
    # -P binds every exposed port on all addresses once a stopped container starts
    wildcard += [{"container_port": port, "host_ip": "", "host_port": ""} for port in pending_publish_all(container)]
    if wildcard:
        shown = ", ".join(sorted({_address(p["host_ip"], p["host_port"]) for p in wildcard}))
        return failed(f"port(s) published on all host addresses: {shown}", ports=wildcard, source=source)
    return passed("every published port is bound to a specific host address", ports=[], source=source)


# --- 5.30 ----------------------------------------------------------------------------------------


@rule(
    id="CIS-5.30",
    cis="CIS-5.30",
    title="The default bridge network is not used",
    severity=Severity.LOW,
    scope=TargetKind.CONTAINER,
    rationale="""
Containers on the default bridge can all reach each other and get no name-based isolation or
per-network policy. User-defined networks separate applications from one another.
""",
    remediation="Create a network per application (`docker network create app`) and attach containers with --network.",
)
def default_bridge(container: ContainerFacts, facts: Facts) -> CheckResult:
    networks = sorted(container.network_settings.networks)
    mode = container.host_config.network_mode
    on_bridge = "bridge" in networks or (not networks and mode in ("default", "bridge"))
    if on_bridge:
        return failed("the container is attached to the default bridge network", networks=networks, network_mode=mode)
    return passed("the container is not on the default bridge", networks=networks, network_mode=mode)
