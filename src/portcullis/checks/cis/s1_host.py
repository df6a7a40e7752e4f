"""CIS section 1: the host Docker runs on — data-root partition, docker group, audit rules, engine version.

Audit rules (1.1.3–1.1.18) are judged against the paths this host really uses (data-root, unit files,
sockets and binaries as found), not the benchmark's example paths.
"""

from __future__ import annotations

import posixpath
import re
import shlex
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from portcullis.checks.registry import (
    CheckResult,
    Outcome,
    failed,
    manual,
    not_applicable,
    passed,
    rule,
    skipped,
)
from portcullis.model.facts import Facts, MountEntry
from portcullis.model.findings import Severity, Status, TargetKind

REMOTE = "the engine is remote: this host's files, groups and audit rules were not inspected"


def remote_engine(facts: Facts) -> Outcome | None:
    """A skip when the engine is remote: host facts are then absent, and absence must never pass."""
    return None if facts.engine.local else skipped(REMOTE, endpoint=facts.engine.endpoint)


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


# --- 1.1.1 -----------------------------------------------------------------------------------------


def _mount_of(path: str, mounts: list[MountEntry]) -> MountEntry | None:
    """The mount that holds `path`: the deepest mount point above it, the last one mounted if stacked."""
    best: MountEntry | None = None
    for entry in mounts:
        if _within(path, entry.mountpoint) and (best is None or len(entry.mountpoint) >= len(best.mountpoint)):
            best = entry
    return best


@rule(
    id="CIS-1.1.1",
    cis="CIS-1.1.1",
    title="Docker's data root is on its own filesystem",
    severity=Severity.MEDIUM,
    scope=TargetKind.HOST,
    rationale="""
Images, container layers, volumes and logs all grow under the data root. When it shares a filesystem
with the operating system, a container that fills its disk fills the host's too, and the host stops working.
A bind mount of a directory of the root filesystem does not help: the space is still shared.
""",
    remediation="""
Give the data root (docker info: Docker Root Dir) its own partition or logical volume, mounted at that
directory (or at a parent such as /var/lib), e.g. through /etc/fstab; move the existing data with the engine stopped.
""",
    statuses=(Status.PASS, Status.FAIL, Status.SKIP),
)
def data_root_partition(facts: Facts) -> CheckResult:
    if (remote := remote_engine(facts)) is not None:
        return remote
    data_root = facts.engine.info.docker_root_dir
    mounts = facts.host.mounts
    if mounts is None:
        return skipped("the mount table could not be read", data_root=data_root)
    holder = _mount_of(data_root, mounts)
    root_fs = _mount_of("/", mounts)
    if holder is None:
        return skipped(f"no mount in the mount table holds {data_root}", data_root=data_root)
    evidence: dict[str, Any] = {
        "data_root": data_root,
        "mountpoint": holder.mountpoint,
        "source": holder.source,
        "fstype": holder.fstype,
    }
    if holder.device:
        evidence["device"] = holder.device
    if holder.mountpoint == "/":
        return failed(f"{data_root} is on the root filesystem ({holder.source})", **evidence)
    if root_fs is not None and holder.device and holder.device == root_fs.device:
        evidence["fs_root"] = holder.fs_root
        return failed(
            f"{holder.mountpoint} is a bind mount of {holder.fs_root} from the root filesystem ({holder.source}, "
            f"device {holder.device}): it shares its space with /",
            **evidence,
        )
    where = "its own mount point" if holder.mountpoint == data_root else f"under the mount {holder.mountpoint}"
    return passed(f"{data_root} is on a separate filesystem ({holder.source}, {holder.fstype}), {where}", **evidence)


# --- 1.1.2 -----------------------------------------------------------------------------------------


