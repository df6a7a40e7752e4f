"""The audit's engine components and kernel matched against the local vulnerability database, as the facts the
DKR-ENGINE rules read: the database is opened here, never by a rule."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from portcullis.model.facts import ComponentExposure, EngineExposureFacts, Facts, UnjudgedComponent
from portcullis.model.vuln import OsRelease
from portcullis.pipelines.errors import VulnerabilityInputError
from portcullis.pipelines.vulnerabilities import DEFAULT_MAX_AGE_DAYS, VulnOptions, check_database

ENGINE_RULE_PREFIX = "DKR-ENGINE-00"  # the rules that read the verdicts (not DKR-ENGINE-UNREACHABLE)


@dataclass(frozen=True)
class ExposureOptions:
    """Whether and against which database the audit matches the host's engine and kernel."""

    enabled: bool = True
    db_path: Path | None = None  # None: the default database, whose absence is "no database yet"
    gated: bool = False  # a --fail-on gate judges the audit: an unjudged host is then an error, not a skip
    max_age_days: float = DEFAULT_MAX_AGE_DAYS


def host_release(os_release: dict[str, str]) -> OsRelease | None:
    """The host's release from its /etc/os-release fields; None when they name no distribution."""
    if not os_release.get("ID"):
        return None
    return OsRelease(
        id=os_release["ID"].lower(),
        version_id=os_release.get("VERSION_ID", ""),
        codename=os_release.get("VERSION_CODENAME", ""),
    )


def check_named_database(options: ExposureOptions) -> None:
    """Raise VulnerabilityInputError now when a database named with --db cannot be opened: a typo should not cost a
    whole collection first."""
    if options.enabled and options.db_path is not None:
        check_database(VulnOptions(db_path=options.db_path, max_age_days=0))


def engine_exposure(facts: Facts, options: ExposureOptions) -> EngineExposureFacts | None:
    """The verdicts for the host's engine binaries and kernel; None when there is nothing to match (disabled, a
    remote engine, or a snapshot without those facts). A named database that cannot be opened raises
    VulnerabilityInputError; a missing default database, or one older than `max_age_days` under a gate, is an
    `undecided` verdict the rules report."""
    host = facts.host
    if not options.enabled or not facts.engine.local:
        return None
    if host.engine_components is None and host.kernel_build is None:
        return None
    checked = check_database(VulnOptions(db_path=options.db_path, max_age_days=options.max_age_days))
    if checked.path is None:  # its one problem says so, and where it looked
        return EngineExposureFacts(undecided=checked.problems[0].reason, fail_closed=options.gated)
    stale = next((p.reason for p in checked.problems), None)
    built = checked.info.built_at if checked.info else None
    if stale and options.gated:
        return EngineExposureFacts(database=str(checked.path), database_date=built, undecided=stale, fail_closed=True)

    from portcullis.vuln.db import DatabaseError, VulnDB
    from portcullis.vuln.engine import judge_host

    try:
        with VulnDB.open(checked.path) as db:
            judged = judge_host(host.engine_components or [], host.kernel_build, host_release(host.os_release), db)
    except DatabaseError as exc:
        raise VulnerabilityInputError(str(exc)) from exc
    return EngineExposureFacts(
        database=str(checked.path),
        database_date=built,
        stale=stale,
        exposures=[
            ComponentExposure(
                component=e.component,
                installed=e.installed,
                advisory=e.advisory,
                aliases=list(e.aliases),
                summary=e.summary,
                fix_state=e.fix_state,
                fixed_version=e.fixed_version,
                matched_by=e.matched_by,
                restart=e.restart,
                severity=e.severity,
            )
            for e in judged.exposures
        ],
        unjudged=[
            UnjudgedComponent(component=u.component, reason=u.reason, evidence=u.evidence) for u in judged.unjudged
        ],
    )
