"""Attack paths: the ways a user on the network or a process in a container takes over the host.

Each path is a chain of evidence: an entry point, steps that each name the finding (rule id) or fact that
enables them, and the one remediation that breaks the whole chain. `checks.attack_paths` derives them.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class EntryKind(StrEnum):
    """Where an attacker starts, most exposed first (`exposure` ranks them)."""

    NETWORK = "network"  # anyone who reaches a host address: a port published on a non-loopback address
    CONTAINER_NETWORK = "container_network"  # any process in a container attached to a bridge network
    HOST_LOCAL = "host_local"  # a user or process on the host itself (a port published on loopback only)
    CONTAINER_PROCESS = "container_process"  # code already running in the container (e.g. a compromised app)
    ENGINE_API = "engine_api"  # whoever may call the engine's API (docker exec -u 0)

    @property
    def exposure(self) -> int:
        return {
            EntryKind.NETWORK: 4,
            EntryKind.CONTAINER_NETWORK: 3,
            EntryKind.HOST_LOCAL: 2,
            EntryKind.CONTAINER_PROCESS: 1,
            EntryKind.ENGINE_API: 0,
        }[self]


class Certainty(StrEnum):
    CONFIRMED = "confirmed"  # every step is established by the facts
    POSSIBLE = "possible"  # a step could not be decided from here (its `undecided` says why); fails closed


class EntryPoint(BaseModel):
    kind: EntryKind
    description: str = Field(description="the entry in words, e.g. 'port 8080/tcp published on 0.0.0.0'")


class PathStep(BaseModel):
    description: str = Field(description="what the attacker does or has at this step")
    finding: str | None = Field(None, description="the rule id whose failure enables the step, when a rule has one")
    evidence: str = Field("", description="the fact behind the step: the mount, the capability, the probe")
    undecided: str | None = Field(None, description="why this step could not be confirmed; None: confirmed")


class AttackPath(BaseModel):
    template: str = Field(description="the path template's id, e.g. docker-socket")
    title: str
    target: str = Field(description="the container (or 'daemon') the path runs through")
    entry: EntryPoint
    steps: list[PathStep]
    outcome: str = Field("root on the host", description="where the chain ends")
    fix: str = Field(description="the single cheapest remediation that breaks the chain")
    certainty: Certainty

    @property
    def exposure(self) -> int:
        return self.entry.kind.exposure


class CapabilityReach(BaseModel):
    """One capability of a container's bounding set and whether its process can actually use it."""

    capability: str
    reachable: bool | None = Field(description="None: cannot be told from here")
    why: str
    entry: EntryKind | None = Field(None, description="the entry point from which it is reachable")
    api_route: str | None = Field(
        None, description="when only the engine API reaches it: the call that does (docker exec -u 0 / --privileged)"
    )


class PathsReport(BaseModel):
    subject: str
    paths: list[AttackPath] = Field(description="most exposed entry first, confirmed before possible")
    capabilities: dict[str, list[CapabilityReach]] = Field(
        default_factory=dict, description="container name -> its bounding set, capability by capability"
    )
    inside_used: bool = Field(False, description="the containers' own /proc was read (--inside)")
    notes: list[str] = Field(default_factory=list, description="what limited the analysis")
