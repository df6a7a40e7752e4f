"""Rounds on engine events: a thread follows the engine's event stream and reconnects when the daemon restarts; a
burst of events (a compose project starting, a multi-tag load) becomes one round once the engine has been quiet
for a moment, or at the latest a few seconds after the first of them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import requests

from portcullis.collect import CollectionError
from portcullis.collect.events import EngineEvent, EventStream

log = logging.getLogger("portcullis.agent")
QUIET = 2.0  # seconds without a new event before the round starts
MOST = 15.0  # seconds after the first event of a burst, however busy the engine stays
RECONNECT_FIRST, RECONNECT_MOST = 1.0, 30.0


class Debounce:
    def __init__(self, quiet: float = QUIET, most: float = MOST) -> None:
        self.quiet, self.most = quiet, most
        self._first: float | None = None
        self._last = 0.0
        self._lock = threading.Lock()

    def note(self, now: float) -> None:
        with self._lock:
            self._first = now if self._first is None else self._first
            self._last = now

    def due_at(self) -> float | None:
        """When the pending burst should start a round; None when nothing is pending."""
        with self._lock:
            if self._first is None:
                return None
            return min(self._last + self.quiet, self._first + self.most)

    def clear(self) -> None:
        with self._lock:
            self._first = None


class Watcher(threading.Thread):
    """Follows the engine's events, noting each in `debounce` and calling `wake`; after a lost stream comes back it
    notes one too, since whatever happened meanwhile was not seen."""

    def __init__(self, host: str | None, debounce: Debounce, wake: Callable[[], None]) -> None:
        super().__init__(name="portcullis-agent-events", daemon=True)
        self.host = host
        self.debounce = debounce
        self.wake = wake
        self.stopping = threading.Event()
        self.connected = threading.Event()  # set while a stream is open (tests and the log wait for it)
        self._stream: EventStream | None = None
        self._lock = threading.Lock()

    def run(self) -> None:
        delay, lost = RECONNECT_FIRST, False
        while not self.stopping.is_set():
            try:
                stream = EventStream(self.host)
                with self._lock:
                    self._stream = stream
                if self.stopping.is_set():
                    stream.close()
                    return
                self.connected.set()
                if lost:
                    log.info("engine events: following again; a round covers what happened meanwhile")
                    self._noted(None)
                delay, lost = RECONNECT_FIRST, False
                for event in stream:
                    self._noted(event)
                reason = "the stream ended (the daemon stopped?)"
            except (CollectionError, requests.exceptions.RequestException, OSError, ValueError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.connected.clear()
            self._close_stream()
            if self.stopping.is_set():
                return
            if not lost:
                log.warning("engine events lost: %s; reconnecting", reason)
                lost = True
            self.stopping.wait(delay)
            delay = min(delay * 2, RECONNECT_MOST)

    def _noted(self, event: EngineEvent | None) -> None:
        if event is not None:
            log.info("engine event: %s %s %s", event.kind, event.action, event.name)
        self.debounce.note(time.monotonic())
        self.wake()

    def _close_stream(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    def stop(self) -> None:
        self.stopping.set()
        self._close_stream()
