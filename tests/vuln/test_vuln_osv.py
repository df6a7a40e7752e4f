"""OSV matching with the real PyPI advisory database and real npm records; Alpine secdb fixed-only matching."""

from __future__ import annotations

import pytest
from vulndata import SHARED

from portcullis.collect.inventory import parse_apk_installed, parse_npm_lock, parse_python_metadata
from portcullis.model.vuln import Ecosystem, OsRelease, Package
from portcullis.vuln import scan
from portcullis.vuln.db import VulnDB
from portcullis.vuln.match import osv_range_hit

# The image's pip packages (image-inventory/python-dist-info.txt) -> advisories in the 2024-10-10 PyPA database.
IMAGE_PYTHON = {
    ("requests", "2.25.1"): {"PYSEC-2023-74": "2.31.0"},
    ("urllib3", "1.26.4"): {"PYSEC-2021-108": "1.26.5", "PYSEC-2023-192": "1.26.17", "PYSEC-2023-212": "1.26.18"},
    ("idna", "2.10"): {"PYSEC-2024-60": "3.7"},
    ("certifi", "2020.12.5"): {"PYSEC-2022-42986": "2022.12.7", "PYSEC-2023-135": "2023.7.22"},
    ("chardet", "4.0.0"): {},
    ("Jinja2", "3.1.2"): {},
    ("MarkupSafe", "2.1.3"): {},
}


def metadata(name: str, version: str) -> str:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: x\n\nlong description: Name: nope\n"


def test_image_python_packages(full_db: VulnDB) -> None:
    packages = []
    for name, version in IMAGE_PYTHON:
        location = f"usr/local/lib/python3.11/dist-packages/{name}-{version}.dist-info/METADATA"
        packages.extend(parse_python_metadata(metadata(name, version), location).packages)
    found: dict[tuple[str, str], dict[str, str]] = {key: {} for key in IMAGE_PYTHON}
    for f in scan(packages, full_db, None):
        pkg = f.evidence["package"]
        found[(pkg["name"], pkg["version"])][f.evidence["advisory_id"]] = f.evidence["fixed_version"]
    assert found == IMAGE_PYTHON


def test_requests_finding_carries_aliases_purl_and_location(full_db: VulnDB) -> None:
    location = "usr/local/lib/python3.11/dist-packages/requests-2.25.1.dist-info/METADATA"
    [finding] = scan(parse_python_metadata(metadata("requests", "2.25.1"), location).packages, full_db, None)
    assert finding.evidence["aliases"] == ["CVE-2023-32681", "GHSA-j8r2-6x86-q33q"]
    assert finding.evidence["package"]["purl"] == "pkg:pypi/requests@2.25.1"
    assert finding.location is not None and finding.location.path == location
    assert finding.evidence["fix_state"] == "fixed"


@pytest.mark.parametrize(
    ("version", "expected"),
    [("1.11.0", True), ("1.10.0", True), ("1.11.1", False)],  # last_affected is inclusive
)
def test_last_affected_from_real_record(full_db: VulnDB, version: str, expected: bool) -> None:
    pkg = Package(ecosystem=Ecosystem.PYPI, name="py", version=version, purl=f"pkg:pypi/py@{version}")
    ids = {f.evidence["advisory_id"] for f in scan([pkg], full_db, None)}
    assert ("PYSEC-2022-42969" in ids) is expected
    if expected:
        [f] = [f for f in scan([pkg], full_db, None) if f.evidence["advisory_id"] == "PYSEC-2022-42969"]
        assert f.evidence["fixed_version"] is None and f.evidence["fix_state"] == "not_fixed"


def test_withdrawn_advisories_are_not_loaded(full_db: VulnDB) -> None:
    rows = full_db.conn.execute("SELECT count(*) FROM advisories WHERE id = 'PYSEC-2023-73'").fetchone()
    assert rows == (0,)


def test_pypi_names_are_normalised(full_db: VulnDB) -> None:
    pkg = Package(ecosystem=Ecosystem.PYPI, name="Requests", version="2.25.1", purl="pkg:pypi/requests@2.25.1")
    assert {f.evidence["advisory_id"] for f in scan([pkg], full_db, None)} == {"PYSEC-2023-74"}


def test_npm_lockfile_of_layer_two(full_db: VulnDB) -> None:
    text = (SHARED / "image-inventory" / "layered-opt-app-package-lock.json").read_text()
    inventory = parse_npm_lock(text, "opt/app/package-lock.json")
    findings = scan(inventory.packages, full_db, None)
    got = {
        (f.evidence["package"]["name"], f.evidence["advisory_id"], f.evidence["fixed_version"], f.severity.value)
        for f in findings
    }
    assert got == {
        ("lodash", "GHSA-p6mc-m468-83gw", "4.17.20", "high"),  # GHSA database_specific severity (vendor)
        ("minimist", "GHSA-xvch-5gv4-984h", "1.2.6", "critical"),
    }


@pytest.mark.parametrize(
    ("version", "fixed"),
    [("1.2.5", "1.2.6"), ("0.2.3", "0.2.4"), ("1.2.6", None), ("0.2.4", None), ("1.0.0", "1.2.6")],
)
def test_two_ranges_of_one_advisory(full_db: VulnDB, version: str, fixed: str | None) -> None:
    pkg = Package(ecosystem=Ecosystem.NPM, name="minimist", version=version, purl=f"pkg:npm/minimist@{version}")
    found = {f.evidence["advisory_id"]: f.evidence["fixed_version"] for f in scan([pkg], full_db, None)}
    assert found == ({"GHSA-xvch-5gv4-984h": fixed} if fixed else {})


def test_range_events_are_evaluated_in_version_order() -> None:
    events = [{"fixed": "1.2.6"}, {"introduced": "1.0.0"}]  # order in the record must not matter
    assert osv_range_hit(Ecosystem.NPM, "1.1.0", events) == (True, "1.2.6")
    assert osv_range_hit(Ecosystem.NPM, "0.9.0", events) == (False, None)


APK_DB = """C:Q1abc=
P:ansible
V:{version}
A:x86_64
S:100
I:200
T:CM tool
o:ansible
m:someone

"""


@pytest.mark.parametrize(("version", "expected"), [("2.9.2-r0", "2.9.3-r0"), ("2.9.3-r0", None), ("2.9.10-r0", None)])
def test_alpine_secdb(full_db: VulnDB, version: str, expected: str | None) -> None:
    """secdb v3.11 main: ansible 2.9.3-r0 fixes CVE-2019-14904 (fixed-only data)."""
    release = OsRelease(id="alpine", version_id="3.11.6")
    inventory = parse_apk_installed(APK_DB.format(version=version), release=release)
    found = {f.evidence["advisory_id"]: f.evidence["fixed_version"] for f in scan(inventory.packages, full_db, release)}
    assert found.get("CVE-2019-14904") == expected
    other_branch = OsRelease(id="alpine", version_id="3.3.0")  # v3.3 carries no ansible fixes
    assert scan(inventory.packages, full_db, other_branch) == []
