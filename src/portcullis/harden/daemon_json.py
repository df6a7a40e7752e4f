"""Propose a hardened daemon.json from a facts snapshot. Pure: no I/O.

Every change names the CIS controls it fixes and what it costs. Keys set on the dockerd command line are never
written to daemon.json (dockerd refuses to start when both set a key); they are reported as held back, with the
flag to change instead. Some choices cannot be made for the user (where logs go, which authorization plugin):
those are suggestions, printed as comments and never written.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from portcullis.checks.daemon_settings import DEFAULT, SPECS, Setting, configured, effective
from portcullis.harden import HardenError
from portcullis.model.facts import Facts

# Low enough to stay under a typical host hard limit (raising a hard limit needs CAP_SYS_RESOURCE), high enough
# for ordinary services; containers that need more ask with --ulimit.
DEFAULT_ULIMITS: dict[str, dict[str, Any]] = {
    "nofile": {"Name": "nofile", "Soft": 4096, "Hard": 8192},
    "nproc": {"Name": "nproc", "Soft": 2048, "Hard": 4096},
}

# Keys a trial dockerd sets on its own command line (its private socket, roots, bridge, firewall off): the
# proposal's values for them cannot be tried side by side with the main engine.
TRIAL_OWNED_KEYS = frozenset(
    {
        "hosts",
        "data-root",
        "graph",
        "exec-root",
        "pidfile",
        "bridge",
        "bip",
        "fixed-cidr",
        "fixed-cidr-v6",
        "default-address-pools",
        "iptables",
        "ip6tables",
        "ip-masq",
        "ip-forward",
        "storage-driver",
        "storage-opts",
        "containerd",
        "containerd-namespace",
        "containerd-plugins-namespace",
        "tls",
        "tlsverify",
        "tlscacert",
        "tlscert",
        "tlskey",
    }
)


class Action(StrEnum):
    SET = "set"  # written into the proposed daemon.json
    REMOVE = "remove"  # deleted from daemon.json so dockerd's safe default applies
    HELD = "held"  # wanted, but not written: the reason says what to do instead
    SUGGEST = "suggest"  # a choice only the user can make; printed as a comment


@dataclass(frozen=True)
class DaemonChange:
    key: str
    action: Action
    value: Any
    controls: tuple[str, ...]
    impact: str
    level: int = 1
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "action": self.action.value,
            "value": self.value,
            "controls": list(self.controls),
            "level": self.level,
            "impact": self.impact,
            "note": self.note,
        }


@dataclass
class DaemonProposal:
    path: str
    current: dict[str, Any]
    current_exists: bool
    changes: list[DaemonChange] = field(default_factory=list)

    @property
    def proposed(self) -> dict[str, Any]:
        result = dict(self.current)  # keeps the user's key order; new keys go last
        for change in self.changes:
            if change.action is Action.SET:
                result[change.key] = change.value
            elif change.action is Action.REMOVE:
                result.pop(change.key, None)
        return result

    @property
    def written(self) -> list[DaemonChange]:
        return [c for c in self.changes if c.action in (Action.SET, Action.REMOVE)]

    @property
    def targeted_controls(self) -> list[str]:
        """The controls the written changes are meant to make pass."""
        return _sorted_controls({c for change in self.written for c in change.controls})

    def diff(self) -> str:
        before = render(self.current) if self.current_exists else ""
        origin = self.path if self.current_exists else "/dev/null"
        lines = difflib.unified_diff(
            before.splitlines(keepends=True), render(self.proposed).splitlines(keepends=True), origin, self.path
        )
        return "".join(lines)

    def comments(self) -> list[str]:
        """What the diff cannot say: held-back keys and suggestions, as `#` lines."""
        lines = []
        for change in self.changes:
            if change.action is Action.HELD:
                lines.append(f"# held back {change.key} ({', '.join(change.controls)}): {change.note}")
            elif change.action is Action.SUGGEST:
                example = json.dumps(change.value)
                lines.append(f"# suggestion ({', '.join(change.controls)}): {change.note} e.g. {example}")
        return lines

    def trial_config(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The proposal as a side-by-side trial dockerd can run it, and the controls it cannot verify (with why)."""
        config = {k: v for k, v in self.proposed.items() if k not in TRIAL_OWNED_KEYS}
        unverifiable: dict[str, str] = {}
        if config.pop("icc", None) is False:
            unverifiable["CIS-2.2"] = (
                "not verifiable with --iptables=false: dockerd refuses icc=false without iptables, and a trial "
                "daemon must never change the host firewall"
            )
        for change in self.written:
            if change.key == "iptables":
                unverifiable["CIS-2.4"] = "not verifiable: a trial daemon always runs with --iptables=false"
        return config, unverifiable

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "current": self.current if self.current_exists else None,
            "proposed": self.proposed,
            "changes": [c.to_json() for c in self.changes],
            "targeted_controls": self.targeted_controls,
            "diff": self.diff(),
        }


