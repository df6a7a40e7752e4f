"""CIS section 7: swarm mode. Every control is not_applicable unless this node is in an active swarm.

Cluster-wide settings (managers, overlay networks, auto-lock, certificate expiry) are visible only on a
manager; on a worker those controls are skipped with that reason. Two thresholds are our own choice:
node certificates pass at or below swarm's default 90-day lifetime (rotation is automatic at that
lifetime), and the root CA fails once older than a year, the rotation period we recommend.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from portcullis.checks.registry import CheckResult, Outcome, failed, manual, not_applicable, passed, rule, skipped
from portcullis.model.facts import Facts, SwarmCluster
from portcullis.model.findings import Severity, Status, TargetKind

GATED = (Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.SKIP)
MANUAL_GATED = (Status.MANUAL, Status.NOT_APPLICABLE, Status.SKIP)

SWARM_PORTS = (2377, 7946)  # cluster management (managers) and node gossip (all nodes)
WILDCARD_ADDRESSES = frozenset({"0.0.0.0", "::"})
MAX_MANAGERS = 7  # beyond seven, Raft consensus slows down without a useful gain in fault tolerance
DEFAULT_NODE_CERT_EXPIRY_NS = 90 * 24 * 3600 * 10**9
MAX_ROOT_CA_AGE_DAYS = 365


def _gate(facts: Facts) -> Outcome | None:
    state = facts.engine.info.swarm.local_node_state
    if state == "inactive":
        return not_applicable("swarm mode is not active")
    if state != "active":
        return skipped(f"the swarm node state is {state!r}; the swarm cannot be inspected", swarm_state=state)
    return None


def _cluster(facts: Facts) -> SwarmCluster | Outcome:
    """The cluster object, which only a manager sees; else the outcome that explains why not."""
    gate = _gate(facts)
    if gate is not None:
        return gate
    cluster = facts.engine.info.swarm.cluster
    if not facts.engine.info.swarm.control_available or cluster is None:
        return skipped("this node is a swarm worker; cluster settings are visible on a manager only")
    return cluster


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


@rule(
    id="CIS-7.1",
    cis="CIS-7.1",
    title="The number of swarm managers is odd and no larger than needed",
    severity=Severity.MEDIUM,
    scope=TargetKind.SWARM,
    rationale="""
Managers hold the cluster state and its secrets. An even count adds a target without adding fault
tolerance (Raft needs a majority), and every extra manager is one more host whose compromise owns the swarm.
""",
    remediation="Demote surplus managers (`docker node demote NODE`) to reach 1, 3, 5 or 7 managers.",
    references=("https://docs.docker.com/engine/swarm/admin_guide/",),
    statuses=GATED,
)
def manager_count(facts: Facts) -> CheckResult:
    cluster = _cluster(facts)
    if isinstance(cluster, Outcome):
        return cluster
    swarm = facts.engine.info.swarm
    evidence: dict[str, Any] = {"managers": swarm.managers, "nodes": swarm.nodes}
    if swarm.managers % 2 == 0:
        return failed(f"{swarm.managers} managers: an even count adds no fault tolerance", **evidence)
    if swarm.managers > MAX_MANAGERS:
        return failed(f"{swarm.managers} managers: more than {MAX_MANAGERS} only slows consensus", **evidence)
    tolerance = (swarm.managers - 1) // 2
    return passed(f"{swarm.managers} manager(s), tolerating {tolerance} manager failure(s)", **evidence)


@rule(
    id="CIS-7.2",
    cis="CIS-7.2",
    title="Swarm ports are bound to a specific interface",
    severity=Severity.MEDIUM,
    scope=TargetKind.SWARM,
    rationale="""
The swarm management (2377) and gossip (7946) ports accept cluster traffic. Bound to every address,
they are reachable from networks that have no business joining or probing the cluster.
""",
    remediation="Re-create or re-join the swarm with --listen-addr on the cluster network's address.",
    references=("https://docs.docker.com/reference/cli/docker/swarm/init/",),
    statuses=GATED,
)
def swarm_ports_bound(facts: Facts) -> CheckResult:
    gate = _gate(facts)
    if gate is not None:
        return gate
    if facts.host.tcp_listeners is None:
        return skipped("the host's listening sockets were not collected")
    swarm_listeners = [lst for lst in facts.host.tcp_listeners if lst.port in SWARM_PORTS]
    listeners = [_endpoint(lst.address, lst.port) for lst in swarm_listeners]
    wildcard = [_endpoint(lst.address, lst.port) for lst in swarm_listeners if lst.address in WILDCARD_ADDRESSES]
    evidence: dict[str, Any] = {"listeners": listeners, "listen_addr": facts.engine.info.swarm.listen_addr}
    if not listeners:
        return skipped("no listener on 2377 or 7946 is visible from here (another network namespace?)", **evidence)
    if wildcard:
        return failed(f"swarm ports listen on every address: {', '.join(wildcard)}", **evidence)
    return passed(f"swarm ports listen on specific addresses: {', '.join(listeners)}", **evidence)


@rule(
    id="CIS-7.3",
    cis="CIS-7.3",
    title="Swarm overlay networks are encrypted",
    severity=Severity.MEDIUM,
    scope=TargetKind.SWARM,
    rationale="""
