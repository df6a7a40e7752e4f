"""`propose_daemon_json` on recorded facts: which keys it writes, which it holds back, and why."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from portcullis.harden import HardenError
from portcullis.harden.daemon_json import DEFAULT_ULIMITS, Action, propose_daemon_json
from portcullis.model.facts import Facts

BASELINE = json.loads((Path(__file__).parent.parent / "rules" / "baseline.json").read_text())


def facts_with(cmdline: list[str] | None = None, daemon_json: dict[str, Any] | None = None, **info: Any) -> Facts:
    raw = copy.deepcopy(BASELINE)
    raw.pop("_comment", None)
    if cmdline is not None:
        raw["daemon"]["dockerd_cmdline"] = cmdline
    if daemon_json is not None:
        raw["daemon"].update(daemon_json=daemon_json, daemon_json_exists=True)
    raw["engine"]["info"].update(info)
    return Facts.model_validate(raw)


def by_key(proposal: Any) -> dict[str, Any]:
    return {change.key: change for change in proposal.changes}


def test_an_unconfigured_daemon_gets_every_level_1_key() -> None:
    proposal = propose_daemon_json(facts_with())
    assert proposal.proposed == {
        "icc": False,
        "log-level": "info",
        "live-restore": True,
        "userland-proxy": False,
        "no-new-privileges": True,
        "default-ulimits": DEFAULT_ULIMITS,
    }
    assert proposal.targeted_controls == [
        "CIS-2.2",
        "CIS-2.3",
        "CIS-2.9",
        "CIS-2.15",
        "CIS-2.16",
        "CIS-2.17",
        "CIS-5.26",
    ]
    assert "userns-remap" not in proposal.proposed
    assert proposal.diff().startswith("--- /dev/null\n+++ /etc/docker/daemon.json\n")


def test_level_2_adds_userns_remap() -> None:
    proposal = propose_daemon_json(facts_with(), level=2)
    change = by_key(proposal)["userns-remap"]
    assert (change.value, change.level, change.controls) == ("default", 2, ("CIS-2.10",))


def test_a_key_on_the_command_line_is_held_back_not_written() -> None:
    # dockerd refuses to start when a flag and daemon.json set the same key.
    proposal = propose_daemon_json(facts_with(cmdline=["/usr/bin/dockerd", "--live-restore=false"]))
    change = by_key(proposal)["live-restore"]
    assert change.action is Action.HELD
    assert "--live-restore" in change.note
    assert "live-restore" not in proposal.proposed


def test_icc_is_held_back_while_iptables_is_off() -> None:
    proposal = propose_daemon_json(facts_with(cmdline=["dockerd", "--iptables=false"]))
    changes = by_key(proposal)
    assert changes["icc"].action is Action.HELD
    assert "refuses icc=false while iptables is off" in changes["icc"].note
    assert "icc" not in proposal.proposed


def test_userland_proxy_is_held_back_while_iptables_stays_off() -> None:
    # Without iptables' NAT rules docker-proxy is all that serves published ports: turning it off breaks them.
    proposal = propose_daemon_json(facts_with(cmdline=["dockerd", "--iptables=false"]))
    change = by_key(proposal)["userland-proxy"]
    assert (change.action, change.value, change.controls) == (Action.HELD, False, ("CIS-2.17",))
    assert "published ports would stop answering" in change.note and "enable iptables first" in change.note
    assert "userland-proxy" not in proposal.proposed
    assert "CIS-2.17" not in proposal.targeted_controls
    held = "# held back userland-proxy (CIS-2.17): published ports"
    assert any(line.startswith(held) for line in proposal.comments())


def test_userland_proxy_is_written_when_the_proposal_turns_iptables_back_on() -> None:
    # iptables=false only in daemon.json: the proposal removes it, so NAT serves the ports again.
    proposal = propose_daemon_json(facts_with(daemon_json={"iptables": False}))
    changes = by_key(proposal)
    assert changes["iptables"].action is Action.REMOVE
    assert changes["userland-proxy"].action is Action.SET
    assert proposal.proposed["userland-proxy"] is False


def test_userland_proxy_already_off_is_not_proposed_again() -> None:
    facts = facts_with(cmdline=["dockerd", "--iptables=false"], daemon_json={"userland-proxy": False})
    assert "userland-proxy" not in by_key(propose_daemon_json(facts))


def test_the_current_file_is_kept_and_unsafe_keys_removed() -> None:
    current = {"registry-mirrors": ["https://mirror.example"], "debug": True, "insecure-registries": ["r:5000"]}
    proposal = propose_daemon_json(facts_with(daemon_json=current))
    proposed = proposal.proposed
    assert proposed["registry-mirrors"] == ["https://mirror.example"]
    assert "debug" not in proposed and "insecure-registries" not in proposed
    assert next(iter(proposed)) == "registry-mirrors"  # the user's order first, new keys after
    diff = proposal.diff()
    assert '-  "debug": true,' in diff and '+  "live-restore": true,' in diff


def test_a_hardened_file_needs_nothing() -> None:
    hardened = {
        "icc": False,
        "log-level": "info",
        "live-restore": True,
        "userland-proxy": False,
        "no-new-privileges": True,
        "default-ulimits": DEFAULT_ULIMITS,
    }
    proposal = propose_daemon_json(facts_with(daemon_json=hardened))
    assert proposal.written == []
    assert proposal.diff() == ""


def test_the_log_driver_is_only_a_suggestion() -> None:
    proposal = propose_daemon_json(facts_with(LoggingDriver="json-file"))
    change = by_key(proposal)["log-driver"]
    assert change.action is Action.SUGGEST
    assert "log-driver" not in proposal.proposed
    assert any(line.startswith("# suggestion (CIS-2.14)") for line in proposal.comments())


def test_the_trial_config_leaves_out_icc_and_what_the_trial_owns() -> None:
    proposal = propose_daemon_json(facts_with(daemon_json={"data-root": "/srv/docker", "iptables": False}))
    config, unverifiable = proposal.trial_config()
    assert "icc" not in config and "data-root" not in config and "iptables" not in config
    assert "--iptables=false" in unverifiable["CIS-2.2"]
    assert "CIS-2.4" in unverifiable


def test_without_the_command_line_nothing_is_proposed() -> None:
    raw = facts_with()
    raw.daemon.dockerd_cmdline = None
    with pytest.raises(HardenError, match="command line was not read"):
        propose_daemon_json(raw)
