"""SBOM writers: CycloneDX 1.6 (validated with cyclonedx-python-lib's own JSON schema validator) and SPDX 2.3
(required fields checked here, and the SPDX project's validator `pyspdxtools` run when
`make programs` installed it into the tools venv).

The packages and findings are the real ones: the inventory of a dpkg status written for the curl case of
../shared/vulndata and the scan of it against the database built from the shared advisory data.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from vulndata import BOOKWORM

from portcullis.collect.inventory import parse_dpkg_status, parse_python_metadata
from portcullis.model.layers import LayerRef
from portcullis.model.vuln import Package
from portcullis.report.cyclonedx import render_cyclonedx
from portcullis.report.spdx import render_spdx, spdx_document
from portcullis.vuln import scan
from portcullis.vuln.db import VulnDB
from support.tools import tool

LAYER = LayerRef(index=2, diff_id="sha256:" + "ab" * 32, created_by="RUN apt-get install -y curl")
STATUS = """Package: curl
Status: install ok installed
Architecture: amd64
Version: 7.88.1-10+deb12u5

Package: libcurl4
Status: install ok installed
Architecture: amd64
Source: curl
Version: 7.88.1-10+deb12u5
"""
METADATA = "Metadata-Version: 2.1\nName: urllib3\nVersion: 1.26.4\n"


@pytest.fixture()
def packages() -> list[Package]:
    debs = parse_dpkg_status(STATUS, release=BOOKWORM).packages
    python = parse_python_metadata(METADATA, "usr/local/lib/python3.11/dist-packages/urllib3-1.26.4.dist-info/METADATA")
    return [p.model_copy(update={"layer": LAYER}) for p in [*debs, *python.packages]]


def test_cyclonedx_document_is_valid_and_complete(full_db: VulnDB, packages: list[Package]) -> None:
    findings = scan(packages, full_db, BOOKWORM)
    text = render_cyclonedx(
        packages,
        findings,
        subject="vulnlab/debian:bookworm",
        os_release=BOOKWORM,
        timestamp=datetime(2026, 11, 23, tzinfo=UTC),
        serial=UUID(int=1),
    )
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    bom = json.loads(text)
    assert bom["specVersion"] == "1.6" and bom["metadata"]["component"]["name"] == "vulnlab/debian:bookworm"
    components = {c["bom-ref"]: c for c in bom["components"]}
    curl = components["pkg:deb/debian/curl@7.88.1-10%2Bdeb12u5?arch=amd64&distro=debian-12"]
    assert curl["purl"] == curl["bom-ref"] and curl["version"] == "7.88.1-10+deb12u5"
    props = {p["name"]: p["value"] for p in curl["properties"]}
    assert props["portcullis:layer:diff_id"] == LAYER.diff_id
    assert props["portcullis:layer:index"] == "2"
    assert props["portcullis:package:location"] == "var/lib/dpkg/status"
    assert any(c["type"] == "operating-system" and c["version"] == "12" for c in bom["components"])

    vulns = {v["id"]: v for v in bom["vulnerabilities"]}
    # CVE-2024-2398: bookworm fixed in +deb12u6; u5 is affected with a fix (shared vulndata verdict)
    fixed_case = vulns["CVE-2024-2398"]
    assert {a["ref"] for a in fixed_case["affects"]} == {
        "pkg:deb/debian/curl@7.88.1-10%2Bdeb12u5?arch=amd64&distro=debian-12",
        "pkg:deb/debian/libcurl4@7.88.1-10%2Bdeb12u5?arch=amd64&distro=debian-12&upstream=curl",
    }
    assert all(a["versions"] == [{"version": "7.88.1-10+deb12u5", "status": "affected"}] for a in fixed_case["affects"])
    case_props = {p["name"]: p["value"] for p in fixed_case["properties"]}
    assert case_props["portcullis:fixed_version"] == "7.88.1-10+deb12u6"
    assert case_props["portcullis:vendor:status"] == "resolved"
    assert fixed_case["source"]["name"] == "debian-tracker"
    assert fixed_case["ratings"][0]["source"]["name"] == "debian-tracker"
    # CVE-2025-0167: only an unstable <unfixed> line -> open in bookworm, no fixed version
    open_props = {p["name"]: p["value"] for p in vulns["CVE-2025-0167"]["properties"]}
    assert "portcullis:fixed_version" not in open_props and open_props["portcullis:fix_state"] == "not_fixed"
    # urllib3 1.26.4 has PyPA advisories; their CVE aliases become references
    urllib3 = [v for v in bom["vulnerabilities"] if v["affects"][0]["ref"].startswith("pkg:pypi/urllib3")]
    assert urllib3 and all(r["id"].startswith(("CVE-", "GHSA-")) for v in urllib3 for r in v.get("references", []))
    assert len(vulns) == len({f.evidence["advisory_id"] for f in findings if f.rule_id == "DKR-VULN"})


def test_cyclonedx_without_findings_and_duplicate_purls(packages: list[Package]) -> None:
    twice = [*packages, packages[0].model_copy(update={"location": "var/lib/dpkg/status.d/curl"})]
    bom = json.loads(render_cyclonedx(twice, subject="img"))
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(bom)) is None
    refs = [c["bom-ref"] for c in bom["components"]]
    assert len(refs) == len(set(refs)) == 4
    assert "vulnerabilities" not in bom or bom["vulnerabilities"] == []


def test_spdx_required_fields_and_relationships(packages: list[Package]) -> None:
    created = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    document = spdx_document(packages, subject="vulnlab/debian:bookworm", os_release=BOOKWORM, created=created)
    assert document["spdxVersion"] == "SPDX-2.3" and document["dataLicense"] == "CC0-1.0"
    assert document["SPDXID"] == "SPDXRef-DOCUMENT" and document["name"] == "vulnlab/debian:bookworm"
    assert document["documentNamespace"].startswith("https://")
    assert document["creationInfo"] == {"created": "2026-11-23T12:00:00Z", "creators": ["Tool: portcullis-0.1.0"]}
    entries = {p["SPDXID"]: p for p in document["packages"]}
    assert len(entries) == len(document["packages"]) == len(packages) + 2  # + the image and the OS
    for entry in document["packages"]:
        assert {"name", "SPDXID", "downloadLocation"} <= entry.keys()
        assert entry["SPDXID"].startswith("SPDXRef-") and all(c.isalnum() or c in ".-" for c in entry["SPDXID"][8:])
    purls = [ref["referenceLocator"] for e in document["packages"] for ref in e.get("externalRefs", [])]
    assert purls == [p.purl for p in packages]
    libcurl = next(e for e in document["packages"] if e["name"] == "libcurl4")
    assert libcurl["versionInfo"] == "7.88.1-10+deb12u5"
    assert LAYER.diff_id in libcurl["sourceInfo"] and "source package curl" in libcurl["sourceInfo"]
    kinds = [(r["spdxElementId"], r["relationshipType"]) for r in document["relationships"]]
    image_id = next(e["SPDXID"] for e in document["packages"] if e["primaryPackagePurpose"] == "CONTAINER")
    assert kinds[0] == ("SPDXRef-DOCUMENT", "DESCRIBES")
    assert kinds.count((image_id, "CONTAINS")) == len(packages) + 1
    contained = {r["relatedSpdxElement"] for r in document["relationships"][1:]}
    assert contained == set(entries) - {image_id}


def test_spdx_passes_the_spdx_projects_validator(packages: list[Package], tmp_path: Path) -> None:
    validator = tool("pyspdxtools")
    if not validator.exists():
        pytest.skip(f"{validator} is absent; `make programs` installs it")
    out = tmp_path / "sbom.spdx.json"
    out.write_text(render_spdx(packages, subject="vulnlab/debian:bookworm", os_release=BOOKWORM))
    result = subprocess.run([str(validator), "-i", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in (result.stdout + result.stderr).lower()
    broken = json.loads(out.read_text())
    del broken["packages"][1]["downloadLocation"]  # a required field: the validator must notice
    out.write_text(json.dumps(broken))
    result = subprocess.run([str(validator), "-i", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
