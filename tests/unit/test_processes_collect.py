"""collect/processes.py over recorded /proc and /sys/fs/cgroup trees.

The cgroup files are copied from the project VM (cgroup v1 with the hybrid `unified` mount, Docker
20.10, cgroupfs driver) and from a pure cgroup v2 host with the systemd driver. Every tree also holds
a host sshd in the root cgroup: it must never show up as a container process.
"""

from __future__ import annotations

from pathlib import Path

import docker.errors

from portcullis.collect.execs import attach_exec_sessions, exec_session
from portcullis.collect.processes import attach_local_processes, processes_from_top
from portcullis.model.facts import ContainerFacts

CID = "49d3719b8ad5ecf105ee30aa234f4a20d8192c5f08739e422cd5687fea1d7be0"
V1_CONTROLLERS = ("name=systemd", "pids", "blkio", "freezer", "devices", "memory", "cpuset", "cpuacct", "cpu")
HOST_SSHD = 900


def v1_cgroup_file(path: str, unified: str | None = None) -> str:
    """/proc/<pid>/cgroup as this VM prints it (hierarchy ids 9…1, then the hybrid unified line)."""
    lines = [f"{9 - i}:{controller}:{path}" for i, controller in enumerate(V1_CONTROLLERS)]
    lines.append(f"0::{path if unified is None else unified}")
    return "\n".join(lines) + "\n"


def add_process(proc: Path, pid: int, comm: str, argv: list[str], cgroup: str, uid: int = 0) -> None:
    directory = proc / str(pid)
    directory.mkdir(parents=True)
    (directory / "comm").write_text(comm + "\n")
    (directory / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (directory / "status").write_text(f"Name:\t{comm}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")
    (directory / "cgroup").write_text(cgroup)


def add_cgroup(root: Path, relative: str, pids: list[int]) -> None:
    directory = root / relative
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cgroup.procs").write_text("".join(f"{p}\n" for p in pids))


def running(pid: int, container_id: str = CID, **extra: object) -> ContainerFacts:
    return ContainerFacts.model_validate(
        {"Id": container_id, "Name": "/c", "State": {"Status": "running", "Running": True, "Pid": pid}, **extra}
    )


def vm_tree(tmp_path: Path, unified_created: bool = True) -> tuple[Path, Path]:
    """The VM: container init 14911 (sleep 600), an exec'd sleep 1563, the host's sshd in the root cgroup."""
    proc, cgroups = tmp_path / "proc", tmp_path / "cgroup"
    container_path = f"/docker/{CID}"
    unified = container_path if unified_created else "/"
    add_process(proc, 14911, "sleep", ["sleep", "600"], v1_cgroup_file(container_path, unified))
    add_process(proc, 1563, "sleep", ["sleep", "900"], v1_cgroup_file(container_path, unified), uid=1000)
    add_process(proc, HOST_SSHD, "sshd", ["/usr/sbin/sshd", "-D"], v1_cgroup_file("/"))
    for hierarchy in ("pids", "memory", "cpu", "systemd"):
        add_cgroup(cgroups, f"{hierarchy}/docker/{CID}", [14911, 1563])
        add_cgroup(cgroups, hierarchy, [1, HOST_SSHD])
    add_cgroup(cgroups, "unified", [1, HOST_SSHD] + ([] if unified_created else [14911, 1563]))
    if unified_created:
        add_cgroup(cgroups, f"unified/docker/{CID}", [14911, 1563])
    return proc, cgroups


def test_hybrid_v1_lists_the_container_processes_only(tmp_path: Path) -> None:
    proc, cgroups = vm_tree(tmp_path)
    container = running(14911)
    attach_local_processes(container, proc, cgroups)
    assert container.processes_error is None
    assert container.processes_source == "cgroup"
    assert [(p.pid, p.comm, p.cmdline, p.uid) for p in container.processes or []] == [
        (14911, "sleep", ["sleep", "600"], 0),
        (1563, "sleep", ["sleep", "900"], 1000),
    ]


def test_pid_host_does_not_blame_the_host_sshd(tmp_path: Path) -> None:
    """--pid host changes what the container sees, not its cgroup: the host's sshd stays out."""
    proc, cgroups = vm_tree(tmp_path)
    container = running(14911, HostConfig={"PidMode": "host"})
    attach_local_processes(container, proc, cgroups)
    assert HOST_SSHD not in [p.pid for p in container.processes or []]
    assert "sshd" not in [p.comm for p in container.processes or []]


def test_root_unified_cgroup_is_never_used(tmp_path: Path) -> None:
    """When runc leaves the container in the unified root (`0::/`), the v1 pids hierarchy is used instead."""
    proc, cgroups = vm_tree(tmp_path, unified_created=False)
    container = running(14911)
    attach_local_processes(container, proc, cgroups)
    assert sorted(p.pid for p in container.processes or []) == [1563, 14911]


def test_pure_v2_systemd_driver_and_nested_cgroups(tmp_path: Path) -> None:
    proc, cgroups = tmp_path / "proc", tmp_path / "cgroup"
    scope = f"/system.slice/docker-{CID}.scope"
    add_process(proc, 300, "init", ["/sbin/init"], f"0::{scope}\n")
    add_process(proc, 301, "sshd", ["/usr/sbin/sshd", "-D"], f"0::{scope}/inner\n")
    add_process(proc, HOST_SSHD, "sshd", ["/usr/sbin/sshd", "-D"], "0::/system.slice/ssh.service\n")
    add_cgroup(cgroups, scope.lstrip("/"), [300])
    add_cgroup(cgroups, scope.lstrip("/") + "/inner", [301])
    add_cgroup(cgroups, "system.slice/ssh.service", [HOST_SSHD])
    container = running(300)
    attach_local_processes(container, proc, cgroups)
    assert [(p.pid, p.comm) for p in container.processes or []] == [(300, "init"), (301, "sshd")]


def test_no_cgroup_named_after_the_container_is_an_error(tmp_path: Path) -> None:
    proc, cgroups = vm_tree(tmp_path)
    other = "f" * 64
    container = running(14911, container_id=other)
    attach_local_processes(container, proc, cgroups)
    assert container.processes is None
    assert container.processes_error is not None and "no cgroup named after the container" in container.processes_error


def test_init_missing_from_the_listing_is_an_error(tmp_path: Path) -> None:
    proc, cgroups = vm_tree(tmp_path)
    for hierarchy in ("unified", "pids", "memory", "cpu", "systemd"):
        (cgroups / hierarchy / "docker" / CID / "cgroup.procs").write_text("1563\n")
    container = running(14911)
    attach_local_processes(container, proc, cgroups)
    assert container.processes is None
    assert container.processes_error == f"the container's init (pid 14911) is not in {cgroups}/unified/docker/{CID}"


def test_process_exiting_during_the_walk_is_dropped(tmp_path: Path) -> None:
    proc, cgroups = vm_tree(tmp_path)
    for name in ("comm", "cmdline", "status", "cgroup"):
        (proc / "1563" / name).unlink()
    (proc / "1563").rmdir()
    container = running(14911)
    attach_local_processes(container, proc, cgroups)
    assert [p.pid for p in container.processes or []] == [14911]


def test_stopped_container_is_left_alone(tmp_path: Path) -> None:
    container = ContainerFacts.model_validate({"Id": CID, "Name": "/c", "State": {"Status": "exited", "Pid": 0}})
    attach_local_processes(container, tmp_path / "proc", tmp_path / "cgroup")
    assert container.processes is None and container.processes_error is None


def test_processes_from_api_top() -> None:
    top = {
        "Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        "Processes": [
            ["root", "14911", "14890", "0", "10:00", "?", "00:00:00", "sleep 600"],
            ["root", "2001", "14911", "0", "10:01", "?", "00:00:00", "/usr/sbin/sshd -D"],
        ],
    }
    processes = processes_from_top(top)
    assert [(p.pid, p.comm, p.cmdline) for p in processes] == [
        (14911, "sleep", ["sleep", "600"]),
        (2001, "sshd", ["/usr/sbin/sshd", "-D"]),
    ]


