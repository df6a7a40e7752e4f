"""Watch what a workload asks of the kernel: a host-side strace attach and the kernel's seccomp audit records.

Route 1, strace: the copy starts behind a gate (`sh -c 'read _; exec "$@"'` with stdin attached), strace attaches
to its init pid, then the gate opens; only what follows the gate's `execve` is the workload's. Route 2, audit: the
copy runs under a profile whose default action is SCMP_ACT_LOG, so every syscall outside the allow list produces
an audit record `type=1326 … syscall=N`, including runc's own calls after the filter is installed, which strace
cannot see. The records are read from the audit netlink multicast group (complete, not rate limited), or else
from /dev/kmsg, where printk rate limiting drops records unless the host's `kernel.printk_ratelimit` is lowered
(only with the user's consent, and always restored).
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.errors

from portcullis.collect.sandbox import Sandbox
from portcullis.harden import HardenError
from portcullis.harden.syscalls import SyscallTableError, syscall_name

GATE = 'read _ ; exec "$@"'
POLL = 0.2
STRACE_ATTACH_TIMEOUT = 10.0
STOP_GRACE = 2  # seconds between SIGTERM and SIGKILL when a service copy is stopped
SMOKE_TIMEOUT = 20.0

NETLINK_AUDIT = 9
AUDIT_NLGRP_READLOG = 1
AUDIT_SECCOMP = 1326
SECCOMP_RET_LOG = 0x7FFC0000
PRINTK_RATELIMIT = Path("/proc/sys/kernel/printk_ratelimit")

_AUDIT_FIELDS = re.compile(r"\b(pid|arch|syscall|code)=(\S+)")


# --- the workload --------------------------------------------------------------------------------------------


@dataclass
class Workload:
    """What to run: a container's (or image's) configuration, copied into labelled experiment containers."""

    image: str
    argv: list[str]
    config: dict[str, Any] = field(default_factory=dict)  # Env, User, WorkingDir… (docker create body keys)
    host_config: dict[str, Any] = field(default_factory=dict)
    smoke: list[str] | None = None  # run inside the copy (docker exec); must exit 0
    host_probe: str | None = None  # run on the host, `{ip}` replaced by the copy's address; must exit 0
    duration: float = 10.0
    labels: dict[str, str] = field(default_factory=dict)
    description: str = ""


def workload_from_image(api: Any, image: str, command: list[str] | None) -> Workload:
    try:
        config = api.inspect_image(image)["Config"] or {}
    except docker.errors.ImageNotFound:
        raise HardenError(f"image {image} is not in the engine (pull or build it first)") from None
    entrypoint = list(config.get("Entrypoint") or [])
    argv = entrypoint + (list(command) if command else list(config.get("Cmd") or []))
    if not argv:
        raise HardenError(f"image {image} has no command: give one after `--`")
    body = {"Env": config.get("Env") or [], "User": config.get("User") or "", "WorkingDir": config.get("WorkingDir")}
    return Workload(image=image, argv=argv, config=body, description=f"image {image}: {shlex.join(argv)}")


def workload_from_container(api: Any, name: str) -> Workload:
    """A copy of a container's process and settings; its writable mounts become empty tmpfs (never its data)."""
    try:
        original = api.inspect_container(name)
    except docker.errors.NotFound:
        raise HardenError(f"no container named {name!r}") from None
    config = original["Config"]
    argv = [original["Path"], *original.get("Args", [])]
    host = original["HostConfig"]
    mounts: list[dict[str, Any]] = []
    for mount in original.get("Mounts") or []:
        target = mount.get("Destination")
        if mount.get("Type") == "tmpfs" or mount.get("RW"):
            mounts.append({"Type": "tmpfs", "Target": target})
        elif mount.get("Type") == "volume":
            mounts.append({"Type": "volume", "Source": mount.get("Name"), "Target": target, "ReadOnly": True})
        else:
            mounts.append({"Type": "bind", "Source": mount.get("Source"), "Target": target, "ReadOnly": True})
    network = host.get("NetworkMode") or "default"
    host_config = {
        key: host.get(key)
        for key in ("CapAdd", "CapDrop", "ReadonlyRootfs", "Tmpfs", "Memory", "PidsLimit", "Ulimits", "ShmSize")
        if host.get(key)
    }
    host_config["Mounts"] = mounts
    # Sharing another container's namespace would tie the copy to it; the default bridge is enough.
    host_config["NetworkMode"] = "default" if network.startswith("container:") else network
    body = {key: config.get(key) for key in ("Env", "User", "WorkingDir") if config.get(key)}
    return Workload(
        image=original["Image"], argv=argv, config=body, host_config=host_config, description=f"container {name}"
    )


