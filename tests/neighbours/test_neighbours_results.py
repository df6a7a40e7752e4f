"""The pure half of `portcullis neighbours`: degradation from recorded runs, undecided cells, the claims, and the
renderings, over matrices written here (no engine)."""

from __future__ import annotations

import pytest

from portcullis.model.neighbours import (
    Aggressor,
    LimitsMode,
    LimitValues,
    NeighboursEnvironment,
    NeighboursReport,
    NeighboursSettings,
    Victim,
)
from portcullis.proofs.neighbours_results import cell, check_claims, degradation_percent, render_markdown, render_text


def test_a_rate_that_halves_loses_half() -> None:
    assert degradation_percent(alone=200.0, beside=100.0, better="higher") == pytest.approx(50.0)


def test_a_latency_that_doubles_loses_half_the_round_trips_per_second() -> None:
    assert degradation_percent(alone=10.0, beside=20.0, better="lower") == pytest.approx(50.0)


def test_a_victim_that_got_faster_is_negative() -> None:
    assert degradation_percent(alone=100.0, beside=125.0, better="higher") == pytest.approx(-25.0)


def test_non_positive_values_are_refused() -> None:
    with pytest.raises(ValueError):
        degradation_percent(0.0, 1.0, "higher")


def test_a_cell_uses_the_medians_of_its_runs() -> None:
    item = cell(
        "runc", LimitsMode.none, Aggressor.cpu, Victim.cpu, alone=[90.0, 100.0, 500.0], beside=[40.0, 50.0, 1.0]
    )
    assert item.degradation_percent == pytest.approx(60.0)  # median 100 alone, median 40 beside
    assert item.unit == "iterations/s" and item.better == "higher"
    assert item.within_noise is False


def test_a_cell_inside_the_alone_spread_is_within_noise() -> None:
    item = cell("runc", LimitsMode.none, Aggressor.disk, Victim.cpu, alone=[80.0, 100.0, 120.0], beside=[90.0])
    assert item.degradation_percent == pytest.approx(10.0)
    assert item.within_noise is True


def test_a_cell_without_beside_runs_is_undecided_not_zero() -> None:
    item = cell("runc", LimitsMode.none, Aggressor.fork, Victim.cpu, alone=[100.0], beside=[], note="aggressor died")
    assert item.degradation_percent is None
    assert item.within_noise is None
    assert item.note == "aggressor died"


def _matrix(free: dict[tuple[Aggressor, Victim], float], capped: dict[tuple[Aggressor, Victim], float]) -> list:
    cells = []
    for limits, losses in ((LimitsMode.none, free), (LimitsMode.docker, capped)):
        for (aggressor, victim), loss in losses.items():
            beside = 100.0 * (1 - loss / 100) if victim is not Victim.tcp_latency else 100.0 / (1 - loss / 100)
            cells.append(cell("runc", limits, aggressor, victim, alone=[100.0, 100.0], beside=[beside, beside]))
    return cells


def _verdicts(cells: list) -> dict[str, str]:
    return {claim.claim: claim.verdict for claim in check_claims(cells, ["runc"])}


def test_a_cpu_hog_felt_by_a_container_breaks_the_network_only_claim() -> None:
    cells = _matrix({(Aggressor.cpu, Victim.cpu): 50.0, (Aggressor.net, Victim.tcp_latency): 40.0}, {})
    claims = {c.claim: c for c in check_claims(cells, ["runc"])}
    network_only = claims["A container (runc) is affected by a neighbour only through the network"]
    assert network_only.verdict == "did not hold"
    assert "cpu→cpu +50 %" in network_only.evidence


def test_only_the_network_felt_keeps_the_network_only_claim() -> None:
    cells = _matrix({(Aggressor.cpu, Victim.cpu): 3.0, (Aggressor.net, Victim.tcp_latency): 40.0}, {})
    assert _verdicts(cells)["A container (runc) is affected by a neighbour only through the network"] == "held"


