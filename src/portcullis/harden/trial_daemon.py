"""Try a daemon.json on a private second dockerd (collect.private_dockerd), audit it, and take it down again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import docker.errors

from portcullis.collect.private_dockerd import (
    PrivateDockerdError,
    TrialDaemon,
    copy_image,
    missing_requirement,
    trial_daemon,
)
from portcullis.harden import HardenError

# The tests, benchmarks and peers import the daemon from here as well as from collect.
__all__ = [
    "ControlOutcome", "TrialDaemon", "copy_image", "missing_requirement", "trial_daemon", "verify_daemon_proposal"
]  # fmt: skip


@dataclass(frozen=True)
class ControlOutcome:
    rule_id: str
    before: str  # a Status value, or "-" when the control has no finding on that side
    after: str
    note: str = ""

    @property
    def fixed(self) -> bool:
        return self.after == "pass"

    def to_json(self) -> dict[str, str]:
        return {"rule_id": self.rule_id, "before": self.before, "after": self.after, "note": self.note}


def _status_of(report: Any, rule_id: str, target_name: str | None = None) -> str:
    """The status of `rule_id` on the daemon (or on the named container); '-' when there is no such finding."""
    for finding in report.findings:
        if finding.rule_id != rule_id:
            continue
        if target_name is None and finding.target.kind.value == "daemon":
            return str(finding.status.value)
        if target_name is not None and finding.target.name == target_name:
            return str(finding.status.value)
    return "-"


def _audit_trial(
    config: dict[str, Any], source_api: Any, smoke_image: str | None, smoke_name: str, labels: dict[str, str] | None
) -> Any:
    """The audit report of a trial dockerd running `config` (with the smoke container when asked)."""
    from portcullis.collect import CollectionError
    from portcullis.collect.audit import collect_facts
    from portcullis.collect.engine import connect
    from portcullis.pipelines.audit import audit_report

    with trial_daemon(config) as daemon:
        client = daemon.client()
        try:
            if smoke_image:
                copy_image(smoke_image, source_api, client)
                try:
                    client.containers.run(
                        smoke_image,
                        ["sleep", "120"],
                        name=smoke_name,
                        labels={"portcullis.managed": "true", **(labels or {})},
                        detach=True,
                    )
                except docker.errors.APIError as exc:
                    raise HardenError(
                        f"a container cannot start under the proposed defaults: {exc.explanation or exc}"
                    ) from None
            try:
                conn = connect(host=daemon.host)
                try:
                    return audit_report(collect_facts(conn), [], [], None)
                finally:
                    conn.close()
            except CollectionError as exc:
                raise HardenError(f"the trial daemon could not be audited: {exc}") from None
        finally:
            client.close()


def verify_daemon_proposal(
    proposal: Any,
    before_report: Any,
    source_api: Any,
    smoke_image: str | None = None,
    labels: dict[str, str] | None = None,
) -> list[ControlOutcome]:
    """Run the proposal on a trial dockerd, audit it, and compare each targeted control before → after.

    With `smoke_image`, a container from that image runs on the trial daemon during the audit: it proves the
    daemon-wide defaults (ulimits, no-new-privileges, remapping) let a container start, and its own findings
    answer the container-scoped controls (5.26).
    """
    config, unverifiable = proposal.trial_config()
    smoke_name = "portcullis-harden-smoke"
    try:
        after_report = _audit_trial(config, source_api, smoke_image, smoke_name, labels)
    except PrivateDockerdError as exc:
        raise HardenError(str(exc)) from None
    outcomes = []
    for rule_id in proposal.targeted_controls:
        if rule_id in unverifiable:
            before = _status_of(before_report, rule_id)
            outcomes.append(ControlOutcome(rule_id, before, "not verifiable", unverifiable[rule_id]))
            continue
        container_scoped = rule_id.startswith("CIS-5.")
        if container_scoped and not smoke_image:
            outcomes.append(ControlOutcome(rule_id, "-", "-", "container-scoped: pass --smoke-image to check it"))
            continue
        target = smoke_name if container_scoped else None
        before = "-" if container_scoped else _status_of(before_report, rule_id)
        outcomes.append(ControlOutcome(rule_id, before, _status_of(after_report, rule_id, target)))
    for change in proposal.changes:
        if change.action.value == "held":
            for rule_id in change.controls:
                before = _status_of(before_report, rule_id)
                outcomes.append(ControlOutcome(rule_id, before, "held back", f"{change.key}: {change.note}"))
    return outcomes
