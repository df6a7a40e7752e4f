"""Attack path templates: pure functions from the audit's facts (and, opt-in, `inside` signals) to chains.

Each template names its entry point, every step with the rule whose failure enables it (or the fact, where
no rule judges it), and the single remediation that breaks the chain. A step the facts cannot decide keeps
the path as `possible` with the reason: an undecidable step never removes a path (fail closed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from portcullis.checks.cis.s4_images import is_root_user
from portcullis.inside.analyse import CAPABILITIES, capability_reach
from portcullis.model.facts import BindScope, ContainerFacts, Facts, MountPoint
from portcullis.model.paths import (
    AttackPath,
    CapabilityReach,
    Certainty,
    EntryKind,
    EntryPoint,
    PathsReport,
    PathStep,
)

# Docker's default bounding set (moby's oci/caps/defaults.go) for a container given no --cap-add/--cap-drop.
DEFAULT_CAPS = frozenset(
    {
        "CHOWN",
        "DAC_OVERRIDE",
        "FSETID",
        "FOWNER",
        "MKNOD",
        "NET_RAW",
        "SETGID",
        "SETUID",
        "SETFCAP",
        "SETPCAP",
        "NET_BIND_SERVICE",
        "SYS_CHROOT",
        "KILL",
        "AUDIT_WRITE",
    }
)
ENGINE_SOCKETS = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock",
)
# Host paths whose write access becomes root: cron, keys, binaries, the kernel's own files.
HOST_TAKEOVER_ROOTS = ("/", "/etc", "/root", "/usr", "/bin", "/sbin", "/lib", "/boot", "/var/spool/cron")
HOST_DISK_PREFIXES = (
    "/dev/sd",
    "/dev/vd",
    "/dev/xvd",
    "/dev/hd",
    "/dev/nvme",
    "/dev/mmcblk",
    "/dev/dm-",
    "/dev/mapper/",
)
LOOPBACK_HOSTS = ("127.", "::1", "localhost")
ROOT_IN_CONTAINER = "root in the container"
ROOT_EXEC = "docker exec -u 0"
PRIVILEGED_EXEC = "docker exec --privileged"
API_ROUTES = {"engine_api": ROOT_EXEC, "engine_api_privileged": PRIVILEGED_EXEC}
INSIDE_HINT = "run `portcullis paths --inside` on the engine's host to read the container's own /proc"


def _normalise(path: str) -> str:
    parts = [p for p in path.split("/") if p not in ("", ".")]
    return "/" + "/".join(parts)


def _cap_name(name: str) -> str:
    return name.strip().upper().removeprefix("CAP_")


def configured_bounding_set(container: ContainerFacts) -> set[str]:
    """The bounding set Docker gives the container, from --privileged, --cap-add and --cap-drop."""
    config = container.host_config
    if config.privileged:
        return set(CAPABILITIES)
    added = {_cap_name(c) for c in config.cap_add or []}
    dropped = {_cap_name(c) for c in config.cap_drop or []}
    base = set(CAPABILITIES) if "ALL" in added else set(DEFAULT_CAPS) | added
    if "ALL" in dropped:  # Docker applies --cap-drop ALL first, then the additions
        return {c for c in added if c != "ALL"} if "ALL" not in added else set(CAPABILITIES)
    return {c for c in base - dropped if c in CAPABILITIES}


def _no_new_privs(container: ContainerFacts, facts: Facts) -> bool:
    values = []
    for opt in container.host_config.security_opt or []:
        name, _, value = opt.replace(":", "=", 1).partition("=")
        if name == "no-new-privileges":
            values.append(value.lower() or "true")
    if values:
        return "true" in values and "false" not in values
    daemon_flag = any(v.lower() in ("true", "1") for v in facts.daemon.flag_values("--no-new-privileges"))
    return daemon_flag or (facts.daemon.daemon_json or {}).get("no-new-privileges") is True


def _configured_reach(container: ContainerFacts, facts: Facts) -> list[CapabilityReach]:
    """Reachability from the configuration alone: root gets the bounding set; non-root needs setuid programs."""
    user = container.config.user
    nnp = _no_new_privs(container, facts)
    reach = []
    for cap in sorted(configured_bounding_set(container), key=CAPABILITIES.index):
        if is_root_user(user):
            reach.append(CapabilityReach(capability=cap, reachable=True, why=f"runs as root (User is '{user}')"))
        elif nnp:
            why = (
                f"user {user!r} with no-new-privileges: no execve gains it, not even `docker exec -u 0`; "
                "only `docker exec --privileged` through the engine API"
            )
            reach.append(
                CapabilityReach(
                    capability=cap, reachable=False, why=why, entry=EntryKind.ENGINE_API, api_route=PRIVILEGED_EXEC
                )
            )
        else:
            why = f"user {user!r} without no-new-privileges: a setuid-root program would give it; {INSIDE_HINT}"
            reach.append(CapabilityReach(capability=cap, reachable=None, why=why))
    return reach


def _observed_reach(signals: dict[str, Any]) -> list[CapabilityReach] | None:
    observed = capability_reach(signals)
    if observed is None:
        return None
    return [
        CapabilityReach(
            capability=entry["capability"],
            reachable=entry["reachable"],
            why=entry["why"],
            entry=EntryKind.ENGINE_API if entry["via"] != "process" else None,
            api_route=API_ROUTES.get(entry["via"]),
        )
        for entry in observed
    ]


@dataclass
class Context:
    """What every template of one container reads."""

    facts: Facts
    container: ContainerFacts
    signals: dict[str, Any] | None
    reach: dict[str, CapabilityReach] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.container.short_name

    @property
    def root_is_host_root(self) -> bool:
        """Without a user namespace, uid 0 and its capabilities in the container act on the host kernel."""
        remapped = self.facts.engine.info.security_option("userns") is not None
        return not remapped or self.container.host_config.userns_mode == "host"


@dataclass
class Chain:
    """A template's result before its entry point is attached: its steps and the entry a step forces."""

    steps: list[PathStep]
    forced_entry: EntryPoint | None = None


