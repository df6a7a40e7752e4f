"""Facts from the host this audit runs on: /proc, the files CIS names, auditd, systemd, groups.

Read-only: nothing here writes, and every external command is optional (its absence is a fact).
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tomllib
from pathlib import Path

from portcullis.model.facts import (
    AuditFacts,
    DaemonConfig,
    FileStat,
    HostFacts,
    Listener,
    MountEntry,
    SystemdUnit,
)
from portcullis.model.findings import CollectionProblem

PROC = Path("/proc")
COMMAND_TIMEOUT = 10

# Files whose owner and mode CIS sections 1 and 3 inspect (unit files are added from systemd).
CIS_PATHS = (
    "/etc/docker",
    "/etc/docker/daemon.json",
    "/etc/default/docker",
    "/etc/sysconfig/docker",
    "/etc/containerd/config.toml",
    "/run/containerd",
    "/run/containerd/containerd.sock",
    "/var/run/docker.sock",
    "/etc/docker/certs.d",
)
BINARIES = (
    "dockerd",
    "containerd",
    "containerd-shim",
    "containerd-shim-runc-v1",
    "containerd-shim-runc-v2",
    "runc",
)
UNITS = ("docker.service", "docker.socket", "containerd.service")


def stat_path(path: str) -> FileStat:
    """Owner and mode of what `path` names; a symlink is followed, since its target's permissions are what count."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return FileStat(path=path, exists=False)
    except OSError as exc:
        return FileStat(path=path, exists=False, error=f"{type(exc).__name__}: {exc.strerror}")
    if stat.S_ISDIR(st.st_mode):
        kind = "dir"
    elif stat.S_ISREG(st.st_mode):
        kind = "file"
    elif stat.S_ISSOCK(st.st_mode):
        kind = "socket"
    else:
        kind = "other"
    return FileStat(
        path=path,
        exists=True,
        kind=kind,
        uid=st.st_uid,
        gid=st.st_gid,
        owner=_user_name(st.st_uid),
        group=_group_name(st.st_gid),
        mode=stat.S_IMODE(st.st_mode),
        mtime=st.st_mtime,
    )


