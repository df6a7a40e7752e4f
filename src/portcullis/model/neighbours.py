"""The noisy-neighbour matrix of `portcullis neighbours` (issue 16 §2): a victim workload measured alone and
beside an aggressor in a neighbouring instance of the same runtime, with and without Docker's limits.

One `Cell` per (runtime, limits, aggressor, victim metric); its `degradation_percent` is the share of the
victim's alone performance lost beside the aggressor (0 = unaffected, 100 = stopped, negative = faster).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

NEIGHBOURS_SCHEMA_VERSION = 1


class Aggressor(StrEnum):
    cpu = "cpu"
    membw = "membw"
    fork = "fork"
    disk = "disk"
    net = "net"


class Victim(StrEnum):
    cpu = "cpu"
    membw = "membw"
    disk = "disk"
    tcp_latency = "tcp-latency"
    tcp_throughput = "tcp-throughput"


class LimitsMode(StrEnum):
    none = "none"
    docker = "docker"


# What one victim run yields: (quantity, unit, which direction is better).
VICTIM_METRICS: dict[Victim, tuple[str, str, Literal["lower", "higher"]]] = {
    Victim.cpu: ("LCG iterations per second of wall time", "iterations/s", "higher"),
    Victim.membw: ("buffer-to-buffer copy bandwidth", "GB/s", "higher"),
    Victim.disk: ("O_DIRECT write throughput", "MiB/s", "higher"),
    Victim.tcp_latency: ("median 1-byte TCP round trip from the host over the bridge", "µs", "lower"),
    Victim.tcp_throughput: ("TCP throughput to the host over the bridge", "MiB/s", "higher"),
}


class Cell(BaseModel):
    runtime: str
    limits: LimitsMode
    aggressor: Aggressor
    victim: Victim
    unit: str
    better: Literal["lower", "higher"]
    alone: list[float] = Field(description="the victim's value per repetition, no aggressor running")
    beside: list[float] = Field(description="the victim's value per repetition, the aggressor running")
    degradation_percent: float | None = Field(
        description="share of the alone performance lost beside the aggressor (medians); None: not measured"
    )
    within_noise: bool | None = Field(
        None, description="the beside median lies inside the alone runs' min..max: no effect can be told apart"
    )
    note: str = ""


class ClaimVerdict(BaseModel):
    claim: str
    verdict: Literal["held", "did not hold", "not measured"]
    evidence: str


class LimitValues(BaseModel):
    """What `--limits docker` gives the instances: the CPU limits hold the aggressor below the victim, the others
    apply to victim and aggressor alike."""

    aggressor_cpus: float = Field(description="--cpus of every aggressor instance")
    aggressor_cpu_shares: int
    victim_cpu_shares: int
    memory_mib: int
    pids: int
    blkio_weight: int
    device_write_mib_per_s: int | None = Field(description="None: the data root's block device was not found")
    device: str | None = None
    tc_rate_mbit: int


class NeighboursSettings(BaseModel):
    runtimes: list[str]
    aggressors: list[Aggressor]
    victims: list[Victim]
    limits: list[LimitsMode]
    repeat: int
    seconds: float
    cpuset_cpus: str | None = Field(description="the CPUs victim and aggressors are pinned to; None: not pinned")
    fork_pids_cap: int = Field(description="pids-limit of the fork storm even without --limits docker")
    docker_limits: LimitValues


class NeighboursEnvironment(BaseModel):
    engine_version: str | None = None
    storage_driver: str | None = None
    cgroup_version: str | None = None
    kernel: str | None = None
    cpus: int | None = None
    victim_image: str
    aggressor_image: str
    load_average: list[float] = Field(description="1-minute load average at the start and at the end")


class NeighboursReport(BaseModel):
    schema_version: int = NEIGHBOURS_SCHEMA_VERSION
    tool: str = "portcullis"
    version: str
    started_at: str
    duration_seconds: float
    settings: NeighboursSettings
    environment: NeighboursEnvironment
    cells: list[Cell]
    claims: list[ClaimVerdict]
    notes: list[str]