def _api_entry(ctx: Context, route: str) -> EntryPoint:
    """Whoever may call the engine API: `exec -u 0` gives uid 0 (and, without no_new_privs, the bounding set)."""
    return EntryPoint(kind=EntryKind.ENGINE_API, description=f"`{route} {ctx.name}` through the engine API")


def _cap_step(ctx: Context, cap: str, finding: str = "CIS-5.4") -> Chain | None:
    """The step 'holds capability `cap`', or None when it is not in the bounding set or cannot be reached."""
    reach = ctx.reach.get(cap)
    if reach is None:
        return None
    step = PathStep(description=f"use CAP_{cap}", finding=finding, evidence=reach.why)
    if reach.reachable is None:
        step.undecided = reach.why
    elif reach.reachable is False:
        if reach.entry is not EntryKind.ENGINE_API:
            return None
        return Chain([step], _api_entry(ctx, reach.api_route or ROOT_EXEC))
    return Chain([step])


def _root_step(ctx: Context) -> Chain | None:
    """The step 'acts as uid 0 in the container' (setuid root counts; nnp stops it; exec -u 0 always works)."""
    user = ctx.container.config.user
    if ctx.signals is not None:
        uid = ctx.signals.get("uid")
        setuid = [f["path"] for f in ctx.signals.get("privilege_files") or [] if f["setuid_root"]]
        if uid == 0:
            return Chain([PathStep(description=ROOT_IN_CONTAINER, evidence="the process runs as uid 0")])
        if ctx.signals.get("no_new_privs") is False and setuid:
            why = f"uid {uid}, no_new_privs off, setuid-root {setuid[0]}"
            return Chain([PathStep(description=ROOT_IN_CONTAINER, evidence=why)])
        step = PathStep(description=ROOT_IN_CONTAINER, evidence=f"uid {uid}: only `docker exec -u 0` makes it root")
        return Chain([step], _api_entry(ctx, ROOT_EXEC))
    if is_root_user(user):
        return Chain([PathStep(description=ROOT_IN_CONTAINER, finding="DKR-RT-001", evidence=f"User is '{user}'")])
    if _no_new_privs(ctx.container, ctx.facts):
        why = f"user {user!r} with no-new-privileges: only `docker exec -u 0` makes it root"
        return Chain([PathStep(description=ROOT_IN_CONTAINER, evidence=why)], _api_entry(ctx, ROOT_EXEC))
    why = f"user {user!r} without no-new-privileges: a setuid-root program would make it root; {INSIDE_HINT}"
    return Chain([PathStep(description=ROOT_IN_CONTAINER, finding="CIS-5.26", evidence=why, undecided=why)])