def _user_name(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _group_name(gid: int) -> str | None:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None


def _run(argv: list[str]) -> subprocess.CompletedProcess[str] | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def read_text(path: str | Path, limit: int = 1 << 20) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(limit)
    except OSError:
        return None


# --- host -------------------------------------------------------------------------------------


def _unescape(field: str) -> str:
    """The kernel writes blanks, tabs, newlines and backslashes in mount paths as three-digit octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _mounts() -> list[MountEntry] | None:
    """Mount table from mountinfo, which (unlike /proc/mounts) tells bind mounts apart from real filesystems."""
    text = read_text(PROC / "self" / "mountinfo")
    if text is None:
        return _mounts_without_mountinfo()
    entries = []
    for line in text.splitlines():
        # id parent major:minor root mountpoint options [optional...] - fstype source super-options
        head, sep, tail = line.partition(" - ")
        fields, extra = head.split(), tail.split()
        if not sep or len(fields) < 6 or len(extra) < 2:
            continue
        entries.append(
            MountEntry(
                source=_unescape(extra[1]),
                mountpoint=_unescape(fields[4]),
                fstype=extra[0],
                options=fields[5].split(","),
                device=fields[2],
                fs_root=_unescape(fields[3]),
            )
        )
    return entries


def _mounts_without_mountinfo() -> list[MountEntry] | None:
    text = read_text(PROC / "self" / "mounts")
    if text is None:
        return None
    entries = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4:
            entries.append(
                MountEntry(
                    source=_unescape(parts[0]),
                    mountpoint=_unescape(parts[1]),
                    fstype=parts[2],
                    options=parts[3].split(","),
                )
            )
    return entries


def _docker_group() -> tuple[int | None, list[str]]:
    """gid of group docker (None when there is no such group) and every user in it."""
    try:
        group = grp.getgrnam("docker")
    except KeyError:
        return None, []
    members = set(group.gr_mem)
    members.update(user.pw_name for user in pwd.getpwall() if user.pw_gid == group.gr_gid)
    return group.gr_gid, sorted(members)


def _audit_rules() -> AuditFacts:
    if shutil.which("auditctl") is None:
        return AuditFacts(auditctl_present=False, rules=None, error="auditctl is not installed")
    result = _run(["auditctl", "-l"])
    if result is None or result.returncode != 0:
        reason = (result.stderr.strip() if result else "") or "auditctl -l failed"
        return AuditFacts(auditctl_present=True, rules=None, error=reason)
    rules = [line for line in result.stdout.splitlines() if line.strip() and line.strip() != "No rules"]
    return AuditFacts(auditctl_present=True, rules=rules)


def _systemd_units() -> dict[str, SystemdUnit] | None:
    if not Path("/run/systemd/system").is_dir():
        return None  # systemd is not the init system here
    result = _run(["systemctl", "show", "--property=Id,FragmentPath,Listen,ExecStart", "--", *UNITS])
    if result is None or result.returncode != 0:
        return None
    units: dict[str, SystemdUnit] = {}
    for block in result.stdout.strip().split("\n\n"):
        props: dict[str, list[str]] = {}
        for line in block.splitlines():
            key, _, value = line.partition("=")
            props.setdefault(key, []).append(value)
        name = (props.get("Id") or [""])[0]
        if not name:
            continue
        fragment = (props.get("FragmentPath") or [""])[0] or None
        listens = [v.split(" ", 1)[0] for v in props.get("Listen", []) if v]
        units[name] = SystemdUnit(
            name=name, fragment_path=fragment, listen_streams=listens, exec_start=props.get("ExecStart", [])
        )
    return units


def _unit_files_without_systemd() -> dict[str, SystemdUnit]:
    """Where systemd is not running, the unit files packages installed still exist and CIS still names them."""
    units = {}
    for name in UNITS:
        for base in ("/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"):
            candidate = Path(base) / name
            if candidate.exists():
                listens = []
                text = read_text(candidate) or ""
                for line in text.splitlines():
                    if line.strip().startswith("ListenStream="):
                        listens.append(line.split("=", 1)[1].strip())
                units[name] = SystemdUnit(name=name, fragment_path=str(candidate), listen_streams=listens)
                break
    return units


def listening_sockets(net_dir: Path = PROC / "net") -> list[tuple[str, int, int]]:
    """(address, port, socket inode) of every listening TCP socket in `net_dir`'s tcp and tcp6 tables.

    `net_dir` is /proc/net for this process's network namespace, /proc/PID/net for another process's.
    """
    sockets: list[tuple[str, int, int]] = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        text = read_text(net_dir / table, limit=16 << 20)
        if text is None:
            continue
        for line in text.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 10 or fields[3] != "0A":  # 0A = LISTEN
                continue
            address_hex, port_hex = fields[1].split(":")
            raw = bytes.fromhex(address_hex)
            if family == socket.AF_INET:
                address = socket.inet_ntop(family, raw[::-1])
            else:
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                address = socket.inet_ntop(family, words)
            sockets.append((address, int(port_hex, 16), int(fields[9])))
    return sockets


def _tcp_listeners() -> list[Listener]:
    return [Listener(address=address, port=port) for address, port, _ in listening_sockets()]


def _lsm_state() -> tuple[bool | None, bool | None]:
    apparmor_flag = read_text("/sys/module/apparmor/parameters/enabled")
    apparmor = apparmor_flag is not None and apparmor_flag.strip().upper().startswith("Y")
    selinux = False
    enforce = read_text("/sys/fs/selinux/enforce")
    if enforce is not None:
        selinux = True
    return apparmor, selinux


def _os_release() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (read_text("/etc/os-release") or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"')
    return values


# --- dockerd's surroundings ----------------------------------------------------------------------

SYSTEM_CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
DEFAULT_EXEC_ROOT = "/var/run/docker"
BINARY_SEARCH_PATH = "/usr/bin:/usr/sbin:/usr/local/bin:/usr/local/sbin:/bin:/sbin"
# dockerd's environment variables that decide its TLS files and where it finds its binaries
ENV_NAMES = ("DOCKER_CERT_PATH", "DOCKER_CONFIG", "DOCKER_TLS_VERIFY", "HOME", "PATH")


def _process_env(pid: int, names: tuple[str, ...]) -> dict[str, str]:
    """Only the named variables of a process environment (the rest may hold secrets and is not kept)."""
    try:
        raw = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return {}
    found = {}
    for entry in raw.split(b"\0"):
        key, sep, value = entry.decode(errors="replace").partition("=")
        if sep and key in names:
            found[key] = value
    return found


# Where users' login shells get a system-wide environment (pam_env, POSIX and bash profiles).
PROFILE_FILES = ("/etc/environment", "/etc/profile", "/etc/bash.bashrc", "/etc/zsh/zshenv")
PROFILE_DIR = Path("/etc/profile.d")
MAX_PROFILE_FILES = 200
_CONTENT_TRUST_LINE = re.compile(r"^\s*(?:export\s+)?DOCKER_CONTENT_TRUST=[\"']?([^\"'\s;#]*)", re.MULTILINE)


def _profile_content_trust() -> dict[str, str]:
    """The last DOCKER_CONTENT_TRUST each system-wide profile sets (what a user's shell ends up with from it)."""
    paths = [Path(name) for name in PROFILE_FILES]
    with contextlib.suppress(OSError):
        paths += sorted(PROFILE_DIR.glob("*.sh"))[:MAX_PROFILE_FILES]
    found = {}
    for path in paths:
        text = read_text(path, 256 * 1024) if path.is_file() else None  # is_file: a FIFO would block the read
        value = content_trust_setting(text or "")
        if value is not None:
            found[str(path)] = value
    return found


def content_trust_setting(profile: str) -> str | None:
    """The value the last `[export] DOCKER_CONTENT_TRUST=…` line of a shell profile sets; comments do not count."""
    values = _CONTENT_TRUST_LINE.findall(profile)
    return values[-1] if values else None


def _children(pid: int, comm: str) -> list[tuple[int, list[str]]]:
    """Processes named `comm` whose parent is `pid`, with their argv."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or (read_text(entry / "comm") or "").strip() != comm:
            continue
        status = read_text(entry / "status") or ""
        ppid = next((line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), None)
        if ppid != str(pid):
            continue
        try:
            argv = [part.decode(errors="replace") for part in (entry / "cmdline").read_bytes().split(b"\0") if part]
        except OSError:
            continue
        found.append((int(entry.name), argv))
    return found


def _containerd_address(argv: list[str]) -> str | None:
    """The gRPC socket of a containerd process: --address, else [grpc] address of its --config file."""
    probe = DaemonConfig(dockerd_cmdline=argv)
    addresses = probe.flag_values("--address", "-a")
    if addresses:
        return addresses[-1]
    configs = probe.flag_values("--config", "-c")
    text = read_text(configs[-1]) if configs else None
    if text is None:
        return None
    try:
        grpc = tomllib.loads(text).get("grpc", {})
    except tomllib.TOMLDecodeError:
        return None
    address = grpc.get("address") if isinstance(grpc, dict) else None
    return address if isinstance(address, str) and address else None


def _containerd_socket(daemon: DaemonConfig) -> tuple[str, str]:
    """The containerd socket dockerd talks to, and how we know.

    dockerd uses --containerd (or daemon.json "containerd") when given; otherwise the system containerd
    when its socket exists, else it starts its own containerd under its exec-root.
    """
    explicit = daemon.flag_values("--containerd")
    if explicit:
        return explicit[-1], "dockerd --containerd"
    configured = (daemon.daemon_json or {}).get("containerd")
    if isinstance(configured, str) and configured:
        return configured, "daemon.json containerd"
    if daemon.dockerd_pid is not None:
        for pid, argv in _children(daemon.dockerd_pid, "containerd"):
            address = _containerd_address(argv)
            if address:
                return address, f"containerd (pid {pid}) started by dockerd"
    if os.path.exists(SYSTEM_CONTAINERD_SOCKET):
        return SYSTEM_CONTAINERD_SOCKET, "system containerd"
    exec_roots = daemon.flag_values("--exec-root")
    configured_root = (daemon.daemon_json or {}).get("exec-root")
    exec_root = exec_roots[-1] if exec_roots else configured_root if isinstance(configured_root, str) else None
    return f"{exec_root or DEFAULT_EXEC_ROOT}/containerd/containerd.sock", "dockerd-managed containerd (expected path)"


def _truthy(values: list[str]) -> bool:
    return bool(values) and values[-1].lower() not in ("false", "0")


def _tls_files(daemon: DaemonConfig) -> dict[str, str]:
    """The TLS files dockerd really uses; empty when it does not serve TLS.

    TLS is on with --tls/--tlsverify (or their daemon.json keys, or DOCKER_TLS_VERIFY in dockerd's
    environment). A file not named explicitly defaults to DOCKER_CERT_PATH, else the user's ~/.docker;
    dockerd ignores a default certificate or key that does not exist, and reads the CA only to verify clients.
    """
    config = daemon.daemon_json or {}
    env = _process_env(daemon.dockerd_pid, ENV_NAMES) if daemon.dockerd_pid is not None else {}
    verify_flag = daemon.flag_values("--tlsverify")
    if verify_flag:
        verify = _truthy(verify_flag)
    elif "tlsverify" in config:
        verify = config["tlsverify"] is True
    else:
        verify = bool(env.get("DOCKER_TLS_VERIFY"))
    # naming tlsverify at all, even as false, switches TLS on
    verify_named = bool(verify_flag) or "tlsverify" in config
    tls_on = verify or verify_named or _truthy(daemon.flag_values("--tls")) or config.get("tls") is True
    if not tls_on:
        return {}
    cert_dir = env.get("DOCKER_CERT_PATH") or env.get("DOCKER_CONFIG") or _home_docker_dir(daemon, env)
    files: dict[str, str] = {}
    for key, default_name in (("tlscacert", "ca.pem"), ("tlscert", "cert.pem"), ("tlskey", "key.pem")):
        named = daemon.flag_values(f"--{key}")
        value = named[-1] if named else config.get(key)
        if isinstance(value, str) and value:
            files[key] = value
        elif cert_dir and (key != "tlscacert" or verify):
            default = os.path.join(cert_dir, default_name)
            if key == "tlscacert" or os.path.exists(default):
                files[key] = default
    return files


def _home_docker_dir(daemon: DaemonConfig, env: dict[str, str]) -> str | None:
    home = env.get("HOME")
    if not home and daemon.dockerd_uid is not None:
        try:
            home = pwd.getpwuid(daemon.dockerd_uid).pw_dir
        except KeyError:
            home = None
    return os.path.join(home, ".docker") if home else None


def _binaries(daemon: DaemonConfig) -> dict[str, str | None]:
    """The real file of each engine binary, looked up on dockerd's own PATH like dockerd does.

    Symlinks are resolved: an audit watch on a symlink does not see changes to the file it points to.
    """
    env = _process_env(daemon.dockerd_pid, ENV_NAMES) if daemon.dockerd_pid is not None else {}
    search = ":".join(part for part in (env.get("PATH"), BINARY_SEARCH_PATH) if part)
    found: dict[str, str | None] = {}
    for name in BINARIES:
        located = shutil.which(name, path=search)
        found[name] = os.path.realpath(located) if located else None
    if daemon.dockerd_pid is not None:
        with contextlib.suppress(OSError):  # unreadable: keep the PATH lookup
            found["dockerd"] = os.readlink(PROC / str(daemon.dockerd_pid) / "exe").removesuffix(" (deleted)")
    return found


def _unix_path(address: str) -> str | None:
    if address.startswith("unix://"):
        return address[len("unix://") :]
    return address if address.startswith("/") else None


def collect_host(
    daemon: DaemonConfig, data_root: str, problems: list[CollectionProblem], endpoint: str | None = None
) -> HostFacts:
    docker_gid, docker_members = _docker_group()
    host = HostFacts(
        hostname=socket.gethostname(),
        kernel=os.uname().release,
        os_release=_os_release(),
        mounts=_mounts(),
        docker_group_members=docker_members,
        docker_group_gid=docker_gid,
        audit=_audit_rules(),
    )
    units = _systemd_units()
    host.systemd_units = units if units is not None else _unit_files_without_systemd()
    host.binaries = _binaries(daemon)
    host.containerd_socket, host.containerd_socket_source = _containerd_socket(daemon)
    host.tls_files = _tls_files(daemon)

    paths = set(CIS_PATHS) | {data_root, daemon.daemon_json_path, host.containerd_socket}
    paths.add(os.path.dirname(host.containerd_socket))
    for address in [endpoint or "", *daemon.flag_values("-H", "--host")]:
        socket_path = _unix_path(address)
        if socket_path:
            paths.add(socket_path)
    for unit in host.systemd_units.values():
        if unit.fragment_path:
            paths.add(unit.fragment_path)
        paths.update(p for p in unit.listen_streams if p.startswith("/"))
    paths.update(host.tls_files.values())
    paths.update(binary for binary in host.binaries.values() if binary)
    host.files = {path: stat_path(path) for path in sorted(paths)}

    certs_dir = Path("/etc/docker/certs.d")
    if certs_dir.is_dir():
        try:
            host.cert_files = [stat_path(str(p)) for p in sorted(certs_dir.rglob("*"))]
        except OSError as exc:
            problems.append(CollectionProblem(fact="/etc/docker/certs.d", reason=str(exc)))
    else:
        host.cert_files = []
    host.apparmor_enabled, host.selinux_enabled = _lsm_state()
    host.content_trust_env = os.environ.get("DOCKER_CONTENT_TRUST")
    if daemon.dockerd_pid is not None:
        host.daemon_content_trust_env = _process_env(daemon.dockerd_pid, ("DOCKER_CONTENT_TRUST",)).get(
            "DOCKER_CONTENT_TRUST"
        )
    host.profile_content_trust = _profile_content_trust()
    host.tcp_listeners = _tcp_listeners()
    return host
