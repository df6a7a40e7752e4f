"""Issue 13: an empty image reference (an unset $IMAGE in CI) is an error, never a scan of the current directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("command", ["image", "sbom"])
@pytest.mark.parametrize("reference", ["", "  "])
def test_empty_reference_is_one_line_and_exit_1(command: str, reference: str, tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_text("ID=alpine\nVERSION_ID=3.20.0\n", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "portcullis", command, reference, "--no-vulns"]
        if command == "image"
        else [sys.executable, "-m", "portcullis", command, reference],
        cwd=tmp_path,  # a directory that would read as an image layout were '' taken as a path
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 1, out.stdout[:500]
    assert out.stdout == ""
    assert out.stderr.splitlines() == [
        f"portcullis: error: empty image reference {reference!r}: name an image, archive or layout"
    ]
