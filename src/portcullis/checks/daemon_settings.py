"""The effective value of a dockerd setting, and where it came from. Pure: reads a facts snapshot only.

Where a value can come from, strongest first:

1. the engine itself, for the settings `GET /info` reports (live restore, storage and logging driver,
   seccomp and userns in SecurityOptions, insecure registries) or the default bridge network reports
   (icc): that is what the daemon actually runs with, whatever the files say now;
2. the running dockerd's command line (read from /proc). dockerd refuses to start when a flag and
   daemon.json set the same key, so a key set in both means daemon.json was edited after the start:
   the command line is what runs and the evidence flags the conflict;
3. daemon.json;
4. DOCKER_OPTS from /etc/default/docker, only when docker.service hands it to dockerd and the running
   command line could not be read (when it could, DOCKER_OPTS is already expanded inside it);
5. dockerd's built-in default, but only when both the command line and daemon.json were read:
   an unread source could hold the key, so the value is then unknown, never a default.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from portcullis.model.facts import DaemonConfig, Facts

COMMAND_LINE = "dockerd command line"
DAEMON_JSON = "daemon.json"
DOCKER_OPTS = "DOCKER_OPTS in /etc/default/docker"
DEFAULT = "dockerd default"
UNKNOWN = "not collected"

# The engine always treats loopback registries as insecure; it is not a user choice.
BUILTIN_INSECURE_CIDRS = ("127.0.0.0/8", "::1/128")


class Kind(Enum):
    BOOL = "bool"
    TEXT = "text"
    LIST = "list"  # repeatable flag, JSON array
    MAP = "map"  # repeatable `key=value` flag, JSON object


Reported = tuple[Any, str]  # (value, where the engine reported it)


@dataclass(frozen=True)
class Spec:
    key: str  # the daemon.json key
    flags: tuple[str, ...]
    kind: Kind
    default: Any = None
    reported: Callable[[Facts], Reported | None] | None = None


@dataclass(frozen=True)
class Setting:
    """One setting's value. `known` is False when a source that could set it was not collected."""

    key: str
    value: Any
    source: str
    configured: Setting | None = None  # the configuration's own view, when the engine reported the value
    note: str = ""

    @property
    def known(self) -> bool:
        return self.source != UNKNOWN

    def evidence(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"value": self.value, "source": self.source}
        if self.note:
            entry["note"] = self.note
        if self.configured is not None:
            entry["configured"] = self.configured.evidence()[self.configured.key]
        return {self.key: entry}


def _bridge_icc(facts: Facts) -> Reported | None:
    value = (facts.daemon.bridge_options or {}).get("com.docker.network.bridge.enable_icc")
    return None if value is None else (_parse_bool(value), "default bridge network option enable_icc")


def _seccomp(facts: Facts) -> Reported | None:
    option = facts.engine.info.security_option("seccomp")
    if option is None:
        return None, "engine info SecurityOptions (no seccomp entry)"
    profile = next((part.split("=", 1)[1] for part in option.split(",") if part.startswith("profile=")), "default")
    return profile, "engine info SecurityOptions"


def _insecure_registries(facts: Facts) -> Reported:
    registry = facts.engine.info.registry_config
    insecure = list(registry.insecure_registry_cidrs)
    insecure += sorted(name for name, index in registry.index_configs.items() if index.get("Secure") is False)
    return insecure, "engine info RegistryConfig"


def _text(value: str, where: str) -> Reported | None:
    return (value, where) if value else None


SPECS: dict[str, Spec] = {
    spec.key: spec
    for spec in (
        Spec("icc", ("--icc",), Kind.BOOL, True, _bridge_icc),
        Spec("debug", ("-D", "--debug"), Kind.BOOL, False),
        Spec("log-level", ("-l", "--log-level"), Kind.TEXT, "info"),
        Spec("iptables", ("--iptables",), Kind.BOOL, True),
        Spec("insecure-registries", ("--insecure-registry",), Kind.LIST, [], _insecure_registries),
        Spec(
            "storage-driver",
            ("-s", "--storage-driver"),
            Kind.TEXT,
            None,
            lambda f: _text(f.engine.info.driver, "engine info Driver"),
        ),
        Spec("storage-opts", ("--storage-opt",), Kind.LIST, []),
        Spec("hosts", ("-H", "--host"), Kind.LIST, []),
        Spec("tlsverify", ("--tlsverify",), Kind.BOOL, False),
        Spec("tlscacert", ("--tlscacert",), Kind.TEXT, None),
        Spec("tlscert", ("--tlscert",), Kind.TEXT, None),
        Spec("tlskey", ("--tlskey",), Kind.TEXT, None),
        Spec("default-ulimits", ("--default-ulimit",), Kind.MAP, {}),
        Spec(
            "userns-remap",
            ("--userns-remap",),
            Kind.TEXT,
            None,
            # The engine says only whether remapping is on, not for which user.
            lambda f: (f.engine.info.security_option("userns") is not None, "engine info SecurityOptions"),
        ),
        Spec("cgroup-parent", ("--cgroup-parent",), Kind.TEXT, None),
        Spec("authorization-plugins", ("--authorization-plugin",), Kind.LIST, []),
        Spec(
            "log-driver",
            ("--log-driver",),
            Kind.TEXT,
            "json-file",
            lambda f: _text(f.engine.info.logging_driver, "engine info LoggingDriver"),
        ),
        Spec("log-opts", ("--log-opt",), Kind.MAP, {}),
        Spec("no-new-privileges", ("--no-new-privileges",), Kind.BOOL, False),
        Spec(
            "live-restore",
            ("--live-restore",),
            Kind.BOOL,
            False,
            lambda f: (f.engine.info.live_restore_enabled, "engine info LiveRestoreEnabled"),
        ),
        Spec("userland-proxy", ("--userland-proxy",), Kind.BOOL, True),
        Spec("seccomp-profile", ("--seccomp-profile",), Kind.TEXT, None, _seccomp),
        Spec(
            "experimental",
            ("--experimental",),
            Kind.BOOL,
            False,
            lambda f: (f.engine.version.experimental or f.engine.info.experimental_build, "engine version"),
        ),
    )
}