def render(config: dict[str, Any]) -> str:
    return json.dumps(config, indent=2) + "\n"


def _sorted_controls(controls: set[str]) -> list[str]:
    def key(control: str) -> tuple[int, ...]:
        return tuple(int(part) for part in control.removeprefix("CIS-").split(".") if part.isdigit())

    return sorted(controls, key=key)


def _flag_conflict(facts: Facts, key: str) -> str | None:
    """The command-line flag that already sets `key`, if any."""
    flags = SPECS[key].flags if key in SPECS else (f"--{key}",)
    for flag in flags:
        if facts.daemon.flag_values(flag):
            return flag
    return None


def _iptables_stays_off(facts: Facts, current: dict[str, Any]) -> bool:
    """Whether iptables is still off once the proposal is in place (a command-line flag outlives daemon.json)."""
    if current.get("iptables") is False:
        return _flag_conflict(facts, "iptables") is not None
    iptables = configured(facts.daemon, "iptables")
    return iptables.known and iptables.value is False


class _Builder:
    def __init__(self, facts: Facts, current: dict[str, Any], level: int) -> None:
        self.facts = facts
        self.current = current
        self.level = level
        self.iptables_off = _iptables_stays_off(facts, current)
        self.changes: list[DaemonChange] = []

    def want(
        self, key: str, value: Any, controls: tuple[str, ...], impact: str, level: int = 1, pin: bool = False
    ) -> None:
        """Set `key` unless it already has `value`; hold it back when the command line owns it.

        With `pin`, a value that is only dockerd's default is written anyway, so a later flag cannot drift it.
        """
        setting: Setting = configured(self.facts.daemon, key)
        if setting.known and setting.value == value and not (pin and setting.source == DEFAULT):
            return
        flag = _flag_conflict(self.facts, key)
        if flag is not None:
            note = f"the dockerd command line sets {flag}; change it there (dockerd refuses a key set in both places)"
            self.changes.append(DaemonChange(key, Action.HELD, value, controls, impact, level, note))
            return
        self.changes.append(DaemonChange(key, Action.SET, value, controls, impact, level))

    def drop(self, key: str, controls: tuple[str, ...], impact: str, note: str) -> None:
        """Remove a daemon.json key whose value is unsafe; dockerd's default is the safe one."""
        self.changes.append(DaemonChange(key, Action.REMOVE, None, controls, impact, 1, note))

    def hold(self, key: str, value: Any, controls: tuple[str, ...], impact: str, note: str, level: int = 1) -> None:
        self.changes.append(DaemonChange(key, Action.HELD, value, controls, impact, level, note))

    def suggest(self, key: str, example: Any, controls: tuple[str, ...], impact: str, note: str) -> None:
        self.changes.append(DaemonChange(key, Action.SUGGEST, example, controls, impact, 2, note))


# --- the steps, one per setting (or group of unsafe keys), in the order the proposal lists them ---------------


def _iptables(build: _Builder) -> None:
    impact = "dockerd rewrites the host firewall rules for its networks at the next start"
    if build.current.get("iptables") is False:
        build.drop("iptables", ("CIS-2.4",), impact, "Docker should manage iptables")
    elif build.iptables_off:
        flag = _flag_conflict(build.facts, "iptables")
        build.hold(
            "iptables",
            True,
            ("CIS-2.4",),
            impact,
            f"iptables is off on the dockerd command line ({flag}); remove that flag",
        )


def _icc(build: _Builder) -> None:
    impact = "containers on the default bridge reach each other only through published ports or links"
    if build.iptables_off:
        build.hold(
            "icc",
            False,
            ("CIS-2.2",),
            impact,
            "dockerd refuses icc=false while iptables is off (it would not start); enable iptables first (CIS-2.4)",
        )
    else:
        build.want("icc", False, ("CIS-2.2",), impact)


def _log_level(build: _Builder) -> None:
    if build.current.get("debug") is True:
        build.drop("debug", ("CIS-2.3",), "the daemon stops logging at debug level", "debug logging is on")
    build.want(
        "log-level", "info", ("CIS-2.3",), "warnings and errors plus the events an investigation needs", pin=True
    )


def _live_restore(build: _Builder) -> None:
    if build.facts.engine.info.swarm.local_node_state == "active":
        build.hold(
            "live-restore",
            True,
            ("CIS-2.16",),
            "containers keep running while dockerd restarts",
            "this node is in swarm mode, which does not support live-restore",
        )
    else:
        build.want(
            "live-restore",
            True,
            ("CIS-2.16",),
            "containers keep running while dockerd stops or upgrades; dockerd can apply some changes on SIGHUP",
        )


