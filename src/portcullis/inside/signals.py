"""Signals of what a containerised process can reach, read from procfs and by harmless live probes.

Standard library only, and valid on Python 3.8: this module also ships inside the single-file
`portcullis-inside.pyz` that users copy into a container. It reads either its own process
(`collect_self`, run inside the container) or a container's init process from the host
(`collect_from_host`, through /proc/<pid> and /proc/<pid>/root). Nothing here writes outside a
private temporary directory, and every probe that could change state runs in a forked child.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import socket
import stat
import tempfile
from typing import Any, Dict, List, Optional

SIGNALS_VERSION = "1"

# Syscall numbers for the probes that glibc does not wrap.
SYSCALLS = {
    "x86_64": {"keyctl": 250, "add_key": 248, "clock_settime": 227},
    "aarch64": {"keyctl": 219, "add_key": 217, "clock_settime": 112},
}
CLONE_NEWUSER = 0x10000000
CLONE_NEWNS = 0x00020000
KEYCTL_GET_KEYRING_ID = 0
KEY_SPEC_SESSION_KEYRING = -3

SOCKET_CANDIDATES = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock",
    "/run/podman/podman.sock",
    "/var/run/crio/crio.sock",
)
WRITABLE_CANDIDATES = (
    "/proc/sys/kernel/core_pattern",
    "/proc/sysrq-trigger",
    "/sys/kernel/uevent_helper",
    "/proc/sys/kernel/modprobe",
    "/proc/sys/vm/panic_on_oom",
    "/sys/fs/cgroup/release_agent",
)
# Where setuid-root and file-capability executables live; what a non-root process could exec to gain caps.
PRIVILEGE_DIRS = ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/usr/libexec")
MAX_DIR_ENTRIES = 4096
VFS_CAP_XATTR = "security.capability"
NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts", "time")
MAX_READ = 1 << 20


def _read(path: str, limit: int = MAX_READ) -> Optional[str]:
    try:
        with open(path, "rb") as handle:
            return handle.read(limit).decode("utf-8", "replace")
    except OSError:
        return None


def _status_fields(text: Optional[str]) -> Dict[str, str]:
    fields: Dict[str, str] = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def _namespaces(proc: str) -> Dict[str, Optional[str]]:
    links: Dict[str, Optional[str]] = {}
    for name in NAMESPACES:
        try:
            links[name] = os.readlink(os.path.join(proc, "ns", name))
        except OSError:
            links[name] = None
    return links


def _lsm_label(proc: str) -> Dict[str, Any]:
    """attr/current: EINVAL or ENOENT mean that no LSM is active, which is a fact, not an error."""
    path = os.path.join(proc, "attr", "current")
    try:
        with open(path, "rb") as handle:
            label = handle.read(4096).decode("utf-8", "replace").strip("\0\n ")
        return {"state": "labelled", "label": label}
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.ENOENT):
            return {"state": "none", "label": None}
        return {"state": "unknown", "label": None, "error": os.strerror(exc.errno or 0)}


def _mountinfo(proc: str) -> Optional[List[Dict[str, Any]]]:
    text = _read(os.path.join(proc, "mountinfo"))
    if text is None:
        return None
    entries = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        parts = left.split()
        tail = right.split()
        if not sep or len(parts) < 6 or len(tail) < 2:
            continue
        entries.append(
            {
                "root": parts[3].replace("\\040", " "),
                "mountpoint": parts[4].replace("\\040", " "),
                "options": parts[5].split(","),
                "fstype": tail[0],
                "source": tail[1],
                "super_options": tail[2].split(",") if len(tail) > 2 else [],
            }
        )
    return entries


def _devices(root: str) -> Optional[List[Dict[str, Any]]]:
    found: List[Dict[str, Any]] = []
    dev = os.path.join(root, "dev")
    try:
        names = sorted(os.listdir(dev))
    except OSError:
        return None
    for name in names[:512]:
        path = os.path.join(dev, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISBLK(st.st_mode) or stat.S_ISCHR(st.st_mode):
            found.append(
                {
                    "name": "/dev/" + name,
                    "type": "block" if stat.S_ISBLK(st.st_mode) else "char",
                    "major": os.major(st.st_rdev),
                    "minor": os.minor(st.st_rdev),
                }
            )
    return found


def _uid_map(proc: str) -> List[List[int]]:
    rows = []
    for line in (_read(os.path.join(proc, "uid_map")) or "").splitlines():
        parts = line.split()
        if len(parts) == 3:
            rows.append([int(p) for p in parts])
    return rows


def _net_interfaces(proc: str) -> List[str]:
    names = []
    for line in (_read(os.path.join(proc, "net", "dev")) or "").splitlines()[2:]:
        name = line.split(":", 1)[0].strip()
        if name:
            names.append(name)
    return names


def _sockets(root: str, mounts: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """API sockets visible in the tree: the well-known paths and any bind-mounted *.sock."""
    paths = set(SOCKET_CANDIDATES)
    for mount in mounts:
        if mount["mountpoint"].endswith(".sock"):
            paths.add(mount["mountpoint"])
    found = []
    for path in sorted(paths):
        full = os.path.join(root, path.lstrip("/"))
        try:
            st = os.stat(full)
        except OSError:
            continue
        if stat.S_ISSOCK(st.st_mode):
            found.append({"path": path, "host_path": full, "mode": stat.S_IMODE(st.st_mode)})
    return found


def ping_docker_socket(path: str, timeout: float = 2.0) -> Optional[bool]:
    """True when an Engine API answers `/_ping` on the unix socket; None when it cannot be asked."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(timeout)
    try:
        client.connect(path)
        client.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        reply = client.recv(256)
    except OSError:
        return None
    finally:
        client.close()
    return reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0]


