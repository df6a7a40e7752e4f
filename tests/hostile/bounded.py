"""Run the CLI in a child process that cannot take the machine down: capped address space, a timeout."""

from __future__ import annotations

import ctypes
import resource
import subprocess
import sys
from dataclasses import dataclass

GIB = 1 << 30
# Address space, not resident memory: importing the Dockerfile parser (a Go library) reserves ~1.1 GiB of it up front.
LIMIT = 3 * GIB


@dataclass(frozen=True)
class Bounded:
    code: int
    stdout: str
    stderr: str
    seconds: float
    peak_kib: int  # the child's peak resident set

    def error_line(self) -> str:
        """The one `portcullis: error:` line a tool error must print, and nothing else."""
        assert self.code == 1, (self.code, self.stderr[-2000:])
        lines = self.stderr.strip().splitlines()
        assert len(lines) == 1, self.stderr[-2000:]
        assert lines[0].startswith("portcullis: error: "), lines[0]
        return lines[0]


# prctl(2) and capability(7) numbers: a root child without these reads only what file permissions allow it.
PR_CAPBSET_DROP = 24
DAC_CAPABILITIES = (1, 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH


def drop_file_permission_override() -> None:
    """Take the capabilities that let root ignore file permissions out of everything this process executes."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in DAC_CAPABILITIES:
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_bounded(*args: str, memory: int = LIMIT, timeout: float = 120, permissions_apply: bool = False) -> Bounded:
    """`portcullis ARGS` under RLIMIT_AS=memory; a hang fails the test through TimeoutExpired.

    permissions_apply: run without the root capabilities that override file permissions.
    """

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        if permissions_apply:
            drop_file_permission_override()

    # Runs under `time` so the peak is this child's own, not the largest of every child the test process ran.
    command = [sys.executable, "-c", _MEASURED, *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, preexec_fn=limit, check=False)
    stderr, _, measured = done.stderr.rpartition("\n@@ ")
    seconds, peak = measured.split()
    return Bounded(done.returncode, done.stdout, stderr, float(seconds), int(peak))


# A parent that runs the CLI as its own child and reports that child's peak memory and wall time on a last line.
_MEASURED = """
import resource, subprocess, sys, time
start = time.monotonic()
code = subprocess.call([sys.executable, "-m", "portcullis", *sys.argv[1:]])
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
sys.stderr.write(f"\\n@@ {time.monotonic() - start:.2f} {peak}")
sys.exit(code)
"""
