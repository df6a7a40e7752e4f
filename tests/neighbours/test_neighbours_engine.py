"""`portcullis neighbours` on the real engine, tiny: a CPU victim beside a CPU hog pinned to the same core loses
a large share of its work without limits and clearly less with Docker's CPU limits; nothing is left behind."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
from contextlib import nullcontext

import docker
import docker.errors
import pytest

from portcullis.model.neighbours import LimitsMode, NeighboursReport
from portcullis.proofs.neighbours import default_cpuset
from portcullis.proofs.neighbours_results import degradation_percent

pytestmark = pytest.mark.engine
IMAGES = ("portcullis-test/python:bookworm", "portcullis-test/busybox:1")


def leftovers(client: docker.DockerClient, pid: int) -> list[str]:
    """Containers of the run with this pid (another run, e.g. the benchmark, may share the engine)."""
    owner = f"portcullis.owner={socket.gethostname()}:{pid}"
    return [c.name for c in client.containers.list(all=True, filters={"label": owner})]


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    try:
        engine = docker.from_env(timeout=120)
        engine.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine answers (run `make engine`): {exc}")
    for image in IMAGES:
        try:
            engine.images.get(image)
        except docker.errors.ImageNotFound:
            pytest.fail(f"{image} is missing: run `make test-images`")
    return engine


@pytest.fixture(scope="module")
def cpu_beside_cpu(client: docker.DockerClient) -> NeighboursReport:
    run = subprocess.Popen(
        [sys.executable, "-m", "portcullis", "neighbours", "--aggressor", "cpu", "--victim", "cpu",
         "--limits", "none,docker", "--repeat", "3", "--seconds", "1", "--cpuset-cpus", default_cpuset(),
         "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    stdout, stderr = run.communicate(timeout=240)
    assert run.returncode == 0, stderr
    assert leftovers(client, run.pid) == []
    return NeighboursReport.model_validate(json.loads(stdout))


@pytest.mark.timeout(300)
def test_degradation_comes_from_the_recorded_runs(cpu_beside_cpu: NeighboursReport) -> None:
    assert len(cpu_beside_cpu.cells) == 2
    for item in cpu_beside_cpu.cells:
        assert len(item.alone) == len(item.beside) == 3
        # LCG iterations per second of a python loop: far above zero, far below a native C loop.
        assert all(1e5 < value < 1e9 for value in item.alone + item.beside), item
        expected = degradation_percent(statistics.median(item.alone), statistics.median(item.beside), "higher")
        assert item.degradation_percent == pytest.approx(expected)


@pytest.mark.timeout(300)
def test_a_hog_on_the_same_core_hurts_and_the_cpu_limit_contains_it(cpu_beside_cpu: NeighboursReport) -> None:
    by_limits = {item.limits: item.degradation_percent for item in cpu_beside_cpu.cells}
    free, capped = by_limits[LimitsMode.none], by_limits[LimitsMode.docker]
    assert free is not None and capped is not None
    # Two busy loops on one core: the victim keeps about half (less when others load the machine too).
    assert free > 25.0, by_limits
    # The hog held to a quarter core and a quarter of the victim's shares takes less (on a machine loaded by other
    # work the limited cell still wanders: medians of three keep one burst from deciding).
    assert capped < free, by_limits
    assert cpu_beside_cpu.environment.load_average and cpu_beside_cpu.settings.cpuset_cpus == default_cpuset()


@pytest.mark.timeout(300)
def test_a_registered_launcher_serves_its_runtime_name(
    client: docker.DockerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plug for a VM or a private runsc: a launcher registered under a name the engine does not know."""
    from portcullis.model.neighbours import Aggressor, Victim
    from portcullis.proofs import neighbours

    started: list[str] = []

    class Plugged(neighbours.DockerLauncher):
        def start(self, spec: neighbours.InstanceSpec) -> neighbours.Instance:
            started.append(spec.role)
            return super().start(spec)

    monkeypatch.setitem(
        neighbours.LAUNCHERS, "plugged", lambda box, plan, progress: nullcontext(Plugged(box, "runc", False))
    )
    plan = neighbours.Plan(
        runtimes=("plugged",), aggressors=(Aggressor.cpu,), victims=(Victim.cpu,), limits=(LimitsMode.none,),
        repeat=1, seconds=0.5, cpuset=default_cpuset(),
    )  # fmt: skip
    report = neighbours.neighbours_report(plan)
    assert started == ["victim", "cpu aggressor"]
    (item,) = report.cells
    assert item.runtime == "plugged" and item.degradation_percent is not None
    assert leftovers(client, os.getpid()) == []  # this process ran it
