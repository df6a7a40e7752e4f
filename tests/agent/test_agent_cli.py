"""`portcullis agent`'s bad input: one clear line on stderr and exit 1, before any engine or server is touched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def _agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portcullis", "agent", "--once", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--server", "http://127.0.0.1:9"], "give the agent's token: --token, --token-file or PORTCULLIS_TOKEN"),
        (["--server", "fleet:8443", "--token", "t"], "--server 'fleet:8443': give the service's URL"),
        (["--server", "http://x", "--token", "t", "--name", "-bad"], "--name '-bad': letters, digits"),
        (["--server", "http://x", "--token", "t", "--ca-bundle", "/nonexistent.pem"], "--ca-bundle /nonexistent.pem"),
    ],
)
def test_bad_input_is_one_line(args: list[str], said: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORTCULLIS_TOKEN", raising=False)
    done = _agent(*args)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0], done.stderr


def test_a_token_file_of_many_agents_needs_a_line_for_this_one(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("node-a pcs_1_x\nnode-b pcs_2_y\n")
    done = _agent("--server", "http://127.0.0.1:9", "--token-file", str(tokens), "--name", "node-c")
    assert done.returncode == 1
    assert done.stderr.strip() == f"portcullis: error: --token-file {tokens} has no line for agent node-c (--name)"
