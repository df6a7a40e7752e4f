"""Licences end to end on the layered vulnlab image read from the engine: the SBOMs carry each package's declared
licence (CycloneDX checked by cyclonedx-python-lib's schema validator, SPDX by the SPDX project's pyspdxtools), and
`--license-deny` makes DKR-IMG-011 fail with the package, version, licence, file and layer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from support.tools import tool

pytestmark = pytest.mark.engine

IMAGE = "portcullis-test/vulnlab:layered"


def _run(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PORTCULLIS_CACHE_DIR": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "portcullis", *args], capture_output=True, text=True, timeout=300, check=False, env=env
    )


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, check=False).returncode != 0:
        pytest.skip(f"{IMAGE} is absent; run scripts/build-vulnlab-image.sh")
    return tmp_path_factory.mktemp("cache")


def test_cyclonedx_carries_each_source_formats_licence(cache: Path) -> None:
    result = _run("sbom", f"engine:{IMAGE}", "--no-vulns", cache=cache)
    assert result.returncode == 0, result.stderr
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(result.stdout) is None
    licences: dict[str, str] = {}
    for component in json.loads(result.stdout)["components"]:
        if "purl" not in component:
            continue  # the operating system component
        expressions = [entry["expression"] for entry in component.get("licenses", [])]
        licences[component["purl"].split("?")[0]] = expressions[0] if expressions else "unknown"
    assert licences["pkg:npm/lodash@4.17.15"] == "MIT"  # package.json "license"
    assert licences["pkg:pypi/requests@2.25.1"] == "Apache-2.0"  # METADATA License: Apache 2.0
    assert licences["pkg:pypi/markupsafe@2.1.3"] == "BSD-3-Clause"
    assert licences["pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1"] == "Zlib"  # usr/share/doc/zlib1g/copyright (DEP-5)
    # usr/share/doc/libgcc-s1 is a symlink to gcc-12-base: the package shares that copyright file
    libgcc = next(v for k, v in licences.items() if k.startswith("pkg:deb/debian/libgcc-s1@"))
    assert "GPL-3.0-only" in libgcc  # the free-form file cites /usr/share/common-licenses/GPL-3
    bash = next(v for k, v in licences.items() if k.startswith("pkg:deb/debian/bash@"))
    assert "GPL-3.0-or-later" in bash
    known = [v for v in licences.values() if v != "unknown"]
    assert len(known) > 0.9 * len(licences)


def test_spdx_carries_licences_and_passes_the_spdx_validator(cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "sbom.spdx.json"
    result = _run("sbom", f"engine:{IMAGE}", "--no-vulns", "-f", "spdx-json", "-o", str(out), cache=cache)
    assert result.returncode == 0, result.stderr
    declared = {p["name"]: p.get("licenseDeclared") for p in json.loads(out.read_text())["packages"]}
    assert declared["minimist"] == "MIT"
    assert declared["libc6"] == "LGPL-2.1-only AND GPL-2.0-only"
    validator = tool("pyspdxtools")
    if not validator.exists():
        pytest.skip(f"{validator} is absent; `make programs` installs it")
    check = subprocess.run([str(validator), "-i", str(out)], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr


def _findings(report: str) -> list[dict[str, Any]]:
    return [f for f in json.loads(report)["findings"] if f["rule_id"] == "DKR-IMG-011"]


def test_license_deny_fails_the_packages_under_it(cache: Path) -> None:
    args = ("image", f"engine:{IMAGE}", "--no-vulns", "--no-store", "--select", "DKR-IMG-011", "-f", "json")
    result = _run(*args, "--license-deny", "GPL-3.0*", "--fail-on", "medium", cache=cache)
    assert result.returncode == 2, result.stderr
    [finding] = _findings(result.stdout)
    assert finding["status"] == "fail"
    bash = next(p for p in finding["evidence"]["packages"] if p["package"] == "bash")
    assert bash["file"] == "var/lib/dpkg/status" and bash["layer"]["index"] == 0
    assert "GPL-3.0-or-later" in bash["license"]
    assert "lodash" not in {p["package"] for p in finding["evidence"]["packages"]}

    allowed = _run(*args, "--license-deny", "WTFPL", "--fail-on", "medium", cache=cache)
    assert allowed.returncode == 0, allowed.stderr
    assert _findings(allowed.stdout)[0]["status"] == "pass"

    unset = _run(*args, cache=cache)
    assert _findings(unset.stdout)[0]["status"] == "not_applicable"

    bad = _run(*args, "--license-deny", " , ", cache=cache)
    assert bad.returncode == 1
    assert bad.stderr.strip().count("\n") == 0 and "license-deny" in bad.stderr
