"""The parsers of hostile input, fuzzed with hypothesis (fuzz_parsers.py) in a child process under a memory cap."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

from support.bounded import LIMIT

HERE = Path(__file__).parent
EXAMPLES = 200  # per parser: ~10 s in all; raise it by hand for a longer hunt


def test_parsers_raise_only_their_own_clear_errors() -> None:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))

    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([*sys.path, str(HERE)])}
    done = subprocess.run(
        [sys.executable, str(HERE / "fuzz_parsers.py"), str(EXAMPLES)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit,
        env=environment,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    assert "fuzzed: tar walker, compose loader, Dockerfile parser, facts loader" in done.stdout
