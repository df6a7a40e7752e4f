"""`portcullis harden daemon --verify` on this host: a private dockerd runs the proposal and is re-audited.

The main engine here runs with --iptables=false, so icc is held back (dockerd would refuse to start with
icc=false) and so is userland-proxy=false (published ports would stop answering), each reported with why;
every key actually written must make its control pass on the trial daemon.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from .conftest import BASE_IMAGE, harden

pytestmark = pytest.mark.engine


def trial_leftovers() -> tuple[list[str], list[str]]:
    bridges = [p.name for p in Path("/sys/class/net").iterdir() if p.name.startswith("pch")]
    roots = [p.name for p in Path("/tmp").iterdir() if p.name.startswith("pc-harden-")]
    return bridges, roots


@pytest.fixture(scope="module")
def root_with_dockerd(workload_images: dict[str, str]) -> None:
    if os.geteuid() != 0 or subprocess.run(["which", "dockerd"], capture_output=True).returncode != 0:
        pytest.skip("a trial dockerd needs root and dockerd")


def test_verify_runs_the_proposal_and_every_written_key_passes(root_with_dockerd: None) -> None:
    before = trial_leftovers()
    code, document, stderr = harden("daemon", "--level", "2", "--verify", "--smoke-image", BASE_IMAGE)
    assert code == 0, stderr
    outcomes = {o["rule_id"]: o for o in document["verification"]}
    written = {c["key"]: c for c in document["changes"] if c["action"] in ("set", "remove")}
    assert {"live-restore", "no-new-privileges", "log-level", "userns-remap"} <= set(written)
    held = {c["key"]: c for c in document["changes"] if c["action"] == "held"}
    assert "userland-proxy" not in written and "published ports would stop answering" in held["userland-proxy"]["note"]
    for change in written.values():
        for rule_id in change["controls"]:
            assert outcomes[rule_id]["after"] == "pass", outcomes[rule_id]
    # Controls the main engine fails today and the proposal fixes, measured on both daemons.
    for rule_id in ("CIS-2.15", "CIS-2.16", "CIS-2.10"):
        assert (outcomes[rule_id]["before"], outcomes[rule_id]["after"]) == ("fail", "pass")
    assert outcomes["CIS-5.26"]["after"] == "pass"  # the smoke container inherits no-new-privileges
    assert outcomes["CIS-2.17"]["after"] == "held back"
    assert outcomes["CIS-2.2"]["after"] in ("held back", "not verifiable")
    assert "iptables" in outcomes["CIS-2.2"]["note"]
    assert trial_leftovers() == before, "the trial daemon left its bridge or directories behind"


def test_apply_writes_the_proposal_with_a_backup_and_restarts_nothing(root_with_dockerd: None, tmp_path: Path) -> None:
    target = tmp_path / "daemon.json"
    target.write_text('{"registry-mirrors": ["https://mirror.example"]}\n')
    main_dockerd = Path("/var/run/docker.pid").read_text().strip()
    started = Path(f"/proc/{main_dockerd}/stat").read_text().split()[21]
    code, document, stderr = harden("daemon", "--apply", "--daemon-json", str(target))
    assert code == 0, stderr
    assert json.loads(target.read_text()) == document["proposed"]
    backup = Path(document["applied"]["backup"])
    assert json.loads(backup.read_text()) == {"registry-mirrors": ["https://mirror.example"]}
    assert document["verification"], "--apply must verify first"
    # The main dockerd is the same process as before: nothing restarted it.
    assert Path(f"/proc/{main_dockerd}/stat").read_text().split()[21] == started


def test_facts_in_cannot_be_verified(tmp_path: Path) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text("{}")
    code, _, stderr = harden("daemon", "--facts-in", str(facts), "--verify")
    assert code == 1
    assert (
        stderr.strip()
        == "portcullis: error: --facts-in proposes from a snapshot; --verify and --apply need the live engine"
    )
