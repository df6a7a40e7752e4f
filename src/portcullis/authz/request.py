"""Request bodies the engine forwards, read the way dockerd reads them and mapped onto the audit's facts.

dockerd decodes JSON with Go's encoding/json: keys match struct fields case-insensitively (`privileged` sets
Privileged) and a repeated key's last value wins. A plugin that read only the exact spelling would let
`{"HostConfig": {"privileged": true}}` through, so a key that differs from a known field only in case, and any
repeated key, is reported as ambiguous rather than guessed at.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from portcullis.model.facts import (
    ContainerConfig,
    ContainerFacts,
    ContainerState,
    ExecSession,
    HostConfig,
    MountPoint,
)

CREATE_FIELDS = frozenset(
    [
        "Hostname",
        "Domainname",
        "User",
        "AttachStdin",
        "AttachStdout",
        "AttachStderr",
        "ExposedPorts",
        "Tty",
        "OpenStdin",
        "StdinOnce",
        "Env",
        "Cmd",
        "Healthcheck",
        "ArgsEscaped",
        "Image",
        "Volumes",
        "WorkingDir",
        "Entrypoint",
        "NetworkDisabled",
        "MacAddress",
        "OnBuild",
        "Labels",
        "StopSignal",
        "StopTimeout",
        "Shell",
        "HostConfig",
        "NetworkingConfig",
    ]
)
RESOURCE_FIELDS = frozenset(
    [
        "CpuShares",
        "Memory",
        "NanoCpus",
        "CgroupParent",
        "BlkioWeight",
        "BlkioWeightDevice",
        "BlkioDeviceReadBps",
        "BlkioDeviceWriteBps",
        "BlkioDeviceReadIOps",
        "BlkioDeviceWriteIOps",
        "CpuPeriod",
        "CpuQuota",
        "CpuRealtimePeriod",
        "CpuRealtimeRuntime",
        "CpusetCpus",
        "CpusetMems",
        "Devices",
        "DeviceCgroupRules",
        "DeviceRequests",
        "KernelMemory",
        "KernelMemoryTCP",
        "MemoryReservation",
        "MemorySwap",
        "MemorySwappiness",
        "OomKillDisable",
        "PidsLimit",
        "Ulimits",
        "CpuCount",
        "CpuPercent",
        "IOMaximumIOps",
        "IOMaximumBandwidth",
    ]
)
HOST_CONFIG_FIELDS = RESOURCE_FIELDS | frozenset(
    [
        "Binds",
        "ContainerIDFile",
        "LogConfig",
        "NetworkMode",
        "PortBindings",
        "RestartPolicy",
        "AutoRemove",
        "VolumeDriver",
        "VolumesFrom",
        "Mounts",
        "ConsoleSize",
        "Annotations",
        "CapAdd",
        "CapDrop",
        "CgroupnsMode",
        "Dns",
        "DnsOptions",
        "DnsSearch",
        "ExtraHosts",
        "GroupAdd",
        "IpcMode",
        "Cgroup",
        "Links",
        "OomScoreAdj",
        "PidMode",
        "Privileged",
        "PublishAllPorts",
        "ReadonlyRootfs",
        "SecurityOpt",
        "StorageOpt",
        "Tmpfs",
        "UTSMode",
        "UsernsMode",
        "ShmSize",
        "Sysctls",
        "Runtime",
        "Isolation",
        "MaskedPaths",
        "ReadonlyPaths",
        "Init",
    ]
)
UPDATE_FIELDS = RESOURCE_FIELDS | {"RestartPolicy"}
EXEC_FIELDS = frozenset(
    [
        "AttachStdin",
        "AttachStdout",
        "AttachStderr",
        "ConsoleSize",
        "DetachKeys",
        "Tty",
        "Env",
        "Cmd",
        "Privileged",
        "User",
        "WorkingDir",
    ]
)
MOUNT_FIELDS = frozenset(
    [
        "Target",
        "Source",
        "Type",
        "ReadOnly",
        "Consistency",
        "BindOptions",
        "VolumeOptions",
        "ImageOptions",
        "TmpfsOptions",
        "ClusterOptions",
    ]
)
BIND_OPTION_FIELDS = frozenset(
    ["Propagation", "NonRecursive", "CreateMountpoint", "ReadOnlyNonRecursive", "ReadOnlyForceRecursive"]
)

# Words in a field name that make an unmodelled field worth a denial: they name the host, privilege or confinement.
DANGEROUS_WORDS = (
    "privileg", "cap", "device", "mount", "bind", "volume", "seccomp", "apparmor", "selinux", "security", "label",
    "namespace", "userns", "pid", "ipc", "uts", "cgroup", "sysctl", "runtime", "host", "root", "path", "unconfined",
    "kernel", "proc", "sys", "mode", "user", "group", "net",
)  # fmt: skip


class BodyError(Exception):
    """The body cannot be judged: not JSON, not an object, a repeated key, or a field of the wrong shape."""


@dataclass(frozen=True)
class UnknownField:
    where: str  # "HostConfig.Foo"
    dangerous: bool
    alias_of: str | None = None  # the known field it matches when case is ignored (Go would set that field)


@dataclass
class Parsed:
    subject: ContainerFacts | None  # None: no rule judges this request, only its body and unknown fields
    image: str
    labels: dict[str, str]
    unknown: list[UnknownField] = field(default_factory=list)
    exec_only: bool = False  # an exec request: only the rules about exec sessions judge it
    kind: str = "create"  # create, exec, start or update


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise BodyError(f"the key {key!r} appears twice in one object")
        seen.add(key)
    return dict(pairs)


def decode(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw, object_pairs_hook=_no_repeats)
    except BodyError:
        raise
    except (ValueError, RecursionError) as exc:
        raise BodyError(f"the body is not JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise BodyError("the body is not a JSON object")
    return data


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BodyError(f"{where} is not an object")
    return value


def _unknown(obj: dict[str, Any], known: frozenset[str], where: str) -> list[UnknownField]:
    folded = {name.casefold(): name for name in known}
    found = []
    for key in obj:
        if key in known:
            continue
        alias = folded.get(key.casefold())
        dangerous = alias is not None or any(word in key.casefold() for word in DANGEROUS_WORDS)
        found.append(UnknownField(f"{where}{key}", dangerous, alias))
    return found


def _bind_mount(spec: str) -> MountPoint:
    """A `Binds` entry, `source:destination[:options]`: a source starting with / is a host path, else a volume."""
    parts = spec.split(":")
    if len(parts) < 2 or len(parts) > 3 or not parts[0] or not parts[1]:
        raise BodyError(f"the bind {spec!r} is not source:destination[:options]")
    options = parts[2].split(",") if len(parts) == 3 else []
    propagation = next((o for o in options if o in ("shared", "rshared", "slave", "rslave", "private", "rprivate")), "")
    return MountPoint(
        type="bind" if parts[0].startswith("/") else "volume",
        source=parts[0],
        destination=parts[1],
        rw="ro" not in options,
        propagation=propagation,
    )


def _api_mount(entry: Any, index: int, unknown: list[UnknownField]) -> MountPoint:
    where = f"HostConfig.Mounts[{index}]."
    mount = _object(entry, where.rstrip("."))
    unknown.extend(_unknown(mount, MOUNT_FIELDS, where))
    options = _object(mount.get("BindOptions"), where + "BindOptions")
    unknown.extend(_unknown(options, BIND_OPTION_FIELDS, where + "BindOptions."))
    values = (mount.get("Type"), mount.get("Source"), mount.get("Target"), options.get("Propagation"))
    if not all(isinstance(v, str) or v is None for v in values) or not isinstance(mount.get("ReadOnly", False), bool):
        raise BodyError(f"{where.rstrip('.')} has a field of the wrong type")
    kind, source, target, propagation = (v or "" for v in values)
    return MountPoint(
        type=kind, source=source, destination=target, rw=not mount.get("ReadOnly", False), propagation=propagation
    )


def _apparmor_profile(host_config: HostConfig) -> str:
    """What inspect would report as AppArmorProfile: the requested one, unconfined when privileged, else default."""
    for opt in host_config.security_opt or []:
        key, sep, value = opt.replace(":", "=", 1).partition("=")
        if sep and key == "apparmor":
            return value
    return "unconfined" if host_config.privileged else "docker-default"


def _validated(model: Any, data: dict[str, Any], where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise BodyError(f"{where} has a field of the wrong type") from exc


def _host_side(
    raw_host: dict[str, Any], unknown: list[UnknownField], where: str
) -> tuple[HostConfig, list[MountPoint]]:
    """A HostConfig object and the mounts its Binds and Mounts make."""
    unknown.extend(_unknown(raw_host, HOST_CONFIG_FIELDS, where))
    host_config: HostConfig = _validated(HostConfig, raw_host, where.rstrip(".") or "the body")
    binds = raw_host.get("Binds") or []
    if not isinstance(binds, list) or not all(isinstance(b, str) for b in binds):
        raise BodyError(f"{where}Binds is not a list of strings")
    api_mounts = raw_host.get("Mounts") or []
    if not isinstance(api_mounts, list):
        raise BodyError(f"{where}Mounts is not a list")
    mounts = [_bind_mount(b) for b in binds] + [_api_mount(m, i, unknown) for i, m in enumerate(api_mounts)]
    return host_config, mounts


def parse_create(raw: bytes, name: str) -> Parsed:
    """`POST /containers/create`: the container as inspect will show it, so the audit's rules can judge it."""
    body = decode(raw)
    unknown = _unknown(body, CREATE_FIELDS, "")
    host_config, mounts = _host_side(_object(body.get("HostConfig"), "HostConfig"), unknown, "HostConfig.")
    config: ContainerConfig = _validated(ContainerConfig, body, "the body")
    subject = ContainerFacts(
        id="(requested)",
        name=name or "(unnamed)",
        state=ContainerState(status="created"),
        config=config,
        host_config=host_config,
        mounts=mounts,
        apparmor_profile=_apparmor_profile(host_config),
    )
    return Parsed(subject, config.image, dict(config.labels or {}), unknown)


