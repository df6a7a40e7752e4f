"""The facts snapshot: everything an audit knows, gathered once by `collect`, judged by `checks`.

Field names follow the Docker Engine API where the data comes from it, so a recorded snapshot
reads like `docker inspect`. A value of ``None`` always means "not collected" (the reason is in
``Facts.problems``); rules treat it as unknown and never as a pass.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from portcullis.model.findings import CollectionProblem, Severity
from portcullis.model.layers import LayerRef
from portcullis.model.signatures import ImageSignatures
from portcullis.model.vuln import FixState, OsRelease, Package

FACTS_SCHEMA_VERSION = "1"


class _Docker(BaseModel):
    """Models fed straight from Engine API JSON: Docker's PascalCase names, unknown keys ignored."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")


# --- engine -------------------------------------------------------------------------------------


class SwarmCluster(_Docker):
    id: str = Field("", alias="ID")
    spec: dict[str, Any] = Field(default_factory=dict, alias="Spec")


class SwarmInfo(_Docker):
    local_node_state: str = Field("inactive", alias="LocalNodeState")
    control_available: bool = Field(False, alias="ControlAvailable")
    node_id: str = Field("", alias="NodeID")
    node_addr: str = Field("", alias="NodeAddr")
    managers: int = Field(0, alias="Managers")
    nodes: int = Field(0, alias="Nodes")
    cluster: SwarmCluster | None = Field(None, alias="Cluster")
    # Not part of `GET /info`: filled by the collectors on an active swarm node (None = not collected).
    secret_count: int | None = Field(None, description="number of swarm secrets (`docker secret ls`) on a manager")
    root_ca_mtime: float | None = Field(None, description="mtime of <data-root>/swarm/certificates/swarm-root-ca.crt")
    listen_addr: str | None = Field(None, description="ListenAddr from <data-root>/swarm/docker-state.json")
    advertise_addr: str | None = Field(None, description="AdvertiseAddr from docker-state.json")
    data_path_addr: str | None = Field(None, description="DataPathAddr from docker-state.json ('' = not set)")


class RegistryConfig(_Docker):
    insecure_registry_cidrs: list[str] = Field(default_factory=list, alias="InsecureRegistryCIDRs")
    index_configs: dict[str, Any] = Field(default_factory=dict, alias="IndexConfigs")


