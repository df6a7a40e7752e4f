"""Processes of running containers, read from the host's /proc through each container's cgroup.

One directory listing per container instead of one `ps` run by the daemon (the API's `top`)
or, worse, one `docker exec` per check. Under `--pid host` the cgroup still holds only the
container's own processes, so the host's daemons are never blamed on the container.
"""

from __future__ import annotations

from pathlib import Path

from portcullis.collect.host import read_text
from portcullis.model.facts import ContainerFacts, ProcessInfo

PROC = Path("/proc")
CGROUP_ROOT = Path("/sys/fs/cgroup")
MAX_PROCESSES = 4096


def _cgroup_procs_file(pid: int) -> Path | None:
    """The cgroup.procs file of the cgroup `pid` lives in (v2 unified, else the v1 pids/memory/cpu tree)."""
    text = read_text(PROC / str(pid) / "cgroup")
    if not text:
        return None
    v1: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            candidate = CGROUP_ROOT / path.lstrip("/") / "cgroup.procs"
            if candidate.exists():
                return candidate
            unified = CGROUP_ROOT / "unified" / path.lstrip("/") / "cgroup.procs"
            if unified.exists():
                return unified
        for controller in controllers.split(","):
            v1[controller.removeprefix("name=")] = path
    for controller in ("pids", "memory", "cpu,cpuacct", "cpu", "systemd"):
        name = controller.split(",")[0]
        if name in v1:
            for mount in (CGROUP_ROOT / controller, CGROUP_ROOT / name):
                candidate = mount / v1[name].lstrip("/") / "cgroup.procs"
                if candidate.exists():
                    return candidate
    return None


def _process(pid: int) -> ProcessInfo | None:
    comm = read_text(PROC / str(pid) / "comm")
    if comm is None:
        return None  # exited between listing and reading
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()[:4096]
    except OSError:
        raw = b""
    uid = None
    for line in (read_text(PROC / str(pid) / "status") or "").splitlines():
        if line.startswith("Uid:"):
            uid = int(line.split()[1])
            break
    cmdline = [p.decode(errors="replace") for p in raw.split(b"\0") if p]
    return ProcessInfo(pid=pid, comm=comm.strip(), cmdline=cmdline, uid=uid)


def attach_local_processes(container: ContainerFacts) -> None:
    if not container.state.running or container.state.pid <= 0:
        return
    procs_file = _cgroup_procs_file(container.state.pid)
    if procs_file is None:
        container.processes_error = "the container's cgroup could not be found under /sys/fs/cgroup"
        return
    text = read_text(procs_file)
    if text is None:
        container.processes_error = f"cannot read {procs_file}"
        return
    pids = [int(p) for p in text.split()[:MAX_PROCESSES]]
    container.processes = [p for p in (_process(pid) for pid in pids) if p is not None]
    container.processes_source = "cgroup"


def processes_from_top(top: dict[str, object]) -> list[ProcessInfo]:
    """Convert the API's `top` answer (Titles + Processes rows from ps -ef)."""
    titles = [str(t) for t in top.get("Titles", []) or []]  # type: ignore[attr-defined]
    rows = top.get("Processes", []) or []
    pid_col = titles.index("PID") if "PID" in titles else 1
    cmd_col = titles.index("CMD") if "CMD" in titles else len(titles) - 1
    processes = []
    for row in rows:  # type: ignore[attr-defined]
        command = str(row[cmd_col])
        argv = command.split()
        comm = Path(argv[0]).name if argv else ""
        processes.append(ProcessInfo(pid=int(row[pid_col]), comm=comm, cmdline=argv))
    return processes
