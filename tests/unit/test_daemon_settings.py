"""The effective-setting resolution every CIS section-2 rule relies on."""

from __future__ import annotations

from typing import Any

import pytest

from portcullis.checks.daemon_settings import (
    COMMAND_LINE,
    DEFAULT,
    DOCKER_OPTS,
    SPECS,
    UNKNOWN,
    configured,
    effective,
    user_insecure_registries,
)
from portcullis.model.facts import DaemonConfig, EngineFacts, EngineInfo, EngineVersion, Facts


def local_daemon(argv: list[str] | None = None, daemon_json: dict[str, Any] | None = None) -> DaemonConfig:
    """A dockerd found on this host with `argv`, and `daemon_json` (None: no daemon.json file)."""
    return DaemonConfig(
        dockerd_cmdline=["dockerd", *(argv or [])],
        daemon_json=daemon_json,
        daemon_json_exists=daemon_json is not None,
    )


def facts_with(
    daemon: DaemonConfig, info: dict[str, Any] | None = None, version: dict[str, Any] | None = None
) -> Facts:
    engine = EngineFacts(
        endpoint="unix:///var/run/docker.sock",
        local=True,
        info=EngineInfo.model_validate(info or {}),
        version=EngineVersion.model_validate(version or {}),
    )
    return Facts(engine=engine, daemon=daemon)


@pytest.mark.parametrize(
    ("argv", "key", "value"),
    [
        (["--icc=false"], "icc", False),
        (["--no-new-privileges"], "no-new-privileges", True),  # a bare boolean flag means true
        (["--userland-proxy=0"], "userland-proxy", False),  # Go's ParseBool spellings
        (["--experimental=T"], "experimental", True),
        (["--log-level", "debug", "--log-level=info"], "log-level", "info"),  # the last occurrence wins
        (["-l", "warn"], "log-level", "warn"),
        (["-s", "overlay2"], "storage-driver", "overlay2"),
        (["--insecure-registry", "a:5000", "--insecure-registry=b:5000"], "insecure-registries", ["a:5000", "b:5000"]),
        (["--log-opt", "max-size=10m", "--log-opt=max-file=3"], "log-opts", {"max-size": "10m", "max-file": "3"}),
        (["-H", "fd://", "-H=tcp://0.0.0.0:2376"], "hosts", ["fd://", "tcp://0.0.0.0:2376"]),
    ],
)
def test_command_line_values(argv: list[str], key: str, value: Any) -> None:
    setting = configured(local_daemon(argv), key)
    assert setting.value == value
    assert setting.source == COMMAND_LINE


def test_daemon_json_value_and_path_named_as_source() -> None:
    daemon = local_daemon(daemon_json={"live-restore": True, "insecure-registries": "10.0.0.5:5000"})
    daemon.daemon_json_path = "/srv/docker.json"
    assert configured(daemon, "live-restore").value is True
    assert configured(daemon, "live-restore").source == "daemon.json (/srv/docker.json)"
    assert configured(daemon, "insecure-registries").value == ["10.0.0.5:5000"]  # a lone string is one entry


def test_command_line_wins_and_the_conflict_is_noted() -> None:
    setting = configured(local_daemon(["--iptables=false"], {"iptables": True}), "iptables")
    assert (setting.value, setting.source) == (False, COMMAND_LINE)
    assert "refuse to restart" in setting.note


def test_every_setting_falls_back_to_dockerd_default_only_when_both_sources_were_read() -> None:
    read = local_daemon()
    remote = DaemonConfig()
    for key, spec in SPECS.items():
        assert configured(read, key).value == spec.default, key
        assert configured(read, key).source == DEFAULT, key
        assert configured(remote, key).source == UNKNOWN, key
        assert configured(remote, key).value is None, key


def test_unparseable_daemon_json_makes_settings_unknown() -> None:
    daemon = DaemonConfig(dockerd_cmdline=["dockerd"], daemon_json_exists=True, daemon_json_error="invalid JSON")
    setting = configured(daemon, "no-new-privileges")
    assert not setting.known
    assert setting.note == "the daemon.json could not be read"


def test_docker_opts_used_only_when_the_command_line_is_unread() -> None:
    unread = DaemonConfig(dockerd_cmdline=None, docker_opts=["--iptables=false"])
    assert (configured(unread, "iptables").value, configured(unread, "iptables").source) == (False, DOCKER_OPTS)
    # With the real argv known, DOCKER_OPTS is already expanded inside it: the file is not read twice.
    running = DaemonConfig(dockerd_cmdline=["dockerd"], docker_opts=["--iptables=false"])
    assert configured(running, "iptables").value is True
    # DOCKER_OPTS silent and argv unread: another flag could still be set, so unknown.
    assert not configured(DaemonConfig(dockerd_cmdline=None, docker_opts=[]), "iptables").known


def test_engine_report_wins_and_keeps_the_configuration_view() -> None:
    facts = facts_with(local_daemon(daemon_json={"live-restore": True}), info={"LiveRestoreEnabled": False})
    setting = effective(facts, "live-restore")
    assert setting.value is False
    assert setting.source == "engine info LiveRestoreEnabled"
    assert setting.evidence() == {
        "live-restore": {
            "value": False,
            "source": "engine info LiveRestoreEnabled",
            "configured": {"value": True, "source": "daemon.json (/etc/docker/daemon.json)"},
        }
    }


@pytest.mark.parametrize(
    ("security_options", "profile"),
    [
        (["name=seccomp,profile=default"], "default"),
        (["name=apparmor", "name=seccomp,profile=/etc/docker/seccomp.json"], "/etc/docker/seccomp.json"),
        (["name=seccomp,profile=unconfined"], "unconfined"),
        ([], None),
    ],
)
def test_seccomp_profile_from_security_options(security_options: list[str], profile: str | None) -> None:
    facts = facts_with(DaemonConfig(), info={"SecurityOptions": security_options})
    assert effective(facts, "seccomp-profile").value == profile


def test_bridge_option_answers_icc_for_a_remote_engine() -> None:
    facts = facts_with(DaemonConfig(bridge_options={"com.docker.network.bridge.enable_icc": "false"}))
    setting = effective(facts, "icc")
    assert setting.value is False
    assert setting.configured is not None and not setting.configured.known


def test_experimental_from_engine_version() -> None:
    assert effective(facts_with(DaemonConfig(), version={"Experimental": True}), "experimental").value is True
    assert effective(facts_with(DaemonConfig()), "experimental").value is False


def test_user_insecure_registries_ignore_the_builtin_loopback_only() -> None:
    info = {
        "RegistryConfig": {
            "InsecureRegistryCIDRs": ["127.0.0.0/8", "::1/128", "10.20.0.0/16"],
            "IndexConfigs": {"reg.local:5000": {"Secure": False}, "docker.io": {"Secure": True}},
        }
    }
    chosen, config = user_insecure_registries(facts_with(local_daemon(["--insecure-registry=127.0.0.1:5000"]), info))
    assert chosen == ["10.20.0.0/16", "127.0.0.1:5000", "reg.local:5000"]
    assert config.source == COMMAND_LINE
    loopback_only, _ = user_insecure_registries(facts_with(local_daemon(), {"RegistryConfig": {}}))
    assert loopback_only == []