def test_a_limit_that_cuts_the_loss_holds_and_one_that_does_not_fails() -> None:
    cells = _matrix(
        {(Aggressor.cpu, Victim.cpu): 50.0, (Aggressor.disk, Victim.disk): 60.0, (Aggressor.membw, Victim.membw): 62.0},
        {(Aggressor.cpu, Victim.cpu): 8.0, (Aggressor.disk, Victim.disk): 58.0, (Aggressor.membw, Victim.membw): 42.0},
    )
    claims = {c.claim: c for c in check_claims(cells, ["runc"])}
    assert claims["A CPU limit contains a cpu neighbour (runc, --cpus)"].verdict == "held"
    disk = claims["A disk limit contains a disk neighbour (runc, --device-write-bps)"]
    assert disk.verdict == "did not hold" and disk.evidence.endswith("disk: +60 % → +58 % (still felt)")
    # Less is not contained: a neighbour still taking 42 % is felt.
    memory = claims[
        "A memory limit contains a membw neighbour (runc, --memory (a capacity limit; there is no bandwidth limit))"
    ]
    assert memory.verdict == "did not hold" and "(reduced, still felt)" in memory.evidence
    verdicts = {claim: item.verdict for claim, item in claims.items()}
    # A neighbour not felt even without limits leaves nothing to contain: undecided, not a pass.
    quiet = _matrix({(Aggressor.fork, Victim.cpu): 4.0}, {(Aggressor.fork, Victim.cpu): 1.0})
    fork = {c.claim: c for c in check_claims(quiet, ["runc"])}[
        "A process count limit contains a fork neighbour (runc, --pids-limit)"
    ]
    assert fork.verdict == "not measured" and fork.evidence.startswith("not felt even without limits")
    # No fork cells at all: nothing is claimed either way.
    assert verdicts["A process count limit contains a fork neighbour (runc, --pids-limit)"] == "not measured"


def test_without_a_vm_the_vm_claim_is_not_measured() -> None:
    verdicts = _verdicts(_matrix({(Aggressor.cpu, Victim.cpu): 50.0}, {}))
    assert verdicts["A VM isolates memory, fork, CPU, disk and network traffic completely"] == "not measured"


def _vm_cells(runtime: str, losses: dict[tuple[Aggressor, Victim], float], refused: str = "") -> list:
    cells = [
        cell(runtime, LimitsMode.none, aggressor, victim, alone=[100.0, 100.0], beside=[100.0 - loss] * 2)
        for (aggressor, victim), loss in losses.items()
    ]
    cells += [cell(runtime, LimitsMode.docker, a, v, [], [], refused) for a, v in losses]
    return cells


def test_a_vm_neighbour_felt_breaks_the_vm_claim_and_says_tcg() -> None:
    cells = _vm_cells("vm-tcg", {(Aggressor.cpu, Victim.cpu): 51.0, (Aggressor.membw, Victim.membw): 3.0}, "n/a")
    claims = {c.claim: c for c in check_claims(cells, ["vm-tcg"])}
    vm = claims["A VM isolates memory, fork, CPU, disk and network traffic completely (vm-tcg)"]
    assert vm.verdict == "did not hold"
    assert vm.evidence == "under TCG software emulation, not KVM: felt beside a VM neighbour: cpu→cpu +51 %"
    # Docker's limits do not reach a VM: no limit claim is made for it, either way.
    assert not [claim for claim in claims if "limit contains" in claim]


def test_a_vm_no_neighbour_reaches_holds_the_vm_claim() -> None:
    cells = _vm_cells("vm", {(Aggressor.fork, Victim.cpu): 4.0, (Aggressor.disk, Victim.disk): -2.0})
    vm = {c.claim: c for c in check_claims(cells, ["vm"])}[
        "A VM isolates memory, fork, CPU, disk and network traffic completely (vm)"
    ]
    assert (vm.verdict, vm.evidence) == ("held", "no cell over 10 %")