class PluginsInfo(_Docker):
    """`GET /info` Plugins: the authorization chain dockerd runs with (the configured names, less any managed
    plugin that was disabled since)."""

    authorization: list[str] = Field(default_factory=list, alias="Authorization")

    @field_validator("authorization", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value  # the API sends null when no plugin is configured


class EngineInfo(_Docker):
    """The subset of `GET /info` the rules use."""

    id: str = Field("", alias="ID")
    name: str = Field("", alias="Name")
    server_version: str = Field("", alias="ServerVersion")
    driver: str = Field("", alias="Driver")
    docker_root_dir: str = Field("/var/lib/docker", alias="DockerRootDir")
    logging_driver: str = Field("", alias="LoggingDriver")
    cgroup_driver: str = Field("", alias="CgroupDriver")
    cgroup_version: str = Field("", alias="CgroupVersion")
    live_restore_enabled: bool = Field(False, alias="LiveRestoreEnabled")
    experimental_build: bool = Field(False, alias="ExperimentalBuild")
    security_options: list[str] = Field(default_factory=list, alias="SecurityOptions")
    containers: int = Field(0, alias="Containers")
    containers_running: int = Field(0, alias="ContainersRunning")
    containers_paused: int = Field(0, alias="ContainersPaused")
    containers_stopped: int = Field(0, alias="ContainersStopped")
    images: int = Field(0, alias="Images")
    operating_system: str = Field("", alias="OperatingSystem")
    os_type: str = Field("linux", alias="OSType")
    kernel_version: str = Field("", alias="KernelVersion")
    default_runtime: str = Field("runc", alias="DefaultRuntime")
    registry_config: RegistryConfig = Field(default_factory=RegistryConfig, alias="RegistryConfig")
    swarm: SwarmInfo = Field(default_factory=SwarmInfo, alias="Swarm")
    plugins: PluginsInfo | None = Field(None, alias="Plugins", description="None: a snapshot taken without it")

    @property
    def rootless(self) -> bool:
        return any("name=rootless" in opt for opt in self.security_options)

    def security_option(self, name: str) -> str | None:
        """The `name=...` entry of SecurityOptions (e.g. 'seccomp', 'apparmor', 'userns'), if any."""
        for opt in self.security_options:
            if f"name={name}" in opt.split(","):
                return opt
        return None


class EngineVersion(_Docker):
    version: str = Field("", alias="Version")
    api_version: str = Field("", alias="ApiVersion")
    min_api_version: str = Field("", alias="MinAPIVersion")
    experimental: bool = Field(False, alias="Experimental")
    os: str = Field("", alias="Os")
    arch: str = Field("", alias="Arch")
    components: list[dict[str, Any]] = Field(default_factory=list, alias="Components")


class EngineFacts(BaseModel):
    endpoint: str = Field(description="the API address the facts came from")
    local: bool = Field(description="the engine runs on this host, so its /proc and files are ours to read")
    info: EngineInfo
    version: EngineVersion


# --- daemon configuration ------------------------------------------------------------------------


class AuthzPluginProbe(BaseModel):
    """One authorization plugin dockerd is configured with or runs, and whether it is there to answer."""

    name: str
    kind: str = Field(description="'managed' (docker plugin ls), 'socket' or 'spec' (a legacy plugin), 'missing'")
    address: str = Field("", description="the socket or URL a legacy plugin is reached at; the id of a managed one")
    enabled: bool | None = Field(None, description="a managed plugin's Enabled; None for a legacy one")
    answered: bool | None = Field(
        None, description="a legacy plugin answered POST /Plugin.Activate; None when it was not asked (see error)"
    )
    implements: list[str] = Field(default_factory=list, description="the Implements list of its answer")
    error: str = ""


class DaemonConfig(BaseModel):
    """How dockerd was configured: its files and its real command line."""

    daemon_json_path: str = "/etc/docker/daemon.json"
    daemon_json: dict[str, Any] | None = Field(
        None, description="parsed daemon.json; None when absent or unreadable (see daemon_json_error)"
    )
    daemon_json_exists: bool = False
    daemon_json_error: str | None = None
    dockerd_pid: int | None = None
    dockerd_cmdline: list[str] | None = Field(None, description="argv of the running dockerd, from /proc")
    dockerd_uid: int | None = Field(None, description="real uid the dockerd process runs as")
    default_docker_env: str | None = Field(None, description="content of /etc/default/docker when present")
    sysconfig_docker_env: str | None = Field(None, description="content of /etc/sysconfig/docker when present")
    docker_opts: list[str] | None = Field(
        None,
        description="DOCKER_OPTS words from /etc/default/docker when docker.service hands them to dockerd "
        "(EnvironmentFile= plus $DOCKER_OPTS in ExecStart); None when no unit does",
    )
    bridge_options: dict[str, str] | None = Field(
        None, description="Options of the default 'bridge' network (network inspect)"
    )
    authz_plugins: list[AuthzPluginProbe] | None = Field(
        None, description="every authorization plugin configured or in the live chain, probed; None = not probed"
    )

    def flag_values(self, *names: str) -> list[str]:
        """Every value given to the long flags `names` on the dockerd command line.

        Handles `--flag=value`, `--flag value`, and bare boolean `--flag` (value "true").
        """
        values: list[str] = []
        argv = self.dockerd_cmdline or []
        for index, arg in enumerate(argv):
            for name in names:
                if arg == name:
                    nxt = argv[index + 1] if index + 1 < len(argv) else None
                    if nxt is not None and not nxt.startswith("-"):
                        values.append(nxt)
                    else:
                        values.append("true")
                elif arg.startswith(name + "="):
                    values.append(arg.split("=", 1)[1])
        return values


# --- the daemon's API, probed live ---------------------------------------------------------------


# ApiProbe.sources entries that are not configuration: a socket found held by dockerd, the remote address audited.
LISTENER_SOURCE = "dockerd listening socket"
AUDITED_SOURCE = "audited endpoint"


class ProbeOutcome(StrEnum):
    """What a TCP endpoint did when asked GET /_ping without credentials, first in plain HTTP, then over TLS."""

    PLAIN_HTTP = "plain_http"  # the Docker API answered plain HTTP: no TLS, no authentication at all
    TLS_WITHOUT_CLIENT_CERT = "tls_without_client_cert"  # TLS, but the API answered a client that showed no cert
    CLIENT_CERT_REQUIRED = "client_cert_required"  # TLS, and the server refused us for lacking a client certificate
    NO_API_ANSWER = "no_api_answer"  # something accepted the connection but never answered as the Docker API
    REFUSED = "refused"  # nothing listens there (connection refused)
    UNREACHABLE = "unreachable"  # the connection timed out or failed otherwise
    NOT_PROBED = "not_probed"  # deliberately not contacted; detail says why

    @property
    def unauthenticated(self) -> bool:
        return self in (ProbeOutcome.PLAIN_HTTP, ProbeOutcome.TLS_WITHOUT_CLIENT_CERT)


class BindScope(StrEnum):
    ALL = "all_interfaces"  # 0.0.0.0 or ::: every address of the host, and so every network it is on
    LOOPBACK = "loopback"  # 127.0.0.0/8 or ::1: this host's own users, processes and host-network containers
    ADDRESS = "address"  # one address of the host
    REMOTE = "remote"  # the audited engine's own address, on another machine


class ServerCertificate(BaseModel):
    """The certificate a TLS endpoint presented (not verified: the probe trusts nothing and sends nothing)."""

    subject: str = Field(description="RFC 4514-style, e.g. CN=server,O=Example")
    issuer: str
    not_after: str = Field(description="expiry, ISO 8601 UTC")
    sha256: str = Field(description="SHA-256 of the DER certificate, hex")


class ApiProbe(BaseModel):
    """One TCP endpoint of the daemon's API and what it answered an unauthenticated client."""

    address: str = Field(description="host:port the daemon binds ([v6]:port for IPv6)")
    bind: BindScope
    connect_to: str = Field(description="where the probe connected (a wildcard bind is reached over loopback)")
    sources: list[str] = Field(description="where the endpoint came from: dockerd -H, daemon.json hosts, listener…")
    outcome: ProbeOutcome
    detail: str = Field("", description="what happened, in words: the status line, the TLS alert, the error")
    tls_version: str | None = Field(None, description="the protocol the TLS handshake agreed, when there was one")
    certificate: ServerCertificate | None = None
    server_version: str | None = Field(None, description="Version from GET /version when the API answered")
    api_version: str | None = Field(None, description="ApiVersion from GET /version (or the Api-Version header)")
    elapsed_ms: int = 0


# --- host ----------------------------------------------------------------------------------------


class FileStat(BaseModel):
    path: str
    exists: bool
    kind: str | None = Field(None, description="file, dir, socket, symlink, other")
    uid: int | None = None
    gid: int | None = None
    owner: str | None = None
    group: str | None = None
    mode: int | None = Field(None, description="permission bits, e.g. 0o644 (decimal in JSON)")
    mtime: float | None = None
    error: str | None = None


class MountEntry(BaseModel):
    source: str
    mountpoint: str
    fstype: str
    options: list[str] = Field(default_factory=list)
    device: str | None = Field(None, description="major:minor of the filesystem (mountinfo); None if unknown")
    fs_root: str | None = Field(None, description="directory of that filesystem mounted here; not '/' for bind mounts")


class SystemdUnit(BaseModel):
    name: str
    fragment_path: str | None = Field(None, description="the unit file systemd loads")
    listen_streams: list[str] = Field(default_factory=list, description="ListenStream= of a socket unit")
    exec_start: list[str] = Field(default_factory=list)


class AuditFacts(BaseModel):
    auditctl_present: bool = False
    rules: list[str] | None = Field(None, description="lines of `auditctl -l`; None when it could not run")
    error: str | None = None


class Listener(BaseModel):
    address: str
    port: int
    protocol: str = "tcp"


class HostProcessSocket(BaseModel):
    """A socket listening on the host (TCP LISTEN, or a bound UDP socket) and the processes holding it."""

    address: str
    port: int
    protocol: str = Field(description="tcp or udp")
    processes: list[str] = Field(default_factory=list, description="comm of each process holding the socket")


class HardeningFacts(BaseModel):
    """What the host rules (DKR-HOST-*) read: kernel settings, LSM, services, tools, time and audit daemons."""

    sysctls: dict[str, str] = Field(
        default_factory=dict, description="dotted sysctl name -> value, only those this kernel has"
    )
    modules_supported: bool | None = Field(None, description="the kernel loads modules (/proc/modules exists)")
    lsms: list[str] | None = Field(None, description="/sys/kernel/security/lsm; None when unreadable")
    apparmor_enforcing_profiles: int | None = Field(None, description="AppArmor profiles loaded in enforce mode")
    selinux_enforce: str | None = Field(None, description="/sys/fs/selinux/enforce (1 enforcing, 0 permissive)")
    sockets: list[HostProcessSocket] | None = None
    tools: list[FileStat] = Field(default_factory=list, description="compilers and intruder tools found on PATH")
    processes: list[str] | None = Field(None, description="distinct process names (comm) running on the host")


class EngineComponent(BaseModel):
    """One engine binary (dockerd, containerd, runc, a shim) and where its version comes from."""

    name: str = Field(description="the binary's name: dockerd, containerd, runc, containerd-shim-runc-v2 …")
    path: str | None = Field(None, description="the resolved file; None when the binary was not found")
    package: str | None = Field(None, description="the dpkg package whose file list holds the path; None: none does")
    package_version: str | None = Field(None, description="that package's installed version (dpkg)")
    source: str | None = Field(None, description="its source package (what the Debian tracker is keyed by)")
    source_version: str | None = None
    upstream_version: str | None = Field(None, description="the version the engine's /version reports for it")


class KernelBuild(BaseModel):
    """The running kernel and whether a distribution package vouches for it."""

    release: str = Field(description="uname -r")
    build: str = Field("", description="/proc/version: compiler, builder and build string")
    package: str | None = Field(None, description="the dpkg package owning /boot/vmlinuz-<release>; None: none")
    package_version: str | None = None
    source: str | None = None
    source_version: str | None = None


class HostFacts(BaseModel):
    hostname: str = ""
    kernel: str = ""
    os_release: dict[str, str] = Field(default_factory=dict)
    mounts: list[MountEntry] | None = None
    docker_group_members: list[str] | None = Field(
        None, description="users in group docker (explicit members and those whose primary group it is)"
    )
    audit: AuditFacts = Field(default_factory=AuditFacts)
    systemd_units: dict[str, SystemdUnit] | None = Field(
        None, description="docker.service, docker.socket, containerd.service when systemd knows them"
    )
    files: dict[str, FileStat] = Field(default_factory=dict, description="owner/mode of every path CIS names")
    cert_files: list[FileStat] | None = Field(None, description="everything under /etc/docker/certs.d")
    containerd_socket: str | None = None
    containerd_socket_source: str | None = Field(
        None, description="why that socket: --containerd, daemon.json, system containerd, managed by dockerd"
    )
    docker_group_gid: int | None = Field(None, description="gid of group docker; None when the group does not exist")
    tls_files: dict[str, str] | None = Field(
        None, description="effective tlscacert/tlscert/tlskey paths of dockerd; empty when TLS is off"
    )
    apparmor_enabled: bool | None = None
    selinux_enabled: bool | None = None
    content_trust_env: str | None = Field(None, description="DOCKER_CONTENT_TRUST in the auditing environment")
    daemon_content_trust_env: str | None = Field(
        None, description="DOCKER_CONTENT_TRUST in dockerd's environment; None when unset or not readable"
    )
    profile_content_trust: dict[str, str] | None = Field(
        None, description="DOCKER_CONTENT_TRUST set in system-wide shell profiles (file: value); None: not collected"
    )
    tcp_listeners: list[Listener] | None = None
    binaries: dict[str, str | None] = Field(
        default_factory=dict, description="resolved path of dockerd, containerd, runc and the shims"
    )
    hardening: HardeningFacts | None = Field(None, description="host hardening beyond CIS; None: not collected")
    engine_components: list[EngineComponent] | None = Field(
        None, description="the engine's binaries with their package and version; None: not collected"
    )
    kernel_build: KernelBuild | None = Field(None, description="the running kernel's provenance; None: not collected")
    mount_sources: dict[str, FileStat] | None = Field(
        None, description="what each container bind mount's source is on the host (socket, file, dir); None: not read"
    )

    def file(self, path: str) -> FileStat | None:
        return self.files.get(path)


# --- containers ----------------------------------------------------------------------------------


class RestartPolicy(_Docker):
    name: str = Field("", alias="Name")
    maximum_retry_count: int = Field(0, alias="MaximumRetryCount")


class DeviceMapping(_Docker):
    path_on_host: str = Field("", alias="PathOnHost")
    path_in_container: str = Field("", alias="PathInContainer")
    cgroup_permissions: str = Field("", alias="CgroupPermissions")


class Ulimit(_Docker):
    name: str = Field("", alias="Name")
    soft: int = Field(0, alias="Soft")
    hard: int = Field(0, alias="Hard")


class PortBinding(_Docker):
    host_ip: str = Field("", alias="HostIp")
    host_port: str = Field("", alias="HostPort")


class HostConfig(_Docker):
    privileged: bool = Field(False, alias="Privileged")
    cap_add: list[str] | None = Field(None, alias="CapAdd")
    cap_drop: list[str] | None = Field(None, alias="CapDrop")
    security_opt: list[str] | None = Field(None, alias="SecurityOpt")
    binds: list[str] | None = Field(None, alias="Binds")
    network_mode: str = Field("", alias="NetworkMode")
    pid_mode: str = Field("", alias="PidMode")
    ipc_mode: str = Field("", alias="IpcMode")
    uts_mode: str = Field("", alias="UTSMode")
    userns_mode: str = Field("", alias="UsernsMode")
    cgroupns_mode: str = Field("", alias="CgroupnsMode")
    memory: int = Field(0, alias="Memory")
    memory_swap: int = Field(0, alias="MemorySwap")
    cpu_shares: int = Field(0, alias="CpuShares")
    nano_cpus: int = Field(0, alias="NanoCpus")
    cpu_quota: int = Field(0, alias="CpuQuota")
    cpu_period: int = Field(0, alias="CpuPeriod")
    cpuset_cpus: str = Field("", alias="CpusetCpus")
    pids_limit: int | None = Field(None, alias="PidsLimit")
    readonly_rootfs: bool = Field(False, alias="ReadonlyRootfs")
    restart_policy: RestartPolicy = Field(default_factory=RestartPolicy, alias="RestartPolicy")
    devices: list[DeviceMapping] | None = Field(None, alias="Devices")
    device_cgroup_rules: list[str] | None = Field(None, alias="DeviceCgroupRules")
    sysctls: dict[str, str] | None = Field(None, alias="Sysctls")
    ulimits: list[Ulimit] | None = Field(None, alias="Ulimits")
    cgroup_parent: str = Field("", alias="CgroupParent")
    port_bindings: dict[str, list[PortBinding] | None] | None = Field(None, alias="PortBindings")
    publish_all_ports: bool = Field(False, alias="PublishAllPorts")
    masked_paths: list[str] | None = Field(None, alias="MaskedPaths")
    readonly_paths: list[str] | None = Field(None, alias="ReadonlyPaths")
    runtime: str = Field("", alias="Runtime")
    log_config: dict[str, Any] = Field(default_factory=dict, alias="LogConfig")


class MountPoint(_Docker):
    type: str = Field("", alias="Type")
    name: str = Field("", alias="Name")
    source: str = Field("", alias="Source")
    destination: str = Field("", alias="Destination")
    mode: str = Field("", alias="Mode")
    rw: bool = Field(True, alias="RW")
    propagation: str = Field("", alias="Propagation")


class Health(_Docker):
    status: str = Field("", alias="Status")
    failing_streak: int = Field(0, alias="FailingStreak")


class ContainerState(_Docker):
    status: str = Field("", alias="Status")
    running: bool = Field(False, alias="Running")
    pid: int = Field(0, alias="Pid")
    oom_killed: bool = Field(False, alias="OOMKilled")
    exit_code: int = Field(0, alias="ExitCode")
    started_at: str = Field("", alias="StartedAt")
    finished_at: str = Field("", alias="FinishedAt")
    health: Health | None = Field(None, alias="Health")


class ContainerConfig(_Docker):
    user: str = Field("", alias="User")
    image: str = Field("", alias="Image")
    healthcheck: dict[str, Any] | None = Field(None, alias="Healthcheck")
    exposed_ports: dict[str, Any] | None = Field(None, alias="ExposedPorts")
    labels: dict[str, str] | None = Field(None, alias="Labels")
    env: list[str] | None = Field(None, alias="Env")
    cmd: list[str] | None = Field(None, alias="Cmd")
    entrypoint: list[str] | None = Field(None, alias="Entrypoint")


class EndpointSettings(_Docker):
    network_id: str = Field("", alias="NetworkID")
    ip_address: str = Field("", alias="IPAddress")


class NetworkSettings(_Docker):
    ports: dict[str, list[PortBinding] | None] | None = Field(None, alias="Ports")
    networks: dict[str, EndpointSettings] = Field(default_factory=dict, alias="Networks")


class ProcessInfo(BaseModel):
    pid: int
    comm: str
    cmdline: list[str] = Field(default_factory=list)
    uid: int | None = None


class ExecSession(BaseModel):
    """One `docker exec` the engine still remembers (exec inspect); kept only while the container runs."""

    id: str
    running: bool = False
    privileged: bool = False
    user: str = Field("", description="--user given to docker exec; '' inherits the container's user")
    command: list[str] = Field(default_factory=list)


class ContainerFacts(_Docker):
    """`docker inspect` of one container, plus the processes seen through its cgroup."""

    id: str = Field(alias="Id")
    name: str = Field(alias="Name")
    image_id: str = Field("", alias="Image")
    created: str = Field("", alias="Created")
    state: ContainerState = Field(default_factory=ContainerState, alias="State")
    config: ContainerConfig = Field(default_factory=ContainerConfig, alias="Config")
    host_config: HostConfig = Field(default_factory=HostConfig, alias="HostConfig")
    mounts: list[MountPoint] = Field(default_factory=list, alias="Mounts")
    network_settings: NetworkSettings = Field(default_factory=NetworkSettings, alias="NetworkSettings")
    apparmor_profile: str = Field("", alias="AppArmorProfile")
    mount_label: str = Field("", alias="MountLabel")
    process_label: str = Field("", alias="ProcessLabel")
    processes: list[ProcessInfo] | None = Field(
        None, description="processes in the container's cgroup (local) or from the API's top (remote)"
    )
    processes_source: str | None = Field(None, description="'cgroup' or 'api-top'; None when not collected")
    processes_error: str | None = None
    exec_ids: list[str] | None = Field(None, alias="ExecIDs")
    exec_sessions: list[ExecSession] | None = Field(
        None, description="exec inspect of every ExecIDs entry of a running container; None when not collected"
    )
    exec_sessions_error: str | None = None

    @property
    def short_name(self) -> str:
        return self.name.lstrip("/")


# --- images, networks ----------------------------------------------------------------------------


class HistoryEntry(_Docker):
    id: str = Field("", alias="Id")
    created: int = Field(0, alias="Created")
    created_by: str = Field("", alias="CreatedBy")
    size: int = Field(0, alias="Size")
    comment: str = Field("", alias="Comment")


class ImageConfig(_Docker):
    user: str = Field("", alias="User")
    healthcheck: dict[str, Any] | None = Field(None, alias="Healthcheck")
    exposed_ports: dict[str, Any] | None = Field(None, alias="ExposedPorts")
    env: list[str] | None = Field(None, alias="Env")
    labels: dict[str, str] | None = Field(None, alias="Labels")
    entrypoint: list[str] | None = Field(None, alias="Entrypoint")
    cmd: list[str] | None = Field(None, alias="Cmd")


class PathEvidence(BaseModel):
    """A path in an image and the layer that introduced it (or, for deletions, that removed it)."""

    path: str
    layer: LayerRef
    mode: int | None = None
    detail: str = ""
    removed_in: LayerRef | None = Field(None, description="set when a later layer deleted the path")


class PathCopy(BaseModel):
    """One layer's write (or deletion) of a path that more than one layer touched."""

    layer: LayerRef
    bytes: int = Field(description="what this layer stored at the path; a deletion counts the directory it hid, else 0")
    deleted: bool = Field(False, description="the layer deleted the path (a whiteout) rather than writing it")


class WastedPath(BaseModel):
    """A path written or deleted by more than one layer: every copy but the last only takes space."""

    path: str
    bytes: int = Field(description="every copy's size added up, as dive counts it")
    copies: list[PathCopy] = Field(description="oldest first")


class LayerWaste(BaseModel):
    """A layer's part in the wasted bytes: what it stored at paths that more than one layer touched."""

    layer: LayerRef
    bytes: int
    paths: int


class EfficiencyLimits(BaseModel):
    """The thresholds DKR-IMG-010 judges against (`portcullis image --min-efficiency/--max-wasted`)."""

    min_efficiency: float = Field(0.9, ge=0, le=1, description="dive's CI default (lowestEfficiency)")
    max_wasted_bytes: int | None = Field(None, ge=0, description="None: no limit (dive's default)")


class ImageEfficiency(BaseModel):
    """Space the layers spend on files that later layers overwrite or delete, measured the way dive measures it.

    Every layer's write of a path counts (directories only where the layer wrote nothing below them, as bytes 0);
    a deletion counts 0 bytes, or the bytes of the directory tree it hid. A path touched by more than one layer
    wastes all its copies' bytes; the efficiency is the bytes of each path's smallest copy over all bytes counted.
    """

    efficiency: float = Field(description="1.0: no path is written twice or deleted")
    wasted_bytes: int = Field(description="bytes of every copy of the paths more than one layer touched")
    counted_bytes: int = Field(description="bytes of every layer's writes (and of the trees deletions hid)")
    wasted_paths: int = Field(description="paths more than one layer touched")
    hidden_bytes: int = Field(
        0,
        description="bytes of the copies the final image no longer shows (overwritten, or deleted: a deleted "
        "directory's files included, which dive does not count); what squashing the layers would save",
    )
    cache_bytes: int = Field(
        0, description="bytes of package-manager caches the image still holds (package_caches; not in wasted_bytes)"
    )
    top: list[WastedPath] = Field(default_factory=list, description="the largest wasted paths, largest first")
    by_layer: list[LayerWaste] = Field(default_factory=list, description="each layer's part, largest first")
    limits: EfficiencyLimits = Field(default_factory=EfficiencyLimits)


class ImageContentFacts(BaseModel):
    """What the layer reader found in an image's filesystem; None on ImageFacts when it was not read."""

    source: str = Field(description="engine, docker-archive, oci, oci-archive, dir or registry")
    reference: str = ""
    layers: list[LayerRef] = Field(default_factory=list)
    file_count: int = 0
    setuid_files: list[PathEvidence] = Field(default_factory=list, description="setuid/setgid regular files")
    world_writable_dirs: list[PathEvidence] = Field(default_factory=list, description="o+w without sticky bit")
    secrets: list[PathEvidence] = Field(
        default_factory=list, description="private keys, credentials, tokens, .env; detail names the kind"
    )
    notable_binaries: list[PathEvidence] = Field(default_factory=list, description="sshd, sudo and the like")
    package_caches: list[PathEvidence] = Field(default_factory=list, description="apt/apk/pip/npm caches left")
    unsafe_entries: list[PathEvidence] = Field(
        default_factory=list, description="archive members skipped as hostile: '..', escapes, devices…"
    )
    unread: list[PathEvidence] = Field(
        default_factory=list,
        description="paths the reader could not read (a dir: source's permissions): content rules cannot pass",
    )
    os_release: OsRelease | None = Field(None, description="from /etc/os-release (or /usr/lib/os-release)")
    packages: list[Package] = Field(
        default_factory=list, description="installed packages, each with the layer where its name+version appeared"
    )
    inventory_skipped: list[str] = Field(default_factory=list, description="package records that did not parse")
    efficiency: ImageEfficiency | None = Field(None, description="wasted bytes across the layers (DKR-IMG-010)")
    license_deny: list[str] = Field(
        default_factory=list, description="SPDX ids or glob patterns DKR-IMG-011 fails (`--license-deny`)"
    )


class ImageFacts(_Docker):
    id: str = Field(alias="Id")
    repo_tags: list[str] = Field(default_factory=list, alias="RepoTags")
    repo_digests: list[str] = Field(default_factory=list, alias="RepoDigests")
    created: str = Field("", alias="Created")
    size: int = Field(0, alias="Size")
    config: ImageConfig = Field(default_factory=ImageConfig, alias="Config")
    history: list[HistoryEntry] | None = Field(None, description="newest first, as the API returns it")
    content: ImageContentFacts | None = Field(
        None, description="filesystem facts from the layer reader; None when the image content was not read"
    )
    signatures: ImageSignatures | None = Field(
        None, description="cosign signatures looked up under a trust policy; None when no policy was given"
    )

    @property
    def display_name(self) -> str:
        return self.repo_tags[0] if self.repo_tags else self.id[:19]


class NetworkFacts(_Docker):
    id: str = Field(alias="Id")
    name: str = Field(alias="Name")
    driver: str = Field("", alias="Driver")
    scope: str = Field("", alias="Scope")
    internal: bool = Field(False, alias="Internal")
    options: dict[str, str] = Field(default_factory=dict, alias="Options")
    containers: dict[str, Any] = Field(default_factory=dict, alias="Containers")
    ipam: dict[str, Any] | None = Field(None, alias="IPAM", description="subnets and gateways (Config)")

    @property
    def gateways(self) -> list[str]:
        """The host's addresses on this network: what its containers reach the host at."""
        return [str(c["Gateway"]) for c in (self.ipam or {}).get("Config") or [] if c.get("Gateway")]

    @field_validator("options", "containers", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value  # the API sends null for swarm-scoped networks


# --- judged before the rules run ----------------------------------------------------------------


class ComponentExposure(BaseModel):
    """One advisory that applies to an engine component or the running kernel."""

    component: str = Field(description="dockerd, containerd, runc, a shim, or kernel")
    installed: str = Field(description="the package version (or upstream version) that was matched")
    advisory: str
    aliases: list[str] = Field(default_factory=list)
    summary: str = ""
    fix_state: FixState
    fixed_version: str | None = None
    matched_by: str = Field(description="how: the Debian package and its source, or the upstream Go module")
    restart: str = Field(description="what must restart before an installed fix protects the host")
    severity: Severity


class UnjudgedComponent(BaseModel):
    """A component or kernel that no database or table could judge: for a person, with the evidence."""

    component: str
    reason: str
    evidence: dict[str, str] = Field(default_factory=dict)


class EngineExposureFacts(BaseModel):
    """The engine components and kernel matched against the vulnerability database by the audit pipeline (not
    collected: a replayed snapshot is matched again against the database of the day)."""

    database: str | None = Field(None, description="the database file used; None: none could be used")
    database_date: str | None = Field(None, description="when that database was last built or changed")
    undecided: str | None = Field(None, description="why nothing was judged (no database, or one too old)")
    fail_closed: bool = Field(False, description="a --fail-on gate judges this audit: undecided is then an error")
    stale: str | None = Field(None, description="the database is older than --db-max-age (ungated: judged anyway)")
    exposures: list[ComponentExposure] = Field(default_factory=list)
    unjudged: list[UnjudgedComponent] = Field(default_factory=list)


class EolTables(BaseModel):
    """End-of-life tables refreshed by `db update` from endoflife.date, kept beside the vulnerability database; the
    rules use them instead of the tables frozen into this release (data/os_eol.toml, data/engine_releases.yaml)."""

    origin: str = Field(description="where they came from, e.g. https://endoflife.date/api/v1/products")
    fetched_at: str = Field(description="when (UTC, ISO 8601)")
    distributions: dict[str, dict[str, dict[str, Any]]] = Field(
        description="os_eol.toml's shape: distribution, release, then end / regular_end / paid_until / name"
    )
    engine_lines: list[dict[str, Any]] = Field(
        default_factory=list, description="engine_releases.yaml's lines: line, end_of_life, since, note"
    )


# --- the snapshot --------------------------------------------------------------------------------


class Facts(BaseModel):
    schema_version: str = FACTS_SCHEMA_VERSION
    collected_at: str = ""
    engine: EngineFacts
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    host: HostFacts = Field(default_factory=HostFacts)
    containers: list[ContainerFacts] = Field(default_factory=list)
    images: list[ImageFacts] = Field(default_factory=list)
    networks: list[NetworkFacts] = Field(default_factory=list)
    swarm_nodes: list[dict[str, Any]] | None = Field(None, description="`docker node ls` on a manager")
    api_probes: list[ApiProbe] | None = Field(
        None, description="every TCP endpoint of the daemon's API, probed without credentials; None = not probed"
    )
    problems: list[CollectionProblem] = Field(default_factory=list)
    engine_exposure: EngineExposureFacts | None = Field(
        None, description="set by the audit pipeline from the vulnerability database; None: not matched"
    )
    eol_tables: EolTables | None = Field(
        None, description="refreshed end-of-life tables the pipeline found beside the database; None: the frozen ones"
    )
    skipped_containers: list[dict[str, str]] = Field(
        default_factory=list, description="containers that vanished during collection: id, name, reason"
    )

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Facts:
        return cls.model_validate_json(text)
