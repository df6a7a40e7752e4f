"""Benchmark catalogues kept as data: `portcullis/data/benchmarks/<id>.toml`, one file per CIS Docker release.

A file lists every control of its release (id, section, level, profile, CIS's Automated/Manual label and a short
title in our own words) and the section titles reports use. Rules name the controls they implement as references
such as ``CIS-5.5``; the audit resolves those against the benchmark it runs (the newest unless told otherwise).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

from portcullis.model.findings import CisRef

CATALOGUE_DIR = "benchmarks"
CONTROL_PREFIX = "CIS-"  # a rule's reference to control 5.5 is "CIS-5.5", so `grep CIS-5.5` finds its rule


class Assessment(StrEnum):
    """CIS's own label for a control; not our verdict: many Manual controls still get a real pass or fail."""

    AUTOMATED = "Automated"
    MANUAL = "Manual"


@dataclass(frozen=True)
class Control:
    id: str  # CIS's number: "5.5"
    section: str  # the (sub)section it sits in: "1.1", "5"
    title: str  # ours, never CIS's wording
    level: int
    profile: str
    assessment: Assessment


@dataclass(frozen=True)
class Benchmark:
    id: str  # "cis-docker-1.8.0": what `portcullis audit --benchmark` takes
    name: str
    version: str
    sections: Mapping[str, str]
    controls: Mapping[str, Control]  # by CIS number, in the file's order

    @property
    def label(self) -> str:
        """What reports name as their benchmark: 'CIS Docker Benchmark 1.8.0'."""
        return f"{self.name} {self.version}"

    def control(self, reference: str) -> Control | None:
        """The control a rule's reference (CIS-5.5) names, if this release has it."""
        if not reference.startswith(CONTROL_PREFIX):
            return None
        return self.controls.get(reference.removeprefix(CONTROL_PREFIX))

    def cis_ref(self, control: Control) -> CisRef:
        return CisRef(version=self.version, control=control.id, level=control.level)


class UnknownBenchmark(LookupError):
    def __init__(self, benchmark_id: str) -> None:
        super().__init__(f"unknown benchmark {benchmark_id!r}; available: {', '.join(benchmark_ids())}")


def _version_key(benchmark: Benchmark) -> tuple[int, ...]:
    return tuple(int(part) for part in benchmark.version.split("."))


def parse_benchmark(document: Mapping[str, Any]) -> Benchmark:
    controls = {
        row["id"]: Control(
            id=row["id"],
            section=row["section"],
            title=row["title"],
            level=int(row["level"]),
            profile=row["profile"],
            assessment=Assessment(row["assessment"]),
        )
        for row in document["controls"]
    }
    return Benchmark(
        id=document["id"],
        name=document["name"],
        version=document["version"],
        sections=dict(document["sections"]),
        controls=controls,
    )


@cache
def _catalogue() -> dict[str, Benchmark]:
    """Every benchmark file shipped with the package, oldest release first."""
    found = []
    for entry in resources.files("portcullis.data").joinpath(CATALOGUE_DIR).iterdir():
        if entry.name.endswith(".toml"):
            found.append(parse_benchmark(tomllib.loads(entry.read_text(encoding="utf-8"))))
    return {benchmark.id: benchmark for benchmark in sorted(found, key=_version_key)}


def benchmark_ids() -> list[str]:
    return list(_catalogue())


def load_benchmark(benchmark_id: str | None = None) -> Benchmark:
    """The benchmark with this id; without one, the newest release available."""
    catalogue = _catalogue()
    if benchmark_id is None:
        return list(catalogue.values())[-1]
    if benchmark_id not in catalogue:
        raise UnknownBenchmark(benchmark_id)
    return catalogue[benchmark_id]


def benchmark_of(cis: CisRef) -> Benchmark | None:
    """The benchmark a finding's control belongs to (every catalogue is a CIS Docker release, told apart by version)."""
    return next((b for b in _catalogue().values() if b.version == cis.version), None)