def test_a_vm_that_cannot_run_leaves_its_claim_not_measured_with_the_reason() -> None:
    reason = "vm cannot run here: /dev/kvm here is kvm_pvm"
    cells = [cell("vm", LimitsMode.none, Aggressor.cpu, Victim.cpu, [], [], reason)]
    vm = {c.claim: c for c in check_claims(cells, ["vm"])}[
        "A VM isolates memory, fork, CPU, disk and network traffic completely (vm)"
    ]
    assert (vm.verdict, vm.evidence) == ("not measured", reason)


def report_of(cells: list, runtimes: list[str] | None = None) -> NeighboursReport:
    runtimes = runtimes or ["runc"]
    limits = LimitValues(
        aggressor_cpus=0.25, aggressor_cpu_shares=256, victim_cpu_shares=1024, memory_mib=512, pids=200,
        blkio_weight=500, device_write_mib_per_s=50, device="/dev/vda", tc_rate_mbit=100,
    )  # fmt: skip
    settings = NeighboursSettings(
        runtimes=runtimes, aggressors=sorted({c.aggressor for c in cells}, key=list(Aggressor).index),
        victims=sorted({c.victim for c in cells}, key=list(Victim).index), limits=[LimitsMode.none, LimitsMode.docker],
        repeat=2, seconds=1.0, cpuset_cpus="1", fork_pids_cap=2000, docker_limits=limits,
    )  # fmt: skip
    environment = NeighboursEnvironment(
        engine_version="20.10.24", storage_driver="vfs", cgroup_version="1", kernel="6.1", cpus=2,
        victim_image="python", aggressor_image="busybox", load_average=[1.5, 2.25],
    )  # fmt: skip
    return NeighboursReport(
        version="test", started_at="2026-12-03T23:00:00+00:00", duration_seconds=12.0, settings=settings,
        environment=environment, cells=cells, claims=check_claims(cells, runtimes), notes=["a note"],
    )  # fmt: skip


def test_markdown_has_the_matrix_the_load_and_the_claims() -> None:
    cells = _matrix({(Aggressor.cpu, Victim.cpu): 50.0}, {(Aggressor.cpu, Victim.cpu): 10.0})
    text = render_markdown(report_of(cells))
    assert "| runtime | limits | aggressor | cpu (iterations/s) |" in text
    assert "| runc | none | cpu | +50 % |" in text
    assert "| runc | docker | cpu | +10 % |" in text
    assert "load average 1.50 → 2.25" in text
    assert "| A CPU limit contains a cpu neighbour (runc, --cpus) | held |" in text
    assert "| runc | none | cpu (iterations/s) | 100 | 100 | 100 | ×1.00 |" in text  # the alone runs' spread


def test_text_marks_missing_cells() -> None:
    cells = _matrix({(Aggressor.cpu, Victim.cpu): 50.0}, {})
    lines = render_text(report_of(cells)).splitlines()
    assert lines[2].split() == ["runc", "none", "cpu", "+50", "%"]
    assert lines[3].split() == ["runc", "docker", "cpu", "n/a"]


def test_a_runtime_that_cannot_measure_a_victim_says_why_in_the_table_and_the_claim() -> None:
    why = "n/a in runsc: gVisor ignores O_DIRECT"
    cells = [
        cell("runsc", limits, Aggressor.disk, Victim.disk, alone=[], beside=[], note=why)
        for limits in (LimitsMode.none, LimitsMode.docker)
    ]
    report = report_of(cells, ["runsc"])
    assert f"n/a (runsc, victim disk): {why}" in render_text(report).splitlines()
    assert f"n/a (runsc, victim disk): {why}" in render_markdown(report)
    disk = {c.claim: c for c in report.claims}["A disk limit contains a disk neighbour (runsc, --device-write-bps)"]
    assert disk.verdict == "not measured" and disk.evidence == why
