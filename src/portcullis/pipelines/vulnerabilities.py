"""Vulnerabilities of one image: its packages matched against the database, then the caller's filters and VEX."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from portcullis.checks.runner import image_target
from portcullis.model.facts import EolTables, ImageFacts
from portcullis.model.findings import CollectionProblem, DatabaseInfo, DatabaseSource, Finding, Severity
from portcullis.pipelines.errors import VulnerabilityInputError

if TYPE_CHECKING:  # the database modules load only when a scan runs
    from portcullis.vuln.db import SourceInfo


VULN_FACT = "vulnerabilities"  # the problems that say the vulnerabilities were not (or not freshly) judged
NO_DATABASE = "no vulnerability database: run `portcullis db update` or `db import FILE`, or pass --no-vulns"
DEFAULT_MAX_AGE_DAYS = 7.0


@dataclass
class VulnOptions:
    """How (and whether) the image's packages are matched against the vulnerability database."""

    enabled: bool = True
    db_path: Path | None = None
    only_fixed: bool = False
    severities: list[Severity] = field(default_factory=list)
    vex_files: list[Path] = field(default_factory=list)
    gated: bool = False  # a --fail-on gate will judge the result: a missing or stale database is then an error
    max_age_days: float = DEFAULT_MAX_AGE_DAYS  # 0: any age will do


@dataclass(frozen=True)
class DatabaseCheck:
    """The database a scan will use, checked before the image is read."""

    path: Path | None  # None: there is none, and the vulnerabilities go unjudged
    info: DatabaseInfo | None
    problems: list[CollectionProblem]  # VULN_FACT: the vulnerabilities are not (or not freshly) judged


@dataclass(frozen=True)
class VulnResult:
    findings: list[Finding]
    problems: list[CollectionProblem]
    database: DatabaseInfo | None  # None when no database was read


def check_database(options: VulnOptions) -> DatabaseCheck:
    """Whether the database can vouch for a verdict: a missing (default) database or one older than
    `options.max_age_days` is a VULN_FACT problem, never a silent pass, and raises VulnerabilityInputError when
    `options.gated`; so does an explicit database that cannot be opened."""
    from portcullis.vuln.db import DatabaseError, VulnDB
    from portcullis.vuln.location import default_path

    path = options.db_path or default_path()
    if options.db_path is None and not path.exists():
        if options.gated:
            raise VulnerabilityInputError(NO_DATABASE)
        return DatabaseCheck(
            None, None, [CollectionProblem(fact=VULN_FACT, reason=f"{NO_DATABASE} (looked for {path})")]
        )
    try:
        with VulnDB.open(path) as db:
            sources = db.sources()
            info = DatabaseInfo(
                path=str(path),
                schema_version=db.meta("schema_version") or "",
                built_at=db.meta("updated_at"),
                sources=[DatabaseSource(name=s.name, fetched_at=s.fetched_at) for s in sources],
            )
    except DatabaseError as exc:
        raise VulnerabilityInputError(str(exc)) from exc
    stale = _staleness(sources, path, options.max_age_days)
    if stale and options.gated:
        raise VulnerabilityInputError(stale)
    return DatabaseCheck(path, info, [CollectionProblem(fact=VULN_FACT, reason=stale)] if stale else [])


def vulnerability_findings(image: ImageFacts, options: VulnOptions, checked: DatabaseCheck | None = None) -> VulnResult:
    """DKR-VULN findings for the image's packages, what could not be judged and the database they came from;
    `checked` is `check_database(options)` when the caller ran it already (before reading the image)."""
    content = image.content
    if content is None:
        return VulnResult([], [], None)
    checked = checked or check_database(options)
    problems = [CollectionProblem(fact="package inventory", reason=skipped) for skipped in content.inventory_skipped]
    problems += checked.problems
    if checked.path is None:
        return VulnResult([], problems, None)
    from portcullis.vuln.db import DatabaseError
    from portcullis.vuln.filters import (
        FilterInputError,
        apply_vex,
        load_vex,
        only_fixed,
        with_severity,
    )
    from portcullis.vuln.scanner import shared_scanner

    try:
        with shared_scanner(checked.path) as scanner:  # kept for the process: the next image's scan reuses its memo
            found = scanner.scan(content.packages, content.os_release, image_target(image))
        if options.only_fixed:
            found = only_fixed(found)
        if options.severities:
            found = with_severity(found, options.severities)
        for vex in options.vex_files:
            found = apply_vex(found, load_vex(vex.read_text(encoding="utf-8"), str(vex)))
    except (DatabaseError, FilterInputError) as exc:
        raise VulnerabilityInputError(str(exc)) from exc
    except OSError as exc:
        raise VulnerabilityInputError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    return VulnResult(found, problems, checked.info)


def refreshed_eol_tables(db_path: Path | None) -> tuple[EolTables | None, list[CollectionProblem]]:
    """The end-of-life tables `db update` refreshed beside the database (`db_path`, else the default one); None
    when there are none, and then the rules use the built-in tables. Unusable tables are a problem, not an error:
    the built-in ones still judge."""
    from portcullis.vuln.eol_refresh import EolTableError, load
    from portcullis.vuln.location import default_path

    try:
        return load(db_path or default_path()), []
    except EolTableError as exc:
        return None, [CollectionProblem(fact="end-of-life tables", reason=f"{exc}; the built-in tables are used")]


def _staleness(sources: list[SourceInfo], path: Path, max_age_days: float) -> str | None:
    """Why the database is too old to vouch for a verdict, or None. Its age is its oldest source's: a scan draws
    on every source, and the file's own date moves whenever any one source is refreshed."""
    if max_age_days <= 0:
        return None
    if not sources:
        return f"vulnerability database {path} holds no sources: run `portcullis db update` or `db import FILE`"
    oldest = max(sources, key=lambda s: s.age_days())
    age = oldest.age_days()
    if age <= max_age_days:
        return None
    return (
        f"vulnerability database {path} is {age:.0f} days old (source {oldest.name} fetched {oldest.fetched_at}),"
        f" older than --db-max-age {max_age_days:g}: run `portcullis db update`"
    )