@rule(
    id="CIS-1.1.2",
    cis="CIS-1.1.2",
    title="Only trusted users are in the docker group",
    severity=Severity.HIGH,
    scope=TargetKind.HOST,
    rationale="""
Anyone who can reach the Docker socket can start a privileged container that mounts the host's root
filesystem: membership of the docker group is root on the host without a password or an audit trail.
""",
    remediation="""
Remove every account that does not need to drive the engine (gpasswd -d USER docker); give the others
rootless Docker or a narrower path such as an authorization plugin.
""",
    statuses=(Status.PASS, Status.MANUAL, Status.SKIP),
)
def docker_group_members(facts: Facts) -> CheckResult:
    if (remote := remote_engine(facts)) is not None:
        return remote
    members = facts.host.docker_group_members
    if members is None:
        return skipped("the members of group docker were not collected")
    if not members:
        if facts.host.docker_group_gid is None:
            return passed("there is no docker group on this host", members=[])
        return passed("group docker has no members: only root can use the Docker socket", members=[])
    return manual(
        f"group docker has {len(members)} member(s), each effectively root on this host; "
        "confirm every one of them is trusted: " + ", ".join(members),
        members=members,
        gid=facts.host.docker_group_gid,
    )


# --- 1.1.3–1.1.18: audit rules -----------------------------------------------------------------------


def _canonical(path: str) -> str:
    """/var/run is a symlink to /run on every current distribution; rules may name either."""
    path = posixpath.normpath(path)
    if path == "/var/run" or path.startswith("/var/run/"):
        path = "/run" + path[len("/var/run") :]
    return path


@dataclass(frozen=True)
class AuditWatch:
    path: str
    covers_subtree: bool  # a directory watch also sees everything below it
    rule: str


def _audit_watches(lines: list[str]) -> Iterator[AuditWatch]:
    """File watches in `auditctl -l` output: `-w PATH` and `-a always,exit ... -F path=|dir=PATH`."""
    for line in lines:
        try:
            tokens = shlex.split(line)
        except ValueError:
            tokens = line.split()
        if len(tokens) >= 2 and tokens[0] == "-w":
            # a -w watch on a directory is recursive; one on a file only matches that file
            yield AuditWatch(_canonical(tokens[1]), covers_subtree=True, rule=line)
            continue
        actions = tokens[tokens.index("-a") + 1].split(",") if "-a" in tokens[:-1] else []
        if "always" not in actions:
            continue  # -a never,... suppresses events instead of recording them
        for index, token in enumerate(tokens[:-1]):
            if token != "-F":
                continue
            field, _, value = tokens[index + 1].partition("=")
            if field in ("path", "dir") and value:
                yield AuditWatch(_canonical(value), covers_subtree=field == "dir", rule=line)


def _watch_for(path: str, watches: list[AuditWatch]) -> AuditWatch | None:
    wanted = _canonical(path)
    exact = next((w for w in watches if w.path == wanted), None)
    if exact is not None:
        return exact
    return next((w for w in watches if w.covers_subtree and _within(wanted, w.path)), None)


# A locator names the path(s) a control watches on this host, or concludes early (skip / not applicable).
Locator = Callable[[Facts], "list[str] | Outcome"]


def _fixed(path: str) -> Locator:
    return lambda facts: [path]


def _binary(name: str) -> Locator:
    def locate(facts: Facts) -> list[str] | Outcome:
        if name not in facts.host.binaries:
            return skipped(f"where {name} is installed was not collected")
        found = facts.host.binaries[name]
        if found is None:
            return not_applicable(f"{name} is not installed on this host", binary=name)
        return [found]

    return locate


def _containerd_state_dir(facts: Facts) -> list[str] | Outcome:
    socket = facts.host.containerd_socket
    if socket is None:
        return skipped("the containerd socket in use was not collected")
    # the socket lives in containerd's state directory: /run/containerd, or dockerd's exec-root for its own containerd
    return [posixpath.dirname(socket)]


def _containerd_socket(facts: Facts) -> list[str] | Outcome:
    socket = facts.host.containerd_socket
    return [socket] if socket else skipped("the containerd socket in use was not collected")


def _unit_file(unit: str) -> Locator:
    def locate(facts: Facts) -> list[str] | Outcome:
        units = facts.host.systemd_units
        if units is None:
            return skipped("systemd units were not collected")
        found = units.get(unit)
        if found is None or not found.fragment_path:
            return not_applicable(f"this host has no {unit} unit", unit=unit)
        return [found.fragment_path]

    return locate


def engine_socket_path(facts: Facts) -> str | None:
    endpoint = facts.engine.endpoint
    return endpoint[len("unix://") :] if endpoint.startswith("unix://") else None


