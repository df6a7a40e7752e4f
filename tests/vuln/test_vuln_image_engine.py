"""The vulndata cases end to end: real images whose dpkg database is written for the cases, read by
`portcullis image` from the engine and matched against the database built from the real records.

The status file is written over two layers (some cases first, the rest added later) to prove that
each package keeps the layer where its name+version first appeared, not the layer that last
rewrote the database file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_vuln_cases import CASES, status_file

pytestmark = pytest.mark.engine

OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'


def _groups() -> list[list[tuple[str, str, str, str, dict[str, Any] | None]]]:
    """Split the cases so that no image installs one binary package twice."""
    groups: list[list[tuple[str, str, str, str, dict[str, Any] | None]]] = []
    for case in CASES:
        for group in groups:
            if all(other[1] != case[1] or other[3] == case[3] for other in group):
                group.append(case)
                break
        else:
            groups.append([case])
    return groups


def _status(cases: list[tuple[str, str, str, str, dict[str, Any] | None]]) -> str:
    unique = {(c[1], c[2], c[3]) for c in cases}
    return "\n".join(status_file(b, s, v) for b, s, v in sorted(unique))


@pytest.fixture(scope="module")
def case_images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[tuple[str, list[Any], set[str]]]]:
    built: list[tuple[str, list[Any], set[str]]] = []
    try:
        for number, group in enumerate(_groups()):
            context = tmp_path_factory.mktemp(f"case-image-{number}")
            early = group[: len(group) // 2]
            (context / "os-release").write_text(OS_RELEASE)
            (context / "status-early").write_text(_status(early))
            (context / "status-all").write_text(_status(group))
            (context / "Dockerfile").write_text(
                "FROM portcullis-test/busybox:1\nCOPY os-release /etc/os-release\n"
                "COPY status-early /var/lib/dpkg/status\nCOPY status-all /var/lib/dpkg/status\n"
            )
            name = f"portcullis-test/vulncase-{uuid.uuid4().hex[:8]}:{number}"
            subprocess.run(
                ["docker", "build", "-q", "-t", name, str(context)],
                check=True,
                capture_output=True,
                env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin"},
            )
            built.append((name, group, {c[1] for c in early}))
        yield built
    finally:
        for name, _, _ in built:
            subprocess.run(["docker", "rmi", "-f", name], check=False, capture_output=True)


def _report(name: str, db: Path) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "portcullis", "image", f"engine:{name}", "--db", str(db), "-f", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_every_case_gives_its_verdict_from_a_real_image(case_images: Any, full_db_path: Path) -> None:
    checked = 0
    for name, group, early_binaries in case_images:
        findings = [f for f in _report(name, full_db_path)["findings"] if f["rule_id"] == "DKR-VULN"]
        for cve, binary, _source, version, expected in group:
            hits = [
                f
                for f in findings
                if f["evidence"]["advisory_id"] == cve
                and f["evidence"]["package"]["name"] == binary
                and f["evidence"]["package"]["version"] == version
            ]
            if expected is None:
                assert hits == [], (cve, binary, version)
            else:
                assert len(hits) == 1, (cve, binary, version)
                evidence = hits[0]["evidence"]
                assert evidence["fix_state"] == expected["fix_state"]
                if "fixed_version" in expected:
                    assert evidence["fixed_version"] == expected["fixed_version"]
                # busybox is layer 0, os-release layer 1, the first status layer 2, the rewrite layer 3
                assert evidence["layer"]["index"] == (2 if binary in early_binaries else 3), (binary, evidence["layer"])
            checked += 1
    assert checked == len(CASES)


def test_without_a_database_the_report_says_so(case_images: Any, tmp_path: Path) -> None:
    name = case_images[0][0]
    result = subprocess.run(
        [sys.executable, "-m", "portcullis", "image", f"engine:{name}", "-f", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PORTCULLIS_DB": str(tmp_path / "absent.db"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert not [f for f in report["findings"] if f["rule_id"] == "DKR-VULN"]
    assert any(p["fact"] == "vulnerabilities" and "portcullis db update" in p["reason"] for p in report["problems"])


def test_trivy_spellings_narrow_the_vulnerabilities(case_images: Any, full_db_path: Path) -> None:
    """--ignore-unfixed is --only-fixed; --severity takes Trivy's comma list in capitals and drops the rest."""
    name = case_images[0][0]
    everything = [f for f in _report(name, full_db_path)["findings"] if f["rule_id"] == "DKR-VULN"]
    assert any(f["evidence"]["fixed_version"] is None for f in everything), "the case image needs an unfixed one"
    result = subprocess.run(
        [sys.executable, "-m", "portcullis", "image", f"engine:{name}", "--db", str(full_db_path), "-f", "json",
         "--ignore-unfixed", "--severity", "HIGH,CRITICAL"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    narrowed = [f for f in json.loads(result.stdout)["findings"] if f["rule_id"] == "DKR-VULN"]
    expected = [
        f for f in everything if f["evidence"]["fixed_version"] is not None and f["severity"] in ("high", "critical")
    ]
    assert len(narrowed) == len(expected) < len(everything)
    assert all(f["severity"] in ("high", "critical") for f in json.loads(result.stdout)["findings"])
