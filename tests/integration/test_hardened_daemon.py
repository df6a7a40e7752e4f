"""A second dockerd with a hardened daemon.json, audited through `portcullis audit --host`.

The daemon runs beside the main engine with its own socket, roots, containerd namespaces and its own
bridge (never `--bridge none`, which would delete docker0 for everyone) and with --iptables=false, so
no test touches the host firewall. That makes two controls fail on purpose: 2.4 (iptables) and 2.2,
because dockerd refuses `icc: false` without iptables ("ICC=false uses iptables to function").
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import docker
import pytest

from portcullis.harden.trial_daemon import TrialDaemon, copy_image, missing_requirement
from portcullis.model.facts import Facts
from portcullis.model.findings import Report, Status
from support.containers import BUSYBOX, TEST_LABEL

pytestmark = pytest.mark.engine

HARDENED_CONFIG: dict[str, Any] = {
    "live-restore": True,
    "userland-proxy": False,
    "no-new-privileges": True,
    "log-level": "info",
    # Lower than the host's hard limit: raising it needs CAP_SYS_RESOURCE, which this VM lacks.
    "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 4096, "Soft": 1024}},
}


class HardenedAudit:
    def __init__(self, daemon: TrialDaemon, report: Report, facts: Facts, container: str) -> None:
        self.daemon = daemon
        self.report = report
        self.facts = facts
        self.container = container

    def status(self, rule_id: str, target: str | None = None) -> Status:
        found = [
            f for f in self.report.findings if f.rule_id == rule_id and (target is None or f.target.name == target)
        ]
        assert len(found) == 1, [(f.target.name, f.message) for f in found]
        return found[0].status

    def message(self, rule_id: str) -> str:
        return next(f.message for f in self.report.findings if f.rule_id == rule_id)


@pytest.fixture(scope="module")
def hardened(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HardenedAudit]:
    missing = missing_requirement()
    if missing:
        pytest.skip(missing)
    daemon = TrialDaemon(config=HARDENED_CONFIG)
    daemon.start()
    bridge = daemon.bridge
    try:
        with closing(daemon.client()) as target:
            copy_image(BUSYBOX, engine.api, target)
        with closing(daemon.client()) as client:
            client.containers.run(BUSYBOX, "sleep 600", name="plain", labels={TEST_LABEL: "1"}, detach=True)
        out = tmp_path_factory.mktemp("hardened")
        facts_path = out / "facts.json"
        cli = subprocess.run(
            [
                sys.executable,
                "-m",
                "portcullis",
                "audit",
                "--host",
                daemon.host,
                "-f",
                "json",
                "--facts-out",
                facts_path,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert cli.returncode == 0, cli.stderr
        report = Report.model_validate_json(cli.stdout)  # stdout holds the JSON document and nothing else
        facts = Facts.from_json(facts_path.read_text())
        yield HardenedAudit(daemon, report, facts, "plain")
    finally:
        daemon.stop()
        assert not Path(f"/sys/class/net/{bridge}").exists(), "the bridge of the second daemon survived"
        assert daemon.root is not None and not daemon.root.exists(), "the second daemon's directories survived"


def test_the_second_dockerd_command_line_is_found(hardened: HardenedAudit) -> None:
    daemon = hardened.daemon.process
    assert daemon is not None
    found = hardened.facts.daemon
    assert found.dockerd_pid == daemon.pid
    assert found.dockerd_cmdline == hardened.daemon.argv()
    assert found.daemon_json_path == str(hardened.daemon.root / "daemon.json")
    assert found.daemon_json == HARDENED_CONFIG
    assert hardened.report.subject == hardened.daemon.host


@pytest.mark.parametrize(
    ("rule_id", "status"),
    [
        ("CIS-2.2", Status.FAIL),  # icc=false is impossible without iptables
        ("CIS-2.3", Status.PASS),  # log-level info
        ("CIS-2.4", Status.FAIL),  # --iptables=false, on purpose
        ("CIS-2.5", Status.PASS),  # only the loopback default
        ("CIS-2.6", Status.PASS),  # vfs, not aufs
        ("CIS-2.7", Status.PASS),  # vfs, not devicemapper
        ("CIS-2.8", Status.NOT_APPLICABLE),  # no TCP socket
        ("CIS-2.9", Status.PASS),  # default-ulimits
        ("CIS-2.15", Status.PASS),  # no-new-privileges
        ("CIS-2.16", Status.PASS),  # live-restore
        ("CIS-2.17", Status.PASS),  # userland-proxy false
        ("CIS-2.18", Status.PASS),  # the default seccomp profile is in force
        ("CIS-2.19", Status.PASS),  # not experimental
    ],
)
def test_section_2_follows_the_configuration(hardened: HardenedAudit, rule_id: str, status: Status) -> None:
    assert hardened.status(rule_id) is status, hardened.message(rule_id)


def test_daemon_default_no_new_privileges_covers_containers(hardened: HardenedAudit) -> None:
    # The container asked for nothing; the daemon-wide default is what protects it.
    assert hardened.status("CIS-5.26", hardened.container) is Status.PASS


def test_the_second_daemon_sees_only_its_own_container(hardened: HardenedAudit) -> None:
    assert [c.short_name for c in hardened.facts.containers] == ["plain"]
    assert hardened.facts.engine.info.live_restore_enabled is True


def test_no_rule_errors_on_the_second_daemon(hardened: HardenedAudit) -> None:
    errors = [f"{f.rule_id}: {f.message}" for f in hardened.report.findings if f.status is Status.ERROR]
    assert not errors