def _join(*chains: Chain | None) -> Chain | None:
    """All the chains' steps in order, or None if any is missing; an ENGINE_API entry wins if one forces it."""
    steps: list[PathStep] = []
    forced = None
    for chain in chains:
        if chain is None:
            return None
        steps += chain.steps
        forced = forced or chain.forced_entry
    return Chain(steps, forced)


# --- the templates: each yields (template id, title, chain, fix, outcome) ------------------------

Found = tuple[str, str, Chain, str, str]
HOST_ROOT = "root on the host"


def _engine_socket_mounts(ctx: Context) -> Iterator[tuple[MountPoint, str, str | None]]:
    """Mounts that hand the container an engine socket: (mount, the host socket, its kind or None)."""
    facts = ctx.facts
    sockets = set(ENGINE_SOCKETS)
    if facts.engine.endpoint.startswith("unix://"):
        sockets.add(_normalise(facts.engine.endpoint.removeprefix("unix://")))
    sources = facts.host.mount_sources
    for mount in ctx.container.mounts:
        if mount.type not in ("bind", ""):
            continue
        source = _normalise(mount.source)
        named = source in sockets or (source.endswith(".sock") and ("docker" in source or "containerd" in source))
        if named:
            stat = sources.get(mount.source) if sources is not None else None
            yield (
                mount,
                source,
                stat.kind if stat and stat.exists else (None if stat is None or stat.error else "missing"),
            )
            continue
        covered = sorted(s for s in sockets if source == "/" or s.startswith(source.rstrip("/") + "/"))
        kinds = {s: facts.host.files[s].kind for s in covered if s in facts.host.files and facts.host.files[s].exists}
        live = [s for s in covered if kinds.get(s) == "socket"]
        if live:
            yield mount, live[0], "socket"
        elif covered and any(s not in kinds for s in covered):
            yield mount, covered[0], None  # the host's files were not read: cannot tell


def docker_socket(ctx: Context) -> Iterator[Found]:
    for mount, socket, kind in _engine_socket_mounts(ctx):
        if kind is not None and kind != "socket":
            continue  # a regular file (or nothing) where the socket would be talks to no engine
        access = "read-only, which does not stop connect()" if not mount.rw else "read-write"
        source = _normalise(mount.source).rstrip("/")
        in_container = mount.destination.rstrip("/") + (socket or "")[len(source) :] if socket != source else None
        step = PathStep(
            description=f"talk to the engine API through {in_container or mount.destination}",
            finding="CIS-5.32",
            evidence=f"{mount.source}{f' (holding {socket})' if in_container else ''} mounted {access}",
            undecided=None if kind else "the mount's source was not examined on the host (remote engine or replay)",
        )
        steps = [step]
        if not is_root_user(ctx.container.config.user):
            why = f"user {ctx.container.config.user!r} needs the socket's group (docker) to connect"
            steps.append(PathStep(description="open the socket", evidence=why, undecided=why))
        steps.append(
            PathStep(
                description="create a --privileged container with -v /:/host and chroot into it",
                evidence="the API does whatever its caller asks",
            )
        )
        yield "docker-socket", "Engine socket mounted", Chain(steps), f"remove the mount of {mount.source}", HOST_ROOT


