"""`portcullis sbom` on a real engine image: CycloneDX 1.6 (schema-valid) and SPDX 2.3 list every dpkg package."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

pytestmark = pytest.mark.engine
IMAGE = "portcullis-test/debian:bookworm"


def installed_packages() -> set[str]:
    """What dpkg itself says is installed in the image, read by running dpkg-query in it."""
    out = subprocess.run(
        ["docker", "run", "--rm", "--label", "portcullis.test=1", IMAGE, "dpkg-query", "-W", "-f", "${Package}\\n"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(out.stdout.split())


def sbom(*args: str) -> dict[str, object]:
    return sbom_of(f"engine:{IMAGE}", *args)


def sbom_of(reference: str, *args: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-m", "portcullis", "sbom", reference, "--no-vulns", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


def test_cyclonedx_is_valid_and_complete() -> None:
    document = sbom("-f", "cyclonedx")
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document))
    assert errors is None, errors
    components = document["components"]
    assert isinstance(components, list)
    names = {c["name"] for c in components if str(c.get("purl", "")).startswith("pkg:deb/debian/")}
    assert names == installed_packages()
    layer_props = [p for p in components[0]["properties"] if p["name"] == "portcullis:layer:index"]
    assert layer_props == [{"name": "portcullis:layer:index", "value": "0"}]


def test_spdx_lists_every_package_with_its_purl() -> None:
    document = sbom("-f", "spdx")
    assert document["spdxVersion"] == "SPDX-2.3"
    packages = document["packages"]
    assert isinstance(packages, list)
    purls = [ref["referenceLocator"] for p in packages for ref in p.get("externalRefs", [])]
    names = {PackageURL.from_string(purl).name for purl in purls if purl.startswith("pkg:deb/debian/")}
    assert names == installed_packages()


def image_id() -> str:
    out = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", IMAGE], capture_output=True, text=True)
    return out.stdout.strip()


def test_documents_are_named_after_the_image_not_the_archive(tmp_path: Path) -> None:
    """A docker-save file is read from a path, but the SBOM names the image inside it: tag and digest."""
    archive = tmp_path / "saved-app.tar"
    subprocess.run(["docker", "save", "-o", str(archive), IMAGE], check=True, timeout=300)
    expected = f"{IMAGE}@{image_id()}"
    cyclonedx = sbom_of(f"docker-archive:{archive}", "-f", "cyclonedx")
    assert cyclonedx["metadata"]["component"]["name"] == expected  # type: ignore[index]
    spdx = sbom_of(f"docker-archive:{archive}", "-f", "spdx")
    assert spdx["name"] == expected
    for document in (cyclonedx, spdx):
        assert "saved-app.tar" not in json.dumps(document)