def _docker_sockets(facts: Facts) -> list[str] | Outcome:
    """The socket the engine answers on; with systemd socket activation (-H fd://) every docker.socket ListenStream."""
    paths: list[str] = []
    in_use = engine_socket_path(facts)
    if in_use:
        paths.append(in_use)
    unit = (facts.host.systemd_units or {}).get("docker.socket")
    socket_activated = any(h.startswith("fd://") for h in facts.daemon.flag_values("-H", "--host"))
    if unit is not None and (socket_activated or not paths):
        paths.extend(p for p in unit.listen_streams if p.startswith("/"))
    unique: dict[str, str] = {}
    for path in paths:
        unique.setdefault(_canonical(path), path)  # /run/docker.sock and /var/run/docker.sock are one file
    if not unique:
        return not_applicable("the engine listens on no Unix socket and there is no docker.socket unit")
    return list(unique.values())


def _data_root(facts: Facts) -> list[str] | Outcome:
    return [facts.engine.info.docker_root_dir]


def _daemon_json(facts: Facts) -> list[str] | Outcome:
    return [facts.daemon.daemon_json_path]


def _audit_check(what: str, locate: Locator) -> Callable[[Facts], CheckResult]:
    def check(facts: Facts) -> CheckResult:
        if (remote := remote_engine(facts)) is not None:
            return remote
        located = locate(facts)
        if isinstance(located, Outcome):
            return located
        present = []
        for path in located:
            stat = facts.host.file(path)
            if stat is None:
                return skipped(f"whether {path} exists was not collected", path=path)
            if stat.error:
                return skipped(f"{path} could not be inspected: {stat.error}", path=path)
            if stat.exists:
                present.append(path)
        if not present:
            return not_applicable(f"{what} does not exist on this host ({', '.join(located)})", path=located[0])
        audit = facts.host.audit
        if not audit.auditctl_present:
            return failed(
                f"auditd is not installed (no auditctl): nothing records changes to {what} {present[0]}",
                path=present[0],
                auditctl_present=False,
            )
        if audit.rules is None:
            return skipped(
                f"the audit rules could not be listed: {audit.error or 'auditctl -l failed'}", path=present[0]
            )
        watches = list(_audit_watches(audit.rules))
        missing = [p for p in present if _watch_for(p, watches) is None]
        if missing:
            return failed(
                f"no audit rule watches {what} {', '.join(missing)}",
                path=missing[0],
                audit_rule_count=len(audit.rules),
            )
        found = {p: w.rule for p in present if (w := _watch_for(p, watches)) is not None}
        return passed(f"an audit rule watches {what} {', '.join(present)}", path=present[0], rules=found)

    return check


@dataclass(frozen=True)
class AuditControl:
    control: str  # the rule's id and the control it implements
    what: str  # names the watched object in messages and the title
    locate: Locator
    why: str


