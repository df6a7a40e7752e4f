"""Facts from the host this audit runs on: /proc, the files CIS names, auditd, systemd, groups.

Read-only: nothing here writes, and every external command is optional (its absence is a fact).
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import stat
import subprocess
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
    try:
        st = os.lstat(path)
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
    elif stat.S_ISLNK(st.st_mode):
        kind = "symlink"
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
    """/proc/mounts escapes blanks in paths as octal."""
    return field.replace("\\040", " ").replace("\\011", "\t")


def _mounts() -> list[MountEntry] | None:
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


def _docker_group_members() -> list[str] | None:
    try:
        group = grp.getgrnam("docker")
    except KeyError:
        return []
    members = set(group.gr_mem)
    members.update(user.pw_name for user in pwd.getpwall() if user.pw_gid == group.gr_gid)
    return sorted(members)


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


def _tcp_listeners() -> list[Listener] | None:
    listeners: list[Listener] = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        text = read_text(PROC / "net" / table)
        if text is None:
            continue
        for line in text.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 4 or fields[3] != "0A":  # 0A = LISTEN
                continue
            address_hex, port_hex = fields[1].split(":")
            raw = bytes.fromhex(address_hex)
            if family == socket.AF_INET:
                address = socket.inet_ntop(family, raw[::-1])
            else:
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                address = socket.inet_ntop(family, words)
            listeners.append(Listener(address=address, port=int(port_hex, 16)))
    return listeners


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


def collect_host(daemon: DaemonConfig, data_root: str, problems: list[CollectionProblem]) -> HostFacts:
    host = HostFacts(
        hostname=socket.gethostname(),
        kernel=os.uname().release,
        os_release=_os_release(),
        mounts=_mounts(),
        docker_group_members=_docker_group_members(),
        audit=_audit_rules(),
    )
    units = _systemd_units()
    host.systemd_units = units if units is not None else _unit_files_without_systemd()
    host.binaries = {name: shutil.which(name, path="/usr/bin:/usr/sbin:/usr/local/bin:/bin:/sbin") for name in BINARIES}
    containerd_sockets = daemon.flag_values("--containerd")
    host.containerd_socket = containerd_sockets[-1] if containerd_sockets else "/run/containerd/containerd.sock"

    paths = set(CIS_PATHS) | {data_root, daemon.daemon_json_path, host.containerd_socket}
    for unit in host.systemd_units.values():
        if unit.fragment_path:
            paths.add(unit.fragment_path)
        paths.update(p for p in unit.listen_streams if p.startswith("/"))
    for key in ("tlscacert", "tlscert", "tlskey"):
        for value in [*daemon.flag_values(f"--{key}"), str((daemon.daemon_json or {}).get(key) or "")]:
            if value:
                paths.add(value)
    for binary in host.binaries.values():
        if binary:
            paths.add(binary)
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
    host.tcp_listeners = _tcp_listeners()
    return host