def cgroup_release_agent(ctx: Context) -> Iterator[Found]:
    version = ctx.facts.engine.info.cgroup_version
    if version not in ("1", "") or not ctx.root_is_host_root or _confined(ctx):
        return
    cgroup = PathStep(
        description="mount a cgroup v1 hierarchy and set its release_agent to a script in the container",
        evidence=f"CgroupVersion {version}" if version else "",
        undecided=None if version else "the engine did not report its cgroup version",
    )
    hook = PathStep(description="empty a cgroup: the host kernel runs the release_agent as root")
    chain = _join(_cap_step(ctx, "SYS_ADMIN"), Chain([cgroup, hook]))
    if chain:
        yield "cgroup-release-agent", "CAP_SYS_ADMIN + cgroup v1 release_agent", chain, "drop SYS_ADMIN", HOST_ROOT


def _confined(ctx: Context) -> bool:
    """An AppArmor or SELinux profile blocks mount(2) even with SYS_ADMIN."""
    profile = ctx.container.apparmor_profile
    return bool(profile and profile != "unconfined") or bool(ctx.container.process_label)


def host_pid_ptrace(ctx: Context) -> Iterator[Found]:
    if ctx.container.host_config.pid_mode != "host" or not ctx.root_is_host_root:
        return
    pid = PathStep(description="see every host process", finding="CIS-5.16", evidence="PidMode host")
    inject = PathStep(description="ptrace a host root process and inject code into it")
    chain = _join(Chain([pid]), _cap_step(ctx, "SYS_PTRACE"), Chain([inject]))
    if chain:
        yield "host-pid-ptrace", "Host PID namespace + CAP_SYS_PTRACE", chain, "remove --pid host", HOST_ROOT


def host_root_mount(ctx: Context) -> Iterator[Found]:
    if not ctx.root_is_host_root:
        return
    for mount in ctx.container.mounts:
        source = _normalise(mount.source)
        if mount.type not in ("bind", "") or not mount.rw or source not in HOST_TAKEOVER_ROOTS:
            continue
        step = PathStep(
            description=f"write host files under {mount.destination} (cron, authorized_keys, binaries)",
            finding="CIS-5.6",
            evidence=f"{mount.source} mounted read-write at {mount.destination}",
        )
        chain = _join(_root_step(ctx), Chain([step]))
        if chain:
            fix = f"remove the mount of {mount.source} (or mount it read-only)"
            yield "host-root-rw", "Host system directory mounted read-write", chain, fix, HOST_ROOT


def sys_module(ctx: Context) -> Iterator[Found]:
    if not ctx.root_is_host_root:
        return
    load = PathStep(description="load a kernel module: code in the host kernel")
    chain = _join(_cap_step(ctx, "SYS_MODULE"), Chain([load]))
    if chain:
        yield "sys-module", "CAP_SYS_MODULE", chain, "drop SYS_MODULE", "code in the host kernel"


def shocker(ctx: Context) -> Iterator[Found]:
    if not ctx.root_is_host_root:
        return
    # Docker bind-mounts /etc/hosts, /etc/hostname and /etc/resolv.conf from the host: a host file handle.
    handle = PathStep(
        description="open_by_handle_at from a host-backed file (/etc/hosts) to any host file, e.g. /etc/shadow",
        evidence="Docker bind-mounts /etc/hosts from the host into every container",
    )
    chain = _join(_cap_step(ctx, "DAC_READ_SEARCH"), Chain([handle]))
    if chain:
        yield "shocker", "CAP_DAC_READ_SEARCH (shocker)", chain, "drop DAC_READ_SEARCH", "read any host file"


def writable_proc_sys(ctx: Context) -> Iterator[Found]:
    # Docker records systempaths=unconfined as empty MaskedPaths/ReadonlyPaths, not in SecurityOpt.
    readonly = ctx.container.host_config.readonly_paths
    if readonly is None or "/proc/sys" in readonly or ctx.container.host_config.privileged:
        return
    if not ctx.root_is_host_root:
        return
    write = PathStep(
        description="write /proc/sys/kernel/core_pattern as '|/path/in/container': the host runs it as root",
        finding="DKR-RT-003",
        evidence="ReadonlyPaths leaves out /proc/sys (systempaths=unconfined)",
    )
    chain = _join(_root_step(ctx), Chain([write]))
    if chain:
        fix = "remove --security-opt systempaths=unconfined"
        yield "writable-proc-sys", "Writable /proc/sys (systempaths=unconfined)", chain, fix, HOST_ROOT