def parse_start(raw: bytes, container: str) -> Parsed:
    """`POST /v1.23/containers/{id}/start` with a body: the HostConfig the container will start with. The rest of
    the container (image, user, labels) is not in the body, so rules about it judge what the body leaves unset."""
    body = decode(raw)
    unknown: list[UnknownField] = []
    host_config, mounts = _host_side(body, unknown, "")
    subject = ContainerFacts(
        id=container,
        name=container,
        state=ContainerState(status="created"),
        host_config=host_config,
        mounts=mounts,
        apparmor_profile=_apparmor_profile(host_config),
    )
    return Parsed(subject, "", {}, unknown, kind="start")


def parse_exec(raw: bytes, container: str) -> Parsed:
    """`POST /containers/{id}/exec`: a running container holding one exec session, the requested one. Its own user
    is unknown here (''): an exec without --user counts as root unless the judge reads the user from the engine."""
    body = decode(raw)
    unknown = _unknown(body, EXEC_FIELDS, "")
    privileged, user, command = body.get("Privileged", False), body.get("User", ""), body.get("Cmd") or []
    if not isinstance(privileged, bool) or not isinstance(user, str) or not isinstance(command, list):
        raise BodyError("the exec body has a field of the wrong type")
    session = ExecSession(id="(requested)", privileged=privileged, user=user, command=[str(c) for c in command])
    subject = ContainerFacts(
        id=container, name=container, state=ContainerState(status="running", running=True), exec_sessions=[session]
    )
    return Parsed(subject, "", {}, unknown, exec_only=True, kind="exec")


def parse_update(raw: bytes) -> Parsed:
    """`POST /containers/{id}/update` changes resources and the restart policy, which no denying rule judges on
    their own (the rest of the container is not in the body); the body must still parse, with the right types,
    and its unknown fields are judged."""
    body = decode(raw)
    unknown = _unknown(body, UPDATE_FIELDS, "")
    _validated(HostConfig, body, "the body")
    return Parsed(None, "", {}, unknown, kind="update")
