"""Processes of running containers, read from the host's /proc through each container's cgroup.

One directory walk per container instead of one `ps` run by the daemon (the API's `top`) or, worse,
one `docker exec` per check. Under `--pid host` the container's cgroup still holds only its own
processes, so the host's daemons are never blamed on the container. Docker names every container
cgroup after the full container id (`/docker/<id>`, `docker-<id>.scope`, `<parent>/<id>`); a
hierarchy whose path lacks the id (e.g. the root cgroup `/` when runc skipped that hierarchy) would
list foreign processes and is never used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from portcullis.collect.host import read_text
from portcullis.model.facts import ContainerFacts, ProcessInfo

PROC = Path("/proc")
CGROUP_ROOT = Path("/sys/fs/cgroup")
MAX_PROCESSES = 4096
# v1 hierarchies tried in this order; every one that holds the container has all of its processes.
V1_PREFERENCE = ("pids", "memory", "cpu", "cpuacct", "systemd", "devices", "freezer", "blkio", "cpuset")


def _candidate_dirs(cgroup_text: str, container_id: str, cgroup_root: Path) -> list[Path]:
    """Directories of the container's cgroup, best first, from the lines of /proc/<pid>/cgroup."""
    unified: list[Path] = []
    v1: dict[str, list[Path]] = {}
    for line in cgroup_text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if container_id not in path:
            continue  # the root cgroup or a shared ancestor: it holds processes that are not the container's
        relative = path.lstrip("/")
        if controllers == "":
            # pure cgroup v2 mounts the unified tree at the root; hybrid hosts under "unified"
            unified += [cgroup_root / relative, cgroup_root / "unified" / relative]
            continue
        names = [c.removeprefix("name=") for c in controllers.split(",")]
        mounts = [cgroup_root / ",".join(names)] + [cgroup_root / name for name in names]
        for name in names:
            v1[name] = [mount / relative for mount in mounts]
    ordered = unified + [d for name in V1_PREFERENCE for d in v1.get(name, [])]
    ordered += [d for name, dirs in v1.items() if name not in V1_PREFERENCE for d in dirs]
    return ordered


def find_cgroup_dir(pid: int, container_id: str, proc: Path = PROC, cgroup_root: Path = CGROUP_ROOT) -> Path | None:
    """The cgroup directory holding the container whose init is `pid`; None when no hierarchy shows it."""
    text = read_text(proc / str(pid) / "cgroup")
    if not text:
        return None
    for candidate in _candidate_dirs(text, container_id, cgroup_root):
        if (candidate / "cgroup.procs").is_file():
            return candidate
    return None


def cgroup_pids(directory: Path) -> list[int] | None:
    """Every pid in the cgroup and its sub-cgroups (a container may create its own); None if unreadable."""
    pids: list[int] = []
    seen: set[int] = set()
    for current, _dirs, files in os.walk(directory):
        if "cgroup.procs" not in files:
            continue
        text = read_text(Path(current) / "cgroup.procs")
        if text is None:
            if Path(current) == directory:
                return None
            continue  # a sub-cgroup removed while walking
        for word in text.split():
            pid = int(word)
            if pid not in seen:
                seen.add(pid)
                pids.append(pid)
        if len(pids) >= MAX_PROCESSES:
            return pids[:MAX_PROCESSES]
    return pids


def read_process(pid: int, proc: Path = PROC) -> ProcessInfo | None:
    comm = read_text(proc / str(pid) / "comm")
    if comm is None:
        return None  # exited between listing and reading
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()[:4096]
    except OSError:
        raw = b""
    uid = None
    for line in (read_text(proc / str(pid) / "status") or "").splitlines():
        if line.startswith("Uid:"):
            uid = int(line.split()[1])
            break
    cmdline = [p.decode(errors="replace") for p in raw.split(b"\0") if p]
    return ProcessInfo(pid=pid, comm=comm.strip(), cmdline=cmdline, uid=uid)


class PidNamespaces:
    """Host pids grouped by pid namespace, built once per audit and only when a container has no cgroup
    of its own (rootless Docker on cgroup v1)."""

    def __init__(self, proc: Path = PROC) -> None:
        self.proc = proc
        self._by_namespace: dict[str, list[int]] | None = None

    def namespace_of(self, pid: int | str) -> str | None:
        try:
            return os.readlink(self.proc / str(pid) / "ns" / "pid")
        except OSError:
            return None

    def pids(self, namespace: str) -> list[int]:
        if self._by_namespace is None:
            self._by_namespace = {}
            for entry in self.proc.iterdir():
                if entry.name.isdigit():
                    found = self.namespace_of(entry.name)
                    if found is not None:
                        self._by_namespace.setdefault(found, []).append(int(entry.name))
        return sorted(self._by_namespace.get(namespace, []))


def attach_local_processes(
    container: ContainerFacts,
    proc: Path = PROC,
    cgroup_root: Path = CGROUP_ROOT,
    namespaces: PidNamespaces | None = None,
) -> None:
    """Fill `processes` of a running container from the host's /proc, or say why in `processes_error`.

    Through the container's own cgroup; a container without one (rootless Docker on cgroup v1) is read
    through its own pid namespace instead, unless it shares the host's, whose processes are not its own.
    """
    if not container.state.running or container.state.pid <= 0:
        return
    init_pid = container.state.pid
    directory = find_cgroup_dir(init_pid, container.id, proc, cgroup_root)
    if directory is None:
        _attach_by_namespace(container, init_pid, namespaces or PidNamespaces(proc), cgroup_root)
        return
    pids = cgroup_pids(directory)
    if pids is None:
        container.processes_error = f"cannot read {directory / 'cgroup.procs'}"
        return
    if init_pid not in pids:
        # The init left the cgroup or the container restarted meanwhile: the listing is not this container's.
        container.processes_error = f"the container's init (pid {init_pid}) is not in {directory}"
        return
    container.processes = [p for p in (read_process(pid, proc) for pid in pids) if p is not None]
    container.processes_source = "cgroup"


def processes_from_top(top: dict[str, Any]) -> list[ProcessInfo]:
    """Convert the API's `top` answer (Titles + Processes rows from ps -ef)."""
    titles = [str(t) for t in top.get("Titles") or []]
    rows: list[list[Any]] = top.get("Processes") or []
    pid_col = titles.index("PID") if "PID" in titles else 1
    cmd_col = titles.index("CMD") if "CMD" in titles else len(titles) - 1
    processes = []
    for row in rows:
        command = str(row[cmd_col])
        argv = command.split()
        comm = Path(argv[0]).name if argv else ""
        processes.append(ProcessInfo(pid=int(row[pid_col]), comm=comm, cmdline=argv))
    return processes


def _attach_by_namespace(
    container: ContainerFacts, init_pid: int, namespaces: PidNamespaces, cgroup_root: Path
) -> None:
    own = namespaces.namespace_of(init_pid)
    if own is None or own == namespaces.namespace_of("self"):
        container.processes_error = (
            f"no cgroup named after the container was found for its init (pid {init_pid}) under {cgroup_root}, "
            "and it has no pid namespace of its own"
        )
        return
    pids = namespaces.pids(own)
    container.processes = [p for p in (read_process(pid, namespaces.proc) for pid in pids) if p is not None]
    container.processes_source = "pid-namespace"