def host_block_device(ctx: Context) -> Iterator[Found]:
    if not ctx.root_is_host_root:
        return
    for device in ctx.container.host_config.devices or []:
        if not device.path_on_host.startswith(HOST_DISK_PREFIXES) or "w" not in (device.cgroup_permissions or "rwm"):
            continue
        step = PathStep(
            description=f"write the host disk through {device.path_in_container} (debugfs: /etc/shadow, cron)",
            finding="CIS-5.18",
            evidence=f"--device {device.path_on_host}:{device.path_in_container}:{device.cgroup_permissions}",
        )
        chain = _join(_root_step(ctx), Chain([step]))
        if chain:
            fix = f"remove --device {device.path_on_host}"
            yield "host-block-device", "Host block device passed in", chain, fix, HOST_ROOT


def privileged(ctx: Context) -> Iterator[Found]:
    if not ctx.container.host_config.privileged:
        return
    step = PathStep(
        description="mount a host disk from /dev or use a cgroup release_agent: nothing confines it",
        finding="CIS-5.5",
        evidence="Privileged: every capability and device, no seccomp or LSM",
    )
    chain = _join(_root_step(ctx), Chain([step]))
    if chain:
        yield "privileged", "Privileged container", chain, "remove --privileged", HOST_ROOT


# Capability templates whose fix ("drop X") would not break the chain of a privileged container.
CAPABILITY_TEMPLATES: tuple[Callable[[Context], Iterator[Found]], ...] = (
    cgroup_release_agent,
    host_pid_ptrace,
    sys_module,
    shocker,
    writable_proc_sys,
    host_block_device,
)
CONTAINER_TEMPLATES: tuple[Callable[[Context], Iterator[Found]], ...] = (
    docker_socket,
    privileged,
    host_root_mount,
    *CAPABILITY_TEMPLATES,
)
TEMPLATE_IDS = (
    "docker-socket",
    "tcp-api-no-tls",
    "privileged",
    "host-root-rw",
    "cgroup-release-agent",
    "host-pid-ptrace",
    "sys-module",
    "shocker",
    "writable-proc-sys",
    "host-block-device",
)


def container_entry(container: ContainerFacts) -> tuple[EntryPoint, PathStep | None]:
    """How an attacker first gets code running in the container, and the step that says so."""
    if container.host_config.network_mode == "host":
        step = PathStep(
            description="exploit a service the container serves on the host's own network",
            finding="CIS-5.10",
            evidence="NetworkMode host: every port it listens on is a host port",
        )
        return EntryPoint(kind=EntryKind.NETWORK, description="the host's network (--network host)"), step
    bindings = container.network_settings.ports or container.host_config.port_bindings or {}
    public: list[str] = []
    local: list[str] = []
    for port, binds in sorted(bindings.items()):
        for bind in binds or []:
            address = f"{bind.host_ip or '0.0.0.0'}:{bind.host_port} -> {port}"
            (local if bind.host_ip.startswith(LOOPBACK_HOSTS) else public).append(address)
    if public:
        step = PathStep(
            description="exploit the service behind the published port",
            finding="CIS-5.14" if any(a.startswith(("0.0.0.0", "::")) for a in public) else None,
            evidence=", ".join(public),
        )
        return EntryPoint(kind=EntryKind.NETWORK, description="published " + ", ".join(public)), step
    if local:
        step = PathStep(description="exploit the service behind the loopback port", evidence=", ".join(local))
        return EntryPoint(kind=EntryKind.HOST_LOCAL, description="published on loopback " + ", ".join(local)), step
    return EntryPoint(kind=EntryKind.CONTAINER_PROCESS, description="a process in the container"), None


def _certainty(steps: list[PathStep]) -> Certainty:
    return Certainty.POSSIBLE if any(step.undecided for step in steps) else Certainty.CONFIRMED


