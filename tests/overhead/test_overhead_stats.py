"""Statistics, ratios, claims and renderings of `portcullis overhead`, over recorded numbers.

The numbers are runs recorded on this VM (runtime-isolation notes: spin iterations, memcpy GB/s, RTT µs).
"""

from __future__ import annotations

import json

import pytest

from portcullis.proofs.overhead_results import (
    Environment,
    Measurement,
    OverheadReport,
    PythonInfo,
    Settings,
    Workload,
    check_claims,
    compare,
    environment_notes,
    measurement,
    render_markdown,
    render_text,
    slowdown_percent,
    spread,
)

SETTINGS = Settings(
    quick=False, repetitions=3, completed_repetitions=3, cpu_iterations=3_000_000, memory_mib=64,
    memory_rounds=8, disk_mib=64, rtt_samples=2000, time_limit_seconds=150,
)  # fmt: skip


def recorded() -> list[Measurement]:
    return [
        measurement(Workload.cpu, "native", "s", "s", "lower", [0.20, 0.25, 0.21], baseline=True),
        measurement(Workload.cpu, "container", "s", "s", "lower", [0.22, 0.21, 0.26]),
        measurement(Workload.memory, "native", "GB/s", "GB/s", "higher", [10.4, 10.7, 10.5], baseline=True),
        measurement(Workload.memory, "container", "GB/s", "GB/s", "higher", [10.3, 11.3, 8.0]),
        measurement(Workload.tcp_rtt, "native-loopback", "µs", "µs", "lower", [16.0, 19.0, 17.0], baseline=True),
        measurement(Workload.tcp_rtt, "container-bridge-ip", "µs", "µs", "lower", [20.0, 25.0, 22.0]),
        measurement(Workload.tcp_rtt, "container-published-port", "µs", "µs", "lower", [48.0, 62.0, 51.0]),
    ]


def python(version: str, sha256: str) -> PythonInfo:
    return PythonInfo(python=version, implementation="CPython", executable="/usr/bin/python3", executable_sha256=sha256)


def report(path: str | None = "docker-proxy") -> OverheadReport:
    items = recorded()
    comparisons = compare(items)
    env = Environment(
        engine_version="20.10.24", storage_driver="vfs", dockerd_iptables=False, published_port_path=path,
        kernel="6.18", cpus=2, image="portcullis-test/python:bookworm",
        native_python=python("3.11.2", "ab12"),
        container_python=python("3.11.2", "ab12"),
    )  # fmt: skip
    return OverheadReport(
        version="0.1.0", started_at="2025-01-01T00:00:00+00:00", duration_seconds=90.0, settings=SETTINGS,
        environment=env, measurements=items, comparisons=comparisons, claims=check_claims(comparisons, path),
        notes=environment_notes(env, SETTINGS, [0.4, 0.6]),
    )  # fmt: skip


def test_spread_of_three_runs_uses_inclusive_quartiles() -> None:
    s = spread([5789.0, 5239.0, 5393.0])
    assert (s.median, s.q1, s.q3, s.minimum, s.maximum) == (5393.0, 5316.0, 5591.0, 5239.0, 5789.0)
    assert s.iqr == 275.0


def test_spread_of_an_even_count_and_of_one_run() -> None:
    s = spread([16.0, 19.0, 17.0, 22.0])
    assert (s.median, s.q1, s.q3) == (18.0, 16.75, 19.75)
    one = spread([3.5])
    assert (one.median, one.q1, one.q3, one.minimum, one.maximum) == (3.5, 3.5, 3.5, 3.5, 3.5)
    with pytest.raises(ValueError):
        spread([])


def test_slowdown_reads_the_same_for_times_and_throughputs() -> None:
    assert slowdown_percent(0.3, 0.2, "lower") == pytest.approx(50.0)
    assert slowdown_percent(5.0, 10.0, "higher") == pytest.approx(100.0)  # half the bandwidth = twice the time
    assert slowdown_percent(12.5, 10.0, "higher") == pytest.approx(-20.0)
    with pytest.raises(ValueError):
        slowdown_percent(0.0, 1.0, "lower")


def test_compare_against_each_workloads_baseline() -> None:
    by_env = {(c.workload, c.environment): c for c in compare(recorded())}
    assert set(by_env) == {
        (Workload.cpu, "container"),
        (Workload.memory, "container"),
        (Workload.tcp_rtt, "container-bridge-ip"),
        (Workload.tcp_rtt, "container-published-port"),
    }
    cpu = by_env[(Workload.cpu, "container")]
    assert cpu.baseline == "native"
    assert cpu.ratio == pytest.approx(0.22 / 0.21)
    assert cpu.slowdown_percent == pytest.approx((0.22 / 0.21 - 1) * 100)
    assert cpu.ranges_overlap
    memory = by_env[(Workload.memory, "container")]
    assert memory.ratio == pytest.approx(10.3 / 10.5)
    assert memory.slowdown_percent == pytest.approx((10.5 / 10.3 - 1) * 100)
    published = by_env[(Workload.tcp_rtt, "container-published-port")]
    assert published.baseline == "native-loopback"
    assert published.ratio == pytest.approx(3.0)
    assert published.slowdown_percent == pytest.approx(200.0)
    assert not published.ranges_overlap
    assert by_env[(Workload.tcp_rtt, "container-bridge-ip")].slowdown_percent == pytest.approx(29.411764, rel=1e-6)


