"""The profile flows: record a workload on labelled copies and generate a seccomp profile (shipped only when the
workload runs under it), or an AppArmor profile from a policy and/or observed use, checked by apparmor_parser.

Every refusal is a HardenError with one line for the user; the caller writes the profile.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portcullis.harden import HardenError
from portcullis.harden.seccomp import SeccompResult
from portcullis.harden.syscall_record import StraceRecording, Workload


@dataclass(frozen=True)
class WorkloadSpec:
    """The workload to record: a labelled copy of `container`, or `image` running `command`."""

    container: str | None = None
    image: str | None = None
    command: list[str] | None = None
    duration: float = 10.0  # seconds each run may last (a service is stopped then)
    smoke: str | None = None  # command run inside the copy that must exit 0
    host_probe: str | None = None  # command run on the host, {ip} = the copy's address, that must exit 0
    labels: dict[str, str] = field(default_factory=dict)
    host: str | None = None

    @property
    def given(self) -> bool:
        return self.container is not None or self.image is not None


def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        raise HardenError(f"{what} needs root on the engine's host (strace attach and the kernel's audit records)")


def _workload(api: Any, spec: WorkloadSpec) -> Workload:
    from portcullis.harden.syscall_record import workload_from_container, workload_from_image

    if (spec.container is None) == (spec.image is None):
        raise HardenError("give exactly one of --container NAME or --image IMAGE")
    if spec.container is not None and spec.command:
        raise HardenError("a command after `--` goes with --image, not --container")
    if spec.container:
        workload = workload_from_container(api, spec.container)
    else:
        workload = workload_from_image(api, str(spec.image), spec.command)
    workload.duration = spec.duration
    workload.smoke = shlex.split(spec.smoke) if spec.smoke else None
    workload.host_probe = spec.host_probe
    workload.labels = spec.labels
    return workload


@dataclass(frozen=True)
class SeccompRecording:
    result: SeccompResult
    sizes: dict[str, Any]  # the profile's size, compared with Docker's default profile when it is installed


def record_seccomp_profile(
    spec: WorkloadSpec,
    routes: frozenset[str],
    max_attempts: int,
    allow_host_tuning: bool,
    log: Callable[[str], None],
) -> SeccompRecording:
    """Record the workload's syscalls and verify the allow-list on it; `result.verified` says whether it shipped."""
    from portcullis.collect import CollectionError
    from portcullis.collect.engine import connect
    from portcullis.collect.sandbox import SandboxError, sandbox
    from portcullis.harden.seccomp import docker_default_profile, generate

    _need_root("harden seccomp")
    try:
        conn = connect(spec.host)
    except CollectionError as exc:
        raise HardenError(str(exc)) from exc
    try:
        if not conn.local:
            raise HardenError(
                "harden seccomp observes the workload's processes from the host: run it on the engine's own host"
            )
        workload = _workload(conn.api, spec)
        with sandbox(conn, "harden-seccomp") as box:
            result = generate(
                box, workload, routes=routes, max_attempts=max_attempts, allow_host_tuning=allow_host_tuning, log=log
            )
    except SandboxError as exc:
        raise HardenError(str(exc)) from exc
    finally:
        conn.close()
    return SeccompRecording(result=result, sizes=result.sizes(docker_default_profile()))


@dataclass(frozen=True)
class AppArmorProfile:
    name: str
    text: str
    enforced_here: bool  # this kernel enforces AppArmor, so the profile could be loaded and tried here


def apparmor_profile(
    policy: Path | None, name: str | None, spec: WorkloadSpec, log: Callable[[str], None]
) -> AppArmorProfile:
    """The profile from the policy file (or an empty policy) and, when `spec` names a workload, its observed use."""
    from portcullis.harden.apparmor import (
        Policy,
        kernel_enforces_apparmor,
        load_policy,
        policy_from_dict,
        render_profile,
        validate_profile,
    )

    if policy is None and not spec.given:
        raise HardenError("give a --policy, a workload to observe (--container or --image), or both")
    chosen = load_policy(policy) if policy is not None else Policy()
    if name is not None:
        chosen.name = policy_from_dict({"name": name}, "--name").name
    observed = _observe_with_strace(spec, log) if spec.given else None
    text = render_profile(chosen, observed)
    check = validate_profile(text)
    if not check.ok:
        raise HardenError(
            f"apparmor_parser rejected the generated profile (a Portcullis bug, please report): {check.message}"
        )
    return AppArmorProfile(name=chosen.name, text=text, enforced_here=kernel_enforces_apparmor())


def _observe_with_strace(spec: WorkloadSpec, log: Callable[[str], None]) -> StraceRecording | None:
    from portcullis.collect import CollectionError
    from portcullis.collect.engine import connect
    from portcullis.collect.sandbox import SandboxError, sandbox
    from portcullis.harden.syscall_record import run_workload

    _need_root("observing a workload")
    try:
        conn = connect(spec.host)
    except CollectionError as exc:
        raise HardenError(str(exc)) from None
    try:
        if not conn.local:
            raise HardenError("observing a workload needs the engine's own host (strace attach)")
        workload = _workload(conn.api, spec)
        with sandbox(conn, "harden-apparmor") as box:
            outcome = run_workload(box, workload, None, trace=True, log=log)
    except SandboxError as exc:
        raise HardenError(str(exc)) from None
    finally:
        conn.close()
    if not outcome.started:
        raise HardenError(f"the workload did not start: {outcome.start_error}")
    log(f"observed {workload.description}: {outcome.summary}")
    return outcome.strace
