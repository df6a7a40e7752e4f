"""How findings and rules are grouped in every report: by CIS section, or by rule family for our own rules."""

from __future__ import annotations

from portcullis.data.benchmark import benchmark_of
from portcullis.model.findings import CisRef, Finding


def section_key_of(rule_id: str, cis: CisRef | None) -> str:
    """'5' for CIS control 5.x; 'DKR-IMG' for our own rule DKR-IMG-001 (the id without its number)."""
    if cis:
        return cis.control.split(".")[0]
    return rule_id.rsplit("-", 1)[0]


def section_key(finding: Finding) -> str:
    return section_key_of(finding.rule_id, finding.cis)


def section_title(key: str, cis: CisRef | None) -> str:
    """'CIS 5 Container runtime' for a section of the benchmark `cis` belongs to (its data file names the section);
    the family itself for anything else."""
    benchmark = benchmark_of(cis) if cis else None
    title = benchmark.sections.get(key) if benchmark else None
    return f"CIS {key} {title}" if title else key
