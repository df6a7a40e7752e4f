"""Exact audit verdicts for real containers on the real engine.

Each row of EXPECTED is one (rule, container) verdict the audit must give. The rows include every
case docker-bench-security 1.6.0 gets wrong: label=disable is no SELinux pass, read-only and
sub-directory mounts of sensitive paths, the host's sshd blamed on a --pid host container,
`--user 0:0` as root, stopped containers skipped, on-failure:10 accepted.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import docker
import pytest

from portcullis.checks.registry import all_rules, select_rules
from portcullis.model.findings import Finding, Status, TargetKind
from support.scenario import Audit, Scenario

pytestmark = pytest.mark.engine

P, F, M, NA = Status.PASS, Status.FAIL, Status.MANUAL, Status.NOT_APPLICABLE

# (rule, container role, status). Roles are described in conftest.ROLES.
EXPECTED: list[tuple[str, str, Status]] = [
    # No AppArmor and no SELinux on this VM: not applicable, whatever the container asked for.
    ("CIS-5.2", "hardened", NA),
    ("CIS-5.2", "privileged", NA),
    ("CIS-5.3", "hardened", NA),
    ("CIS-5.3", "hostns", NA),  # Docker adds label=disable for host namespaces: never a pass
    ("CIS-5.3", "privileged", NA),
    ("CIS-5.4", "caps", F),
    ("CIS-5.4", "plain", F),  # NET_RAW is not dropped
    ("CIS-5.4", "privileged", F),
    ("CIS-5.4", "stopped", F),
    ("CIS-5.4", "hardened", P),
    ("CIS-5.5", "privileged", F),  # created, never started: still audited
    ("CIS-5.5", "plain", P),
    ("CIS-5.5", "hardened", P),
    ("CIS-5.6", "mount-rw", F),
    ("CIS-5.6", "mount-ro", F),  # read-only is still a finding
    ("CIS-5.6", "mount-subdir", F),  # /etc/ssl is under /etc
    ("CIS-5.6", "docker-sock", P),  # /var/run is not on the sensitive list (5.32 covers the socket)
    ("CIS-5.6", "plain", P),
    ("CIS-5.6", "hardened", P),
    ("CIS-5.7", "sshd-inside", F),
    ("CIS-5.7", "hostns", P),  # the host runs an sshd, but not in this container's cgroup
    ("CIS-5.7", "hardened", P),
    ("CIS-5.7", "stopped", NA),
    ("CIS-5.7", "privileged", NA),
    ("CIS-5.8", "ports", F),
    ("CIS-5.8", "port-loopback", P),
    ("CIS-5.8", "hardened", P),
    ("CIS-5.9", "ports", M),
    ("CIS-5.9", "port-loopback", M),
    ("CIS-5.9", "hardened", P),
    ("CIS-5.10", "hostns", F),
    ("CIS-5.10", "plain", P),
    ("CIS-5.10", "hardened", P),
    ("CIS-5.11", "plain", F),
    ("CIS-5.11", "hardened", P),
    ("CIS-5.12", "plain", F),
    ("CIS-5.12", "hardened", P),
    ("CIS-5.13", "plain", F),
    ("CIS-5.13", "hardened", P),
    ("CIS-5.14", "ports", F),
    ("CIS-5.14", "port-loopback", P),
    ("CIS-5.14", "hardened", P),
    ("CIS-5.15", "restart-always", F),
    ("CIS-5.15", "restart-10", F),
    ("CIS-5.15", "stopped", P),  # --restart no
    ("CIS-5.15", "plain", P),
    ("CIS-5.15", "hardened", P),  # on-failure:3
    ("CIS-5.16", "hostns", F),
    ("CIS-5.16", "stopped", F),  # stopped containers are covered
    ("CIS-5.16", "plain", P),
    ("CIS-5.16", "hardened", P),
    ("CIS-5.17", "hostns", F),
    ("CIS-5.17", "hardened", P),
    ("CIS-5.18", "device", F),
    ("CIS-5.18", "plain", P),
    ("CIS-5.18", "hardened", P),
    ("CIS-5.19", "hardened", P),
    ("CIS-5.20", "propagation", F),
    ("CIS-5.20", "plain", P),
    ("CIS-5.20", "hardened", P),
    ("CIS-5.21", "hostns", F),
    ("CIS-5.21", "hardened", P),
    ("CIS-5.22", "seccomp", F),
    ("CIS-5.22", "plain", P),
    ("CIS-5.22", "hardened", P),
    ("CIS-5.23", "hardened", P),
    ("CIS-5.24", "hardened", P),
    ("CIS-5.25", "hardened", P),
    ("CIS-5.26", "plain", F),
    ("CIS-5.26", "hardened", P),
    ("CIS-5.27", "plain", F),  # no HEALTHCHECK
    ("CIS-5.27", "hardened", P),  # healthy
    ("CIS-5.27", "stopped", NA),
    ("CIS-5.28", "hardened", P),  # runs the image its tag names
    ("CIS-5.29", "plain", F),
    ("CIS-5.29", "hardened", P),
    ("CIS-5.30", "plain", F),  # on the default bridge
    ("CIS-5.30", "hardened", P),  # on a user-defined network
    ("CIS-5.31", "hardened", P),
    ("CIS-5.32", "docker-sock", F),
    ("CIS-5.32", "plain", P),
    ("CIS-5.32", "hardened", P),
    ("DKR-RT-001", "root-user", F),  # --user 0:0 is root
    ("DKR-RT-001", "plain", F),  # no user: the image's, which is root
    ("DKR-RT-001", "hardened", P),
]


def _one(audit: Audit, rule_id: str, target: str) -> Finding:
    found = audit.findings(rule_id, target)
    assert found, f"{rule_id} produced no finding for {target}"
    assert len(found) == 1, [f.message for f in found]
    return found[0]


@pytest.mark.parametrize(("rule_id", "role", "status"), EXPECTED, ids=[f"{r}-{c}" for r, c, _ in EXPECTED])
def test_verdict(audit: Audit, scenario: Scenario, rule_id: str, role: str, status: Status) -> None:
    if role == "propagation" and not scenario.has_propagation:
        pytest.skip("no shared mount could be made on this host, so no rshared bind mount")
    finding = _one(audit, rule_id, scenario.name(role))
    assert finding.status is status, f"{rule_id} on {role}: {finding.status.value}: {finding.message}"


def _evidence_text(finding: Finding) -> str:
    return json.dumps(finding.evidence, default=str) + " " + finding.message


def test_every_container_is_found_with_its_state(audit: Audit, scenario: Scenario) -> None:
    states = {c.short_name: c.state.status for c in audit.facts.containers}
    mine = {role: states.get(scenario.name(role)) for role in scenario.factory.names}
    assert mine["stopped"] == "exited"
    assert mine["privileged"] == "created"
    assert all(state == "running" for role, state in mine.items() if role not in ("stopped", "privileged")), mine


def test_stopped_and_created_containers_are_judged_by_every_container_rule(audit: Audit, scenario: Scenario) -> None:
    audit_rules = select_rules(all_rules(), command="audit")
    container_rules = {r.id for r in audit_rules if r.scope is TargetKind.CONTAINER}
    for role in ("stopped", "privileged"):
        judged = {f.rule_id for f in audit.container_findings(scenario.name(role))}
        assert judged == container_rules, f"{role}: no finding from {sorted(container_rules - judged)}"


def test_no_rule_errors_on_the_real_engine(audit: Audit) -> None:
    errors = [f"{f.rule_id} on {f.target.name}: {f.message}" for f in audit.report.findings if f.status is Status.ERROR]
    assert not errors


def test_hardened_container_passes_every_applicable_runtime_rule(audit: Audit, scenario: Scenario) -> None:
    verdicts = {f.rule_id: f for f in audit.container_findings(scenario.name("hardened"))}
    runtime = {rid: f for rid, f in verdicts.items() if rid.startswith(("CIS-5.", "DKR-RT-"))}
    assert "CIS-5.4" in runtime and "DKR-RT-001" in runtime
    not_passing = {
        rid: f"{f.status.value}: {f.message}"
        for rid, f in runtime.items()
        # Only the LSM rules may be not applicable here (no AppArmor/SELinux).
        if not (f.status is Status.PASS or (f.status is Status.NOT_APPLICABLE and rid in ("CIS-5.2", "CIS-5.3")))
    }
    assert not not_passing


def test_capabilities_added_are_named(audit: Audit, scenario: Scenario) -> None:
    text = _evidence_text(_one(audit, "CIS-5.4", scenario.name("caps")))
    assert "SYS_ADMIN" in text and "NET_ADMIN" in text


@pytest.mark.parametrize(
    ("role", "source", "destination"),
    [("mount-rw", "/etc", "/host-etc"), ("mount-ro", "/usr", "/host-usr"), ("mount-subdir", "/etc/ssl", "/x")],
)
def test_sensitive_mount_evidence(audit: Audit, scenario: Scenario, role: str, source: str, destination: str) -> None:
    finding = _one(audit, "CIS-5.6", scenario.name(role))
    text = _evidence_text(finding)
    assert f'"{source}"' in text and f'"{destination}"' in text, finding.evidence


def test_sshd_inside_is_named_and_the_host_sshd_is_not_blamed(
    audit: Audit, scenario: Scenario, host_sshd: subprocess.Popen[bytes]
) -> None:
    assert "sshd" in _evidence_text(_one(audit, "CIS-5.7", scenario.name("sshd-inside")))
    hostns = audit.container(scenario.name("hostns"))
    # The stand-in really is visible in the host PID namespace the container shares…
    assert Path(f"/proc/{host_sshd.pid}/comm").read_text().strip() == "sshd"
    # …and the collector still did not count it among the container's processes.
    assert hostns.processes is not None, hostns.processes_error
    assert host_sshd.pid not in {p.pid for p in hostns.processes}
    assert [p.comm for p in hostns.processes] == ["sleep"]


def test_privileged_port_is_named(audit: Audit, scenario: Scenario) -> None:
    assert str(scenario.privileged_port) in _evidence_text(_one(audit, "CIS-5.8", scenario.name("ports")))
    text = _evidence_text(_one(audit, "CIS-5.14", scenario.name("ports")))
    assert "0.0.0.0" in text and str(scenario.privileged_port) in text


# --- daemon and host controls of the main engine ------------------------------------------------


def _daemon_finding(audit: Audit, rule_id: str) -> Finding:
    found = audit.findings(rule_id)
    assert len(found) == 1, [(f.target.name, f.message) for f in found]
    return found[0]


def test_loopback_insecure_registry_default_passes(audit: Audit) -> None:
    finding = _daemon_finding(audit, "CIS-2.5")
    assert finding.status is Status.PASS, finding.message
    assert "127.0.0.0/8" in _evidence_text(finding)


def test_iptables_false_fails(audit: Audit) -> None:
    if "--iptables=false" not in (audit.facts.daemon.dockerd_cmdline or []):
        pytest.skip("the main engine was not started by `make engine` (--iptables=false)")
    assert _daemon_finding(audit, "CIS-2.4").status is Status.FAIL


@pytest.mark.parametrize("rule_id", ["CIS-2.2", "CIS-2.15", "CIS-2.16", "CIS-2.17"])
def test_defaults_of_an_unconfigured_daemon_fail(audit: Audit, rule_id: str) -> None:
    if audit.facts.daemon.daemon_json_exists or audit.facts.daemon.dockerd_cmdline != [
        "dockerd",
        "--iptables=false",
        "--storage-driver=vfs",
    ]:
        pytest.skip("the main engine is configured differently from the one `make engine` starts")
    finding = _daemon_finding(audit, rule_id)
    assert finding.status is Status.FAIL, finding.message


def test_swarm_inactive(audit: Audit) -> None:
    assert audit.facts.engine.info.swarm.local_node_state == "inactive"
    assert _daemon_finding(audit, "CIS-5.1").status is Status.PASS
    section7 = [f for f in audit.report.findings if f.rule_id.startswith("CIS-7.")]
    assert len(section7) == 9
    assert {f.status for f in section7} == {Status.NOT_APPLICABLE}


def test_stopped_containers_are_listed_by_6_2(audit: Audit, scenario: Scenario) -> None:
    finding = _daemon_finding(audit, "CIS-6.2")
    assert finding.status is Status.FAIL
    text = _evidence_text(finding)
    assert scenario.name("stopped") in text and scenario.name("privileged") in text


# The files 1.1.3–1.1.18 watch, as this test finds them itself on the host.
AUDIT_WATCHED = {
    "CIS-1.1.3": shutil.which("dockerd"),
    "CIS-1.1.4": "/run/containerd",
    "CIS-1.1.5": "/var/lib/docker",
    "CIS-1.1.6": "/etc/docker",
    "CIS-1.1.14": shutil.which("containerd"),
    "CIS-1.1.18": shutil.which("runc"),
}


def test_audit_rules_fail_because_auditd_is_not_installed(audit: Audit) -> None:
    if shutil.which("auditctl") or Path("/sbin/auditctl").exists():
        pytest.skip("auditctl is installed on this host")
    for control in range(3, 19):
        rule_id = f"CIS-1.1.{control}"
        finding = _daemon_finding(audit, rule_id)
        watched = AUDIT_WATCHED.get(rule_id)
        if watched and Path(watched).exists():
            assert finding.status is Status.FAIL, f"{rule_id}: {finding.message}"
        assert finding.status in (Status.FAIL, Status.NOT_APPLICABLE), f"{rule_id}: {finding.message}"
        if finding.status is Status.FAIL:
            message = finding.message.lower()
            assert "auditd" in message and "not installed" in message, f"{rule_id}: {finding.message}"


def test_api_calls_grow_by_one_inspect_per_container(audit: Audit) -> None:
    facts = audit.facts
    images_with_history = 2 * len(facts.images)
    # info, version, container list, image list, network list, plus one call per object
    # and one exec inspect per exec session (none are open on our containers).
    execs = sum(len(getattr(c, "exec_ids", None) or []) for c in facts.containers)
    fixed = audit.api_calls - len(facts.containers) - images_with_history - execs
    assert 0 < fixed <= 8, f"{audit.api_calls} calls for {len(facts.containers)} containers, {len(facts.images)} images"


def test_the_report_names_the_engine(audit: Audit, engine: docker.DockerClient) -> None:
    assert audit.report.subject == "unix:///var/run/docker.sock"
    assert audit.facts.engine.info.id == engine.info()["ID"]
