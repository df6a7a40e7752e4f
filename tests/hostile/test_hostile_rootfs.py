"""A `dir:` root that hides what matters deep down or behind permissions: the content found in a tar layer is
found here too, and what cannot be read makes the rules that needed it skip with the paths, never pass."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from support.bounded import run_bounded

KEY = b"-----BEGIN RSA PRIVATE KEY-----\nMIIEfake\n-----END RSA PRIVATE KEY-----\n"
RULES = ("CIS-4.8", "CIS-4.10", "DKR-IMG-008")
NOBODY = 65534


def _verdicts(source: str, permissions_apply: bool = False) -> dict[str, dict[str, Any]]:
    select = [arg for rule in RULES for arg in ("--select", rule)]
    result = run_bounded("image", source, *select, "--format", "json", permissions_apply=permissions_apply)
    assert result.code in (0, 2) and "error" not in result.stderr, result.stderr
    return {f["rule_id"]: f for f in json.loads(result.stdout)["findings"]}


def test_secret_and_setuid_file_500_levels_down_are_found(tmp_path: Path) -> None:
    # 500 names of 40 characters: the deepest path is ~20 KB, five times PATH_MAX.
    root = tmp_path / "root"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(500):
            os.mkdir("d" * 40, dir_fd=fd)
            deeper = os.open("d" * 40, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = deeper
        for name, data, mode in (("id_rsa", KEY, 0o600), ("su", b"\x7fELF", 0o4755)):
            file = os.open(name, os.O_WRONLY | os.O_CREAT, mode, dir_fd=fd)
            os.write(file, data)
            os.fchmod(file, mode)
            os.close(file)
    finally:
        os.close(fd)
    verdicts = _verdicts(f"dir:{root}")
    assert verdicts["CIS-4.8"]["status"] == "fail"
    assert verdicts["CIS-4.10"]["status"] == "fail"
    assert verdicts["DKR-IMG-008"]["status"] == "pass"


def test_what_cannot_be_read_never_passes(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root, to own files the scan is then not allowed to read")
    try:
        run_bounded("--version", permissions_apply=True)
    except subprocess.SubprocessError as exc:
        pytest.skip(f"cannot drop CAP_DAC_OVERRIDE here: {exc}")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_text("box\n")
    ssh = root / "root" / ".ssh"
    ssh.mkdir(parents=True)
    (ssh / "id_rsa").write_bytes(KEY)
    (root / "srv").mkdir()
    (root / "srv" / "key.txt").write_bytes(KEY)
    for path, mode in ((ssh / "id_rsa", 0o600), (ssh, 0o700), (root / "srv" / "key.txt", 0o600)):
        os.chown(path, NOBODY, NOBODY)  # someone else's, closed to others: root without its override cannot read
        path.chmod(mode)

    assert _verdicts(f"dir:{root}")["CIS-4.10"]["status"] == "fail"  # read with the override: both keys are found
    verdicts = _verdicts(f"dir:{root}", permissions_apply=True)
    for rule in RULES:
        finding = verdicts[rule]
        assert finding["status"] == "skip", (rule, finding)
        unread = {p["path"]: p["detail"] for p in finding["evidence"]["unread"]}
        assert unread == {
            "/root/.ssh": "unreadable directory (Permission denied)",
            "/srv/key.txt": "unreadable file (Permission denied)",
        }
