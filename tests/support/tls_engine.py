"""A private dockerd that also listens on TCP 127.0.0.1, for the engine-access tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from portcullis.harden.trial_daemon import TrialDaemon


@dataclass
class TLSDaemon(TrialDaemon):
    port: int = 0
    flags: list[str] = field(default_factory=list)  # more dockerd flags, e.g. TLS given on the command line

    def argv(self) -> list[str]:
        return [*super().argv(), "-H", f"tcp://127.0.0.1:{self.port}", *self.flags]
