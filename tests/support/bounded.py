"""Run the CLI in a child that cannot take the machine down (capped address space, killed at a timeout), measuring
what it took: hostile inputs must end as one clear line, bounded in time and memory."""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
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


def drop_file_permission_override() -> None:
    """Take the capabilities that let root ignore file permissions out of everything this process executes."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in DAC_CAPABILITIES:
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _limits(memory: int, file_size: int | None, permissions_apply: bool) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    if file_size is not None:  # a full disk: writes past this fail with EFBIG instead of killing the process
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    if permissions_apply:
        drop_file_permission_override()


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
    its own peak RSS comes from wait4. permissions_apply: without the root capabilities that override file
    permissions."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, "-m", "portcullis", *args],
            stdout=stdout or out,
            stderr=err,
            env={**os.environ, **(env or {})},
            preexec_fn=lambda: _limits(memory, file_size, permissions_apply),
        )
        killer = threading.Timer(timeout, child.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            killer.cancel()
        seconds = time.monotonic() - started
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting again
        assert child.returncode != -signal.SIGKILL or seconds < timeout, f"still running after {timeout} s: {args}"
        out.seek(0)
        err.seek(0)
        return Bounded(child.returncode, out.read(), err.read(), seconds, usage.ru_maxrss / 1024)