# --- strace --------------------------------------------------------------------------------------------------

_LINE = re.compile(r"^(\d+)\s+(.*)$")
_CALL = re.compile(r"^([a-z_][a-z0-9_]*)\((.*)$")
_RESULT = re.compile(r"\)\s+=\s+(-?\d+|\?|0x[0-9a-f]+)")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")


@dataclass
class StraceRecording:
    """What strace saw from the gate's exec on: syscall counts, and file, exec and socket use for AppArmor."""

    syscalls: Counter[str] = field(default_factory=Counter)
    reads: set[str] = field(default_factory=set)
    writes: set[str] = field(default_factory=set)
    execs: set[str] = field(default_factory=set)
    sockets: set[tuple[str, str]] = field(default_factory=set)  # (family, type) e.g. ("inet6", "stream")
    bound_ports: set[int] = field(default_factory=set)
    capability_hints: set[str] = field(default_factory=set)


def _absolute(path: str, cwd: str) -> str:
    return os.path.normpath(path if path.startswith("/") else os.path.join(cwd, path))


def parse_strace(text: str, gated_pid: int | None) -> StraceRecording:
    """Parse `strace -f -o` output (`PID call(args) = ret`); the gated pid counts only from its first execve."""
    recording = StraceRecording()
    cwd: dict[int, str] = {}
    last_forker = 0
    released = gated_pid is None
    for raw in text.splitlines():
        line_match = _LINE.match(raw)
        if not line_match:
            continue
        pid, rest = int(line_match.group(1)), line_match.group(2)
        if pid not in cwd:
            # A new pid: a child of the last process that forked (the clone result is a pid of the container's
            # namespace, not the host pid strace prints, so the two cannot be matched exactly).
            cwd[pid] = cwd.get(last_forker, "/")
        call = _CALL.match(rest)
        if call is None:  # `<... x resumed>`, `--- SIGTERM ---`, `+++ exited +++`: the call was counted already
            continue
        name, args = call.groups()
        if not released:
            if pid != gated_pid or name != "execve":
                continue
            released = True
        recording.syscalls[name] += 1
        if name in ("clone", "clone3", "fork", "vfork"):
            last_forker = pid
        result = _RESULT.search(rest)
        succeeded = result is not None and not result.group(1).startswith("-")
        if succeeded:
            _note_use(recording, name, args, cwd[pid])
            if name == "chdir" and (strings := _STRING.findall(args)):
                cwd[pid] = _absolute(strings[0], cwd[pid])
    return recording


def _note_use(recording: StraceRecording, name: str, args: str, cwd: str) -> None:
    strings = _STRING.findall(args)
    if name in ("open", "openat", "creat") and strings:
        path = _absolute(strings[0], cwd)
        writes = name == "creat" or any(flag in args for flag in _WRITE_FLAGS)
        (recording.writes if writes else recording.reads).add(path)
    elif name in ("mkdir", "mkdirat", "unlink", "unlinkat", "rmdir", "rename", "renameat", "renameat2") and strings:
        recording.writes.update(_absolute(s, cwd) for s in strings)
    elif name in ("execve", "execveat") and strings:
        recording.execs.add(_absolute(strings[0], cwd))
    elif name == "socket":
        parts = [p.strip() for p in args.split(",")]
        if len(parts) >= 2:
            family = parts[0].removeprefix("AF_").lower()
            kind = parts[1].split("|")[0].removeprefix("SOCK_").lower()
            recording.sockets.add((family, kind))
            if family == "packet" or kind == "raw":
                recording.capability_hints.add("net_raw")
    elif name == "bind" and (port := re.search(r"htons\((\d+)\)", args)):
        recording.bound_ports.add(int(port.group(1)))
        if 0 < int(port.group(1)) < 1024:
            recording.capability_hints.add("net_bind_service")
    else:
        hint = _CAPABILITY_BY_SYSCALL.get(name)
        if hint:
            recording.capability_hints.add(hint)


# A successful call of these needs the capability (as root in a container, the usual case).
_CAPABILITY_BY_SYSCALL = {
    "chown": "chown",
    "fchown": "chown",
    "lchown": "chown",
    "fchownat": "chown",
    "setuid": "setuid",
    "setreuid": "setuid",
    "setresuid": "setuid",
    "setgid": "setgid",
    "setregid": "setgid",
    "setresgid": "setgid",
    "setgroups": "setgid",
    "mknod": "mknod",
    "mknodat": "mknod",
    "chroot": "sys_chroot",
}


