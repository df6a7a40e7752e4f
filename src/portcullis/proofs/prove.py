"""Dynamic proofs that a container's limits really hold, each demonstrated in a labelled, short-lived
container that carries the same setting (never in the user's own container).

`run_proofs` records one measurement per proof through `collect.sandbox`; the pure verdicts on
those measurements are `checks.prove_judges`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from portcullis.checks.prove_judges import Measurement
from portcullis.collect.sandbox import RunResult, Sandbox, SandboxError

# Capabilities whose absence a proof can demonstrate with a busybox one-liner.
CAPABILITY_PROBES = {
    "CHOWN": "touch /tmp/p && chown 1000 /tmp/p",
    "MKNOD": "mknod /tmp/n c 1 3",
    "NET_RAW": "ping -c1 -W1 127.0.0.1",
}
PYTHON_SYSCALL_PROBE = r"""
import ctypes, errno, json, os, platform
NUMBERS = {"x86_64": {"keyctl": 250, "add_key": 248}, "aarch64": {"keyctl": 219, "add_key": 217}}
numbers = NUMBERS[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)
L = ctypes.c_long
def outcome(result):
    return "ok" if result >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")
found = {}
pid = os.fork()
if pid == 0:
    os._exit(0 if libc.unshare(0x10000000) == 0 else ctypes.get_errno())
code = os.WEXITSTATUS(os.waitpid(pid, 0)[1])
found["unshare(CLONE_NEWUSER)"] = "ok" if code == 0 else errno.errorcode.get(code, "?")
found["keyctl"] = outcome(libc.syscall(L(numbers["keyctl"]), L(0), L(-3), L(0)))
key = (b"user", b"portcullis-probe", b"x", ctypes.c_size_t(1), L(-3))
found["add_key"] = outcome(libc.syscall(L(numbers["add_key"]), *key))
print("PROBES " + json.dumps(found))
"""
# Run as uid 1000 through a setuid-root copy of python: does exec raise the effective uid?
SETUID_PROBE = (
    'cp "$(readlink -f /usr/bin/python3)" /tmp/suid-python && chmod 4755 /tmp/suid-python && '
    "python3 -c 'import os; os.setgid(1000); os.setuid(1000); "
    'os.execv("/tmp/suid-python", ["p", "-c", "import os; print(\\"EUID\\", os.geteuid())"])\''
)


@dataclass
class Policy:
    """The settings whose effect is proven; None/False means the setting is absent."""

    source: str
    memory: int | None = None
    pids_limit: int | None = None
    cpus: float | None = None
    read_only: bool = False
    cap_drop: list[str] = field(default_factory=list)
    cap_add: list[str] = field(default_factory=list)
    seccomp_unconfined: bool = False
    no_new_privileges: bool = False
    userns_remap: bool = False

    @classmethod
    def from_inspect(cls, inspect: dict[str, Any], daemon_security_options: list[str]) -> Policy:
        host = inspect.get("HostConfig") or {}
        security = host.get("SecurityOpt") or []
        cpus = None
        if host.get("NanoCpus"):
            cpus = host["NanoCpus"] / 1e9
        elif host.get("CpuQuota") and host["CpuQuota"] > 0:
            cpus = host["CpuQuota"] / (host.get("CpuPeriod") or 100_000)
        pids = host.get("PidsLimit")
        return cls(
            source=f"container {str(inspect.get('Name', '')).lstrip('/')}",
            memory=host.get("Memory") or None,
            pids_limit=pids if pids and pids > 0 else None,
            cpus=cpus,
            read_only=bool(host.get("ReadonlyRootfs")),
            cap_drop=[c.upper().removeprefix("CAP_") for c in host.get("CapDrop") or []],
            cap_add=[c.upper().removeprefix("CAP_") for c in host.get("CapAdd") or []],
            seccomp_unconfined=any(o.replace(":", "=") == "seccomp=unconfined" for o in security),
            no_new_privileges=any(
                o.replace(":", "=").startswith("no-new-privileges") and not o.endswith("false") for o in security
            ),
            userns_remap=any("name=userns" in o for o in daemon_security_options) and host.get("UsernsMode") != "host",
        )

    def host_options(self) -> dict[str, Any]:
        """The docker host-config options that reproduce this policy in an experiment container."""
        options: dict[str, Any] = {"cap_drop": self.cap_drop or None, "cap_add": self.cap_add or None}
        if self.seccomp_unconfined:
            options["security_opt"] = ["seccomp=unconfined"]
        return options


def _run_record(run: RunResult) -> dict[str, Any]:
    return {
        "exit_code": run.exit_code,
        "output": run.output[-2000:],
        "oom_killed": run.oom_killed,
        "timed_out": run.timed_out,
    }


# --- the experiments -----------------------------------------------------------------------------


@dataclass
class ProofImages:
    busybox: str = "portcullis-test/busybox:1"
    python: str = "portcullis-test/python:bookworm"


@dataclass(frozen=True)
class Lab:
    """What every experiment needs: where to run it, the policy it proves, and the host's facts."""

    box: Sandbox
    policy: Policy
    images: ProofImages
    host_cpus: int
    read_host_uid: Callable[[int], int | None]

    def run(self, image: str, command: list[str], timeout: float, **host_options: Any) -> RunResult:
        """Run in a container carrying the policy's capabilities and seccomp setting, plus `host_options`."""
        return self.box.run(image, command, timeout=timeout, **host_options, **self.policy.host_options())

    def shell(self, script: str, timeout: float, **host_options: Any) -> RunResult:
        return self.run(self.images.busybox, ["sh", "-c", script], timeout, **host_options)


