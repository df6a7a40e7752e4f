"""Progress on stderr: rewritten in place on a terminal, cleared before anything else is printed, absent when piped."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys

import pytest

from portcullis.cli import common

CLEAR = "\r\x1b[K"
BUSYBOX = "portcullis-test/busybox:1"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_rewrites_one_line_and_is_cleared_before_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    common.progress("proof 1/8")
    common.progress("proof 2/8")
    common.say("report written to out.json")
    common.end_progress()  # nothing left open: no second clear
    assert terminal.getvalue() == f"{CLEAR}proof 1/8{CLEAR}proof 2/8{CLEAR}report written to out.json\n"


def test_progress_is_silent_when_piped_or_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    common.progress("proof 1/8")
    assert piped.getvalue() == ""
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(common, "_quiet", True)
    common.progress("proof 1/8")
    assert terminal.getvalue() == ""


def _image_scan(stderr_on_a_terminal: bool) -> tuple[int, str]:
    command = [
        sys.executable,
        "-m",
        "portcullis",
        "image",
        "engine:portcullis-test/busybox:1",
        "--no-vulns",
        "-f",
        "json",
    ]
    if not stderr_on_a_terminal:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stderr
    leader, follower = pty.openpty()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return child.wait(timeout=120), b"".join(chunks).decode()


@pytest.mark.engine
def test_an_image_scan_shows_progress_on_a_terminal_only() -> None:
    code, terminal = _image_scan(stderr_on_a_terminal=True)
    assert code == 0, terminal
    reading = "reading engine:portcullis-test/busybox:1 layer by layer…"
    assert terminal.startswith(CLEAR + reading + CLEAR + "read engine:portcullis-test/busybox:1: "), terminal
    code, piped = _image_scan(stderr_on_a_terminal=False)
    assert code == 0, piped
    assert reading not in piped and "\x1b" not in piped
    assert piped.startswith("read engine:portcullis-test/busybox:1: ")
