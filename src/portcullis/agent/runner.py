"""The agent's loop: a round at start, then every `interval` and after engine events; the spool delivered after each
round and, while the server is away, again with a growing pause. Rounds and deliveries run in a worker thread so
that a stop request (SIGTERM, Ctrl-C) is honoured at once: a round cut short has spooled nothing, a delivery cut short
has deleted nothing the server did not confirm, so the next start resumes where this one stopped."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from portcullis.agent.delivery import Pass, Server, deliver
from portcullis.agent.rounds import Round, RoundOptions, run_round
from portcullis.agent.spool import Spool
from portcullis.agent.watch import Debounce, Watcher
from portcullis.pipelines.errors import PipelineError

log = logging.getLogger("portcullis.agent")
T = TypeVar("T")
RETRY_FIRST, RETRY_MOST = 5.0, 300.0


class Stopped(Exception):
    """A stop was requested while a step was running."""


@dataclass(frozen=True)
class AgentOptions:
    round: RoundOptions
    interval: float  # seconds between rounds
    events: bool = True  # also a round after engine events


class Agent:
    def __init__(self, options: AgentOptions, spool: Spool, server: Server) -> None:
        self.options = options
        self.spool = spool
        self.server = server
        self.stopping = threading.Event()
        self._wake = threading.Event()
        self.debounce = Debounce()
        self.watcher: Watcher | None = None

    def stop(self) -> None:
        self.stopping.set()
        self._wake.set()

    def _step(self, work: Callable[[], T]) -> T:
        """`work()` in a worker thread, waited for unless a stop comes first (then Stopped)."""
        result: list[T] = []
        failure: list[BaseException] = []

        def target() -> None:
            try:
                result.append(work())
            except BaseException as exc:  # handed to the waiting thread as it is
                failure.append(exc)
            finally:
                self._wake.set()

        worker = threading.Thread(target=target, name="portcullis-agent-step", daemon=True)
        worker.start()
        while worker.is_alive():
            if self.stopping.is_set():
                raise Stopped
            self._wake.wait(0.5)
            self._wake.clear()
        if failure:
            raise failure[0]
        return result[0]

    def round(self, why: str) -> bool:
        """One round, its reports spooled; False when the engine could not be audited."""
        log.info("round (%s): auditing %s", why, self.options.round.host or "the local engine")
        started = time.monotonic()
        try:
            done: Round = self._step(lambda: run_round(self.options.round, log.debug))
        except PipelineError as exc:
            log.error("round failed: %s", exc)
            return False
        for problem in done.problems:
            log.warning("%s", problem)
        self.spool.put(done.bodies)
        log.info(
            "round done in %.1f s: engine %s, %d reports spooled (%d waiting)",
            time.monotonic() - started,
            done.engine,
            len(done.bodies),
            self.spool.count(),
        )
        return True

    def deliver(self) -> Pass:
        result = self._step(lambda: deliver(self.spool, self.server))
        if result.delivered or result.held:
            log.info("delivered %d reports, held %d", result.delivered, result.held)
        if result.stopped_by is not None:
            log.warning("delivery stopped, %d reports wait in the spool: %s", result.left, result.stopped_by)
        return result

    def once(self) -> tuple[bool, Pass]:
        """A single round and a delivery of everything spooled (the round's and any left from before)."""
        try:
            audited = self.round("--once")
            return audited, self.deliver()
        except Stopped:
            return False, Pass(0, 0, self.spool.count(), "stopped")

    def run(self) -> None:
        """Until stop(): rounds on the interval and on events, deliveries after each and on retry."""
        if self.options.events:
            self.watcher = Watcher(self.options.round.host, self.debounce, self._wake.set)
            self.watcher.start()
        next_round, retry_at, pause = time.monotonic(), None, RETRY_FIRST
        why = "start"
        try:
            while not self.stopping.is_set():
                now = time.monotonic()
                burst = self.debounce.due_at()
                if now >= next_round or (burst is not None and now >= burst):
                    if burst is not None and now >= burst:
                        why = "engine events"
                    self.debounce.clear()  # events from here on call for another round
                    self.round(why)
                    next_round, why = time.monotonic() + self.options.interval, "interval"
                    retry_at = time.monotonic()
                if retry_at is not None and time.monotonic() >= retry_at:
                    result = self.deliver()
                    if result.stopped_by is None:
                        retry_at, pause = None, RETRY_FIRST
                    else:
                        retry_at, pause = time.monotonic() + pause, min(pause * 2, RETRY_MOST)
                moments = [m for m in (next_round, self.debounce.due_at(), retry_at) if m is not None]
                self._wake.wait(max(0.0, min(moments) - time.monotonic()))
                self._wake.clear()
        except Stopped:
            pass
        finally:
            if self.watcher is not None:
                self.watcher.stop()
        log.info("stopped; %d reports wait in the spool", self.spool.count())
