"""How findings and rules are grouped in every report: by CIS section, or by rule family for our own rules."""

from __future__ import annotations

from portcullis.model.findings import Finding

CIS_SECTION_TITLES = {
    "1": "Host configuration",
    "2": "Docker daemon configuration",
    "3": "Docker daemon configuration files",
    "4": "Container images and build files",
    "5": "Container runtime",
    "6": "Docker security operations",
    "7": "Docker Swarm configuration",
}


def section_key(finding: Finding) -> str:
    """'5' for CIS control 5.x; 'DKR-IMG' for our own rule DKR-IMG-001 (the id without its number)."""
    if finding.cis:
        return finding.cis.control.split(".")[0]
    return finding.rule_id.rsplit("-", 1)[0]


def section_title(key: str) -> str:
    """'CIS 5 Container runtime' for a CIS section, the family itself for anything else."""
    title = CIS_SECTION_TITLES.get(key)
    return f"CIS {key} {title}" if title else key
