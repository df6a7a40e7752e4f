"""Vulnerability scanning: package inventory, the local advisory database, exact matching and filters.

`scan(packages, db, release)` matches one package list against an open database, remembering nothing afterwards;
the image command goes through `scanner.shared_scanner(path)`, whose memo serves every image of the process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the package is imported for its inventory parsers too; the database is not needed for those
    from portcullis.model.findings import Finding, Target
    from portcullis.model.vuln import OsRelease, Package
    from portcullis.vuln.db import VulnDB


def scan(
    packages: Sequence[Package], db: VulnDB, release: OsRelease | None, target: Target | None = None
) -> list[Finding]:
    """One finding per (package, advisory) that applies; packages that could not be matched give `error` findings.

    Affected packages are `fail` findings with rule id DKR-VULN; Debian `undetermined` ones are `manual`.
    """
    from portcullis.vuln.findings import default_target
    from portcullis.vuln.scanner import Scanner

    return Scanner(db).scan(packages, release, target or default_target())
