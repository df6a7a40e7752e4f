"""Filters over vulnerability findings (pure functions): --only-fixed, --severity, VEX, and the matching the ignore
file (pipelines/policy.py) uses for vulnerability entries.

Filters that narrow the question (--only-fixed, --severity) drop findings; VEX statements and ignore entries are
decisions about a finding, so they keep it and set `suppressed_by` (the summary counts it as suppressed).
Findings of other rules pass through every filter untouched.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from packageurl import PackageURL

from portcullis.model.findings import Finding, Severity
from portcullis.model.vuln import VULN_RULE_ID


class FilterInputError(ValueError):
    """An ignore file or VEX document that cannot be used; the message is one line."""


def _is_vuln(finding: Finding) -> bool:
    return finding.rule_id == VULN_RULE_ID


def _names(finding: Finding) -> set[str]:
    return {finding.evidence["advisory_id"], *finding.evidence.get("aliases", [])}


def only_fixed(findings: Iterable[Finding]) -> list[Finding]:
    """Keep vulnerabilities that have a fixed version to upgrade to."""
    return [f for f in findings if not _is_vuln(f) or f.evidence.get("fixed_version") is not None]


def with_severity(findings: Iterable[Finding], severities: Collection[Severity]) -> list[Finding]:
    """Keep vulnerabilities whose severity is one of `severities` (like --severity HIGH,CRITICAL)."""
    return [f for f in findings if not _is_vuln(f) or f.severity in severities]


def names_advisory(finding: Finding, name: str) -> bool:
    """True when `name` is the vulnerability's advisory id or one of its aliases, in any case."""
    return _is_vuln(finding) and name.upper() in {n.upper() for n in _names(finding)}


def package_matches(finding: Finding, package: str) -> bool:
    """True when `package` (a binary or source package name, or a purl without version) names the finding's."""
    pkg = finding.evidence["package"]
    if package.startswith("pkg:"):
        return _purl_matches(package, pkg["purl"])
    return package in (pkg["name"], pkg.get("source_name"))


# --- VEX ----------------------------------------------------------------------------------------------------

_OPENVEX_SUPPRESS = {"not_affected", "fixed"}
_CYCLONEDX_SUPPRESS = {"not_affected", "false_positive", "resolved", "resolved_with_pedigree"}


@dataclass(frozen=True)
class VexStatement:
    vulnerability: str
    products: tuple[str, ...]  # purls; an image purl (pkg:oci / pkg:docker) covers every package in it
    status: str  # the document's own word
    justification: str
    origin: str

    @property
    def suppresses(self) -> bool:
        return self.status in _OPENVEX_SUPPRESS or self.status in _CYCLONEDX_SUPPRESS


def _purl_matches(pattern: str, purl: str) -> bool:
    """Same type, namespace and name; the version too when the pattern has one; qualifiers are ignored."""
    try:
        want, have = PackageURL.from_string(pattern), PackageURL.from_string(purl)
    except ValueError:
        return False
    same = (want.type, want.namespace, want.name) == (have.type, have.namespace, have.name)
    return same and (want.version is None or want.version == have.version)


def _covers(product: str, purl: str) -> bool:
    return product.startswith(("pkg:oci/", "pkg:docker/")) or _purl_matches(product, purl)


def load_vex(text: str, origin: str) -> list[VexStatement]:
    """OpenVEX (v0.0.x and v0.2) or CycloneDX VEX (JSON)."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FilterInputError(f"{origin}: not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(document, dict):
        raise FilterInputError(f"{origin}: not a VEX document")
    if "statements" in document:
        return [_openvex(s, origin) for s in document["statements"]]
    if document.get("bomFormat") == "CycloneDX":
        refs = {c.get("bom-ref"): c.get("purl") for c in document.get("components", []) if isinstance(c, dict)}
        return [_cyclonedx(v, refs, origin) for v in document.get("vulnerabilities", [])]
    raise FilterInputError(f"{origin}: neither OpenVEX (statements) nor CycloneDX VEX (bomFormat)")


def _openvex(statement: Any, origin: str) -> VexStatement:
    vuln = statement.get("vulnerability") if isinstance(statement, dict) else None
    name = vuln.get("name") if isinstance(vuln, dict) else vuln
    if not isinstance(name, str) or "status" not in statement:
        raise FilterInputError(f"{origin}: an OpenVEX statement without vulnerability name or status")
    products: list[str] = []
    for product in statement.get("products", []):
        ident = product.get("@id") if isinstance(product, dict) else product
        subs = [s.get("@id") for s in product.get("subcomponents", [])] if isinstance(product, dict) else []
        if subs:  # an image product narrowed to the packages inside it
            products.extend(str(s) for s in subs if s)
        else:
            products.append(str(ident))
    justification = statement.get("justification") or statement.get("impact_statement") or ""
    return VexStatement(name, tuple(products), statement["status"], justification, origin)


def _cyclonedx(vuln: Any, refs: dict[Any, Any], origin: str) -> VexStatement:
    if not isinstance(vuln, dict) or not vuln.get("id"):
        raise FilterInputError(f"{origin}: a CycloneDX vulnerability without id")
    analysis = vuln.get("analysis") or {}
    products = []
    for affects in vuln.get("affects", []):
        ref = affects.get("ref", "")
        products.append(refs.get(ref) or ref)
    justification = analysis.get("justification") or analysis.get("detail") or ""
    return VexStatement(vuln["id"], tuple(p for p in products if p), analysis.get("state", ""), justification, origin)


def apply_vex(findings: Iterable[Finding], statements: Iterable[VexStatement]) -> list[Finding]:
    """Suppress vulnerabilities a VEX statement declares not_affected / fixed, keeping its justification."""
    usable = [s for s in statements if s.suppresses]
    out = []
    for finding in findings:
        hit = None
        if _is_vuln(finding) and not finding.suppressed_by:
            purl = finding.evidence["package"]["purl"]
            hit = next(
                (s for s in usable if s.vulnerability in _names(finding) and any(_covers(p, purl) for p in s.products)),
                None,
            )
        if hit is None:
            out.append(finding)
            continue
        evidence = {
            **finding.evidence,
            "vex": {"status": hit.status, "justification": hit.justification, "document": hit.origin},
        }
        why = f"VEX {hit.status}" + (f" ({hit.justification})" if hit.justification else "")
        out.append(finding.model_copy(update={"suppressed_by": why, "evidence": evidence}))
    return out
