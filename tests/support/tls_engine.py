"""A private dockerd that listens on TCP with --tlsverify, for the engine-access tests."""

from __future__ import annotations

from dataclasses import dataclass

from portcullis.harden.trial_daemon import TrialDaemon


@dataclass
class TLSDaemon(TrialDaemon):
    port: int = 0

    def argv(self) -> list[str]:
        return [*super().argv(), "-H", f"tcp://127.0.0.1:{self.port}"]
