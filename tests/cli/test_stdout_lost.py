"""Issue 13: a report that cannot be written to stdout (a full disk, a closed pipe) is one clear line and exit 1,
for every command, never a traceback, an "internal error" or a silent exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = [["rules"], ["rules", "--help"], ["schema"], ["--version"], ["lint", "Dockerfile"], ["db", "--help"]]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_dev_full(args: list[str], tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN curl -s https://x/i | sh\n", encoding="utf-8")
    with open("/dev/full", "w") as full:
        out = subprocess.run([sys.executable, "-m", "portcullis", *args], stdout=full, stderr=subprocess.PIPE,
                             text=True, cwd=tmp_path, timeout=120, check=False)  # fmt: skip
    assert out.returncode == 1
    assert out.stderr.splitlines() == ["portcullis: error: cannot write to stdout: No space left on device"]


def test_closed_pipe() -> None:
    # `portcullis rules | head -1`, with the reader gone before the first byte: the write meets EPIPE
    reader, writer = os.pipe()
    os.close(reader)
    try:
        out = subprocess.run([sys.executable, "-m", "portcullis", "rules"], stdout=writer, stderr=subprocess.PIPE,
                             text=True, timeout=120, check=False)  # fmt: skip
    finally:
        os.close(writer)
    assert out.returncode == 1
    assert out.stderr.splitlines() == ["portcullis: error: cannot write to stdout: Broken pipe"]
