"""The ignore file (`.portcullisignore.yaml`): accepted findings, each with a reason and maybe an expiry date.

One file serves rule findings (by rule id or prefix) and vulnerabilities (by advisory id or alias, maybe narrowed
to a package); the old `--vuln-ignore` files have the same shape and are read by the same parser.

A suppressed finding keeps its status and stays in every report with `suppressed_by` set; it is counted
apart in the summary and never trips --fail-on. An entry past its `expires` date no longer applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from fnmatch import fnmatchcase
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from portcullis.checks.registry import id_matches
from portcullis.model.findings import Finding, Report, Summary
from portcullis.model.vuln import VULN_RULE_ID
from portcullis.pipelines.errors import PipelineError
from portcullis.vuln.filters import names_advisory, package_matches


class PolicyError(PipelineError):
    """The ignore file cannot be used; the message is one line for the user."""


class IgnoreEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: str = Field(
        min_length=1, description="a rule id (CIS-5.5), an id prefix (CIS-5, DKR-IMG) or an advisory id (CVE-…, GHSA-…)"
    )
    target: str | None = Field(default=None, min_length=1, description="glob on the target name (web-*)")
    package: str | None = Field(
        default=None, min_length=1, description="vulnerabilities only: a package name, or a purl without version"
    )
    reason: str = Field(min_length=1, description="why the finding is accepted; required")
    expires: date | None = Field(default=None, description="last day the entry applies (YYYY-MM-DD)")

    def matches(self, finding: Finding) -> bool:
        if self.target is not None and not fnmatchcase(finding.target.name, self.target):
            return False
        if finding.rule_id != VULN_RULE_ID:
            return self.package is None and id_matches(finding.rule_id, self.id)
        named = id_matches(finding.rule_id, self.id) or names_advisory(finding, self.id)
        return named and (self.package is None or package_matches(finding, self.package))


class IgnoreFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ignore: list[IgnoreEntry] = Field(default_factory=list)


@dataclass(frozen=True)
class NumberedEntry:
    number: int  # 1-based position in the file, as people count
    entry: IgnoreEntry


@dataclass
class IgnorePolicy:
    source: str
    active: list[NumberedEntry] = field(default_factory=list)
    expired: list[NumberedEntry] = field(default_factory=list)

    def suppression_for(self, finding: Finding) -> str | None:
        for item in self.active:
            if item.entry.matches(finding):
                return f"{self.source}#{item.number}: {item.entry.reason}"
        return None

    def unmatched(self, report: Report) -> list[NumberedEntry]:
        """The active entries that match no finding of `report`: a misspelt id, or a risk gone and forgotten."""
        return [item for item in self.active if not any(item.entry.matches(f) for f in report.findings)]

    def apply(self, report: Report) -> Report:
        """The report with matching findings marked suppressed (never dropped) and the summary recounted."""
        findings = []
        for finding in report.findings:
            reason = None if finding.suppressed_by else self.suppression_for(finding)
            findings.append(finding.model_copy(update={"suppressed_by": reason}) if reason else finding)
        return report.model_copy(update={"findings": findings, "summary": Summary.of(findings)})


def parse_policy(text: str, source: str, today: date) -> IgnorePolicy:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise PolicyError(f"ignore file {source} is not valid YAML{where}: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise PolicyError(f"ignore file {source} must be a mapping with an `ignore:` list of entries")
    try:
        parsed = IgnoreFile.model_validate(raw)
    except ValidationError as exc:
        raise PolicyError(f"ignore file {source}: {_first_problem(exc)}") from None
    policy = IgnorePolicy(source=source)
    for number, entry in enumerate(parsed.ignore, start=1):
        expired = entry.expires is not None and entry.expires < today
        (policy.expired if expired else policy.active).append(NumberedEntry(number, entry))
    return policy


def load_policy(path: Path, today: date) -> IgnorePolicy:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"ignore file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise PolicyError(f"cannot read ignore file {path}: {reason}") from None
    return parse_policy(text, str(path), today)


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = list(error["loc"])
    where = "top level"
    if len(location) >= 2 and location[0] == "ignore" and isinstance(location[1], int):
        where = f"entry {location[1] + 1}"
        location = location[2:]
    field_name = ".".join(str(part) for part in location)
    message = error["msg"]
    if error["type"] == "missing":
        message = "is required"
    elif error["type"] == "extra_forbidden":
        known = "id, target, package, reason, expires"
        message = f"is not a known field ({known})" if where != "top level" else "is not known"
    more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
    subject = f"{where}, field `{field_name}`" if field_name else where
    return f"{subject} {message}{more}"
