"""An allow-list seccomp profile from what a workload really calls, shipped only once the workload runs under it.

Sources, combined: strace on a gated copy (the workload's own calls), the kernel's SCMP_ACT_LOG audit records
(also runc's calls after the filter is installed, and exec'd smoke commands), and runc's start-up baseline. The
profile is verified by running the workload under it; when that fails, a LOG-mode rerun with the same allow list
names the syscalls it would have denied, they are added, and the loop runs again, a bounded number of times.
Slim's best-known defect (profiles that stop containers from starting) is what this loop exists to prevent.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portcullis.collect.sandbox import Sandbox
from portcullis.harden import HardenError
from portcullis.harden.syscall_record import RunOutcome, Workload, observed_syscalls, run_workload
from portcullis.harden.syscalls import SECCOMP_ARCH, SECCOMP_SUBARCHES

DOCKER_DEFAULT_PROFILE = Path("/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json")
ENOSYS = 38
MAX_ATTEMPTS = 3
# Where the first allow list comes from; the LOG-mode diagnosis after a failed verification is always used.
ROUTES = frozenset({"strace", "audit", "runc-baseline"})

# What runc (1.1) itself calls between installing the filter and exec'ing the workload, and what every
# process needs to start and end; strace on the workload cannot see the runc part.
RUNC_BASELINE = frozenset(
    {
        "capget",
        "capset",
        "close",
        "close_range",
        "epoll_ctl",
        "epoll_pwait",
        "execve",
        "exit",
        "exit_group",
        "fchown",
        "fcntl",
        "fstat",
        "fstatfs",
        "futex",
        "getdents64",
        "getpid",
        "getppid",
        "nanosleep",
        "newfstatat",
        "openat",
        "prctl",
        "read",
        "restart_syscall",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "setgid",
        "setgroups",
        "setuid",
        "tgkill",
        "write",
    }
)


@dataclass
class ProfileSize:
    names: int  # distinct syscall names some rule allows
    unconditional: int  # names allowed with no argument, capability or architecture condition
    compact_bytes: int  # the profile as compact JSON


def profile_size(profile: dict[str, Any]) -> ProfileSize:
    allowed: set[str] = set()
    unconditional: set[str] = set()
    for rule in profile.get("syscalls") or []:
        if rule.get("action") != "SCMP_ACT_ALLOW":
            continue
        names = set(rule.get("names") or ([rule["name"]] if rule.get("name") else []))
        allowed |= names
        if not rule.get("args") and not rule.get("includes") and not rule.get("excludes"):
            unconditional |= names
    compact = json.dumps(profile, separators=(",", ":"))
    return ProfileSize(len(allowed), len(unconditional), len(compact.encode()))


def docker_default_profile(path: Path = DOCKER_DEFAULT_PROFILE) -> dict[str, Any] | None:
    """Docker's own default profile as Debian ships it for this engine, or None if it is not installed."""
    try:
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded


def host_arch() -> str:
    machine = platform.machine()
    arch = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}.get(machine)
    if arch is None:
        raise HardenError(f"seccomp profiles are generated for x86_64 and aarch64 only, not {machine}")
    return arch


def _arch_map(arch: str) -> list[dict[str, Any]]:
    return [{"architecture": SECCOMP_ARCH[arch], "subArchitectures": SECCOMP_SUBARCHES[arch]}]