AUDIT_CONTROLS = (
    AuditControl(
        "CIS-1.1.3", "the dockerd binary", _binary("dockerd"), "a replaced daemon binary owns every container"
    ),
    AuditControl(
        "CIS-1.1.4",
        "the containerd state directory",
        _containerd_state_dir,
        "it holds the sockets and runtime state of every running container",
    ),
    AuditControl(
        "CIS-1.1.5", "the Docker data root", _data_root, "images, volumes and container filesystems live there"
    ),
    AuditControl(
        "CIS-1.1.6",
        "the Docker configuration directory",
        _fixed("/etc/docker"),
        "it holds daemon.json, keys and certificates",
    ),
    AuditControl(
        "CIS-1.1.7", "the docker.service unit file", _unit_file("docker.service"), "it decides how dockerd is started"
    ),
    AuditControl(
        "CIS-1.1.8",
        "the containerd socket",
        _containerd_socket,
        "whoever reaches it can start containers below Docker's own checks",
    ),
    AuditControl(
        "CIS-1.1.9", "the Docker API socket", _docker_sockets, "access to it is root-equivalent control of the host"
    ),
    AuditControl(
        "CIS-1.1.10",
        "the daemon options file",
        _fixed("/etc/default/docker"),
        "init scripts read dockerd options from it",
    ),
    AuditControl("CIS-1.1.11", "the daemon configuration file", _daemon_json, "it sets the daemon's security options"),
    AuditControl(
        "CIS-1.1.12",
        "the containerd configuration file",
        _fixed("/etc/containerd/config.toml"),
        "it configures the runtime beneath Docker",
    ),
    AuditControl(
        "CIS-1.1.13",
        "the daemon options file (Red Hat layout)",
        _fixed("/etc/sysconfig/docker"),
        "init scripts read dockerd options from it",
    ),
    AuditControl(
        "CIS-1.1.14", "the containerd binary", _binary("containerd"), "it runs every container on Docker's behalf"
    ),
    AuditControl(
        "CIS-1.1.15", "the containerd-shim binary", _binary("containerd-shim"), "a shim sits beside each container"
    ),
    AuditControl(
        "CIS-1.1.16",
        "the containerd-shim-runc-v1 binary",
        _binary("containerd-shim-runc-v1"),
        "a shim sits beside each container",
    ),
    AuditControl(
        "CIS-1.1.17",
        "the containerd-shim-runc-v2 binary",
        _binary("containerd-shim-runc-v2"),
        "a shim sits beside each container",
    ),
    AuditControl("CIS-1.1.18", "the runc binary", _binary("runc"), "it creates every container process"),
)

for _control in AUDIT_CONTROLS:
    rule(
        id=_control.control,
        cis=_control.control,
        title=f"An audit rule watches {_control.what}",
        severity=Severity.LOW,
        scope=TargetKind.HOST,
        rationale=textwrap.fill(
            f"Changes to {_control.what} should leave a trace: {_control.why}. A Linux audit watch records who "
            "read, wrote, ran or changed it, which is what an investigation needs afterwards. The check uses the "
            "path this host really uses; a watch on a parent directory (recursive) also counts, a watch on a "
            "symlink does not.",
            110,
        ),
        remediation=textwrap.fill(
            f"Install auditd and add a watch for {_control.what} at the path shown in the finding, e.g. a line "
            "`-w PATH -p rwxa -k docker` in /etc/audit/rules.d/docker.rules, then load it with `augenrules --load`.",
            110,
        ),
        statuses=(Status.PASS, Status.FAIL, Status.SKIP, Status.NOT_APPLICABLE),
        references=("https://man7.org/linux/man-pages/man8/auditctl.8.html",),
    )(_audit_check(_control.what, _control.locate))


# --- 1.2: general host configuration ---------------------------------------------------------------


@rule(
    id="CIS-1.2.1",
    cis="CIS-1.2.1",
    title="The host follows a hardening baseline",
    severity=Severity.INFO,
    scope=TargetKind.HOST,
    rationale="""
Containers share the host's kernel: a weak host undoes any container hardening. Whether the host follows
the organisation's hardening baseline (patching, accounts, services, kernel settings) is for a person to judge;
the facts below are what this audit saw.
""",
    remediation="""
Harden the host against your baseline (for example the CIS benchmark of its distribution) and keep it
dedicated to running containers.
""",
    statuses=(Status.MANUAL,),
)
def host_baseline(facts: Facts) -> CheckResult:
    host, info = facts.host, facts.engine.info
    # a remote engine's host was not inspected: only what the engine itself reports is known
    evidence: dict[str, Any] = {"operating_system": info.operating_system, "kernel": info.kernel_version}
    if facts.engine.local:
        evidence["operating_system"] = host.os_release.get("PRETTY_NAME") or info.operating_system
        evidence["kernel"] = host.kernel or info.kernel_version
        evidence["apparmor_enabled"] = host.apparmor_enabled
        evidence["selinux_enabled"] = host.selinux_enabled
        if host.tcp_listeners is not None:
            evidence["tcp_listening_ports"] = sorted({listener.port for listener in host.tcp_listeners})
    return manual(
        f"review {evidence['operating_system'] or 'the host'} (kernel {evidence['kernel'] or 'unknown'}) "
        "against your hardening baseline",
        **evidence,
    )


@dataclass(frozen=True)
class ReleaseLine:
    line: str
    end_of_life: bool
    since: str | None
    note: str


