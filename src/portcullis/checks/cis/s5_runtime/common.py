"""Helpers the section-5 theme modules share: a container's SecurityOpt entries and live-state gating."""

from __future__ import annotations

from portcullis.checks.registry import CheckResult, not_applicable
from portcullis.model.facts import ContainerFacts

NOT_RUNNING = "the container is not running ({state}); {what} exists only while it runs"


def not_running(container: ContainerFacts, what: str) -> CheckResult:
    return not_applicable(NOT_RUNNING.format(state=container.state.status or "stopped", what=what))


def security_opts(container: ContainerFacts) -> list[str]:
    return container.host_config.security_opt or []


def opt_value(container: ContainerFacts, name: str) -> list[str]:
    """Values of `name=value` / `name:value` entries in SecurityOpt (Docker accepts both separators)."""
    values = []
    for opt in security_opts(container):
        for separator in ("=", ":"):
            key, sep, value = opt.partition(separator)
            if sep and key == name:
                values.append(value)
                break
    return values