def test_claims_near_native_and_nat_not_comparable_through_docker_proxy() -> None:
    claims = {(c.workload, c.environment): c for c in check_claims(compare(recorded()), "docker-proxy")}
    assert claims[(Workload.cpu, "container")].verdict == "consistent"
    assert claims[(Workload.memory, "container")].verdict == "consistent"
    nat = claims[(Workload.tcp_rtt, "container-published-port")]
    assert nat.verdict == "not comparable"
    assert "docker-proxy" in nat.note
    assert (Workload.tcp_rtt, "container-bridge-ip") not in claims  # no published claim for a routed bridge


def test_claims_with_real_nat_and_outside_the_near_native_band() -> None:
    items = [
        measurement(Workload.disk, "native", "MiB/s", "MiB/s", "higher", [1000.0, 1100.0, 900.0], baseline=True),
        measurement(Workload.disk, "container-layer", "MiB/s", "MiB/s", "higher", [700.0, 950.0, 600.0]),
        measurement(Workload.disk, "container-volume", "MiB/s", "MiB/s", "higher", [500.0, 520.0, 480.0]),
        measurement(Workload.tcp_rtt, "native-loopback", "µs", "µs", "lower", [20.0], baseline=True),
        measurement(Workload.tcp_rtt, "container-published-port", "µs", "µs", "lower", [41.0]),
    ]
    claims = {c.environment: c for c in check_claims(compare(items), "nat")}
    assert claims["container-layer"].verdict == "within noise"  # +43 %, but 950 overlaps native's 900..1100
    assert claims["container-volume"].verdict == "differs"  # twice the time, ranges apart
    assert claims["container-published-port"].verdict == "consistent"  # +105 % through NAT
    assert claims["container-published-port"].measured_slowdown_percent == pytest.approx(105.0)


def test_notes_name_vfs_docker_proxy_and_a_busy_host() -> None:
    rendered = report()
    assert any("vfs" in note for note in rendered.notes)
    assert any("docker-proxy because dockerd runs with --iptables=false" in note for note in rendered.notes)
    busy = environment_notes(rendered.environment, SETTINGS, [3.0, 5.2])
    assert "1-minute load average 3.0 -> 5.2 on 2 CPUs: other work shared the machine" in busy[-1]
    cut = SETTINGS.model_copy(update={"completed_repetitions": 2})
    assert any("Stopped after 2 of 3 repetitions" in note for note in environment_notes(rendered.environment, cut, []))


def test_markdown_and_text_tables_carry_medians_and_slowdowns() -> None:
    markdown = render_markdown(report())
    assert "| cpu | native | 0.21 s | 0.205–0.23 | 0.2–0.25 | baseline |" in markdown
    assert "| tcp_rtt | container-published-port | 51.0 µs | 49.5–56.5 | 48.0–62.0 | +200.0 % |" in markdown
    assert (
        "| about +100 % TCP latency through Docker's NAT | container-published-port | +200.0 % | not comparable |"
        in (markdown)
    )
    text = render_text(report())
    assert text.splitlines()[0].split() == [
        "workload",
        "environment",
        "median",
        "IQR",
        "min–max",
        "slowdown",
        "vs",
        "native",
    ]
    assert "claim: near-native CPU — container +4.8 %: consistent" in text


def test_json_document_round_trips() -> None:
    original = report()
    data = json.loads(original.model_dump_json())
    assert data["schema_version"] == 2
    summary = data["measurements"][0]["summary"]
    assert summary == pytest.approx({"median": 0.21, "q1": 0.205, "q3": 0.23, "minimum": 0.2, "maximum": 0.25})
    assert data["measurements"][0]["runs"] == [0.20, 0.25, 0.21]
    assert OverheadReport.model_validate(data) == original


def test_notes_say_when_the_two_interpreters_differ() -> None:
    env = report().environment
    assert not any("python" in note for note in environment_notes(env, SETTINGS, []))
    other_build = env.model_copy(update={"container_python": python("3.11.2", "cd34")})
    assert any("both 3.11.2 but different builds" in note for note in environment_notes(other_build, SETTINGS, []))
    other_version = env.model_copy(update={"container_python": python("3.12.1", "cd34")})
    notes = environment_notes(other_version, SETTINGS, [])
    assert any("native python (3.11.2) and the container's (3.12.1) differ" in note for note in notes)