def _parse_bool(value: Any) -> Any:
    """Go's strconv.ParseBool spellings; anything else is returned unchanged for the evidence."""
    if isinstance(value, bool):
        return value
    text = str(value)
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    return value


def _from_flags(spec: Spec, values: list[str]) -> Any:
    if spec.kind is Kind.BOOL:
        return _parse_bool(values[-1])  # the last occurrence wins, as in dockerd's flag parser
    if spec.kind is Kind.TEXT:
        return values[-1]
    if spec.kind is Kind.LIST:
        return list(values)
    pairs = (value.partition("=") for value in values)
    return {name: rest for name, _, rest in pairs}


def _from_json(spec: Spec, value: Any) -> Any:
    if spec.kind is Kind.BOOL:
        return _parse_bool(value)
    if spec.kind is Kind.LIST and isinstance(value, str):
        return [value]
    return value


def _json_collected(daemon: DaemonConfig) -> bool:
    """daemon.json is known when it was parsed, or known absent on the host whose dockerd we found."""
    if daemon.daemon_json is not None:
        return True
    return daemon.dockerd_cmdline is not None and not daemon.daemon_json_exists and daemon.daemon_json_error is None


def configured(daemon: DaemonConfig, key: str) -> Setting:
    """What dockerd's configuration (command line, daemon.json, DOCKER_OPTS) sets `key` to."""
    spec = SPECS[key]
    json_known = _json_collected(daemon)
    in_json = json_known and daemon.daemon_json is not None and key in daemon.daemon_json
    if daemon.dockerd_cmdline is not None:
        flagged = daemon.flag_values(*spec.flags)
        if flagged:
            note = ""
            if in_json:
                note = f"{daemon.daemon_json_path} also sets it; dockerd will refuse to restart with both"
            return Setting(key, _from_flags(spec, flagged), COMMAND_LINE, note=note)
    if in_json:
        assert daemon.daemon_json is not None
        return Setting(key, _from_json(spec, daemon.daemon_json[key]), f"{DAEMON_JSON} ({daemon.daemon_json_path})")
    if daemon.dockerd_cmdline is None and daemon.docker_opts:
        opts = DaemonConfig(dockerd_cmdline=daemon.docker_opts).flag_values(*spec.flags)
        if opts:
            return Setting(key, _from_flags(spec, opts), DOCKER_OPTS)
    if daemon.dockerd_cmdline is not None and json_known:
        return Setting(key, spec.default, DEFAULT)
    missing = "dockerd command line" if daemon.dockerd_cmdline is None else "daemon.json"
    return Setting(key, None, UNKNOWN, note=f"the {missing} could not be read")


def effective(facts: Facts, key: str) -> Setting:
    """The value dockerd runs with: reported by the engine when it reports it, else the configuration's."""
    spec = SPECS[key]
    config = configured(facts.daemon, key)
    reported = spec.reported(facts) if spec.reported else None
    if reported is None:
        return config
    value, where = reported
    return Setting(key, value, where, configured=config)


def user_insecure_registries(facts: Facts) -> tuple[list[str], Setting]:
    """Insecure registries the user chose: configured ones, plus any the engine reports beyond loopback."""
    config = configured(facts.daemon, "insecure-registries")
    reported, _ = _insecure_registries(facts)
    extra = [entry for entry in reported if not _is_builtin_loopback(entry)]
    chosen = list(config.value or []) if config.known else []
    return sorted(set(chosen) | set(extra)), config


def _is_builtin_loopback(entry: str) -> bool:
    try:
        return str(ipaddress.ip_network(entry, strict=False)) in BUILTIN_INSECURE_CIDRS
    except ValueError:
        return False
