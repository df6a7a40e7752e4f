"""The webhook side of `watch`: judgements queue here and one thread posts them, signed, with a few quick retries,
so a slow or absent receiver never holds up the event loop (a full queue drops the newest with a warning)."""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import requests

from portcullis.report.webhook import post_signed

log = logging.getLogger("portcullis.watch")
QUEUE_MOST = 1000  # judgements waiting for the receiver; beyond this the newest are dropped


@dataclass(frozen=True)
class WebhookTarget:
    url: str
    secret: bytes
    attempts: int = 4
    backoff: float = 0.5  # seconds before the first retry, doubled for each further one
    timeout: float = 5.0


class WebhookSender(threading.Thread):
    def __init__(self, target: WebhookTarget) -> None:
        super().__init__(name="portcullis-watch-webhook", daemon=True)
        self.target = target
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUE_MOST)
        self._stopping = threading.Event()
        self._http = requests.Session()
        self.delivered = 0
        self.failed = 0

    def send(self, document: dict[str, Any]) -> None:
        """Queue one judgement; never waits."""
        try:
            self._queue.put_nowait(json.dumps(document, separators=(",", ":")).encode())
        except queue.Full:
            log.warning("webhook: %d judgements already wait for the receiver; this one is dropped", QUEUE_MOST)

    def run(self) -> None:
        while (body := self._queue.get()) is not None:
            self._deliver(body)
        self._http.close()

    def _deliver(self, body: bytes) -> None:
        delivery = uuid.uuid4().hex
        delay = self.target.backoff
        for attempt in range(1, self.target.attempts + 1):
            error = post_signed(self._http, self.target.url, self.target.secret, delivery, body, self.target.timeout)
            if error is None:
                self.delivered += 1
                return
            if attempt == self.target.attempts or self._stopping.wait(delay):
                log.warning("webhook: delivery %s given up after %d attempt(s): %s", delivery, attempt, error)
                self.failed += 1
                return
            delay *= 2

    def stop(self, wait: float = 5.0) -> None:
        """Deliver what is queued (retries cut short), for at most `wait` seconds."""
        self._stopping.set()
        try:
            self._queue.put(None, timeout=wait)
        except queue.Full:
            return
        self.join(timeout=wait)