def container_paths(ctx: Context) -> list[AttackPath]:
    entry, entry_step = container_entry(ctx.container)
    templates = CONTAINER_TEMPLATES
    if ctx.container.host_config.privileged:
        templates = tuple(t for t in templates if t not in CAPABILITY_TEMPLATES)
    paths = []
    for template in templates:
        for template_id, title, chain, fix, outcome in template(ctx):
            path_entry = chain.forced_entry or entry
            steps = chain.steps if chain.forced_entry or entry_step is None else [entry_step, *chain.steps]
            paths.append(
                AttackPath(
                    template=template_id,
                    title=title,
                    target=ctx.name,
                    entry=path_entry,
                    steps=steps,
                    outcome=outcome,
                    fix=fix,
                    certainty=_certainty(steps),
                )
            )
    return paths


def api_paths(facts: Facts) -> list[AttackPath]:
    """The daemon's API answering on TCP without a client certificate: whoever reaches it owns the host."""
    paths = []
    gateways = {ip: n.name for n in facts.networks if n.driver == "bridge" for ip in n.gateways}
    for probe in facts.api_probes or []:
        if not probe.outcome.unauthenticated:
            continue
        bound_ip = probe.address.rsplit(":", 1)[0].strip("[]")
        if probe.bind is BindScope.ADDRESS and bound_ip in gateways:
            entry = EntryPoint(
                kind=EntryKind.CONTAINER_NETWORK,
                description=f"{probe.address}: every container on bridge network {gateways[bound_ip]}",
            )
        elif probe.bind is BindScope.LOOPBACK:
            entry = EntryPoint(
                kind=EntryKind.HOST_LOCAL, description=f"{probe.address}: host users, host-network containers"
            )
        elif probe.bind is BindScope.ALL:
            entry = EntryPoint(
                kind=EntryKind.NETWORK, description=f"{probe.address}: the network and every container network"
            )
        else:
            entry = EntryPoint(
                kind=EntryKind.NETWORK, description=f"{probe.address}: whoever routes to it, containers included"
            )
        steps = [
            PathStep(
                description=f"call the engine API at {probe.address} without credentials",
                finding="CIS-2.8",
                evidence=f"{probe.outcome.value}: {probe.detail}".rstrip(": "),
            ),
            PathStep(description="create a --privileged container with -v /:/host and chroot into it"),
        ]
        paths.append(
            AttackPath(
                template="tcp-api-no-tls",
                title="Engine API on TCP without TLS client authentication",
                target="daemon",
                entry=entry,
                steps=steps,
                fix="require client certificates (--tlsverify) or stop listening on TCP",
                certainty=Certainty.CONFIRMED,
            )
        )
    return paths


def rank(paths: list[AttackPath]) -> list[AttackPath]:
    """Most exposed entry first; confirmed before possible; shorter chains (less to exploit) first; then by name."""
    return sorted(
        paths,
        key=lambda p: (
            -p.exposure,
            p.certainty is not Certainty.CONFIRMED,
            len(p.steps),
            TEMPLATE_IDS.index(p.template),
            p.target,
        ),
    )


def derive_paths(facts: Facts, signals_by_container: dict[str, dict[str, Any]] | None = None) -> PathsReport:
    """Every attack path the facts support; `signals_by_container` (name -> inside signals) refines capabilities."""
    signals_by_container = signals_by_container or {}
    paths = api_paths(facts)
    capabilities: dict[str, list[CapabilityReach]] = {}
    notes = []
    if facts.api_probes is None:
        notes.append("the daemon's TCP endpoints were not probed: the tcp-api-no-tls template could not be judged")
    if facts.host.mount_sources is None:
        notes.append("bind-mount sources were not examined on the host: socket mounts are 'possible', not confirmed")
    for container in facts.containers:
        signals = signals_by_container.get(container.short_name)
        reach = (_observed_reach(signals) if signals else None) or _configured_reach(container, facts)
        capabilities[container.short_name] = reach
        ctx = Context(facts, container, signals, {r.capability: r for r in reach})
        paths += container_paths(ctx)
    return PathsReport(
        subject=facts.engine.endpoint,
        paths=rank(paths),
        capabilities=capabilities,
        inside_used=bool(signals_by_container),
        notes=notes,
    )
