"""Run the CLI in a child that cannot take the machine down (capped address space, killed at a timeout), measuring
what it took: hostile inputs must end as one clear line, bounded in time and memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

GIB = 1 << 30
# Address space, not resident memory: importing the Dockerfile parser (a Go library) reserves ~1.1 GiB of it up front;
# far above what a good run needs, far below what a bomb takes.
LIMIT = 3 * GIB
# prctl(2) and capability(7) numbers: a root child without these reads only what file permissions allow it.
PR_CAPBSET_DROP = 24
DAC_CAPABILITIES = (1, 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH


@dataclass(frozen=True)
class Bounded:
    code: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mb: float

    def one_error_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        assert self.code == 1, (self.code, self.stderr)
        assert len(lines) == 1, f"expected one line on stderr, got: {self.stderr!r}"
        assert lines[0].startswith("portcullis: error: ") and "internal error" not in lines[0], lines[0]
        return lines[0]


# The child is started by a small launcher process, not forked from pytest: a forked child's peak RSS (wait4's
# ru_maxrss) counts the pages it shared with its parent before exec, and pytest grows past any bound over a long
# suite. The launcher applies the limits in its own fork, waits for the CLI and writes the CLI's own peak.
LAUNCHER = """
import ctypes, os, resource, signal, sys
memory, file_size, permissions_apply, report = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
pid = os.fork()
if pid == 0:
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    if file_size >= 0:  # a full disk: writes past this fail with EFBIG instead of killing the process
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    if permissions_apply:
        libc = ctypes.CDLL(None, use_errno=True)
        for capability in DAC_CAPABILITIES:
            if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
                os._exit(125)
    os.execv(sys.executable, [sys.executable, "-m", "portcullis", *sys.argv[5:]])
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as out:
    out.write(str(usage.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
sys.exit(code)
""".replace("DAC_CAPABILITIES", repr(DAC_CAPABILITIES)).replace("PR_CAPBSET_DROP", str(PR_CAPBSET_DROP))


def run_bounded(
    *args: str,
    timeout: float = 120,
    memory: int = LIMIT,
    file_size: int | None = None,
    env: dict[str, str] | None = None,
    stdout: IO[str] | None = None,
    permissions_apply: bool = False,
) -> Bounded:
    """`python -m portcullis ARGS` in a child with RLIMIT_AS (and RLIMIT_FSIZE when given), killed at `timeout`;
    its own peak RSS comes from the launcher's wait4.
    permissions_apply: without the root capabilities that override file
    permissions."""
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.NamedTemporaryFile() as peak,
    ):
        started = time.monotonic()
        limits = [str(memory), str(-1 if file_size is None else file_size), "1" if permissions_apply else "0"]
        child = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, *limits, peak.name, *args],
            stdout=stdout or out,
            stderr=err,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # the timeout kills the launcher and the CLI together
        )
        killer = threading.Timer(timeout, lambda: os.killpg(child.pid, signal.SIGKILL))
        killer.start()
        try:
            child.wait()
        finally:
            killer.cancel()
        seconds = time.monotonic() - started
        assert child.returncode != -signal.SIGKILL or seconds < timeout, f"still running after {timeout} s: {args}"
        out.seek(0)
        err.seek(0)
        measured = Path(peak.name).read_text().strip()
        peak_kib = int(measured) if measured.isdigit() else 0  # none: the launcher itself was killed
        return Bounded(child.returncode, out.read(), err.read(), seconds, peak_kib / 1024)
