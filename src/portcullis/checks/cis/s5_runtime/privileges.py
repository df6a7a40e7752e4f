"""CIS 5.4, 5.5, 5.18, 5.23, 5.24, 5.26: capabilities, privileged mode, devices, exec sessions, no-new-privileges."""

from __future__ import annotations

from typing import Any

from portcullis.checks.cis.s4_images import is_root_user
from portcullis.checks.cis.s5_runtime.common import not_running, security_opts
from portcullis.checks.registry import CheckResult, failed, passed, rule, skipped
from portcullis.model.facts import ContainerFacts, Facts
from portcullis.model.findings import Severity, Status, TargetKind

# --- 5.4 -----------------------------------------------------------------------------------------


def _capability(name: str) -> str:
    return name.strip().upper().removeprefix("CAP_")


@rule(
    id="CIS-5.4",
    cis="CIS-5.4",
    title="Capabilities are trimmed and NET_RAW is dropped",
    severity=Severity.HIGH,
    scope=TargetKind.CONTAINER,
    rationale="""
Capabilities split root's power into pieces. Each one added (SYS_ADMIN, NET_ADMIN, SYS_PTRACE…) widens
what a compromised process can do to the kernel and host; NET_RAW, granted by default, lets it forge
packets and spoof other containers on the same network.
""",
    remediation="Remove --cap-add entries the application does not need and run with `--cap-drop NET_RAW` "
    "(better: `--cap-drop ALL` then add back the few required).",
)
def capabilities(container: ContainerFacts, facts: Facts) -> CheckResult:
    host_config = container.host_config
    added = sorted({_capability(c) for c in host_config.cap_add or []})
    dropped = sorted({_capability(c) for c in host_config.cap_drop or []})
    net_raw_dropped = "NET_RAW" in dropped or "ALL" in dropped
    evidence: dict[str, Any] = {
        "cap_add": added,
        "cap_drop": dropped,
        "net_raw_dropped": net_raw_dropped and not host_config.privileged,
        "privileged": host_config.privileged,
    }
    problems = []
    if host_config.privileged:
        problems.append("privileged: every capability is granted")
    if added:
        problems.append(f"capabilities added: {', '.join(added)}")
    if not net_raw_dropped and not host_config.privileged:
        problems.append("NET_RAW is not dropped")
    if problems:
        return failed("; ".join(problems), **evidence)
    return passed("no capability is added and NET_RAW is dropped", **evidence)


# --- 5.5 -----------------------------------------------------------------------------------------


@rule(
    id="CIS-5.5",
    cis="CIS-5.5",
    title="Containers do not run privileged",
    severity=Severity.CRITICAL,
    scope=TargetKind.CONTAINER,
    rationale="""
A privileged container gets every capability, all host devices and no seccomp or LSM confinement:
root inside it is root on the host for most practical purposes.
""",
    remediation="Run the container without --privileged; add only the specific capabilities it needs.",
    references=("https://docs.docker.com/engine/containers/run/#runtime-privilege-and-linux-capabilities",),
)
def no_privileged(container: ContainerFacts, facts: Facts) -> CheckResult:
    if container.host_config.privileged:
        return failed("the container is privileged", privileged=True, state=container.state.status)
    return passed("the container is not privileged", privileged=False)


# --- 5.18 ----------------------------------------------------------------------------------------


@rule(
    id="CIS-5.18",
    cis="CIS-5.18",
    title="Host devices are not passed to containers",
    severity=Severity.HIGH,
    scope=TargetKind.CONTAINER,
    rationale="""
A host device node inside a container gives direct access to hardware or kernel interfaces (disks,
/dev/mem, GPUs); with write access a container can read or destroy data outside its own filesystem.
""",
    remediation="Remove --device and --device-cgroup-rule options that are not required; when one is, grant only "
    "the needed device and permissions (e.g. `--device /dev/x:/dev/x:r`).",
)
def host_devices(container: ContainerFacts, facts: Facts) -> CheckResult:
    devices = [
        {"path_on_host": d.path_on_host, "path_in_container": d.path_in_container, "permissions": d.cgroup_permissions}
        for d in container.host_config.devices or []
    ]
    # A device cgroup rule lets the container open (and, with CAP_MKNOD, create) the host devices it names.
    cgroup_rules = container.host_config.device_cgroup_rules or []
    if container.host_config.privileged:
        return failed("the container is privileged: every host device is available", devices=devices, privileged=True)
    if devices or cgroup_rules:
        shown = ", ".join([d["path_on_host"] for d in devices] + [f"cgroup rule '{r}'" for r in cgroup_rules])
        return failed(
            f"host device(s) passed to the container: {shown}",
            devices=devices, device_cgroup_rules=cgroup_rules, privileged=False,
        )  # fmt: skip
    return passed("no host device is passed to the container", devices=[], device_cgroup_rules=[], privileged=False)


