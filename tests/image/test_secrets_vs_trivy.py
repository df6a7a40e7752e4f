"""Issue 17 §6 on the real engine: an image built here with one planted secret per family and decoys beside them
(tests/support/planted_secrets.py), read by `portcullis image` and by `trivy image --scanners secret`. Portcullis
reports every planted file Trivy reports and every decoy it leaves alone, and no secret value reaches the report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import planted_secrets
from support.tools import tool

pytestmark = pytest.mark.engine

TRIVY = tool("trivy")
OURS = [sys.executable, "-m", "portcullis", "image", "-f", "json", "--no-vulns", "--no-cache", "--no-store"]
THEIRS = ["image", "--image-src", "docker", "--scanners", "secret", "--skip-db-update", "--offline-scan"]
THEIRS += ["--skip-version-check", "--disable-telemetry", "-f", "json", "-q"]


@pytest.fixture(scope="module")
def planted() -> Iterator[str]:
    ref = planted_secrets.build()
    yield ref
    planted_secrets.remove()


def _ours(ref: str) -> tuple[dict[str, str], str]:
    result = subprocess.run(
        [*OURS, "--select", "CIS-4.10", f"engine:{ref}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode in (0, 2), result.stderr
    (finding,) = json.loads(result.stdout)["findings"]
    hits = {h["where"]: h["name"] for h in finding["evidence"]["secrets"] if h["where"].startswith("/")}
    return hits, result.stdout


def _trivy(ref: str, cache: Path) -> set[str]:
    result = subprocess.run(
        [str(TRIVY), *THEIRS, ref],
        env={**os.environ, "TRIVY_CACHE_DIR": str(cache), "TRIVY_NO_PROGRESS": "true"},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    results = json.loads(result.stdout).get("Results") or []
    return {"/" + r["Target"].lstrip("/") for r in results if r.get("Secrets")}


def test_every_planted_family_is_found_and_no_decoy(planted: str) -> None:
    hits, report = _ours(planted)
    planted_paths = {"/" + path for path in planted_secrets.PLANTED}
    assert planted_paths - set(hits) == set(), "planted secrets portcullis missed"
    assert set(hits) & {"/" + path for path in planted_secrets.DECOYS} == set(), "decoys reported"
    for path, (_, text) in planted_secrets.PLANTED.items():  # the report names files, never their secrets
        for value in re.findall(r"[A-Za-z0-9_+/=-]{24,}", text):
            assert value not in report, f"{value[:12]}… of {path} is printed"


def test_recall_at_least_trivys_and_false_positives_no_more(planted: str, tmp_path: Path) -> None:
    if not TRIVY.exists():
        pytest.skip(f"trivy is not installed at {TRIVY} (make bench-programs)")
    hits, _ = _ours(planted)
    theirs = _trivy(planted, tmp_path / "trivy-cache")
    planted_paths = {"/" + path for path in planted_secrets.PLANTED}
    decoys = {"/" + path for path in planted_secrets.DECOYS}
    assert (theirs & planted_paths) - set(hits) == set(), "planted files Trivy finds and portcullis misses"
    assert len(set(hits) & decoys) <= len(theirs & decoys)
