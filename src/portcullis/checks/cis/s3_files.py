"""CIS section 3: owner and permissions of the files and sockets that configure and expose the daemon.

One finding per file, its target the file's path. "644 or stricter" means no permission bit outside 0o644;
root:root means uid 0 and gid 0. The paths are the ones this host really uses (unit files systemd loads,
the socket the engine answers on, the TLS files dockerd was given, the containerd socket dockerd talks to).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from portcullis.checks.cis.s1_host import engine_socket_path, remote_engine
from portcullis.checks.registry import CheckResult, Outcome, failed, not_applicable, passed, rule, skipped
from portcullis.model.facts import Facts, FileStat
from portcullis.model.findings import Severity, Status, Target, TargetKind

STATUSES = (Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.SKIP)


def _file(path: str) -> Target:
    return Target(kind=TargetKind.FILE, name=path)


# A locator gives the files a control judges on this host, or concludes early (skip / not applicable).
Located = list[FileStat] | Outcome
Locator = Callable[[Facts], Located]


def _stat(facts: Facts, path: str) -> FileStat | Outcome:
    stat = facts.host.file(path)
    if stat is None:
        return skipped(f"{path} was not inspected", _file(path), path=path)
    return stat


def _one(path: str) -> Locator:
    def locate(facts: Facts) -> Located:
        stat = _stat(facts, path)
        return stat if isinstance(stat, Outcome) else [stat]

    return locate


def _unit(unit: str) -> Locator:
    def locate(facts: Facts) -> Located:
        units = facts.host.systemd_units
        if units is None:
            return skipped("systemd units were not collected", _file(unit))
        found = units.get(unit)
        if found is None or not found.fragment_path:
            return not_applicable(f"this host has no {unit} unit", _file(unit), unit=unit)
        stat = _stat(facts, found.fragment_path)
        return stat if isinstance(stat, Outcome) else [stat]

    return locate


def _daemon_json(facts: Facts) -> Located:
    stat = _stat(facts, facts.daemon.daemon_json_path)
    return stat if isinstance(stat, Outcome) else [stat]


def _docker_socket(facts: Facts) -> Located:
    path = engine_socket_path(facts)
    if path is None:
        return not_applicable(f"the engine is reached at {facts.engine.endpoint}, not through a Unix socket")
    stat = _stat(facts, path)
    return stat if isinstance(stat, Outcome) else [stat]


def _containerd_socket(facts: Facts) -> Located:
    path = facts.host.containerd_socket
    if path is None:
        return skipped("the containerd socket in use was not collected")
    stat = _stat(facts, path)
    return stat if isinstance(stat, Outcome) else [stat]


def _tls(key: str, what: str) -> Locator:
    def locate(facts: Facts) -> Located:
        files = facts.host.tls_files
        if files is None:
            return skipped("dockerd's TLS settings were not collected")
        if not files:
            return not_applicable("dockerd does not serve TLS (no --tls/--tlsverify), so it uses no " + what)
        path = files.get(key)
        if path is None:
            reason = "TLS clients are not verified" if key == "tlscacert" else "none is configured"
            return not_applicable(f"dockerd serves TLS but uses no {what} ({reason})")
        stat = _stat(facts, path)
        return stat if isinstance(stat, Outcome) else [stat]

    return locate


def _registry_certs(regular_files_only: bool) -> Locator:
    def locate(facts: Facts) -> Located:
        entries = facts.host.cert_files
        if entries is None:
            return skipped("the content of /etc/docker/certs.d was not collected", _file("/etc/docker/certs.d"))
        if regular_files_only:
            entries = [e for e in entries if e.kind == "file"]
        if not entries:
            return not_applicable(
                "there are no registry certificates under /etc/docker/certs.d", _file("/etc/docker/certs.d")
            )
        return entries

    return locate


# --- what a file must look like --------------------------------------------------------------------


@dataclass(frozen=True)
class OwnerRule:
    """Who must own the file: uid 0, and gid 0 unless `group` names another accepted group."""

    group: str = "root"

    def judge(self, facts: Facts, stat: FileStat, what: str) -> Outcome:
        evidence: dict[str, Any] = {
            "path": stat.path,
            "owner": stat.owner,
            "group": stat.group,
            "uid": stat.uid,
            "gid": stat.gid,
        }
        shown = f"{stat.owner or stat.uid}:{stat.group or stat.gid}"
        target = _file(stat.path)
        if self.group == "docker" and facts.engine.info.rootless:
            # a rootless daemon owns its own socket; root:docker does not apply
            expected_uid = facts.daemon.dockerd_uid
            if expected_uid is None:
                return skipped("the user running the rootless daemon is unknown", target, **evidence)
            if stat.uid == expected_uid:
                return passed(f"{what} is owned by {shown}, the user running the rootless daemon", target, **evidence)
            return failed(
                f"{what} is owned by {shown}, not by uid {expected_uid} that runs the rootless daemon",
                target,
                **evidence,
            )
        allowed_gids = {0}
        if self.group == "docker" and facts.host.docker_group_gid is not None:
            allowed_gids.add(facts.host.docker_group_gid)
        expected = f"root:{self.group}"
        if stat.uid == 0 and stat.gid in allowed_gids:
            return passed(f"{what} is owned by {shown}", target, **evidence)
        return failed(f"{what} is owned by {shown}, not {expected}", target, **evidence)


@dataclass(frozen=True)
class ModeRule:
    """The most permissive mode allowed: no permission bit outside `limit` (exactly: only the listed bits)."""

    limit: int

    def judge(self, facts: Facts, stat: FileStat, what: str) -> Outcome:
        mode = stat.mode if stat.mode is not None else 0
        target = _file(stat.path)
        evidence: dict[str, Any] = {
            "path": stat.path,
            "mode": format(mode, "04o"),
            "allowed": format(self.limit, "04o"),
        }
        excess = mode & ~self.limit & 0o6777  # the sticky bit grants nothing on a file or socket
        if excess:
            evidence["excess_bits"] = format(excess, "04o")
            return failed(
                f"{what} has mode {mode:04o}, more permissive than {self.limit:04o} (extra bits {excess:04o})",
                target,
                **evidence,
            )
        return passed(f"{what} has mode {mode:04o} ({self.limit:04o} or stricter)", target, **evidence)


def _file_check(what: str, locate: Locator, expectation: OwnerRule | ModeRule) -> Callable[[Facts], CheckResult]:
    def check(facts: Facts) -> CheckResult:
        if (remote := remote_engine(facts)) is not None:
            return remote
        located = locate(facts)
        if isinstance(located, Outcome):
            return located
        outcomes = []
        for stat in located:
            target = _file(stat.path)
            if stat.error:
                outcomes.append(skipped(f"{stat.path} could not be inspected: {stat.error}", target, path=stat.path))
            elif not stat.exists:
                named = what if stat.path in what else f"{what} {stat.path}"
                outcomes.append(not_applicable(f"{named} does not exist on this host", target, path=stat.path))
            elif isinstance(expectation, ModeRule) and stat.mode is None:
                outcomes.append(skipped(f"the mode of {stat.path} was not collected", target, path=stat.path))
            else:
                outcomes.append(expectation.judge(facts, stat, what))
        return outcomes

    return check


@dataclass(frozen=True)
class FileControl:
    control: str  # the rule's id and the control it implements
    severity: Severity
    what: str
    locate: Locator
    expectation: OwnerRule | ModeRule
    why: str
    fix: str
    title: str = ""  # when the generated one reads badly


ROOT = OwnerRule()
DOCKER_SOCKET_OWNER = OwnerRule(group="docker")

# fmt: off
FILE_CONTROLS = (
    FileControl(
        "CIS-3.1", Severity.MEDIUM, "the docker.service unit file", _unit("docker.service"), ROOT,
        "whoever can edit it chooses the command line dockerd starts with",
        "chown root:root FILE",
    ),
    FileControl(
        "CIS-3.2", Severity.MEDIUM, "the docker.service unit file", _unit("docker.service"), ModeRule(0o644),
        "whoever can edit it chooses the command line dockerd starts with",
        "chmod 644 FILE",
    ),
    FileControl(
        "CIS-3.3", Severity.MEDIUM, "the docker.socket unit file", _unit("docker.socket"), ROOT,
        "it sets the path, owner and mode of the API socket",
        "chown root:root FILE",
    ),
    FileControl(
        "CIS-3.4", Severity.MEDIUM, "the docker.socket unit file", _unit("docker.socket"), ModeRule(0o644),
        "it sets the path, owner and mode of the API socket",
        "chmod 644 FILE",
    ),
    FileControl(
        "CIS-3.5", Severity.MEDIUM, "the /etc/docker directory", _one("/etc/docker"), ROOT,
        "it holds daemon.json, registry certificates and keys",
        "chown root:root /etc/docker",
    ),
    FileControl(
        "CIS-3.6", Severity.MEDIUM, "the /etc/docker directory", _one("/etc/docker"),
        ModeRule(0o755),
        "it holds daemon.json, registry certificates and keys",
        "chmod 755 /etc/docker",
    ),
    FileControl(
        "CIS-3.7", Severity.MEDIUM, "the registry certificate entry", _registry_certs(False), ROOT,
        "they decide which registries the engine trusts",
        "chown -R root:root /etc/docker/certs.d",
        "Registry certificates under /etc/docker/certs.d are owned by root:root",
    ),
    FileControl(
        "CIS-3.8", Severity.MEDIUM, "the registry certificate file", _registry_certs(True), ModeRule(0o444),
        "they decide which registries the engine trusts",
        "chmod 444 on each file under /etc/docker/certs.d",
        "Registry certificate files under /etc/docker/certs.d have mode 444 or stricter",
    ),
    FileControl(
        "CIS-3.9", Severity.MEDIUM, "the TLS CA certificate", _tls("tlscacert", "CA certificate"), ROOT,
        "it decides which clients may drive the API",
        "chown root:root FILE",
    ),
    FileControl(
        "CIS-3.10", Severity.MEDIUM, "the TLS CA certificate", _tls("tlscacert", "CA certificate"), ModeRule(0o444),
        "it decides which clients may drive the API",
        "chmod 444 FILE",
    ),
    FileControl(
        "CIS-3.11", Severity.MEDIUM, "the daemon's TLS certificate", _tls("tlscert", "server certificate"), ROOT,
        "clients trust the daemon through it",
        "chown root:root FILE",
    ),
    FileControl(
        "CIS-3.12", Severity.MEDIUM, "the daemon's TLS certificate", _tls("tlscert", "server certificate"),
        ModeRule(0o444),
        "clients trust the daemon through it",
        "chmod 444 FILE",
    ),
    FileControl(
        "CIS-3.13", Severity.HIGH, "the daemon's TLS private key", _tls("tlskey", "server key"), ROOT,
        "whoever reads it can impersonate the daemon to every client",
        "chown root:root FILE",
    ),
    FileControl(
        "CIS-3.14", Severity.HIGH, "the daemon's TLS private key", _tls("tlskey", "server key"), ModeRule(0o400),
        "whoever reads it can impersonate the daemon to every client",
        "chmod 400 FILE",
    ),
    FileControl(
        "CIS-3.15", Severity.HIGH, "the Docker API socket", _docker_socket, DOCKER_SOCKET_OWNER,
        "whoever can open it controls the engine, which is root on the host",
        "chown root:docker SOCKET (for a systemd socket unit: SocketUser=root, SocketGroup=docker)",
    ),
    FileControl(
        "CIS-3.16", Severity.HIGH, "the Docker API socket", _docker_socket, ModeRule(0o660),
        "whoever can open it controls the engine, which is root on the host",
        "chmod 660 SOCKET (for a systemd socket unit: SocketMode=0660)",
    ),
    FileControl(
        "CIS-3.17", Severity.MEDIUM, "the daemon configuration file", _daemon_json, ROOT,
        "it sets every security option of the daemon",
        "chown root:root FILE",
    ),
    FileControl(
        "CIS-3.18", Severity.MEDIUM, "the daemon configuration file", _daemon_json, ModeRule(0o644),
        "it sets every security option of the daemon",
        "chmod 644 FILE",
    ),
    FileControl(
        "CIS-3.19", Severity.MEDIUM, "/etc/default/docker", _one("/etc/default/docker"),
        ROOT,
        "init scripts pass its options to dockerd",
        "chown root:root /etc/default/docker",
    ),
    FileControl(
        "CIS-3.20", Severity.MEDIUM, "/etc/default/docker", _one("/etc/default/docker"),
        ModeRule(0o644),
        "init scripts pass its options to dockerd",
        "chmod 644 /etc/default/docker",
    ),
    FileControl(
        "CIS-3.21", Severity.MEDIUM, "/etc/sysconfig/docker", _one("/etc/sysconfig/docker"),
        ModeRule(0o644),
        "init scripts pass its options to dockerd",
        "chmod 644 /etc/sysconfig/docker",
    ),
    FileControl(
        "CIS-3.22", Severity.MEDIUM, "/etc/sysconfig/docker", _one("/etc/sysconfig/docker"),
        ROOT,
        "init scripts pass its options to dockerd",
        "chown root:root /etc/sysconfig/docker",
    ),
    FileControl(
        "CIS-3.23", Severity.HIGH, "the containerd socket", _containerd_socket, ROOT,
        "whoever can open it runs containers beneath Docker, bypassing its checks",
        "chown root:root SOCKET (the [grpc] uid/gid settings of containerd's config)",
    ),
    FileControl(
        "CIS-3.24", Severity.HIGH, "the containerd socket", _containerd_socket, ModeRule(0o660),
        "whoever can open it runs containers beneath Docker, bypassing its checks",
        "chmod 660 SOCKET",
    ),
)
# fmt: on


def _title(control: FileControl) -> str:
    if control.title:
        return control.title
    expectation = control.expectation
    if isinstance(expectation, ModeRule):
        return f"{control.what[0].upper()}{control.what[1:]} has mode {expectation.limit:o} or stricter"
    return f"{control.what[0].upper()}{control.what[1:]} is owned by root:{expectation.group}"


def _rationale(control: FileControl) -> str:
    what = control.what[0].upper() + control.what[1:]
    expectation = control.expectation
    if isinstance(expectation, ModeRule):
        demand = (
            f"Its mode should grant nothing beyond {expectation.limit:04o}, so no one else can alter or replace it."
        )
    elif expectation.group == "docker":
        demand = "It should belong to root and group docker (root's own group is stricter and also passes)."
    else:
        demand = "It should belong to root:root, so that only root can change it or its permissions."
    text = (
        f"{what} matters because {control.why}. {demand} A file this host does not have is not applicable; "
        "the files of a remote engine cannot be seen, so there the check is skipped."
    )
    return textwrap.fill(text, 110)


for _control in FILE_CONTROLS:
    rule(
        id=_control.control,
        cis=_control.control,
        title=_title(_control),
        severity=_control.severity,
        scope=TargetKind.FILE,
        rationale=_rationale(_control),
        remediation=f"{_control.fix}, using the path in the finding.",
        statuses=STATUSES,
    )(_file_check(_control.what, _control.locate, _control.expectation))