# --- exec sessions (collect/execs.py) -------------------------------------------------------------

# `exec inspect` answers recorded from the project engine (20.10.24): `docker exec -d h3-pidhost sleep 900`
# and an exec created with privileged=True that could not start on this VM.
EXEC_PLAIN = {
    "ID": "e3d13b63e3de",
    "Running": True,
    "ExitCode": None,
    "ProcessConfig": {"tty": False, "entrypoint": "sleep", "arguments": ["900"], "privileged": False},
    "ContainerID": CID,
    "Pid": 1563,
}
EXEC_PRIVILEGED_ROOT = {
    "ID": "374f120f9d2b",
    "Running": False,
    "ExitCode": None,
    "ProcessConfig": {"tty": False, "entrypoint": "sleep", "arguments": ["5"], "privileged": True, "user": "0"},
    "ContainerID": CID,
    "Pid": 0,
}


class RecordedExecApi:
    """Answers exec inspect from recorded payloads and counts the calls."""

    def __init__(self, answers: dict[str, dict[str, object]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def exec_inspect(self, exec_id: str) -> dict[str, object]:
        self.calls.append(exec_id)
        if exec_id not in self.answers:
            raise docker.errors.NotFound(f"No such exec instance: {exec_id}")
        return self.answers[exec_id]


def test_exec_session_conversion() -> None:
    session = exec_session(EXEC_PRIVILEGED_ROOT)
    assert (session.id, session.running, session.privileged, session.user, session.command) == (
        "374f120f9d2b",
        False,
        True,
        "0",
        ["sleep", "5"],
    )
    assert exec_session(EXEC_PLAIN).user == ""


def test_one_call_per_exec_and_vanished_ones_skipped() -> None:
    api = RecordedExecApi({"e3d13b63e3de": EXEC_PLAIN, "374f120f9d2b": EXEC_PRIVILEGED_ROOT})
    container = running(14911, ExecIDs=["e3d13b63e3de", "gone", "374f120f9d2b"])
    attach_exec_sessions(api, container)
    assert api.calls == ["e3d13b63e3de", "gone", "374f120f9d2b"]
    assert [s.id for s in container.exec_sessions or []] == ["e3d13b63e3de", "374f120f9d2b"]
    assert container.exec_sessions_error is None


def test_no_exec_ids_means_an_empty_list_not_unknown() -> None:
    api = RecordedExecApi({})
    container = running(14911, ExecIDs=None)
    attach_exec_sessions(api, container)
    assert container.exec_sessions == [] and api.calls == []