def _writable(root: str, paths: List[str]) -> Dict[str, bool]:
    """access(W_OK), which honours read-only mounts (EROFS); `test -w` lies for root."""
    result = {}
    for path in paths:
        full = os.path.join(root, path.lstrip("/"))
        if os.path.exists(full):
            result[path] = os.access(full, os.W_OK)
    return result


def _release_agents(root: str) -> List[str]:
    agents: List[str] = []
    base = os.path.join(root, "sys", "fs", "cgroup")
    try:
        names = os.listdir(base)
    except OSError:
        return agents
    for name in names:
        candidate = os.path.join(base, name, "release_agent")
        if os.path.exists(candidate):
            agents.append("/sys/fs/cgroup/" + name + "/release_agent")
    if os.path.exists(os.path.join(base, "release_agent")):
        agents.append("/sys/fs/cgroup/release_agent")
    return agents


def _file_capabilities(path: str) -> Optional[int]:
    """The permitted mask of a file's `security.capability` xattr (struct vfs_cap_data), or None without one."""
    try:
        raw = os.getxattr(path, VFS_CAP_XATTR, follow_symlinks=False)
    except OSError:
        return None
    words = [int.from_bytes(raw[i : i + 4], "little") for i in range(0, len(raw) - 3, 4)]
    if len(words) < 3:
        return None
    high = words[3] if len(words) >= 5 else 0  # revision 2 and 3 carry a second word for caps 32-63
    return words[1] | high << 32


