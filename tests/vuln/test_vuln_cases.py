"""Every case of ../shared/vulndata/README.md gives its stated verdict for bookworm.

Each case writes the dpkg database of a test image for that case (the real `status` format, with the version
the README names), parses it with the inventory parser and scans it against the database built from the real
tracker records (converted to the tracker JSON shape, see data/README.md).
"""

from __future__ import annotations

from typing import Any

import pytest
from vulndata import BOOKWORM

from portcullis.collect.inventory import parse_dpkg_status
from portcullis.model.findings import Status
from portcullis.vuln import scan
from portcullis.vuln.db import VulnDB


def status_file(binary: str, source: str, version: str) -> str:
    source_line = f"Source: {source}\n" if source != binary else ""
    return (
        f"Package: {binary}\nStatus: install ok installed\nPriority: optional\nSection: libs\n"
        f"Installed-Size: 100\nMaintainer: Debian <debian@example.invalid>\nArchitecture: amd64\n"
        f"{source_line}Version: {version}\nDescription: test package for the case\n"
    )


# (cve, binary, source, installed version) -> expected: None = no finding; else the fields that must hold.
CASES: list[tuple[str, str, str, str, dict[str, Any] | None]] = [
    ("CVE-2024-2398", "curl", "curl", "7.88.1-10+deb12u15", None),
    (
        "CVE-2024-2398",
        "libcurl4",
        "curl",
        "7.88.1-10+deb12u5",
        {"fix_state": "fixed", "fixed_version": "7.88.1-10+deb12u6", "vendor.status": "resolved"},
    ),
    (
        "CVE-2025-0167",
        "curl",
        "curl",
        "7.88.1-10+deb12u15",
        {"fix_state": "not_fixed", "fixed_version": None, "vendor.status": "open", "vendor.nodsa": ""},
    ),
    (
        "CVE-2023-38545",
        "curl",
        "curl",
        "7.88.1-10+deb12u15",
        {"fix_state": "not_fixed", "fixed_version": None, "vendor.status": "open"},
    ),
    ("CVE-2023-52425", "libexpat1", "expat", "2.5.0-1+deb12u2", None),
    (
        "CVE-2023-52425",
        "libexpat1",
        "expat",
        "2.5.0-1+deb12u1",
        {"fix_state": "fixed", "fixed_version": "2.5.0-1+deb12u2"},
    ),
    ("CVE-2024-8176", "expat", "expat", "2.5.0-1+deb12u2", None),
    ("CVE-2024-8176", "expat", "expat", "2.5.0-1+deb12u1", {"fix_state": "fixed", "fixed_version": "2.5.0-1+deb12u2"}),
    (
        "CVE-2025-6965",
        "libsqlite3-0",
        "sqlite3",
        "3.40.1-2+deb12u2",
        {
            "fix_state": "will_not_fix",
            "fixed_version": None,
            "vendor.status": "open",
            "vendor.nodsa_reason": "",
            "vendor.nodsa": "Minor issue",
        },
    ),
    (
        "CVE-2025-6021",
        "libxml2",
        "libxml2",
        "2.9.14+dfsg-1.3~deb12u6",
        {"fix_state": "will_not_fix", "vendor.status": "open", "vendor.nodsa_reason": ""},
    ),
    (
        "CVE-2024-5535",
        "libssl3",
        "openssl",
        "3.0.20-1~deb12u2",
        {"fix_state": "not_fixed", "fixed_version": None, "vendor.status": "open", "vendor.nodsa_reason": "postponed"},
    ),
    (
        "CVE-2016-2781",
        "coreutils",
        "coreutils",
        "9.1-1",
        {
            "fix_state": "will_not_fix",
            "vendor.status": "open",
            "vendor.nodsa_reason": "ignored",
            "vendor.urgency": "low",
            "severity.level": "low",
        },
    ),
    ("CVE-2010-4756", "libc6", "glibc", "2.36-9+deb12u14", None),
    (
        "CVE-2023-45853",
        "zlib1g",
        "zlib",
        "1:1.2.13.dfsg-1",
        {"fix_state": "not_fixed", "fixed_version": None, "vendor.status": "open"},
    ),
    ("CVE-2023-4911", "libc6", "glibc", "2.36-9+deb12u14", {"fix_state": "not_fixed", "vendor.status": "open"}),
    ("CVE-2023-7104", "libsqlite3-0", "sqlite3", "3.40.1-2+deb12u2", None),
]


