"""CIS section 4 through `portcullis image` on the real test images: exact verdicts, and the layer named for
the findings that come from image content (4.8 setuid files, 4.10 a key added and then deleted)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

pytestmark = pytest.mark.engine

RISKY = {
    "CIS-4.1": "fail",  # no USER
    "CIS-4.6": "fail",  # no HEALTHCHECK
    "CIS-4.7": "pass",
    "CIS-4.8": "fail",  # the setuid helper and the sudo stand-in
    "CIS-4.9": "fail",  # ADD hello.txt
    "CIS-4.10": "fail",  # the private key, deleted in the next layer
    "CIS-4.11": "fail",  # curl | sh
}
HARDENED = {
    "CIS-4.1": "pass",
    "CIS-4.6": "pass",
    "CIS-4.7": "pass",
    "CIS-4.8": "pass",
    "CIS-4.9": "pass",
    "CIS-4.10": "pass",
    "CIS-4.11": "pass",
}


def cis4(image: str) -> dict[str, dict[str, Any]]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "portcullis",
            "image",
            f"engine:{image}",
            "--select",
            "CIS-4",
            "--no-vulns",
            "-f",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if "no image" in result.stderr or "not in the engine" in result.stderr:
        pytest.skip(f"{image} is not built (make test-images)")
    assert result.returncode == 0, result.stderr
    return {f["rule_id"]: f for f in json.loads(result.stdout)["findings"]}


def test_risky_image() -> None:
    findings = cis4("portcullis-test/risky:1")
    assert {rule: findings[rule]["status"] for rule in RISKY} == RISKY
    setuid = {f["path"]: f for f in findings["CIS-4.8"]["evidence"]["files"]}
    assert setuid["/usr/local/bin/suid-helper"]["layer"] == setuid["/usr/bin/sudo"]["layer"] == 1
    assert "chmod 4755" in setuid["/usr/bin/sudo"]["added_by"]
    key = next(s for s in findings["CIS-4.10"]["evidence"]["secrets"] if s["where"] == "/root/.ssh/id_ed25519")
    assert key["name"] == "private-key"
    assert key["removed_in"]["index"] == key["layer"]["index"] + 1
    # judgement-only controls keep the evidence for a person
    assert {findings[r]["status"] for r in ("CIS-4.2", "CIS-4.3", "CIS-4.4", "CIS-4.12")} == {"manual"}


def test_hardened_image() -> None:
    findings = cis4("portcullis-test/hardened:1")
    assert {rule: findings[rule]["status"] for rule in HARDENED} == HARDENED


def test_end_of_life_release_fails_on_a_real_image(tmp_path: Any) -> None:
    """DKR-IMG-009 on an image whose /etc/os-release names Debian 10 (buster), out of LTS since 2024."""
    (tmp_path / "os-release").write_text(
        'PRETTY_NAME="Debian GNU/Linux 10 (buster)"\nID=debian\nVERSION_ID="10"\nVERSION_CODENAME=buster\n'
    )
    (tmp_path / "Dockerfile").write_text("FROM portcullis-test/busybox:1\nCOPY os-release /etc/os-release\n")
    name = "portcullis-test/eol-buster:1"
    subprocess.run(
        ["docker", "build", "-q", "-t", name, str(tmp_path)],
        check=True,
        capture_output=True,
        env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin"},
    )
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "portcullis",
                "image",
                f"engine:{name}",
                "--select",
                "DKR-IMG-009",
                "--no-vulns",
                "-f",
                "json",
            ],
            capture_output=True,
            text=True,
        )
        finding = json.loads(result.stdout)["findings"][0]
        assert finding["status"] == "fail"
        assert finding["evidence"]["os_release"]["codename"] == "buster"
    finally:
        subprocess.run(["docker", "rmi", "-f", name], capture_output=True, check=False)