def build_profile(allowed: set[str], arch: str, default_action: str = "SCMP_ACT_ERRNO") -> dict[str, Any]:
    """The allow-list profile; everything else gets `default_action` (EPERM, or LOG for a diagnosis run)."""
    rules: list[dict[str, Any]] = [{"names": sorted(allowed), "action": "SCMP_ACT_ALLOW"}]
    if "clone3" not in allowed and default_action == "SCMP_ACT_ERRNO":
        # As Docker does: ENOSYS, not EPERM, makes glibc fall back to clone(2) instead of failing.
        rules.append(
            {
                "names": ["clone3"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": ENOSYS,
                "comment": "ENOSYS lets the C library fall back to clone",
            }
        )
    return {"defaultAction": default_action, "archMap": _arch_map(arch), "syscalls": rules}


def works(reference: RunOutcome, outcome: RunOutcome) -> bool:
    """Does a run under a profile behave like the reference run: same exit code, or still up and answering?"""
    if not outcome.started:
        return False
    if reference.exited:
        if not outcome.exited or outcome.exit_code != reference.exit_code:
            return False
    elif outcome.exited:
        return False
    return outcome.smoke_passed is not False


@dataclass
class Attempt:
    number: int
    allowed: int
    result: str
    verified: bool
    denied: list[str] = field(default_factory=list)  # what a LOG-mode rerun showed the profile denied


@dataclass
class SeccompResult:
    workload: str
    arch: str
    verified: bool
    profile: dict[str, Any] | None  # only a verified profile
    last_tried: dict[str, Any]
    sources: dict[str, list[str]]  # syscall name -> routes that saw it (strace, audit, runc-baseline, diagnosis)
    reference: str
    attempts: list[Attempt]
    audit_source: str
    notes: list[str]

    def sizes(self, default: dict[str, Any] | None) -> dict[str, Any]:
        ours = profile_size(self.last_tried)
        document: dict[str, Any] = {"profile": ours.__dict__}
        if default is not None:
            theirs = profile_size(default)
            document["docker_default"] = theirs.__dict__
            docker_names = {
                n for rule in default["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" for n in rule["names"]
            }
            ours_names = set(self.last_tried["syscalls"][0]["names"])
            document["denied_that_docker_allows"] = len(docker_names - ours_names)
            document["allowed_that_docker_denies"] = sorted(ours_names - docker_names)
        return document


def generate(
    box: Sandbox,
    workload: Workload,
    *,
    routes: frozenset[str] = ROUTES,
    max_attempts: int = MAX_ATTEMPTS,
    allow_host_tuning: bool = False,
    log: Callable[[str], None] = lambda _: None,
) -> SeccompResult:
    arch = host_arch()
    if unknown := routes - ROUTES:
        raise HardenError(
            f"unknown recording route(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(ROUTES))})"
        )
    log(f"recording {workload.description} for up to {workload.duration:.0f} s ({', '.join(sorted(routes))})")
    reference = run_workload(
        box,
        workload,
        json.dumps(build_profile(set(), arch, "SCMP_ACT_LOG")),
        trace="strace" in routes,
        audit="audit" in routes,
        allow_host_tuning=allow_host_tuning,
        log=log,
    )
    if not reference.started:
        raise HardenError(f"the workload does not start even without a restrictive profile: {reference.start_error}")
    if reference.smoke_passed is False:
        raise HardenError(f"the smoke check fails even without a restrictive profile: {reference.smoke_output[:300]}")
    notes: list[str] = []
    if reference.exited and reference.exit_code != 0:
        notes.append(f"the workload exits {reference.exit_code} without the profile; verification expects the same")
    if reference.audit_loss:
        notes.append("kernel log records were lost to rate limiting; the verify loop makes up for it")
    sources: dict[str, list[str]] = {}
    if reference.strace is not None:
        for name in reference.strace.syscalls:
            sources.setdefault(name, []).append("strace")
    for name in reference.audited:
        sources.setdefault(name, []).append("audit")
    for name in RUNC_BASELINE if "runc-baseline" in routes else ():
        sources.setdefault(name, []).append("runc-baseline")
    allowed = set(sources)
    log(f"reference run: {reference.summary}; {len(allowed)} syscalls ({reference.audit_source or 'no audit'})")

    attempts: list[Attempt] = []
    profile = build_profile(allowed, arch)
    for number in range(1, max_attempts + 1):
        profile = build_profile(allowed, arch)
        outcome = run_workload(box, workload, json.dumps(profile), log=log)
        ok = works(reference, outcome)
        attempt = Attempt(number, len(allowed), outcome.summary, ok)
        attempts.append(attempt)
        log(f"verification {number}: {len(allowed)} syscalls allowed, {outcome.summary}")
        if ok:
            return SeccompResult(
                workload.description, arch, True, profile, profile, sources, reference.summary, attempts,
                reference.audit_source, notes,
            )  # fmt: skip
        diagnosis = run_workload(
            box, workload, json.dumps(build_profile(allowed, arch, "SCMP_ACT_LOG")), audit=True,
            allow_host_tuning=allow_host_tuning, log=log,
        )  # fmt: skip
        missing = sorted(observed_syscalls(diagnosis) - allowed)
        attempt.denied = missing
        if not missing:
            notes.append(
                "the LOG-mode rerun logged no syscall outside the allow list: the failure is not (only) seccomp, "
                "or the workload is not deterministic"
            )
            break
        log(f"  denied under the profile (from a LOG-mode rerun): {', '.join(missing)}")
        for name in missing:
            sources.setdefault(name, []).append("diagnosis")
        allowed |= set(missing)
    return SeccompResult(
        workload.description, arch, False, None, profile, sources, reference.summary, attempts,
        reference.audit_source, notes,
    )  # fmt: skip