def _userland_proxy(build: _Builder) -> None:
    impact = "published ports are served by kernel NAT instead of docker-proxy processes"
    proxy = configured(build.facts.daemon, "userland-proxy")
    if build.iptables_off and not (proxy.known and proxy.value is False):
        # Without iptables there are no NAT rules: docker-proxy is then the only thing answering published ports.
        build.hold(
            "userland-proxy",
            False,
            ("CIS-2.17",),
            impact,
            "published ports would stop answering: without iptables docker-proxy is all that serves them; "
            "enable iptables first (CIS-2.4)",
        )
    else:
        build.want("userland-proxy", False, ("CIS-2.17",), impact)


def _no_new_privileges(build: _Builder) -> None:
    build.want(
        "no-new-privileges",
        True,
        ("CIS-2.15", "CIS-5.26"),
        "setuid/setgid binaries (sudo, su, old ping) cannot raise privileges inside containers",
    )


def _default_ulimits(build: _Builder) -> None:
    ulimits = configured(build.facts.daemon, "default-ulimits")
    if not (ulimits.known and ulimits.value):
        build.want(
            "default-ulimits",
            DEFAULT_ULIMITS,
            ("CIS-2.9",),
            "containers get at most 8192 open files and 4096 processes per user unless started with --ulimit; "
            "without user-namespace remapping nproc counts all processes of that uid on the host",
        )


def _unsafe_keys(build: _Builder) -> None:
    current = build.current
    if current.get("experimental") is True:
        build.drop("experimental", ("CIS-2.19",), "experimental features disappear", "experimental features are on")
    if current.get("insecure-registries"):
        build.drop(
            "insecure-registries",
            ("CIS-2.5",),
            "registries without a trusted TLS certificate stop working until they get one",
            "registries reached without TLS verification",
        )
    if current.get("seccomp-profile") == "unconfined":
        build.drop(
            "seccomp-profile",
            ("CIS-2.18",),
            "containers get Docker's default seccomp profile; a few exotic syscalls are refused",
            "seccomp is disabled daemon-wide",
        )


def _userns_remap(build: _Builder) -> None:
    if build.level < 2 or effective(build.facts, "userns-remap").value is True:
        return
    build.want(
        "userns-remap",
        "default",
        ("CIS-2.10",),
        "root in a container maps to an unprivileged host uid range (dockerd creates the dockremap user); "
        "existing images and volumes are not visible under the remapped data root, --privileged and "
        "host namespaces need --userns=host",
        level=2,
    )


def _log_driver(build: _Builder) -> None:
    driver = effective(build.facts, "log-driver")
    if driver.known and driver.value in ("json-file", "local", "none"):
        build.suggest(
            "log-driver",
            {"log-driver": "syslog", "log-opts": {"syslog-address": "udp://LOGHOST:514"}},
            ("CIS-2.14",),
            "logs leave the host; `docker logs` works only with drivers that keep a local copy",
            "ship logs to your central log system (its address cannot be guessed);",
        )


def _authorization_plugins(build: _Builder) -> None:
    plugins = configured(build.facts.daemon, "authorization-plugins")
    if plugins.known and not plugins.value:
        build.suggest(
            "authorization-plugins",
            {"authorization-plugins": ["PLUGIN"]},
            ("CIS-2.13",),
            "every API request is checked by the plugin; a broken plugin blocks the API",
            "install and name an authorization plugin;",
        )


_STEPS: tuple[Callable[[_Builder], None], ...] = (
    _iptables,
    _icc,
    _log_level,
    _live_restore,
    _userland_proxy,
    _no_new_privileges,
    _default_ulimits,
    _unsafe_keys,
    _userns_remap,
    _log_driver,
    _authorization_plugins,
)


def propose_daemon_json(facts: Facts, level: int = 1) -> DaemonProposal:
    """The daemon.json that fixes section-2 findings of this engine; level 2 adds user-namespace remapping."""
    daemon = facts.daemon
    if daemon.dockerd_cmdline is None:
        raise HardenError(
            "the dockerd command line was not read (remote engine or no access to /proc); "
            "run `portcullis harden daemon` on the Docker host as root"
        )
    if daemon.daemon_json_error is not None:
        raise HardenError(f"{daemon.daemon_json_path} cannot be used as a base: {daemon.daemon_json_error}")
    build = _Builder(facts, dict(daemon.daemon_json or {}), level)
    for step in _STEPS:
        step(build)
    return DaemonProposal(
        path=daemon.daemon_json_path,
        current=build.current,
        current_exists=daemon.daemon_json is not None,
        changes=build.changes,
    )
