"""The `paths` flow: facts (collected or replayed), optionally each container's own /proc, into attack paths."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from portcullis.checks.attack_paths import derive_paths
from portcullis.model.facts import Facts
from portcullis.model.paths import PathsReport
from portcullis.pipelines.audit import gather_facts
from portcullis.pipelines.errors import UsageError


def _silent(message: str) -> None:
    """The default progress sink."""


def read_inside_signals(facts: Facts, log: Callable[[str], None] = _silent) -> tuple[dict[str, Any], list[str]]:
    """Each running container's `inside` signals, read from the host through /proc/<pid> (nothing is started or
    changed in the container); returns them by container name, and a note per container that could not be read."""
    from portcullis.inside.signals import collect_from_host

    signals: dict[str, Any] = {}
    notes = []
    for container in facts.containers:
        if not container.state.running or not container.state.pid:
            continue
        try:
            signals[container.short_name] = collect_from_host(container.state.pid)
        except OSError as exc:  # it stopped meanwhile, or /proc/<pid> is not ours to read
            notes.append(f"{container.short_name}: its /proc could not be read ({exc.strerror or exc})")
    log(f"read the /proc of {len(signals)} running containers")
    return signals, notes


def paths_report(
    host: str | None, facts_in: Path | None, inside: bool, log: Callable[[str], None] = _silent
) -> PathsReport:
    """Attack paths of the engine at `host` (or of saved facts); `inside` adds each container's own view.

    --inside needs live containers on this host: with saved facts or a remote engine it raises UsageError.
    """
    if inside and facts_in is not None:
        raise UsageError("--inside reads running containers; it cannot be combined with --facts-in")
    facts = gather_facts(host, facts_in, log=log)
    signals: dict[str, Any] = {}
    notes: list[str] = []
    if inside:
        if not facts.engine.local:
            raise UsageError("--inside reads the containers' /proc: run it on the engine's host")
        signals, notes = read_inside_signals(facts, log)
    report = derive_paths(facts, signals)
    report.notes += notes
    report.inside_used = inside
    return report
