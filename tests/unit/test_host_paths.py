"""CIS-5.6, DKR-CMP-005 and DKR-IN-008 judge a bind mount by one list, so they agree about every path on it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from portcullis.checks.registry import Rule, get_rule
from portcullis.checks.runner import evaluate, evaluate_on
from portcullis.collect.compose import load_compose
from portcullis.inside.host_paths import SENSITIVE_HOST_PATHS
from portcullis.model.facts import Facts
from portcullis.model.findings import Status, Target, TargetKind

TESTS = Path(__file__).resolve().parents[1]
BASELINE = {k: v for k, v in json.loads((TESTS / "rules" / "baseline.json").read_text()).items() if k[0] != "_"}
RECORDED = json.loads((TESTS / "runtime" / "signals" / "default.inside.json").read_text())
ORDINARY = ("/srv/app", "/etcetera", "/opt/data", "/var/lib/postgresql", "/tmp/build")


def _rule(rule_id: str) -> Rule:
    found = get_rule(rule_id)
    assert found is not None
    return found


def cis_verdict(host_path: str) -> Status:
    container = {
        "Id": "app-0123456789abcdef",
        "Name": "/app",
        "State": {"Status": "running", "Running": True, "Pid": 4242},
        "Config": {"User": "app", "Image": "app:1"},
        "HostConfig": {},
        "Mounts": [{"Type": "bind", "Source": host_path, "Destination": "/mnt/x", "RW": False}],
    }
    [finding] = evaluate(_rule("CIS-5.6"), Facts.model_validate(dict(BASELINE, containers=[container])))
    return finding.status


def compose_verdict(host_path: str, tmp_path: Path) -> Status:
    compose = tmp_path / "compose.yaml"
    compose.write_text(f"services:\n  app:\n    image: app:1\n    volumes:\n      - {host_path}:/mnt/x:ro\n")
    subject = load_compose([compose], environ={})
    statuses = {f.status for f in evaluate_on(_rule("DKR-CMP-005"), subject, Target(kind=TargetKind.COMPOSE, name="c"))}
    assert len(statuses) == 1
    return statuses.pop()


def inside_verdict(host_path: str) -> Status:
    # How mountinfo shows a bind mount of a host directory on the root disk.
    bind: dict[str, Any] = {
        "fstype": "ext4",
        "mountpoint": "/mnt/x",
        "options": ["ro", "relatime"],
        "root": host_path,
        "source": "/dev/vda",
        "super_options": ["rw"],
    }
    signals = dict(RECORDED, mounts=[*RECORDED["mounts"], bind])
    target = Target(kind=TargetKind.CONTAINER, name="recorded")
    [finding] = evaluate_on(_rule("DKR-IN-008"), signals, target)
    return finding.status


def test_every_sensitive_path_says_why() -> None:
    assert all(reason.strip() for reason in SENSITIVE_HOST_PATHS.values())


@pytest.mark.parametrize("host_path", [*SENSITIVE_HOST_PATHS, *(f"{p}/sub" for p in SENSITIVE_HOST_PATHS if p != "/")])
def test_the_three_rules_fail_a_sensitive_mount(host_path: str, tmp_path: Path) -> None:
    verdicts = (cis_verdict(host_path), compose_verdict(host_path, tmp_path), inside_verdict(host_path))
    assert verdicts == (Status.FAIL, Status.FAIL, Status.FAIL)


@pytest.mark.parametrize("host_path", ORDINARY)
def test_the_three_rules_pass_an_ordinary_mount(host_path: str, tmp_path: Path) -> None:
    verdicts = (cis_verdict(host_path), compose_verdict(host_path, tmp_path), inside_verdict(host_path))
    assert verdicts == (Status.PASS, Status.PASS, Status.PASS)


def test_an_engine_socket_is_left_to_the_socket_rules(tmp_path: Path) -> None:
    # CIS-5.32 and DKR-CMP-004 judge the socket; its directory, /var/run, is on the list.
    assert cis_verdict("/var/run/docker.sock") == Status.PASS
    assert compose_verdict("/var/run/docker.sock", tmp_path) == Status.PASS