class StraceAttach:
    """`strace -f` on a running pid, writing to a private file; `finish()` waits for it and parses the output."""

    def __init__(self, pid: int, directory: str) -> None:
        if shutil.which("strace") is None:
            raise HardenError("strace is not installed (apt-get install strace)")
        self.pid = pid
        self.output = Path(directory) / f"strace-{pid}.txt"
        command = ["strace", "-f", "-qq", "-e", "trace=all", "-s", "512", "-o", str(self.output), "-p", str(pid)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self._wait_attached()

    def _wait_attached(self) -> None:
        deadline = time.monotonic() + STRACE_ATTACH_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = (self.process.stderr.read() if self.process.stderr else "").strip().splitlines()
                raise HardenError(f"strace could not attach to pid {self.pid}: {error[-1] if error else 'no output'}")
            if _tracer_pid(self.pid):
                return
            time.sleep(0.01)
        self.process.kill()
        raise HardenError(f"strace did not attach to pid {self.pid} within {STRACE_ATTACH_TIMEOUT:.0f} s")

    def finish(self, gated: bool, timeout: float = 15.0) -> StraceRecording:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        text = self.output.read_text(encoding="utf-8", errors="replace") if self.output.exists() else ""
        return parse_strace(text, self.pid if gated else None)

    def abort(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _tracer_pid(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


# --- audit records -------------------------------------------------------------------------------------------


@dataclass
class AuditRecord:
    pid: int
    syscall: str


def parse_audit_record(text: str) -> AuditRecord | None:
    """A seccomp LOG record (`type=1326 … arch=c000003e syscall=N … code=0x7ffc0000`), else None."""
    fields = dict(_AUDIT_FIELDS.findall(text))
    if not {"pid", "arch", "syscall", "code"} <= fields.keys():
        return None
    try:
        if int(fields["code"], 16) & 0xFFFF0000 != SECCOMP_RET_LOG:
            return None
        return AuditRecord(int(fields["pid"]), syscall_name(fields["arch"], int(fields["syscall"])))
    except (ValueError, SyscallTableError):
        return None


class AuditListener:
    """Collects the seccomp LOG records of one container while it runs, on a background thread.

    A record is the container's when its pid is (or was, if it has gone by the time the record is read) in the
    container's cgroup; records of live processes in other cgroups are ignored.
    """

    def __init__(self, allow_host_tuning: bool) -> None:
        self.container_id = ""
        self.counts: Counter[str] = Counter()
        self.suspected_loss = False
        self.source = ""
        self.note = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._restore_ratelimit: str | None = None
        self._sock: socket.socket | None = None
        self._kmsg: int | None = None
        self._open(allow_host_tuning)

    def _open(self, allow_host_tuning: bool) -> None:
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
            sock.bind((0, 1 << (AUDIT_NLGRP_READLOG - 1)))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
            self._sock, self.source = sock, "audit netlink (complete)"
            return
        except OSError as exc:
            netlink_error = exc.strerror or str(exc)
        try:
            self._kmsg = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
            os.lseek(self._kmsg, 0, os.SEEK_END)
        except OSError as exc:
            raise HardenError(
                f"cannot read the kernel's audit records (netlink: {netlink_error}; /dev/kmsg: {exc.strerror}): "
                "run as root"
            ) from None
        self.source = "/dev/kmsg"
        if allow_host_tuning:
            self._restore_ratelimit = PRINTK_RATELIMIT.read_text().strip()
            PRINTK_RATELIMIT.write_text("0\n")
            self.source += f" (kernel.printk_ratelimit 0 for the run, was {self._restore_ratelimit})"
        else:
            self.source += " (rate limited; --allow-host-tuning lifts the limit for the run)"

    def start(self, container_id: str) -> None:
        self.container_id = container_id
        self._thread = threading.Thread(target=self._read_loop, name="portcullis-audit", daemon=True)
        self._thread.start()

    def _read_loop(self) -> None:
        while not self._stop.is_set():
            self._drain(0.1)
        self._drain(0.3)  # records of the last calls arrive a little after the container ends

    def _drain(self, wait: float) -> None:
        source: Any = self._sock if self._sock is not None else self._kmsg
        while select.select([source], [], [], wait)[0]:
            for text in self._read_some():
                self._consider(text)
            wait = 0

    def _read_some(self) -> list[str]:
        if self._sock is not None:
            data = self._sock.recv(1 << 16)
            length, kind = struct.unpack_from("=IH", data)
            return [data[16:length].decode(errors="replace")] if kind == AUDIT_SECCOMP else []
        assert self._kmsg is not None
        try:
            line = os.read(self._kmsg, 8192).decode(errors="replace")
        except BlockingIOError:
            return []
        except BrokenPipeError:  # the ring buffer overwrote records we had not read yet
            self.suspected_loss = True
            return []
        message = line.partition(";")[2]
        if "kauditd_printk_skb" in message and "suppressed" in message:
            self.suspected_loss = True
        return [message] if "type=1326" in message else []

    def _consider(self, text: str) -> None:
        record = parse_audit_record(text)
        if record is not None and self._belongs(record.pid):
            self.counts[record.syscall] += 1

    def _belongs(self, pid: int) -> bool:
        try:
            cgroups = Path(f"/proc/{pid}/cgroup").read_text()
        except OSError:
            return True  # gone already: short-lived processes of the container are the usual case
        return self.container_id in cgroups

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()
        if self._kmsg is not None:
            os.close(self._kmsg)
        if self._restore_ratelimit is not None:
            _restore_sysctl(PRINTK_RATELIMIT, self._restore_ratelimit)
            self._restore_ratelimit = None


def _restore_sysctl(path: Path, value: str) -> None:
    """Write back a host setting; Ctrl-C and SIGTERM wait until it is done."""
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    previous_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        path.write_text(value + "\n")
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)


# --- one run of the workload ---------------------------------------------------------------------------------


@dataclass
class RunOutcome:
    exited: bool
    exit_code: int | None
    smoke_passed: bool | None  # None: no smoke/probe given
    smoke_output: str
    logs: str
    started: bool = True
    start_error: str = ""
    strace: StraceRecording | None = None
    audited: Counter[str] = field(default_factory=Counter)
    audit_source: str = ""
    audit_loss: bool = False

    @property
    def summary(self) -> str:
        if not self.started:
            return f"did not start: {self.start_error}"
        state = f"exited {self.exit_code}" if self.exited else "kept running"
        if self.smoke_passed is not None:
            state += ", smoke " + ("passed" if self.smoke_passed else f"failed: {self.smoke_output.strip()[:200]}")
        return state


def run_workload(
    box: Sandbox,
    workload: Workload,
    seccomp_profile: str | None,
    *,
    trace: bool = False,
    audit: bool = False,
    allow_host_tuning: bool = False,
    log: Callable[[str], None] = lambda _: None,
) -> RunOutcome:
    """Run one labelled copy for at most `workload.duration` seconds under `seccomp_profile` (JSON text)."""
    listener = AuditListener(allow_host_tuning) if audit else None
    tracer: StraceAttach | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="portcullis-strace-") as directory:
            gated = trace
            try:
                container_id, stdin = _create_and_start(box, workload, seccomp_profile, gated, listener)
            except _NoShell:
                log("the image has no /bin/sh for the start gate: strace attaches just after the start")
                gated = False
                container_id, stdin = _create_and_start(box, workload, seccomp_profile, gated, listener)
            except _StartRefused as refused:
                return RunOutcome(False, None, None, "", refused.logs, started=False, start_error=str(refused))
            if trace:
                pid = int(box.conn.api.inspect_container(container_id)["State"].get("Pid") or 0)
                if pid:
                    tracer = StraceAttach(pid, directory)
            if stdin is not None:
                stdin.sendall(b"\n")
                stdin.close()
            outcome = _observe(box, container_id, workload)
            if tracer is not None:
                outcome.strace = tracer.finish(gated)
                tracer = None
    finally:
        if tracer is not None:
            tracer.abort()
        if listener is not None:
            listener.close()
    if listener is not None:
        outcome.audited = listener.counts
        outcome.audit_source = listener.source
        outcome.audit_loss = listener.suspected_loss
    return outcome


class _NoShell(Exception):
    pass


class _StartRefused(Exception):
    def __init__(self, message: str, logs: str) -> None:
        super().__init__(message)
        self.logs = logs


def _create_and_start(
    box: Sandbox, workload: Workload, seccomp_profile: str | None, gated: bool, listener: AuditListener | None
) -> tuple[str, Any]:
    api = box.conn.api
    host_config = dict(workload.host_config)
    if seccomp_profile is not None:
        host_config["SecurityOpt"] = [*(host_config.get("SecurityOpt") or []), f"seccomp={seccomp_profile}"]
    host_config.setdefault("NetworkMode", "default")
    body: dict[str, Any] = {
        **workload.config,
        "Image": workload.image,
        "Labels": {**box.labels, **workload.labels},
        "HostConfig": host_config,
    }
    if gated:
        body.update(Entrypoint=["/bin/sh", "-c", GATE, "portcullis-gate"], Cmd=workload.argv, OpenStdin=True)
        body.update(AttachStdin=True, StdinOnce=True)
    else:
        body.update(Entrypoint=workload.argv[:1], Cmd=workload.argv[1:])
    try:
        container_id = str(api.create_container_from_config(body)["Id"])
    except docker.errors.ImageNotFound:
        raise HardenError(f"image {workload.image} is not in the engine") from None
    except docker.errors.APIError as exc:
        raise HardenError(f"the engine refused the experiment container: {exc.explanation or exc}") from None
    box.created.append(container_id)
    stdin = None
    if gated:
        attached = api.attach_socket(container_id, params={"stdin": 1, "stream": 1})
        stdin = getattr(attached, "_sock", attached)
    if listener is not None:
        listener.start(container_id)
    try:
        api.start(container_id)
    except docker.errors.APIError as exc:
        message = str(exc.explanation or exc)
        if stdin is not None:
            stdin.close()
        if gated and ("/bin/sh" in message and ("no such file" in message or "not found" in message)):
            raise _NoShell() from None
        logs = api.logs(container_id, stdout=True, stderr=True).decode(errors="replace")
        raise _StartRefused(message, logs) from None
    return container_id, stdin


def _observe(box: Sandbox, container_id: str, workload: Workload) -> RunOutcome:
    """Wait until the copy exits or the duration ends, running the smoke checks once it is up; then stop it."""
    api = box.conn.api
    deadline = time.monotonic() + workload.duration
    checks = _smoke_checks(workload)
    smoke_passed: bool | None = None if not checks else False
    smoke_output = ""
    state: dict[str, Any] = {}
    while True:
        state = api.inspect_container(container_id)["State"]
        running = bool(state.get("Running"))
        if not running:
            break
        if checks and not smoke_passed:
            smoke_passed, smoke_output = _run_checks(api, container_id, state, checks)
        if time.monotonic() >= deadline:
            break
        time.sleep(POLL)
    exited = not state.get("Running")
    if not exited:
        with contextlib.suppress(docker.errors.APIError):
            api.stop(container_id, timeout=STOP_GRACE)
    final = api.inspect_container(container_id)["State"]
    logs = api.logs(container_id, stdout=True, stderr=True, tail=50).decode(errors="replace")
    exit_code = int(final.get("ExitCode", -1)) if exited else None
    return RunOutcome(exited, exit_code, smoke_passed, smoke_output, logs)


def _smoke_checks(workload: Workload) -> list[tuple[str, Any]]:
    checks: list[tuple[str, Any]] = []
    if workload.smoke:
        checks.append(("exec", workload.smoke))
    if workload.host_probe:
        checks.append(("host", workload.host_probe))
    return checks


def _run_checks(api: Any, container_id: str, state: dict[str, Any], checks: list[tuple[str, Any]]) -> tuple[bool, str]:
    for kind, command in checks:
        if kind == "exec":
            code, output = _exec(api, container_id, command)
        else:
            code, output = _host_probe(api, container_id, command)
        if code != 0:
            return False, f"{kind} check exited {code}: {output}"
    return True, ""


def _exec(api: Any, container_id: str, command: list[str]) -> tuple[int, str]:
    try:
        exec_id = api.exec_create(container_id, command)["Id"]
        output = api.exec_start(exec_id).decode(errors="replace")
        return int(api.exec_inspect(exec_id).get("ExitCode") or 0), output
    except docker.errors.APIError as exc:
        return 126, f"could not run: {exc.explanation or exc}"


def _host_probe(api: Any, container_id: str, command: str) -> tuple[int, str]:
    networks = api.inspect_container(container_id)["NetworkSettings"].get("Networks") or {}
    address = next((n.get("IPAddress") for n in networks.values() if n.get("IPAddress")), "")
    try:
        done = subprocess.run(
            shlex.split(command.replace("{ip}", address)), capture_output=True, text=True, timeout=SMOKE_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 126, str(exc)
    return done.returncode, (done.stdout + done.stderr)[-500:]


def observed_syscalls(outcome: RunOutcome) -> set[str]:
    """Every syscall name a run saw, by either route."""
    names = set(outcome.audited)
    if outcome.strace is not None:
        names.update(outcome.strace.syscalls)
    return names
