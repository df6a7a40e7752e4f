"""The layered vulnlab image (scripts/build-vulnlab-image.sh), read by portcullis from the engine.

Inventory: the seven Python packages, lodash and minimist from /opt/app, expat and sqlite3 in the `dpkg -i` layer and
every other Debian package in the debootstrap layer, although `dpkg -i` rewrote /var/lib/dpkg/status on top.
Vulnerabilities: the Debian verdicts follow ../shared/vulndata/README.md for the versions the image really carries.
The mirror is live, so no version is written here: the installed (source) versions come from the image's own dpkg
database, and each README rule is applied to them with python-debian's version ordering.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from debian.debian_support import version_compare
from vulndata import SHARED

pytestmark = pytest.mark.engine

IMAGE = "portcullis-test/vulnlab:layered"
BUILD = "scripts/build-vulnlab-image.sh"

# The README's verdicts for bookworm, per (CVE, source package): ("fixed", V) = affected with a fix when the installed
# source version sorts before V; ("open", fix state, no-dsa reason) = affected with no fix; None = no verdict.
README_RULES: dict[tuple[str, str], tuple[str, ...] | None] = {
    ("CVE-2024-2398", "curl"): ("fixed", "7.88.1-10+deb12u6"),
    ("CVE-2025-0167", "curl"): ("open", "not_fixed", ""),
    ("CVE-2023-38545", "curl"): ("open", "not_fixed", ""),
    ("CVE-2023-52425", "expat"): ("fixed", "2.5.0-1+deb12u2"),
    ("CVE-2024-8176", "expat"): ("fixed", "2.5.0-1+deb12u2"),
    ("CVE-2025-6965", "sqlite3"): ("open", "will_not_fix", ""),
    ("CVE-2025-6021", "libxml2"): ("open", "will_not_fix", ""),
    ("CVE-2024-5535", "openssl"): ("open", "not_fixed", "postponed"),
    ("CVE-2016-2781", "coreutils"): ("open", "will_not_fix", "ignored"),
    ("CVE-2010-4756", "glibc"): None,
    ("CVE-2023-45853", "zlib"): ("open", "not_fixed", ""),
    ("CVE-2023-4911", "glibc"): ("open", "not_fixed", ""),
    ("CVE-2023-7104", "sqlite3"): None,
}


def _portcullis(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "portcullis", *args], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def installed() -> dict[str, tuple[str, str, str]]:
    """binary package -> (version, source package, source version), from the image's own dpkg database."""
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, check=False).returncode != 0:
        pytest.skip(f"{IMAGE} is absent; run {BUILD} (needs the apt mirror, PyPI and npm on the host)")
    out = subprocess.run(
        ["docker", "run", "--rm", "--label", "portcullis.test=1", "--network", "none", IMAGE, "dpkg-query", "-W", "-f",
         "${Package}\\t${Version}\\t${source:Package}\\t${source:Version}\\n"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    rows = [line.split("\t") for line in out.splitlines()]
    return {binary: (version, source, source_version) for binary, version, source, source_version in rows}


@pytest.fixture(scope="module")
def components(installed: dict[str, tuple[str, str, str]]) -> dict[str, dict[str, str]]:
    """purl -> {name, version, layer index, layer created_by, location} from `portcullis sbom`."""
    sbom = json.loads(_portcullis("sbom", f"engine:{IMAGE}", "--no-vulns"))
    found = {}
    for component in sbom["components"]:
        if "purl" in component:
            props = {p["name"]: p["value"] for p in component.get("properties", [])}
            found[component["purl"]] = {
                "name": component["name"],
                "version": component["version"],
                "layer": props.get("portcullis:layer:index", ""),
                "created_by": props.get("portcullis:layer:created_by", ""),
                "location": props.get("portcullis:package:location", ""),
            }
    return found


@pytest.fixture(scope="module")
def vuln_findings(installed: dict[str, tuple[str, str, str]], full_db_path: Path) -> list[dict[str, Any]]:
    report = json.loads(_portcullis("image", f"engine:{IMAGE}", "--db", str(full_db_path), "-f", "json"))
    return [f["evidence"] for f in report["findings"] if f["rule_id"] == "DKR-VULN"]


def _of(components: dict[str, dict[str, str]], purl_type: str) -> dict[str, dict[str, str]]:
    return {c["name"]: c for purl, c in components.items() if purl.startswith(f"pkg:{purl_type}/")}


def test_the_seven_python_packages_with_their_versions(components: dict[str, dict[str, str]]) -> None:
    listed = (SHARED / "image-inventory" / "python-dist-info.txt").read_text().split()
    expected = {
        entry.removesuffix(".dist-info").rsplit("-", 1)[0]: entry.removesuffix(".dist-info").rsplit("-", 1)[1]
        for entry in listed
        if entry.endswith(".dist-info")
    }
    assert len(expected) == 7
    python = _of(components, "pypi")
    for name, version in expected.items():
        assert python[name]["version"] == version
        assert python[name]["location"].startswith(f"usr/local/lib/python3.11/dist-packages/{name}-{version}.dist-info")
        assert python[name]["layer"] == "0"


def test_npm_packages_come_from_opt_app_in_the_copy_layer(components: dict[str, dict[str, str]]) -> None:
    npm = _of(components, "npm")
    assert {name: c["version"] for name, c in npm.items()} == {"lodash": "4.17.15", "minimist": "1.2.5"}
    for package in npm.values():
        assert package["location"].startswith("opt/app/")
        assert package["layer"] == "1"
        assert "COPY" in package["created_by"] and "/opt/app" in package["created_by"]


def test_dpkg_packages_keep_the_layer_that_introduced_them(
    components: dict[str, dict[str, str]], installed: dict[str, tuple[str, str, str]]
) -> None:
    debs = _of(components, "deb")
    assert {name: c["version"] for name, c in debs.items()} == {name: row[0] for name, row in installed.items()}
    for name in ("expat", "sqlite3"):
        assert debs[name]["layer"] == "3", name
        assert debs[name]["created_by"].endswith("dpkg -i /tmp/debs/*.deb && rm -rf /tmp/debs")
    # the status file these were read from was last written in layer 3, yet the base packages stay in layer 0
    assert all(c["location"] == "var/lib/dpkg/status" for c in debs.values())
    assert {name for name, c in debs.items() if c["layer"] != "0"} == {"expat", "sqlite3"}
    assert len(debs) > 100


Verdict = tuple[str, str | None, str, str]  # fix state, fixed version, tracker status, no-dsa reason


def _expected_debian(installed: dict[str, tuple[str, str, str]]) -> dict[tuple[str, str], Verdict]:
    """(CVE, binary) -> README verdict, for every installed binary built from a case's source package."""
    expected: dict[tuple[str, str], Verdict] = {}
    for (cve, source), rule in README_RULES.items():
        binaries = [(b, row[2]) for b, row in installed.items() if row[1] == source]
        assert binaries, f"the image carries no binary of {source}"
        for binary, source_version in binaries:
            if rule is None:
                continue
            if rule[0] == "fixed":
                if version_compare(source_version, rule[1]) < 0:
                    expected[(cve, binary)] = ("fixed", rule[1], "resolved", "")
            else:
                expected[(cve, binary)] = (rule[1], None, "open", rule[2])
    return expected


def test_debian_advisories_follow_the_readme_for_the_installed_versions(
    vuln_findings: list[dict[str, Any]], installed: dict[str, tuple[str, str, str]]
) -> None:
    expected = _expected_debian(installed)
    debian = {(f["advisory_id"], f["package"]["name"]): f for f in vuln_findings if f["vendor"]["source"] != "osv"}
    assert set(debian) == set(expected)
    for key, (fix_state, fixed_version, status, nodsa_reason) in expected.items():
        finding = debian[key]
        assert finding["package"]["version"] == installed[key[1]][0], key
        assert finding["fix_state"] == fix_state, key
        assert finding["fixed_version"] == fixed_version, key
        assert finding["vendor"]["status"] == status, key
        assert finding["vendor"]["nodsa_reason"] == nodsa_reason, key
        assert finding["layer"]["index"] == (3 if key[1] in ("expat", "sqlite3") else 0), key


def test_language_advisories_name_the_layer_of_the_package(vuln_findings: list[dict[str, Any]]) -> None:
    found = {(f["advisory_id"], f["package"]["name"]): f for f in vuln_findings if f["vendor"]["source"] == "osv"}
    for advisory, package, version, fixed, layer in [
        ("GHSA-p6mc-m468-83gw", "lodash", "4.17.15", "4.17.20", 1),
        ("GHSA-xvch-5gv4-984h", "minimist", "1.2.5", "1.2.6", 1),
        ("PYSEC-2023-74", "requests", "2.25.1", "2.31.0", 0),
        ("PYSEC-2021-108", "urllib3", "1.26.4", "1.26.5", 0),
    ]:
        finding = found[(advisory, package)]
        assert finding["package"]["version"] == version
        assert finding["fixed_version"] == fixed
        assert finding["fix_state"] == "fixed"
        assert finding["layer"]["index"] == layer