def _prove_memory(lab: Lab) -> Measurement:
    memory = lab.policy.memory
    if not memory:
        return {"absent": "the policy sets no memory limit"}
    attempt = min(memory * 3, 1 << 30)
    script = f'a=$(head -c {attempt} /dev/zero | tr "\\0" x); echo survived ${{#a}}'
    run = lab.shell(script, 60, mem_limit=memory, memswap_limit=memory)
    return {"limit": memory, "allocated": attempt, "run": _run_record(run)}


def _prove_pids(lab: Lab) -> Measurement:
    pids = lab.policy.pids_limit
    if not pids:
        return {"absent": "the policy sets no pids limit"}
    storm = min(pids + 50, 2000)
    # The storm runs in a child shell (a failed fork ends it); the parent counts by a glob, which needs
    # no fork while the table is full.
    script = f'sh -c "for i in \\$(seq 1 {storm}); do sleep 5 & done" 2>/dev/null; set -- /proc/[0-9]*; echo PROCS $#'
    return {"limit": pids, "attempted": storm, "run": _run_record(lab.shell(script, 60, pids_limit=pids))}


def _prove_cpu(lab: Lab) -> Measurement:
    cpus = lab.policy.cpus
    if not cpus:
        return {"absent": "the policy sets no CPU quota"}
    script = 'time timeout 2 sh -c "while :; do :; done" 2>&1'
    run = lab.shell(script, 30, nano_cpus=int(cpus * 1e9))
    # The same spin without a quota shows what the host would give: throttling is the difference.
    control = lab.shell(script, 30)
    return {"cpus": cpus, "host_cpus": lab.host_cpus, "run": _run_record(run), "control": _run_record(control)}


def _prove_read_only(lab: Lab) -> Measurement:
    if not lab.policy.read_only:
        return {"absent": "the policy does not make the root filesystem read-only"}
    return {"run": _run_record(lab.shell("echo x > /portcullis-probe 2>&1 && echo WROTE", 30, read_only=True))}


def _prove_capabilities(lab: Lab) -> Measurement:
    dropped = lab.policy.cap_drop
    probed = sorted(set(CAPABILITY_PROBES) if "ALL" in dropped else set(dropped) & set(CAPABILITY_PROBES))
    if not probed:
        return {"absent": "the policy drops none of CHOWN, MKNOD, NET_RAW"}
    script = "; ".join(f"({CAPABILITY_PROBES[c]}) >/dev/null 2>&1 && echo OK_{c}" for c in probed)
    output = lab.shell(script, 30).output
    return {"operation_succeeded": {cap: f"OK_{cap}" in output for cap in probed}}


def _prove_seccomp(lab: Lab) -> Measurement:
    if lab.policy.seccomp_unconfined:
        return {"absent": "seccomp is unconfined: there is no filter to prove"}
    run = lab.run(lab.images.python, ["python3", "-c", PYTHON_SYSCALL_PROBE], 90)
    return {"cap_add": lab.policy.cap_add, "probes": parse_probes(run.output)}


def _prove_no_new_privileges(lab: Lab) -> Measurement:
    if not lab.policy.no_new_privileges:
        return {"absent": "the policy does not set no-new-privileges"}
    # Both runs leave out the policy's options: the setting alone must make the difference.
    command = ["sh", "-c", SETUID_PROBE]
    control = lab.box.run(lab.images.python, command, timeout=90)
    guarded = lab.box.run(lab.images.python, command, timeout=90, security_opt=["no-new-privileges"])
    return {"control": _run_record(control), "guarded": _run_record(guarded)}


def _prove_userns(lab: Lab) -> Measurement:
    if not lab.policy.userns_remap:
        return {"absent": "the daemon does not remap user namespaces"}
    started = lab.box.start_detached(lab.images.busybox, ["sleep", "30"])
    return {"host_uid": lab.read_host_uid(started.host_pid) if started.host_pid else None}


# Rule id -> its experiment; each returns {"absent": why} when the policy lacks the setting it proves.
EXPERIMENTS: dict[str, Callable[[Lab], Measurement]] = {
    "DKR-PRV-001": _prove_memory,
    "DKR-PRV-002": _prove_pids,
    "DKR-PRV-003": _prove_cpu,
    "DKR-PRV-004": _prove_read_only,
    "DKR-PRV-005": _prove_capabilities,
    "DKR-PRV-006": _prove_seccomp,
    "DKR-PRV-007": _prove_no_new_privileges,
    "DKR-PRV-008": _prove_userns,
}


def _attempt(experiment: Callable[[Lab], Measurement], lab: Lab) -> Measurement:
    try:
        return experiment(lab)
    except SandboxError as exc:
        return {"error": str(exc)}


def run_proofs(
    box: Sandbox, policy: Policy, images: ProofImages, host_cpus: int, read_host_uid: Callable[[int], int | None]
) -> dict[str, Measurement]:
    """One measurement per proof, in a fresh labelled container each; `checks.prove_judges.judge` judges them."""
    lab = Lab(box, policy, images, host_cpus, read_host_uid)
    return {rule_id: _attempt(experiment, lab) for rule_id, experiment in EXPERIMENTS.items()}


def parse_probes(output: str) -> dict[str, str] | None:
    for line in output.splitlines():
        if line.startswith("PROBES "):
            parsed: dict[str, str] = json.loads(line[len("PROBES ") :])
            return parsed
    return None
