"""CIS 5.2, 5.3, 5.22: AppArmor, SELinux and seccomp confine the container."""

from __future__ import annotations

from typing import Any

from portcullis.checks.cis.s5_runtime.common import opt_value
from portcullis.checks.registry import CheckResult, failed, not_applicable, passed, rule, skipped
from portcullis.model.facts import ContainerFacts, Facts
from portcullis.model.findings import Severity, Status, TargetKind

# --- 5.2, 5.3: LSM confinement ---------------------------------------------------------------------


@rule(
    id="CIS-5.2",
    cis="CIS-5.2",
    title="An AppArmor profile confines the container",
    severity=Severity.MEDIUM,
    scope=TargetKind.CONTAINER,
    rationale="""
AppArmor limits which files, mounts and capabilities a confined process may use even as root.
Docker applies its docker-default profile unless the container opts out, so `unconfined` removes a
layer that would otherwise contain a compromised process.
""",
    remediation="Drop `--security-opt apparmor=unconfined` (and --privileged); use docker-default or a "
    "tailored profile.",
    statuses=(Status.PASS, Status.FAIL, Status.NOT_APPLICABLE),
)
def apparmor_profile(container: ContainerFacts, facts: Facts) -> CheckResult:
    daemon_uses_apparmor = facts.engine.info.security_option("apparmor") is not None
    if not daemon_uses_apparmor:
        if facts.host.apparmor_enabled:
            return failed(
                "the host kernel has AppArmor but the engine applies no profile (no name=apparmor in SecurityOptions)",
                apparmor_profile=container.apparmor_profile,
            )
        reason = "the engine does not use AppArmor (no name=apparmor in SecurityOptions)"
        if facts.host.apparmor_enabled is False:
            reason = "AppArmor is not enabled on this host"
        return not_applicable(reason, host_apparmor_enabled=facts.host.apparmor_enabled)
    profile = container.apparmor_profile
    if profile in ("", "unconfined"):
        shown = profile or "none"
        return failed(f"the container runs without an AppArmor profile ({shown})", apparmor_profile=profile)
    return passed(f"the container runs under AppArmor profile {profile}", apparmor_profile=profile)


@rule(
    id="CIS-5.3",
    cis="CIS-5.3",
    title="SELinux labels confine the container",
    severity=Severity.MEDIUM,
    scope=TargetKind.CONTAINER,
    rationale="""
With SELinux, each container process and its files carry a label that keeps it away from the host's
and other containers' files. `label=disable`, which Docker also sets by itself for privileged and
host-namespace containers, turns that separation off.
""",
    remediation="Start dockerd with --selinux-enabled and run containers without `--security-opt label=disable`, "
    "--privileged or host namespaces; set a specific type with `--security-opt label=type:...` if needed.",
    statuses=(Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.SKIP),
)
def selinux_labels(container: ContainerFacts, facts: Facts) -> CheckResult:
    daemon_uses_selinux = facts.engine.info.security_option("selinux") is not None
    host_selinux = facts.host.selinux_enabled
    if not daemon_uses_selinux:
        if host_selinux is False:
            return not_applicable("SELinux is not enabled on this host", host_selinux_enabled=False)
        if host_selinux is None:
            return skipped("whether the host runs SELinux was not collected; the engine does not use it")
        return failed(
            "the host has SELinux enabled but dockerd runs without --selinux-enabled",
            host_selinux_enabled=True,
        )
    labels = opt_value(container, "label")
    evidence: dict[str, Any] = {
        "label_options": labels,
        "process_label": container.process_label,
        "mount_label": container.mount_label,
    }
    if "disable" in labels:
        return failed("SELinux separation is switched off for the container (label=disable)", **evidence)
    if not container.process_label:
        return failed("the container has no SELinux process label", **evidence)
    return passed(f"the container runs with SELinux label {container.process_label}", **evidence)


# --- 5.22 ----------------------------------------------------------------------------------------


@rule(
    id="CIS-5.22",
    cis="CIS-5.22",
    title="Seccomp filtering is not disabled",
    severity=Severity.HIGH,
    scope=TargetKind.CONTAINER,
    rationale="""
Docker's default seccomp profile blocks dozens of rarely needed system calls that often carry kernel
exploits (keyctl, unshare, mount, bpf…). Running unconfined exposes all of them.
""",
    remediation="Drop `--security-opt seccomp=unconfined` (and --privileged); if a call is missing, use a custom "
    "profile that allows just that call.",
)
def seccomp_enabled(container: ContainerFacts, facts: Facts) -> CheckResult:
    profiles = opt_value(container, "seccomp")
    evidence: dict[str, Any] = {"seccomp_options": profiles, "privileged": container.host_config.privileged}
    if "unconfined" in profiles:
        return failed("seccomp is disabled for the container (seccomp=unconfined)", **evidence)
    if container.host_config.privileged:
        return failed("the container is privileged, which runs it without seccomp", **evidence)
    daemon_seccomp = facts.engine.info.security_option("seccomp")
    if daemon_seccomp is None:
        return failed("the engine has no seccomp support, so no container is filtered", **evidence)
    if "profile=unconfined" in daemon_seccomp.split(",") and not profiles:
        return failed("the daemon's default seccomp profile is unconfined", daemon_seccomp=daemon_seccomp, **evidence)
    shown = profiles[0] if profiles else "the daemon's default profile"
    return passed(f"seccomp filters the container ({shown})", **evidence)
