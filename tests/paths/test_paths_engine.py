"""`portcullis paths` on real containers built to contain each path, and on safe look-alikes."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from paths.expected import FROM_FACTS, SAFE_ROLES, WITH_INSIDE
from paths.scenario import start_scenario
from portcullis.inside.analyse import decode_caps
from portcullis.model.paths import PathsReport
from portcullis.pipelines.paths import paths_report, read_inside_signals
from support.containers import ContainerFactory, labelled_containers

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContainerFactory]:
    with labelled_containers(docker.from_env(), f"pcpl{uuid.uuid4().hex[:6]}") as factory:
        start_scenario(factory, tmp_path_factory.mktemp("fake-socket"))
        yield factory


def ours(report: PathsReport, factory: ContainerFactory) -> set[tuple[str, str, str, str]]:
    prefix = factory.prefix + "-"
    return {
        (p.template, p.target.removeprefix(prefix), p.entry.kind.value, p.certainty.value)
        for p in report.paths
        if p.target.startswith(prefix)
    }


def test_paths_from_the_audit_facts(scenario: ContainerFactory) -> None:
    assert ours(paths_report(None, None, inside=False), scenario) == FROM_FACTS


def test_paths_with_each_containers_own_proc(scenario: ContainerFactory) -> None:
    report = paths_report(None, None, inside=True)
    assert ours(report, scenario) == WITH_INSIDE
    assert report.inside_used
    safe = {scenario.name(role) for role in SAFE_ROLES}
    assert not {p.target for p in report.paths} & safe


def test_the_read_only_socket_answers_and_the_fake_one_is_no_socket(scenario: ContainerFactory) -> None:
    """What makes the read-only mount a path and the regular file not, seen through the containers' roots."""
    from portcullis.pipelines.audit import gather_facts

    signals, _ = read_inside_signals(gather_facts(None, None))
    read_only = signals[scenario.name("sock-ro")]["sockets"]
    assert [(s["path"], s["answers_ping"]) for s in read_only] == [("/var/run/docker.sock", True)]
    assert signals[scenario.name("sock-fake")]["sockets"] == []


def effective_caps(container: str, *user: str) -> list[str]:
    status = subprocess.run(
        ["docker", "exec", *user, container, "cat", "/proc/self/status"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return decode_caps(next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff:"))) or []


def test_exec_as_root_gains_the_bounding_set_only_without_no_new_privs(scenario: ContainerFactory) -> None:
    """What the engine_api entry rests on, measured: `docker exec -u 0` gets the added capabilities in a non-root
    container without no_new_privs, and nothing at all in one with it (the exec starts from the container's empty
    effective set, and under no_new_privs no execve gains capabilities)."""
    assert "SYS_ADMIN" not in effective_caps(scenario.name("nonroot-setuid"))
    assert "SYS_ADMIN" in effective_caps(scenario.name("nonroot-setuid"), "-u", "0")
    assert effective_caps(scenario.name("nonroot-nnp")) == []
    assert effective_caps(scenario.name("nonroot-nnp"), "-u", "0") == []


def test_cli_svg_of_the_live_engine(scenario: ContainerFactory, tmp_path: Path) -> None:
    import sys

    out = tmp_path / "paths.svg"
    result = subprocess.run(
        [sys.executable, "-m", "portcullis", "paths", "--inside", "-o", str(out), "--fail-on", "network"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr  # the published socket container is reachable from the network
    assert scenario.name("sock-published") in out.read_text()


def test_inside_text_shows_the_bounding_set_and_why(scenario: ContainerFactory) -> None:
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "portcullis", "inside", "--container", scenario.name("nonroot-nnp")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("  ")}
    for cap in ("NET_ADMIN", "SYS_PTRACE", "SYS_MODULE"):
        assert lines[cap].split()[1] == "no"
        assert "uid 1000 and no_new_privs is set" in lines[cap]
    assert "Bounding set (17): reachable by the container's process?" in result.stdout  # 14 default + 3 added