# --- 5.23, 5.24: exec sessions --------------------------------------------------------------------

EXEC_MEMORY = (
    "Docker keeps an exec record only while the exec (or, if never started, its container) is alive, so this sees "
    "open sessions only; past ones are visible only in an audit log of docker commands."
)


def _exec_sessions(container: ContainerFacts) -> CheckResult | None:
    """N/A or skip when exec sessions cannot be judged; None when they can."""
    if not container.state.running:
        return not_running(container, "the engine's record of exec sessions")
    if container.exec_sessions is None:
        reason = container.exec_sessions_error or "not collected"
        return skipped(f"the container's exec sessions could not be read: {reason}")
    return None


@rule(
    id="CIS-5.23",
    cis="CIS-5.23",
    title="docker exec is not run with --privileged",
    severity=Severity.HIGH,
    scope=TargetKind.CONTAINER,
    rationale=f"""
`docker exec --privileged` starts a process with every capability and no seccomp or LSM confinement
inside a container that was deliberately started with less. {EXEC_MEMORY}
""",
    remediation="Do not use --privileged with docker exec; restrict who may call the Docker API "
    "(authorization plugin) and audit exec use.",
    statuses=(Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.SKIP),
)
def privileged_exec(container: ContainerFacts, facts: Facts) -> CheckResult:
    unknown = _exec_sessions(container)
    if unknown is not None:
        return unknown
    sessions = container.exec_sessions or []
    offending = [{"id": s.id, "command": s.command, "running": s.running} for s in sessions if s.privileged]
    if offending:
        return failed(f"{len(offending)} privileged exec session(s)", sessions=offending, exec_sessions=len(sessions))
    return passed(
        f"none of the {len(sessions)} open exec session(s) is privileged", sessions=[], exec_sessions=len(sessions)
    )


@rule(
    id="CIS-5.24",
    cis="CIS-5.24",
    title="docker exec is not run as root",
    severity=Severity.MEDIUM,
    scope=TargetKind.CONTAINER,
    rationale=f"""
An exec session as root (an explicit --user root/0, or no --user in a container whose user is root)
bypasses the unprivileged user the container was meant to run as. {EXEC_MEMORY}
""",
    remediation="Run docker exec with `--user` set to the container's unprivileged account; set a non-root USER "
    "in the image so sessions without --user are unprivileged too.",
    statuses=(Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.SKIP),
)
def root_exec(container: ContainerFacts, facts: Facts) -> CheckResult:
    unknown = _exec_sessions(container)
    if unknown is not None:
        return unknown
    sessions = container.exec_sessions or []
    offending = []
    for session in sessions:
        effective = session.user or container.config.user
        if is_root_user(effective):
            offending.append(
                {
                    "id": session.id,
                    "command": session.command,
                    "user": session.user,
                    "effective_user": effective or "root",
                    "user_from": "exec --user" if session.user else "container default",
                }
            )
    if offending:
        return failed(f"{len(offending)} exec session(s) run as root", sessions=offending, exec_sessions=len(sessions))
    return passed(
        f"none of the {len(sessions)} open exec session(s) runs as root", sessions=[], exec_sessions=len(sessions)
    )


# --- 5.26 ----------------------------------------------------------------------------------------


def _daemon_no_new_privileges(facts: Facts) -> str | None:
    """Where the daemon sets no-new-privileges for every container, if it does."""
    if any(v.lower() in ("true", "1") for v in facts.daemon.flag_values("--no-new-privileges")):
        return "dockerd --no-new-privileges"
    if (facts.daemon.daemon_json or {}).get("no-new-privileges") is True:
        return "daemon.json no-new-privileges"
    return None


@rule(
    id="CIS-5.26",
    cis="CIS-5.26",
    title="Containers cannot gain additional privileges",
    severity=Severity.MEDIUM,
    scope=TargetKind.CONTAINER,
    rationale="""
no-new-privileges stops setuid/setgid binaries and file capabilities from raising a process's rights
after start, closing the usual path from an unprivileged foothold to root inside the container.
""",
    remediation='Run containers with `--security-opt no-new-privileges` or set `"no-new-privileges": true` '
    "in daemon.json.",
)
def no_new_privileges(container: ContainerFacts, facts: Facts) -> CheckResult:
    values = []
    for opt in security_opts(container):
        name, _, value = opt.replace(":", "=", 1).partition("=")
        if name == "no-new-privileges":
            values.append(value.lower() or "true")
    if "false" in values:
        return failed("the container turns no-new-privileges off", security_opt=security_opts(container))
    if "true" in values:
        return passed("the container sets no-new-privileges", source="container")
    daemon_default = _daemon_no_new_privileges(facts)
    if daemon_default:
        return passed(f"no-new-privileges is the daemon default ({daemon_default})", source=daemon_default)
    return failed("no-new-privileges is not set for the container or as daemon default", source=None)