def _get(evidence: dict[str, Any], dotted: str) -> Any:
    value: Any = evidence
    for part in dotted.split("."):
        value = value[part]
    return value


@pytest.mark.parametrize(
    ("cve", "binary", "source", "version", "expected"), CASES, ids=[f"{c[0]}-{c[1]}-{c[3]}" for c in CASES]
)
def test_case_verdict(
    full_db: VulnDB, cve: str, binary: str, source: str, version: str, expected: dict[str, Any] | None
) -> None:
    inventory = parse_dpkg_status(status_file(binary, source, version), release=BOOKWORM)
    assert [(p.name, p.match_name, p.version) for p in inventory.packages] == [(binary, source, version)]
    findings = [f for f in scan(inventory.packages, full_db, BOOKWORM) if f.evidence.get("advisory_id") == cve]
    if expected is None:
        assert findings == []
        return
    assert len(findings) == 1
    finding = findings[0]
    assert finding.status is Status.FAIL
    assert finding.rule_id == "DKR-VULN"
    assert finding.evidence["package"]["name"] == binary
    assert finding.evidence["package"]["version"] == version
    assert finding.evidence["package"]["source_name"] == (source if source != binary else None)
    assert finding.evidence["package"]["purl"].startswith(f"pkg:deb/debian/{binary}@")
    for key, value in expected.items():
        assert _get(finding.evidence, key) == value, key


def test_the_whole_bookworm_image_reports_exactly_the_expected_advisories(full_db: VulnDB) -> None:
    """All 13 records against the layered image's real package list (binary -> source, one status file)."""
    from vulndata import SHARED

    rows = (SHARED / "image-inventory" / "vulnlab-debian-bookworm-layered.dpkg.tsv").read_text().splitlines()[1:]
    text = "\n".join(
        status_file(name, source, version) for name, version, source, _sv, _arch in (r.split("\t") for r in rows)
    )
    inventory = parse_dpkg_status(text, release=BOOKWORM)
    assert len(inventory.packages) == 132 and inventory.skipped == []
    findings = scan(inventory.packages, full_db, BOOKWORM)
    by_source: dict[str, set[str]] = {}
    for f in findings:
        pkg = f.evidence["package"]
        by_source.setdefault(pkg["source_name"] or pkg["name"], set()).add(f.evidence["advisory_id"])
    assert by_source == {
        "curl": {"CVE-2025-0167", "CVE-2023-38545"},  # CVE-2024-2398 fixed in the carried deb12u15
        "sqlite3": {"CVE-2025-6965"},
        "libxml2": {"CVE-2025-6021"},
        "openssl": {"CVE-2024-5535"},
        "coreutils": {"CVE-2016-2781"},
        "zlib": {"CVE-2023-45853"},
        "glibc": {"CVE-2023-4911"},
    }
    # one finding per binary package: curl + libcurl4 both carry source curl
    curl = sorted(f.evidence["package"]["name"] for f in findings if f.evidence["advisory_id"] == "CVE-2025-0167")
    assert curl == ["curl", "libcurl4"]


def test_undetermined_is_reported_as_such() -> None:
    """The tracker's `undetermined` status gives a `manual` finding, not a pass and not a plain fail."""
    from portcullis.model.vuln import FixState
    from portcullis.vuln.match import tracker_verdict

    verdict = tracker_verdict("1.0-1", "bookworm", "undetermined", "", "not yet assigned", "", "")
    assert verdict is not None and verdict.state is FixState.UNDETERMINED
    assert verdict.vendor.status == "undetermined" and verdict.fixed_version is None
