"""Every command's --help renders (rich markup in help texts must not crash it) and shows its examples."""

from __future__ import annotations

import subprocess
import sys

import pytest

COMMANDS = [
    ["audit"], ["image"], ["sbom"], ["lint"], ["inside"], ["paths"], ["prove"], ["overhead"], ["neighbours"],
    ["rules"], ["schema"],
    ["db"], ["db", "update"], ["db", "status"], ["db", "import"], ["db", "export"],
    ["harden"], ["harden", "daemon"], ["harden", "container"], ["harden", "seccomp"], ["harden", "apparmor"],
    ["watch"], ["serve"], ["agent"], ["authz"], ["token"], ["cache"],
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_help_renders(command: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "portcullis", *command, "--help"], capture_output=True, text=True,
                            timeout=60, env={"COLUMNS": "100", "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
    assert "error" not in result.stderr.lower()
