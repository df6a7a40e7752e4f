"""The feed parsers under generated documents (fuzz_feeds.py), in a child under a memory limit: nothing but
FeedError comes out, and no document makes the parser blow up in time or memory."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

FUZZ = Path(__file__).with_name("fuzz_feeds.py")


def test_feed_parsers_raise_nothing_but_feed_error() -> None:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    done = subprocess.run(
        [sys.executable, str(FUZZ), "300"],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