Overlay traffic between nodes is plain VXLAN by default: anyone on the path between hosts can read or
inject container traffic. The encrypted option wraps it in IPsec.
""",
    remediation="Re-create the network with `docker network create -d overlay --opt encrypted NAME`.",
    impact="IPsec costs some throughput; the ingress network must be re-created to be encrypted.",
    references=("https://docs.docker.com/engine/network/drivers/overlay/#encrypt-traffic-on-an-overlay-network",),
    statuses=GATED,
)
def overlay_encrypted(facts: Facts) -> CheckResult:
    cluster = _cluster(facts)
    if isinstance(cluster, Outcome):
        return cluster
    overlays = [n for n in facts.networks if n.driver == "overlay"]
    if not overlays:
        return not_applicable("the swarm has no overlay network")
    plain = sorted(n.name for n in overlays if "encrypted" not in n.options)
    evidence: dict[str, Any] = {"overlay_networks": sorted(n.name for n in overlays), "unencrypted": plain}
    if plain:
        return failed(f"overlay networks without encryption: {', '.join(plain)}", **evidence)
    return passed(f"all {len(overlays)} overlay networks are encrypted", **evidence)


@rule(
    id="CIS-7.4",
    cis="CIS-7.4",
    title="Sensitive data reaches services as swarm secrets",
    severity=Severity.MEDIUM,
    scope=TargetKind.SWARM,
    rationale="""
Secrets are encrypted in the Raft log and only delivered to the services granted them, in memory.
Passwords in environment variables, images or configs are readable by far more people and processes.
""",
    remediation="Move credentials into `docker secret create` and grant them to services with --secret.",
    references=("https://docs.docker.com/engine/swarm/secrets/",),
    statuses=MANUAL_GATED,
)
def secrets_used(facts: Facts) -> CheckResult:
    gate = _gate(facts)
    if gate is not None:
        return gate
    count = facts.engine.info.swarm.secret_count
    found = "the secret count was not collected" if count is None else f"the swarm holds {count} secret(s)"
    return manual(f"{found}; check that services take credentials from secrets, not env or images", secrets=count)


@rule(
    id="CIS-7.5",
    cis="CIS-7.5",
    title="Swarm managers use auto-lock",
    severity=Severity.MEDIUM,
    scope=TargetKind.SWARM,
    rationale="""
Without auto-lock, the keys that decrypt the Raft log (and with it every secret) sit on the manager's
disk, so a stolen disk or backup yields all secrets. Auto-lock requires a key at each manager restart.
""",
    remediation="Turn it on with `docker swarm update --autolock=true` and store the unlock key safely.",
    impact="A restarted manager stays locked until someone runs `docker swarm unlock` with the key.",
    references=("https://docs.docker.com/engine/swarm/swarm_manager_locking/",),
    statuses=GATED,
)
def autolock(facts: Facts) -> CheckResult:
    cluster = _cluster(facts)
    if isinstance(cluster, Outcome):
        return cluster
    enabled = cluster.spec.get("EncryptionConfig", {}).get("AutoLockManagers") is True
    if enabled:
        return passed("managers are auto-locked", autolock=True)
    return failed("manager auto-lock is off", autolock=False)


@rule(
    id="CIS-7.6",
    cis="CIS-7.6",
    title="The swarm unlock key is rotated periodically",
    severity=Severity.LOW,
    scope=TargetKind.SWARM,
    rationale="""