@cache
def engine_release_lines() -> tuple[str, tuple[ReleaseLine, ...]]:
    """The packaged table of Docker Engine release lines (static data shipped with Portcullis)."""
    text = resources.files("portcullis").joinpath("data/engine_releases.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    lines = tuple(
        ReleaseLine(
            line=str(item["line"]),
            end_of_life=bool(item["end_of_life"]),
            since=str(item["since"]) if item.get("since") else None,
            note=str(item.get("note", "")),
        )
        for item in raw["lines"]
    )
    return str(raw["as_of"]), lines


def _release_lines(facts: Facts) -> tuple[str, tuple[ReleaseLine, ...]]:
    """The release lines `db update` refreshed from endoflife.date when there are any, else the packaged table; the
    first item says which (it becomes the evidence's data_as_of)."""
    refreshed = facts.eol_tables
    if refreshed is None or not refreshed.engine_lines:
        as_of, lines = engine_release_lines()
        return f"{as_of} (built-in table)", lines
    lines = tuple(
        ReleaseLine(
            line=str(item["line"]),
            end_of_life=bool(item["end_of_life"]),
            since=str(item["since"]) if item.get("since") else None,
            note=str(item.get("note", "")),
        )
        for item in refreshed.engine_lines
    )
    return f"{refreshed.fetched_at} ({refreshed.origin})", lines


def _numbers(version: str) -> tuple[int, ...] | None:
    found = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", version.strip())
    if not found:
        return None
    return tuple(int(part) for part in found.groups() if part is not None)


def release_line_of(version: str, lines: tuple[ReleaseLine, ...]) -> tuple[ReleaseLine | None, bool]:
    """The table entry for `version`, and whether the version is older than every line in the table."""
    numbers = _numbers(version)
    if numbers is None:
        return None, False
    for entry in lines:
        wanted = tuple(int(part) for part in entry.line.split("."))
        if numbers[: len(wanted)] == wanted:
            return entry, False
    oldest = min((tuple(int(p) for p in entry.line.split(".")) for entry in lines), default=None)
    return None, oldest is not None and numbers < oldest


@rule(
    id="CIS-1.2.2",
    cis="CIS-1.2.2",
    title="The Docker Engine release line is still maintained",
    severity=Severity.HIGH,
    scope=TargetKind.HOST,
    rationale="""
An engine whose release line has reached end of life gets no more security fixes: every container-escape
or daemon vulnerability found since stays open. For a maintained line, whether the newest patch release
is installed cannot be known offline, so that part is left to a person.
""",
    remediation="""
Upgrade to a maintained Docker Engine release line and keep it on its newest patch release;
check the release notes for security fixes.
""",
    references=("https://github.com/moby/moby/blob/master/project/BRANCHES-AND-TAGS.md",),
    statuses=(Status.FAIL, Status.MANUAL, Status.SKIP),
)
def engine_version(facts: Facts) -> CheckResult:
    version = facts.engine.version.version or facts.engine.info.server_version
    if not version:
        return skipped("the engine did not report its version")
    as_of, lines = _release_lines(facts)
    entry, older_than_all = release_line_of(version, lines)
    if entry is not None and entry.end_of_life:
        since = f" since {entry.since}" if entry.since else ""
        return failed(
            f"Docker Engine {version}: the {entry.line} release line is end-of-life{since} and gets no security fixes",
            version=version,
            release_line=entry.line,
            end_of_life=True,
            data_as_of=as_of,
        )
    if older_than_all:
        return failed(
            f"Docker Engine {version} predates every release line still tracked: it is end-of-life",
            version=version,
            end_of_life=True,
            data_as_of=as_of,
        )
    if entry is not None:
        note = f" ({entry.note})" if entry.note else ""
        return manual(
            f"Docker Engine {version}: the {entry.line} line is maintained{note}; whether this is its newest patch "
            "release cannot be known offline — compare with the release notes",
            version=version,
            release_line=entry.line,
            end_of_life=False,
            data_as_of=as_of,
        )
    return manual(
        f"Docker Engine {version} is not in Portcullis's release table (as of {as_of}); "
        "check its support status and newest patch release by hand",
        version=version,
        data_as_of=as_of,
    )
