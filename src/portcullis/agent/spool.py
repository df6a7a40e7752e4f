"""The agent's spool: every report is a file here before it is sent, and stays until the server has stored it.

One file per push body (`{report_id, agent, report}`), named `<ns>-<seq>.json` so that name order is the order
reports were made in. A file is written under a temporary name, flushed to disk and renamed: a crash leaves either
the whole report or none. The directory is the agent's alone (0700, files 0600). It holds at most `limit` reports:
past that the oldest are dropped, each with a warning, since a full spool means the server has been gone for long.
Reports the server will never accept as they are (409: the id was stored with other content; 4xx for the body)
move to `held/` with the server's answer beside them, out of the queue but kept for a person.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("portcullis.agent")
HELD = "held"
SUFFIX = ".json"


class SpoolError(Exception):
    """The spool directory cannot be used; one line."""


@dataclass(frozen=True)
class Spooled:
    path: Path
    report_id: str

    def body(self) -> bytes:
        return self.path.read_bytes()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """`data` at `path`, mode 0600, whole or not at all, and on disk when this returns."""
    fd, temporary = tempfile.mkstemp(prefix=".partial-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as sink:
            sink.write(data)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


class Spool:
    def __init__(self, directory: Path, limit: int) -> None:
        self.directory = directory
        self.limit = limit
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            directory.chmod(0o700)  # an existing directory too: reports name every weakness of this host
            (directory / HELD).mkdir(exist_ok=True, mode=0o700)
            for leftover in directory.glob(".partial-*"):  # a write cut short by a crash: never renamed, never sent
                leftover.unlink()
        except OSError as exc:
            raise SpoolError(f"cannot use the spool directory {directory}: {exc.strerror or exc}") from exc
        self._last = 0

    def put(self, bodies: list[dict[str, Any]]) -> list[Spooled]:
        """Write each push body, in order, then drop the oldest reports beyond the limit."""
        written = []
        stamp = max(time.time_ns(), self._last + 1)
        self._last = stamp
        for sequence, body in enumerate(bodies):
            path = self.directory / f"{stamp:020d}-{sequence:05d}{SUFFIX}"
            try:
                write_atomically(path, json.dumps(body, separators=(",", ":")).encode())
            except OSError as exc:
                raise SpoolError(f"cannot write {path}: {exc.strerror or exc}") from exc
            written.append(Spooled(path, body["report_id"]))
        self._trim()
        return written

    def pending(self) -> list[Spooled]:
        """The reports still to deliver, oldest first."""
        found = []
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            try:
                report_id = json.loads(path.read_bytes())["report_id"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self.hold(Spooled(path, path.stem), f"unreadable in the spool: {exc}")
                continue
            found.append(Spooled(path, str(report_id)))
        return found

    def count(self) -> int:
        return sum(1 for _ in self.directory.glob(f"*{SUFFIX}"))

    def remove(self, spooled: Spooled) -> None:
        spooled.path.unlink(missing_ok=True)
        _fsync_dir(self.directory)

    def hold(self, spooled: Spooled, reason: str) -> Path:
        """Take a report out of the queue for good, keeping it and why in held/."""
        target = self.directory / HELD / spooled.path.name
        os.replace(spooled.path, target)
        write_atomically(target.with_suffix(".reason"), (reason + "\n").encode())
        _fsync_dir(self.directory)
        return target

    def held(self) -> list[Path]:
        return sorted((self.directory / HELD).glob(f"*{SUFFIX}"))

    def _trim(self) -> None:
        queued = sorted(self.directory.glob(f"*{SUFFIX}"))
        for path in queued[: max(0, len(queued) - self.limit)]:
            log.warning(
                "spool full (%d reports): dropped the oldest undelivered report %s; the server has been "
                "unreachable for long, or --spool-max is too small",
                self.limit,
                path.name,
            )
            path.unlink(missing_ok=True)