An unlock key that never changes stays valid for anyone who once saw it; rotating it limits how long a
leaked key is useful.
""",
    remediation="Rotate the key on a schedule with `docker swarm unlock-key --rotate`.",
    references=("https://docs.docker.com/engine/swarm/swarm_manager_locking/",),
    statuses=MANUAL_GATED,
)
def unlock_key_rotation(facts: Facts) -> CheckResult:
    cluster = _cluster(facts)
    if isinstance(cluster, Outcome):
        return cluster
    if cluster.spec.get("EncryptionConfig", {}).get("AutoLockManagers") is not True:
        return not_applicable("auto-lock is off, so there is no unlock key to rotate (see CIS-7.5)", autolock=False)
    return manual("the engine does not record when the unlock key was last rotated; check your records", autolock=True)


@rule(
    id="CIS-7.7",
    cis="CIS-7.7",
    title="Node certificates are rotated at least every 90 days",
    severity=Severity.LOW,
    scope=TargetKind.SWARM,
    rationale="""
Each node proves its identity with a certificate the swarm CA issues. A short lifetime makes the swarm
rotate it often, so a stolen node certificate stops working soon.
""",
    remediation="Set the lifetime with `docker swarm update --cert-expiry 720h` (90 days or less).",
    references=("https://docs.docker.com/reference/cli/docker/swarm/update/",),
    statuses=GATED,
)
def node_cert_expiry(facts: Facts) -> CheckResult:
    cluster = _cluster(facts)
    if isinstance(cluster, Outcome):
        return cluster
    configured = cluster.spec.get("CAConfig", {}).get("NodeCertExpiry")
    expiry_ns = int(configured) if configured else DEFAULT_NODE_CERT_EXPIRY_NS
    hours = expiry_ns // (3600 * 10**9)
    evidence: dict[str, Any] = {"node_cert_expiry_hours": hours, "explicitly_set": configured is not None}
    if expiry_ns > DEFAULT_NODE_CERT_EXPIRY_NS:
        return failed(f"node certificates live {hours}h, longer than 90 days (2160h)", **evidence)
    return passed(f"node certificates are rotated every {hours}h (at most 90 days)", **evidence)


@rule(
    id="CIS-7.8",
    cis="CIS-7.8",
    title="The swarm root CA is rotated as policy requires",
    severity=Severity.LOW,
    scope=TargetKind.SWARM,
    rationale="""
The root CA signs every node certificate. If its key leaked, only a rotation stops the forged node
identities; a root CA that never changes gives a leaked key unlimited use.
""",
    remediation="Rotate the root CA with `docker swarm ca --rotate` (at least yearly by our default).",
    references=("https://docs.docker.com/reference/cli/docker/swarm/ca/",),
    statuses=GATED,
)
def root_ca_age(facts: Facts) -> CheckResult:
    gate = _gate(facts)  # every node, worker or manager, keeps the root CA certificate
    if gate is not None:
        return gate
    mtime = facts.engine.info.swarm.root_ca_mtime
    if mtime is None or not facts.collected_at:
        return skipped("the age of swarm-root-ca.crt was not collected (remote engine or unreadable data root)")
    age_days = int((datetime.fromisoformat(facts.collected_at).timestamp() - mtime) // 86400)
    evidence: dict[str, Any] = {"root_ca_age_days": age_days, "max_age_days": MAX_ROOT_CA_AGE_DAYS}
    if age_days > MAX_ROOT_CA_AGE_DAYS:
        return failed(f"the swarm root CA was last written {age_days} days ago", **evidence)
    return passed(f"the swarm root CA is {age_days} days old", **evidence)


@rule(
    id="CIS-7.9",
    cis="CIS-7.9",
    title="Swarm data traffic uses a different address than management traffic",
    severity=Severity.LOW,
    scope=TargetKind.SWARM,
    rationale="""
Keeping container (data plane) traffic off the management interface stops a busy or hostile workload
from starving or reaching the control plane, and lets each network be firewalled for its purpose.
""",
    remediation="Join or init the swarm with --data-path-addr on a separate interface from --advertise-addr.",
    references=("https://docs.docker.com/engine/swarm/networking/",),
    statuses=GATED,
)
def separate_data_path(facts: Facts) -> CheckResult:
    gate = _gate(facts)
    if gate is not None:
        return gate
    swarm = facts.engine.info.swarm
    data_path = swarm.data_path_addr
    management = swarm.node_addr or (swarm.advertise_addr or "").rsplit(":", 1)[0]
    evidence: dict[str, Any] = {
        "data_path_addr": data_path,
        "management_addr": management,
        "advertise_addr": swarm.advertise_addr,
    }
    if data_path is None:
        return skipped("the node's swarm state (docker-state.json) was not read", **evidence)
    if not data_path:
        return failed(f"no data-path address is set: data traffic shares {management}", **evidence)
    if data_path in (management, swarm.advertise_addr):
        return failed(f"the data-path address {data_path} is the management address", **evidence)
    return passed(f"data traffic uses {data_path}, management uses {management}", **evidence)
