"""CIS section 2: dockerd configuration.

CIS labels every control here "Manual"; we still give each one a real verdict, taken from the
effective setting (`checks.daemon_settings`): what the engine reports where it reports it, otherwise
the running command line, daemon.json and DOCKER_OPTS. When none of these could be read (a remote
engine) and the engine does not report the value, the result is `skip`, never `pass`.
"""

from __future__ import annotations

from typing import Any

from portcullis.checks.daemon_settings import Setting, configured, effective, user_insecure_registries
from portcullis.checks.registry import CheckResult, failed, manual, not_applicable, passed, rule, skipped
from portcullis.model.facts import LISTENER_SOURCE, ApiProbe, AuthzPluginProbe, BindScope, Facts, ProbeOutcome
from portcullis.model.findings import Severity, Status, TargetKind

PASS_FAIL_SKIP = (Status.PASS, Status.FAIL, Status.SKIP)

# Drivers that keep logs on the Docker host only.
LOCAL_LOG_DRIVERS = frozenset({"json-file", "local", "none"})
# Built-in drivers that hand every line to a logging system outside the container store.
# journald and syslog count: from there the host's logging stack forwards (outside what the engine shows).
REMOTE_LOG_DRIVERS = frozenset(
    {"syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "gcplogs", "logentries", "etwlogs"}
)


def _unknown(setting: Setting) -> CheckResult:
    return skipped(f"the effective {setting.key} setting is unknown: {setting.note}", **setting.evidence())


def _bool_rule(facts: Facts, key: str, wanted: bool, good: str, bad: str) -> CheckResult:
    """Pass when the effective boolean setting `key` equals `wanted`."""
    setting = effective(facts, key)
    if not setting.known:
        return _unknown(setting)
    shown = f"{key}={str(setting.value).lower()} ({setting.source})"
    if setting.value is wanted:
        return passed(f"{good}: {shown}", **setting.evidence())
    return failed(f"{bad}: {shown}", **setting.evidence())


@rule(
    id="CIS-2.1",
    cis="CIS-2.1",
    title="The Docker daemon runs rootless where feasible",
    severity=Severity.MEDIUM,
    scope=TargetKind.DAEMON,
    rationale="""
A daemon running as root turns any escape from a container, or any abuse of the Docker API, into full
control of the host. A rootless daemon confines the damage to one unprivileged account.
""",
    remediation="Run dockerd in rootless mode (dockerd-rootless-setuptool.sh install) as a dedicated user.",
    impact="Rootless mode lacks some features (AppArmor, overlay networks, some storage drivers, low ports).",
    references=("https://docs.docker.com/engine/security/rootless/",),
    statuses=PASS_FAIL_SKIP,
)
def rootless(facts: Facts) -> CheckResult:
    uid = facts.daemon.dockerd_uid
    if facts.engine.info.rootless:
        return passed("the engine reports rootless mode", rootless=True, dockerd_uid=uid)
    if uid is None:
        return skipped("the engine is not rootless-mode and dockerd's process owner could not be read", rootless=False)
    if uid == 0:
        return failed(
            "dockerd runs as root (uid 0)", rootless=False, dockerd_uid=0, dockerd_pid=facts.daemon.dockerd_pid
        )
    return passed(f"dockerd runs as uid {uid}, not root", rootless=False, dockerd_uid=uid)


@rule(
    id="CIS-2.2",
    cis="CIS-2.2",
    title="Inter-container traffic on the default bridge is restricted",
    severity=Severity.MEDIUM,
    scope=TargetKind.DAEMON,
    rationale="""
With icc on, every container on the default bridge can reach every port of every other one, so one
compromised container can probe and attack all its neighbours.
""",
    remediation='Set "icc": false in daemon.json (or --icc=false) and link containers on user-defined networks.',
    impact="Containers on the default bridge can then only talk through published ports or explicit links.",
    references=("https://docs.docker.com/engine/network/drivers/bridge/",),
    statuses=PASS_FAIL_SKIP,
)
def icc_disabled(facts: Facts) -> CheckResult:
    return _bool_rule(
        facts,
        "icc",
        False,
        "inter-container traffic is restricted on the default bridge",
        "containers on the default bridge can reach each other freely",
    )


@rule(
    id="CIS-2.3",
    cis="CIS-2.3",
    title="The daemon log level is info",
    severity=Severity.LOW,
    scope=TargetKind.DAEMON,
    rationale="""
At info the daemon records the events an investigation needs; debug floods the log and may record
sensitive request data, while warn or error drops events that matter.
""",
    remediation='Remove --log-level/--debug or set "log-level": "info" in daemon.json.',
    references=("https://docs.docker.com/reference/cli/dockerd/",),
    statuses=PASS_FAIL_SKIP,
)
def log_level_info(facts: Facts) -> CheckResult:
    level = effective(facts, "log-level")
    debug = effective(facts, "debug")
    evidence = {**level.evidence(), **debug.evidence()}
    if debug.known and debug.value is True:
        return failed(f"debug mode is on ({debug.source}), which logs at debug level", **evidence)
    if not level.known:
        return _unknown(level)
    if level.value == "info":
        return passed(f"the log level is info ({level.source})", **evidence)
    return failed(f"the log level is {level.value!r} ({level.source}), not info", **evidence)


@rule(
    id="CIS-2.4",
    cis="CIS-2.4",
    title="Docker is allowed to manage iptables rules",
    severity=Severity.MEDIUM,
    scope=TargetKind.DAEMON,
    rationale="""
Docker writes the firewall rules that isolate container networks and publish ports. Turned off, those
rules must be maintained by hand and are easily wrong, leaving containers exposed or networks bridged.
""",
    remediation='Remove --iptables=false (or "iptables": false from daemon.json) and restart dockerd.',
    references=("https://docs.docker.com/engine/network/packet-filtering-firewalls/",),
    statuses=PASS_FAIL_SKIP,
)
def iptables_managed(facts: Facts) -> CheckResult:
    return _bool_rule(facts, "iptables", True, "Docker manages iptables", "Docker does not manage iptables")


@rule(
    id="CIS-2.5",
    cis="CIS-2.5",
    title="No insecure registries are configured",
    severity=Severity.HIGH,
    scope=TargetKind.DAEMON,
    rationale="""
An insecure registry is reached without TLS verification, so anyone on the path can serve tampered
images that the daemon will run.
""",
    remediation='Remove every --insecure-registry flag and "insecure-registries" entry; give registries valid TLS.',
    impact="Registries without a trusted certificate stop working until they get one.",
    references=("https://docs.docker.com/engine/daemon/insecure-registries/",),
)
def no_insecure_registries(facts: Facts) -> CheckResult:
    chosen, config = user_insecure_registries(facts)
    reported = effective(facts, "insecure-registries")
    evidence = {**reported.evidence(), "user_configured": chosen}
    if chosen:
        return failed(f"insecure registries are configured: {', '.join(chosen)}", **evidence)
    # The engine always trusts loopback registries without TLS; that is not a choice the user made.
    evidence["builtin_loopback"] = "127.0.0.0/8"
    if not config.known:
        return passed(
            "the engine reports no insecure registry beyond its built-in loopback range "
            f"(the daemon configuration itself was not read: {config.note})",
            **evidence,
        )
    return passed("no insecure registry is configured; only the engine's built-in 127.0.0.0/8 remains", **evidence)


def _storage_driver_rule(facts: Facts, banned: str) -> CheckResult:
    driver = effective(facts, "storage-driver")
    if not driver.known or not driver.value:
        return skipped("the storage driver in use is not known", **driver.evidence())
    if driver.value == banned:
        return failed(f"the {banned} storage driver is in use", **driver.evidence())
    return passed(f"the storage driver is {driver.value}, not {banned}", **driver.evidence())


@rule(
    id="CIS-2.6",
    cis="CIS-2.6",
    title="The aufs storage driver is not used",
    severity=Severity.LOW,
    scope=TargetKind.DAEMON,
    rationale="""
aufs is out of the mainline kernel, removed from current Docker releases and has known stability
problems; keeping it means running unmaintained kernel code under every container.
""",
    remediation="Move to overlay2: export what you need, set the storage driver to overlay2, restart, re-pull.",
    references=("https://docs.docker.com/engine/storage/drivers/select-storage-driver/",),
    statuses=PASS_FAIL_SKIP,
)
def no_aufs(facts: Facts) -> CheckResult:
    return _storage_driver_rule(facts, "aufs")


@rule(
    id="CIS-2.7",
    cis="CIS-2.7",
    title="The devicemapper storage driver is not used",
    severity=Severity.LOW,
    scope=TargetKind.DAEMON,
    rationale="""
devicemapper is deprecated and removed from current Docker releases; its loop-lvm mode in particular
is slow and fragile. A maintained driver gets fixes, devicemapper no longer does.
""",
    remediation="Move to overlay2: export what you need, set the storage driver to overlay2, restart, re-pull.",
    references=("https://docs.docker.com/engine/storage/drivers/select-storage-driver/",),
    statuses=PASS_FAIL_SKIP,
)
def no_devicemapper(facts: Facts) -> CheckResult:
    return _storage_driver_rule(facts, "devicemapper")


def _is_tcp_host(address: str) -> bool:
    scheme, sep, _ = address.partition("://")
    return scheme == "tcp" if sep else True  # dockerd reads a bare host:port as tcp


def _socket_unit_tcp(facts: Facts) -> list[str]:
    """TCP ListenStream= of docker.socket, which dockerd serves when started with -H fd://."""
    unit = (facts.host.systemd_units or {}).get("docker.socket")
    streams = unit.listen_streams if unit else []
    return [s for s in streams if not s.startswith(("/", "@"))]


# How far an unauthenticated endpoint reaches, by where it is bound.
_REACH = {
    BindScope.ALL: "on every interface: anyone who can reach this host on that port controls the daemon",
    BindScope.LOOPBACK: "on loopback only: every local user and process, and every container on the host's "
    "network, controls the daemon through it",
    BindScope.ADDRESS: "on one of this host's addresses: anyone who can reach that address controls the daemon",
    BindScope.REMOTE: "at the audited address: anyone who can reach it controls the daemon",
}
_HOW = {
    ProbeOutcome.PLAIN_HTTP: "answered GET /_ping in plain HTTP (no TLS at all)",
    ProbeOutcome.TLS_WITHOUT_CLIENT_CERT: "answered GET /_ping over TLS to a client that showed no certificate",
}


def _probe_evidence(probes: list[ApiProbe]) -> list[dict[str, Any]]:
    return [probe.model_dump(mode="json", exclude_none=True, exclude={"elapsed_ms"}) for probe in probes]


def _exposed(probe: ApiProbe) -> str:
    version = f"Docker {probe.server_version}" if probe.server_version else "the Docker API"
    if probe.api_version:
        version += f" (API {probe.api_version})"
    return f"{probe.address} {_HOW[probe.outcome]}, as {version}, {_REACH[probe.bind]}"


def _live_summary(probes: list[ApiProbe]) -> str:
    """What each probed endpoint did, in one clause each."""
    said = {
        ProbeOutcome.CLIENT_CERT_REQUIRED: "refused a client without a certificate",
        ProbeOutcome.REFUSED: "has nothing listening (connection refused)",
        ProbeOutcome.UNREACHABLE: "could not be reached",
        ProbeOutcome.NO_API_ANSWER: "gave no Docker API answer",
        ProbeOutcome.NOT_PROBED: "was not contacted",
    }
    return "; ".join(f"{probe.address} {said.get(probe.outcome, probe.outcome.value)}" for probe in probes)


@rule(
    id="CIS-2.8",
    cis="CIS-2.8",
    title="A daemon listening on TCP requires TLS client authentication",
    severity=Severity.CRITICAL,
    scope=TargetKind.DAEMON,
    rationale="""
Whoever can talk to the Docker API controls the host. On a TCP socket without verified client
certificates, anyone who reaches the port gets that control.

The verdict rests on what the endpoints do, not only on what the configuration says: every TCP address
the daemon is configured to serve (-H, `hosts` in daemon.json, docker.service's ExecStart, DOCKER_OPTS,
docker.socket) and every TCP socket the dockerd process holds is asked GET /_ping and GET /version, first
in plain HTTP, then over TLS without a client certificate. Nothing else is sent, so the probe changes no
state, and an address only read from a file that is not on this host is never contacted
(docs/engine-access.md says exactly what is sent). An endpoint that answers either way fails, whatever
the TLS flags say, and the finding names its address, whether it is bound to every interface or to
loopback only, and the version it reported. TLS flags pass only where no endpoint answered without a
certificate; a configured endpoint that nothing listens on is named as such. Snapshots recorded before
the probe existed are judged on the configuration alone, and say so.
""",
    remediation=(
        "Serve TCP only with --tlsverify --tlscacert --tlscert --tlskey (or the daemon.json equivalents), "
        "or listen on the unix socket only."
    ),
    references=("https://docs.docker.com/engine/security/protect-access/",),
    statuses=(Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.SKIP),
)
def tcp_needs_tls(facts: Facts) -> CheckResult:
    probes = facts.api_probes
    live: dict[str, Any] = {} if probes is None else {"api_probes": _probe_evidence(probes)}
    exposed = [probe for probe in probes or [] if probe.outcome.unauthenticated]
    if exposed:
        return failed(
            "the Docker API answers without authentication: " + "; ".join(_exposed(p) for p in exposed), **live
        )
    verified = [probe for probe in probes or [] if probe.outcome is ProbeOutcome.CLIENT_CERT_REQUIRED]
    hosts = configured(facts.daemon, "hosts")
    if not hosts.known:
        if verified:
            return passed(f"{_live_summary(verified)}: no answer without a client certificate", **live)
        if facts.engine.endpoint.startswith("tcp://"):
            reason = f"this audit reached the daemon over {facts.engine.endpoint}, but its TLS settings were not read"
            if probes:
                reason += f" and the probe was inconclusive ({_live_summary(probes)})"
            return skipped(reason, tcp_sockets=[facts.engine.endpoint], **live)
        return _unknown(hosts)
    tcp = [h for h in hosts.value if _is_tcp_host(h)]
    if any(h.startswith("fd://") for h in hosts.value):
        tcp += [f"docker.socket ListenStream={s}" for s in _socket_unit_tcp(facts)]
    # A socket dockerd holds that the configuration did not name still counts once it speaks the API.
    held = [
        p for p in probes or [] if p.sources == [LISTENER_SOURCE] and p.outcome is ProbeOutcome.CLIENT_CERT_REQUIRED
    ]
    tcp += [f"{p.address} (held by dockerd)" for p in held]
    if not tcp:
        note = "the daemon listens on no TCP socket"
        others = [p for p in probes or [] if p.outcome is ProbeOutcome.NO_API_ANSWER]
        if others:
            note += (
                f" that speaks its API (dockerd also holds {', '.join(p.address for p in others)}: "
                "no Docker API answer there, e.g. swarm's own ports)"
            )
        return not_applicable(note, **hosts.evidence(), **live)
    tls = {key: configured(facts.daemon, key) for key in ("tlsverify", "tlscacert", "tlscert", "tlskey")}
    evidence = {"tcp_sockets": tcp, **hosts.evidence(), **live}
    for setting in tls.values():
        evidence.update(setting.evidence())
    if probes is None:
        measured = " (configuration only: this snapshot has no live probe of the endpoints)"
    elif probes:
        measured = f"; probed: {_live_summary(probes)}"
    else:
        measured = "; no TCP endpoint was found to probe"
    unknown = [key for key, setting in tls.items() if not setting.known]
    missing = [key for key, setting in tls.items() if setting.known and not setting.value]
    listening = [p for p in probes or [] if p.outcome not in (ProbeOutcome.REFUSED, ProbeOutcome.NOT_PROBED)]
    if verified and len(verified) == len(listening):
        # Every endpoint that is there refused us for want of a certificate: that is the fact that counts.
        gap = f" (the configuration leaves {', '.join(unknown + missing)} to dockerd)" if unknown or missing else ""
        return passed(f"TCP sockets {', '.join(tcp)} demand a client certificate{gap}{measured}", **evidence)
    if unknown:
        return skipped(
            f"the daemon listens on {', '.join(tcp)} but its TLS settings were not read{measured}", **evidence
        )
    if missing:
        return failed(f"the daemon listens on {', '.join(tcp)} without {', '.join(missing)}{measured}", **evidence)
    if probes is not None and not listening:
        return passed(
            f"TCP sockets {', '.join(tcp)} are configured with verified TLS, and no listener is reachable{measured}",
            **evidence,
        )
    return passed(f"TCP sockets {', '.join(tcp)} require verified client certificates{measured}", **evidence)


@rule(
    id="CIS-2.9",
    cis="CIS-2.9",
    title="Daemon-wide default ulimits are set deliberately",
    severity=Severity.LOW,
    scope=TargetKind.DAEMON,
    rationale="""
Without default ulimits every container inherits the daemon's limits, so one container can exhaust file
descriptors or processes for everything on the host.
""",
    remediation='Set "default-ulimits" in daemon.json (e.g. nofile and nproc) to values that fit your workloads.',
    references=("https://docs.docker.com/reference/cli/dockerd/#default-ulimit-settings",),
    statuses=PASS_FAIL_SKIP,
)
def default_ulimits(facts: Facts) -> CheckResult:
    setting = configured(facts.daemon, "default-ulimits")
    if not setting.known:
        return _unknown(setting)
    if setting.value:
        return passed(f"default ulimits are set: {', '.join(sorted(setting.value))}", **setting.evidence())
    return failed("no daemon-wide default ulimit is set", **setting.evidence())


@rule(
    id="CIS-2.10",
    cis="CIS-2.10",
    title="User-namespace remapping is on",
    severity=Severity.MEDIUM,
    scope=TargetKind.DAEMON,
    rationale="""
Without remapping, root in a container is uid 0 on the host; after an escape it owns every root file.
Remapping maps container root to an unprivileged host uid range.
""",
    remediation='Set "userns-remap": "default" (or a dedicated user) in daemon.json and restart dockerd.',
    impact="Existing images and volumes are re-created under the remapped uids; --privileged and host namespaces "
    "need --userns=host per container.",
    references=("https://docs.docker.com/engine/security/userns-remap/",),
)
def userns_remap(facts: Facts) -> CheckResult:
    setting = effective(facts, "userns-remap")
    if facts.engine.info.rootless:
        return passed("the daemon is rootless, so containers already run in a user namespace", **setting.evidence())
    if setting.value is True:
        return passed("the engine reports user-namespace remapping", **setting.evidence())
    return failed("user-namespace remapping is off (no userns entry in SecurityOptions)", **setting.evidence())


@rule(
    id="CIS-2.11",
    cis="CIS-2.11",
    title="The daemon's default cgroup parent is left alone or justified",
    severity=Severity.LOW,
    scope=TargetKind.DAEMON,
    rationale="""
The cgroup parent decides which resource limits apply above every container. A changed parent can
place containers outside the limits the host's administrator planned.
""",
    remediation=(
        "Remove --cgroup-parent unless the chosen parent is intended; if it is, record that "
        "and skip this rule (--skip CIS-2.11)."
    ),
    references=("https://docs.docker.com/reference/cli/dockerd/#default-cgroup-parent",),
    statuses=PASS_FAIL_SKIP,
)
def cgroup_parent(facts: Facts) -> CheckResult:
    setting = configured(facts.daemon, "cgroup-parent")
    if not setting.known:
        return _unknown(setting)
    if setting.value:
        return failed(f"the default cgroup parent is changed to {setting.value!r}; confirm it", **setting.evidence())
    return passed("the default cgroup parent is unchanged", **setting.evidence())


@rule(
    id="CIS-2.12",
    cis="CIS-2.12",
    title="The devicemapper base device size is not overridden",
    severity=Severity.LOW,
    scope=TargetKind.DAEMON,
    rationale="""
A larger base device lets every container grow its filesystem further, which can fill the host's
storage; the size should only change with a reason.
""",
    remediation="Remove dm.basesize from --storage-opt / storage-opts unless the size is needed.",
    references=("https://docs.docker.com/reference/cli/dockerd/#options-per-storage-driver",),
    statuses=(Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.SKIP),
)
def dm_basesize(facts: Facts) -> CheckResult:
    driver = effective(facts, "storage-driver")
    if driver.known and driver.value and driver.value != "devicemapper":
        return not_applicable(f"the storage driver is {driver.value}; dm.basesize applies to devicemapper only")
    options = configured(facts.daemon, "storage-opts")
    if not options.known:
        return _unknown(options)
    basesize = [o for o in options.value if str(o).startswith("dm.basesize")]
    if basesize:
        return failed(f"the devicemapper base size is overridden: {', '.join(basesize)}", **options.evidence())
    return passed("no dm.basesize storage option is set", **options.evidence())


@rule(
    id="CIS-2.13",
    cis="CIS-2.13",
    title="An authorization plugin guards the Docker API",
    severity=Severity.MEDIUM,
    scope=TargetKind.DAEMON,
    rationale="""
Without an authorization plugin, any client that reaches the API may do everything, including start
privileged containers. A plugin lets you allow each client only the requests it needs.
""",
    remediation="Install an authorization plugin and enable it with --authorization-plugin / authorization-plugins.",
    impact="Every API request is checked by the plugin; a broken plugin blocks the API.",
    references=("https://docs.docker.com/engine/extend/plugins_authorization/",),
    statuses=PASS_FAIL_SKIP,
)
def authorization_plugin(facts: Facts) -> CheckResult:
    setting = configured(facts.daemon, "authorization-plugins")
    if not setting.known:
        return _unknown(setting)
    if not setting.value:
        return failed("no authorization plugin is configured", **setting.evidence())
    names = ", ".join(setting.value)
    live = facts.engine.info.plugins
    if live is None:
        return skipped(f"authorization plugins {names} are configured; the engine's live chain was not collected")
    evidence: dict[str, Any] = {**setting.evidence(), "live_chain": live.authorization}
    missing = [name for name in setting.value if name not in live.authorization]
    if missing:
        return failed(
            f"configured authorization plugins are not in the engine's live chain: {', '.join(missing)} "
            "(daemon.json changed after dockerd started, or a managed plugin was disabled)",
            **evidence,
        )
    probes = facts.daemon.authz_plugins
    if probes is None:
        return skipped(f"authorization plugins {names} are in the live chain; whether they answer was not probed")
    evidence["probes"] = [p.model_dump(exclude_defaults=True) for p in probes if p.name in setting.value]
    problems = [problem for p in probes if p.name in setting.value and (problem := _plugin_problem(p))]
    if failures := [text for status, text in problems if status is Status.FAIL]:
        return failed("; ".join(failures), **evidence)
    if problems:
        return skipped("; ".join(text for _, text in problems), **evidence)
    return passed(f"authorization plugins {names} are in the live chain and answering", **evidence)


def _plugin_problem(probe: AuthzPluginProbe) -> tuple[Status, str] | None:
    """What is wrong with one plugin: FAIL, or SKIP when it could not be told; None when nothing is."""
    if probe.kind == "managed":
        if probe.enabled:
            return None
        return Status.FAIL, f"the managed plugin {probe.name} is disabled (docker plugin enable)"
    if probe.answered is None:
        return Status.SKIP, f"whether {probe.name} answers is unknown: {probe.error}"
    if not probe.answered:
        return Status.FAIL, f"the authorization plugin {probe.name} does not answer: {probe.error}"
    if "authz" not in probe.implements:
        return Status.FAIL, f"{probe.name} answers but does not implement authz: {', '.join(probe.implements)}"
    return None


@rule(
    id="CIS-2.14",
    cis="CIS-2.14",
    title="Container logs go to a central logging system",
    severity=Severity.LOW,
    scope=TargetKind.DAEMON,
    rationale="""
Logs kept only on the Docker host are lost with it and can be erased by whoever compromises it.
Shipping them off the host keeps the evidence and allows correlation across hosts.
""",
    remediation=(
        'Set "log-driver" (and its "log-opts") in daemon.json to a driver that ships logs, '
        "e.g. syslog, journald with forwarding, gelf, fluentd, awslogs or splunk."
    ),
    references=("https://docs.docker.com/engine/logging/configure/",),
    statuses=(Status.PASS, Status.FAIL, Status.MANUAL, Status.SKIP),
)
def central_logging(facts: Facts) -> CheckResult:
    driver = effective(facts, "log-driver")
    options = configured(facts.daemon, "log-opts")
    evidence = {**driver.evidence(), **options.evidence()}
    if not driver.known or not driver.value:
        return _unknown(driver)
    if driver.value in LOCAL_LOG_DRIVERS:
        return failed(f"the default log driver {driver.value!r} keeps logs on this host only", **evidence)
    if driver.value in REMOTE_LOG_DRIVERS:
        return passed(f"the default log driver {driver.value!r} hands logs to a logging system", **evidence)
    return manual(f"the log driver {driver.value!r} is a plugin; check where it sends logs", **evidence)


@rule(
    id="CIS-2.15",
    cis="CIS-2.15",
    title="no-new-privileges is the default for containers",
    severity=Severity.MEDIUM,
    scope=TargetKind.DAEMON,
    rationale="""
With no-new-privileges, a process in a container cannot gain privileges through setuid or setgid
binaries, which closes a common route from a foothold to root inside the container.
""",
    remediation='Set "no-new-privileges": true in daemon.json (or start dockerd with --no-new-privileges).',
    impact="Software that needs setuid binaries at run time (sudo, ping on old images) stops working.",
    references=("https://docs.docker.com/reference/cli/dockerd/",),
    statuses=PASS_FAIL_SKIP,
)
def no_new_privileges(facts: Facts) -> CheckResult:
    return _bool_rule(
        facts,
        "no-new-privileges",
        True,
        "no-new-privileges is the container default",
        "containers may gain privileges through setuid binaries by default",
    )


@rule(
    id="CIS-2.16",
    cis="CIS-2.16",
    title="Live restore is enabled",
    severity=Severity.LOW,
    scope=TargetKind.DAEMON,
    rationale="""
With live restore, containers keep running while dockerd stops or is upgraded, so patching the daemon
does not mean downtime and is not put off.
""",
    remediation='Set "live-restore": true in daemon.json and reload dockerd (SIGHUP).',
    impact="Swarm services are not covered; they are rescheduled by the managers as before.",
    references=("https://docs.docker.com/engine/daemon/live-restore/",),
)
def live_restore(facts: Facts) -> CheckResult:
    setting = effective(facts, "live-restore")
    if setting.value is True:
        return passed("the engine reports live restore enabled", **setting.evidence())
    return failed("the engine reports live restore disabled", **setting.evidence())


@rule(
    id="CIS-2.17",
    cis="CIS-2.17",
    title="The userland proxy is disabled",
    severity=Severity.LOW,
    scope=TargetKind.DAEMON,
    rationale="""
With the userland proxy, every published port is served by a docker-proxy process, more code listening
on the host; kernel NAT rules do the same job with less exposed surface.
""",
    remediation='Set "userland-proxy": false in daemon.json (needs Docker to manage iptables) and restart.',
    impact="Hairpin access to published ports from the host needs a kernel with route_localnet support.",
    references=("https://docs.docker.com/engine/network/packet-filtering-firewalls/",),
    statuses=PASS_FAIL_SKIP,
)
def userland_proxy_off(facts: Facts) -> CheckResult:
    return _bool_rule(
        facts, "userland-proxy", False, "the userland proxy is disabled", "published ports are served by docker-proxy"
    )


@rule(
    id="CIS-2.18",
    cis="CIS-2.18",
    title="A seccomp profile is in force daemon-wide",
    severity=Severity.HIGH,
    scope=TargetKind.DAEMON,
    rationale="""
seccomp blocks the system calls containers have no business making, many of them the entry points of
kernel exploits. Daemon-wide it protects every container that does not opt out.
""",
    remediation="Keep seccomp on: remove seccomp-profile=unconfined; use the default or a reviewed custom profile.",
    references=("https://docs.docker.com/engine/security/seccomp/",),
)
def seccomp_profile(facts: Facts) -> CheckResult:
    setting = effective(facts, "seccomp-profile")
    if setting.value is None:
        return failed("seccomp is not in force (the engine reports no seccomp security option)", **setting.evidence())
    if setting.value == "unconfined":
        return failed("the daemon-wide seccomp profile is unconfined", **setting.evidence())
    kind = "the default" if setting.value in ("default", "builtin") else "a custom"
    return passed(f"{kind} seccomp profile is in force ({setting.value})", **setting.evidence())


@rule(
    id="CIS-2.19",
    cis="CIS-2.19",
    title="Experimental features are off",
    severity=Severity.LOW,
    scope=TargetKind.DAEMON,
    rationale="""
Experimental features are unfinished, change without notice and get less security review; a
production daemon should not expose them.
""",
    remediation='Remove --experimental (or set "experimental": false in daemon.json) and restart dockerd.',
    references=("https://docs.docker.com/reference/cli/dockerd/",),
)
def experimental_off(facts: Facts) -> CheckResult:
    setting = effective(facts, "experimental")
    if setting.value is True:
        return failed("the engine runs with experimental features", **setting.evidence())
    return passed("experimental features are off", **setting.evidence())
