"""Every machine format of a real `portcullis image` scan (the layered vulnerability lab image, a database built from
the recorded advisories): SARIF that GitHub accepts, JUnit with a testcase per advisory and package, JSON whose typed
vulnerability detail agrees with its evidence, and text that fits 80 columns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from junitparser import Failure, JUnitXml
from test_report_sarif import SCHEMA_PATH, github_ingestion_problems

sys.path.insert(0, str(Path(__file__).parents[1] / "vuln"))
from vulndata import NPM_DIR, PYPI_DIR, SECDB_DIR, TRACKER_JSON, build_db

pytestmark = pytest.mark.engine

IMAGE = "portcullis-test/vulnlab:layered"
IMAGE_URI = "docker://localhost/images/portcullis-test%2Fvulnlab:layered"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, check=False).returncode != 0:
        pytest.skip(f"{IMAGE} is absent; run scripts/build-vulnlab-image.sh")
    yield build_db(tmp_path_factory.mktemp("vulndb") / "vuln.db", TRACKER_JSON, PYPI_DIR, NPM_DIR, SECDB_DIR)


def scan(db: Path, fmt: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "portcullis", "image", f"engine:{IMAGE}", "--db", str(db), "-f", fmt],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **env},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def report(db: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(scan(db, "json"))
    return document


def vulns(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["rule_id"] == "DKR-VULN"]


def test_json_detail_agrees_with_the_evidence(report: dict[str, Any]) -> None:
    found = vulns(report)
    assert len(found) > 20
    for finding in found:
        detail, evidence = finding["vulnerability"], finding["evidence"]
        assert detail["advisory_id"] == evidence["advisory_id"]
        assert detail["package"] == evidence["package"]["name"]
        assert detail["installed_version"] == evidence["package"]["version"]
        assert detail["fixed_version"] == evidence["fixed_version"]
        assert detail["fix_state"] == evidence["fix_state"]
        assert detail["severity"] == finding["severity"] == evidence["severity"]["level"]
        assert detail["layer"] == evidence["layer"]
        scores = [c["score"] for c in evidence["severity"]["cvss"] if c["score"] is not None]
        assert detail["cvss_score"] == (max(scores) if scores else None)


def test_sarif_is_valid_and_github_accepts_it(db: Path, report: dict[str, Any]) -> None:
    document = json.loads(scan(db, "sarif"))
    if SCHEMA_PATH.is_file():
        schema = json.loads(SCHEMA_PATH.read_text())
        jsonschema.validators.validator_for(schema)(schema).validate(document)
    assert github_ingestion_problems(document) == []
    run = document["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    failing = [f for f in vulns(report) if f["status"] == "fail"]
    vuln_results = [r for r in run["results"] if r["properties"].get("portcullisRule") == "DKR-VULN"]
    assert len(vuln_results) == len(failing)
    assert {r["ruleId"] for r in vuln_results} == {f["vulnerability"]["advisory_id"] for f in failing}
    fallback = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}
    for finding in failing:
        detail = finding["vulnerability"]
        same = [f["vulnerability"] for f in failing if f["vulnerability"]["advisory_id"] == detail["advisory_id"]]
        scores = [d["cvss_score"] for d in same if d["cvss_score"] is not None]
        worst = min((d["severity"] for d in same), key=list(fallback).index)
        expected = f"{max(scores):.1f}" if scores else fallback[worst]
        assert rules[detail["advisory_id"]]["properties"]["security-severity"] == expected
    for result in vuln_results:
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        layer = result["properties"]["vulnerability"]["layer"]["index"]
        assert uri.startswith(f"{IMAGE_URI}/layers/{layer}/"), uri
    prints = [r["partialFingerprints"]["portcullisFinding/v2"] for r in vuln_results]
    assert len(set(prints)) == len(prints)
    again = json.loads(scan(db, "sarif"))["runs"][0]["results"]
    assert [r["partialFingerprints"] for r in again] == [r["partialFingerprints"] for r in run["results"]]


def test_junit_has_a_testcase_per_vulnerability(db: Path, report: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "image.xml"
    path.write_text(scan(db, "junit"))
    xml = JUnitXml.fromfile(str(path))
    assert xml.tests == len(report["findings"])
    suite = next(s for s in xml if s.name == f"Vulnerabilities in {IMAGE}")
    names = {case.name: case for case in suite}
    for finding in vulns(report):
        detail = finding["vulnerability"]
        case = names[f"{detail['advisory_id']} {detail['package']} {detail['installed_version']}"]
        if finding["status"] == "fail":
            [failure] = list(case.result)
            assert isinstance(failure, Failure)
            assert failure.message == finding["message"]


def test_text_fits_80_columns_off_a_tty(db: Path, report: dict[str, Any]) -> None:
    out = scan(db, "text", COLUMNS="", NO_COLOR="1")
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "\x1b[" not in out
    header = next(i for i, line in enumerate(lines) if line.startswith(f"Vulnerabilities in {IMAGE}: "))
    assert lines[header + 1].split() == ["package", "installed", "fixed", "in", "advisory", "severity", "layer"]