def _privilege_files(root: str) -> Optional[List[Dict[str, Any]]]:
    """Executables a process could exec to gain privileges: setuid root, or carrying file capabilities.

    None when not one of the directories could be listed (then reachability cannot be told).
    """
    found: List[Dict[str, Any]] = []
    listed = False
    for directory in PRIVILEGE_DIRS:
        full_dir = os.path.join(root, directory.lstrip("/"))
        try:
            names = sorted(os.listdir(full_dir))[:MAX_DIR_ENTRIES]
        except OSError:
            continue
        listed = True
        for name in names:
            full = os.path.join(full_dir, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            setuid_root = bool(st.st_mode & stat.S_ISUID) and st.st_uid == 0
            caps = _file_capabilities(full)
            if setuid_root or caps:
                found.append({"path": directory + "/" + name, "setuid_root": setuid_root, "file_caps": caps})
    return found if listed else None


# --- live probes (inside only; each in a forked child so nothing leaks into this process) --------


def _in_child(action: Any) -> Optional[int]:
    """Run `action()` in a forked child; return the errno it reports (0 = the call succeeded)."""
    pid = os.fork()
    if pid == 0:  # child: report via the exit status, never return into the caller
        code = 255
        try:
            code = int(action())
        except Exception:
            code = 254
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        return None if code >= 254 else code
    return None


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _call_errno(result: int) -> int:
    return 0 if result == 0 else ctypes.get_errno()


def _probe_unshare(flags: int) -> Optional[int]:
    return _in_child(lambda: _call_errno(_libc().unshare(ctypes.c_int(flags))))


def _probe_keyctl() -> Optional[int]:
    numbers = SYSCALLS.get(platform.machine())
    if not numbers:
        return None
    keyctl = numbers["keyctl"]

    def call() -> int:
        result = _libc().syscall(
            ctypes.c_long(keyctl),
            ctypes.c_long(KEYCTL_GET_KEYRING_ID),
            ctypes.c_long(KEY_SPEC_SESSION_KEYRING),
            ctypes.c_long(0),
        )
        return 0 if result >= 0 else ctypes.get_errno()

    return _in_child(call)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _probe_clock_settime() -> Optional[int]:
    """An invalid timespec: EINVAL means the call passed seccomp (args are checked before CAP_SYS_TIME).

    The raw syscall, because glibc rejects the invalid timespec itself before entering the kernel.
    """
    numbers = SYSCALLS.get(platform.machine())
    if not numbers:
        return None

    def call() -> int:
        invalid = _Timespec(0, 2_000_000_000)
        result = _libc().syscall(ctypes.c_long(numbers["clock_settime"]), ctypes.c_long(0), ctypes.byref(invalid))
        return 0 if result == 0 else ctypes.get_errno()

    return _in_child(call)


def _probe_cgroup_mount() -> Optional[int]:
    """Can a cgroup v1 hierarchy be mounted? Tried in a private mount namespace of a child, then dropped."""

    def call() -> int:
        libc = _libc()
        if libc.unshare(ctypes.c_int(CLONE_NEWNS)) != 0:
            return ctypes.get_errno()
        target = tempfile.mkdtemp(prefix="portcullis-cg-")
        try:
            result = libc.mount(b"cgroup", target.encode(), b"cgroup", ctypes.c_ulong(0), b"memory")
            code = _call_errno(result)
            if result == 0:
                libc.umount2(target.encode(), 2)
            return code
        finally:
            os.rmdir(target)

    return _in_child(call)


def _errno_name(code: Optional[int]) -> Optional[str]:
    if code is None:
        return None
    return "ok" if code == 0 else errno.errorcode.get(code, str(code))


def live_probes() -> Dict[str, Optional[str]]:
    return {
        "unshare_user": _errno_name(_probe_unshare(CLONE_NEWUSER)),
        "keyctl": _errno_name(_probe_keyctl()),
        "clock_settime_invalid": _errno_name(_probe_clock_settime()),
        "cgroup_v1_mount": _errno_name(_probe_cgroup_mount()),
    }


# --- entry points --------------------------------------------------------------------------------


def _collect(proc: str, root: str, host_proc: Optional[str]) -> Dict[str, Any]:
    status = _status_fields(_read(os.path.join(proc, "status")))
    mounts = _mountinfo(proc)
    sockets = _sockets(root, mounts or [])
    signals: Dict[str, Any] = {
        "version": SIGNALS_VERSION,
        "machine": platform.machine(),
        "kernel": platform.release(),
        "uid": int(status.get("Uid", "-1 ").split()[0]),
        "caps": {key: status.get(key) for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")},
        "seccomp_mode": int(status["Seccomp"]) if status.get("Seccomp", "").isdigit() else None,
        "no_new_privs": status.get("NoNewPrivs") == "1" if "NoNewPrivs" in status else None,
        "lsm": _lsm_label(proc),
        "namespaces": _namespaces(proc),
        "host_namespaces": _namespaces(host_proc) if host_proc else None,
        "uid_map": _uid_map(proc),
        "mounts": mounts,
        "devices": _devices(root),
        "sockets": sockets,
        "writable": _writable(root, list(WRITABLE_CANDIDATES) + _release_agents(root)),
        "interfaces": _net_interfaces(proc),
        "pid1_comm": (_read(os.path.join(root, "proc", "1", "comm")) or "").strip() if host_proc is None else None,
        "visible_pids": (
            sum(1 for name in os.listdir(os.path.join(root, "proc")) if name.isdigit()) if host_proc is None else None
        ),
        "dockerenv": os.path.exists(os.path.join(root, ".dockerenv")),
        "privilege_files": _privilege_files(root),
        "probes": None,
    }
    for entry in sockets:
        entry["answers_ping"] = ping_docker_socket(entry["host_path"]) if "docker" in entry["path"] else None
    return signals


def collect_self(probes: bool = True) -> Dict[str, Any]:
    """Signals of this very process, run inside the container."""
    signals = _collect("/proc/self", "/", None)
    signals["mode"] = "inside"
    if probes:
        signals["probes"] = live_probes()
    return signals


def collect_from_host(pid: int) -> Dict[str, Any]:
    """Signals of a container's init process read from the host; live probes need to be inside."""
    proc = "/proc/%d" % pid
    if not os.path.isdir(proc):
        raise FileNotFoundError("no process %d on this host" % pid)
    # Our own namespaces stand for the host: this mode runs on the host (/proc/1 may be unreadable).
    signals = _collect(proc, os.path.join(proc, "root"), "/proc/self")
    signals["mode"] = "host"
    return signals
