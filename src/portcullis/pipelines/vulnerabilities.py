"""Vulnerabilities of one image: its packages matched against the database, then the caller's filters and VEX."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from portcullis.checks.runner import image_target
from portcullis.model.facts import ImageFacts
from portcullis.model.findings import CollectionProblem, Finding, Severity
from portcullis.pipelines.errors import VulnerabilityInputError


@dataclass
class VulnOptions:
    """How (and whether) the image's packages are matched against the vulnerability database."""

    enabled: bool = True
    db_path: Path | None = None
    only_fixed: bool = False
    severities: list[Severity] = field(default_factory=list)
    ignore_file: Path | None = None
    vex_files: list[Path] = field(default_factory=list)


def vulnerability_findings(image: ImageFacts, options: VulnOptions) -> tuple[list[Finding], list[CollectionProblem]]:
    """DKR-VULN findings for the image's packages, and what could not be judged.

    Without a database at the default place the result is a problem note, never a silent pass; an explicit
    database, ignore file or VEX document that cannot be used raises VulnerabilityInputError.
    """
    from portcullis.vuln.location import default_path

    content = image.content
    if content is None:
        return [], []
    problems = [CollectionProblem(fact="package inventory", reason=skipped) for skipped in content.inventory_skipped]
    path = options.db_path or default_path()
    if options.db_path is None and not path.exists():
        problems.append(
            CollectionProblem(
                fact="vulnerabilities",
                reason=f"no vulnerability database at {path}: run `portcullis db update` or `db import`",
            )
        )
        return [], problems
    from datetime import date

    from portcullis.vuln import scan
    from portcullis.vuln.db import DatabaseError, VulnDB
    from portcullis.vuln.filters import (
        FilterInputError,
        apply_ignores,
        apply_vex,
        load_ignore_rules,
        load_vex,
        only_fixed,
        with_severity,
    )

    try:
        db = VulnDB.open(path)
        try:
            found = scan(content.packages, db, content.os_release, target=image_target(image))
        finally:
            db.close()
        if options.only_fixed:
            found = only_fixed(found)
        if options.severities:
            found = with_severity(found, options.severities)
        if options.ignore_file is not None:
            rules = load_ignore_rules(options.ignore_file.read_text(encoding="utf-8"), str(options.ignore_file))
            found = apply_ignores(found, rules, date.today())
        for vex in options.vex_files:
            found = apply_vex(found, load_vex(vex.read_text(encoding="utf-8"), str(vex)))
    except (DatabaseError, FilterInputError) as exc:
        raise VulnerabilityInputError(str(exc)) from exc
    except OSError as exc:
        raise VulnerabilityInputError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    return found, problems
