"""Signed webhooks, the database watch and the retention loop of the fleet service.

A notification is POSTed signed as report/webhook.py describes, `X-Portcullis-Delivery` being the notification's
id. It is taken from the store's outbox and retried with doubling delays until a 2xx answer or the attempts run out;
the outbox survives a restart.

The watch re-matches whenever the vulnerability database file is replaced (`db update` and `db import` write a new
file and rename it into place) or changed, compared by device, inode, size and modification time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from portcullis.pipelines.errors import VulnerabilityInputError
from portcullis.pipelines.rematch import Rematched, rematch
from portcullis.report.webhook import post_signed
from portcullis.service.connections import Connections
from portcullis.store import StoreError
from portcullis.store.rematch import GIVEN_UP, due, mark_delivered, mark_failed
from portcullis.store.retention import Pruned, Retention, prune

MAX_DELAY = 3600.0
log = logging.getLogger("portcullis.service")


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


@dataclass(frozen=True)
class Webhook:
    url: str
    secret: bytes
    backoff: float = 5.0  # seconds before the first retry; doubled for each further one
    attempts: int = 8
    timeout: float = 10.0


class Rematcher:
    """One re-match at a time in this process, whoever asks (the watch, an admin's request)."""

    def __init__(self, connections: Connections, db_path: Path, wake: Callable[[], None]) -> None:
        self.connections = connections
        self.db_path = db_path
        self._lock = threading.Lock()
        self._wake = wake

    def run(self) -> Rematched:
        with self._lock, self.connections.use() as store:
            done = rematch(store, self.db_path)
        log.info(
            "re-matched %d deployed image(s) against %s: %d new match(es)%s",
            done.images,
            self.db_path,
            done.new_matches,
            f", notification {done.notification} queued" if done.notification else "",
        )
        if done.notification is not None:
            self._wake()
        return done


class _Loop(threading.Thread):
    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._stopping = threading.Event()
        self._poke = threading.Event()

    def wake(self) -> None:
        self._poke.set()

    def stop(self) -> None:
        self._stopping.set()
        self._poke.set()
        self.join(timeout=30)

    def pause(self, seconds: float) -> bool:
        """Wait `seconds` or until woken; False once stopping."""
        self._poke.wait(seconds)
        self._poke.clear()
        return not self._stopping.is_set()


class Notifier(_Loop):
    """Delivers the outbox to the webhook."""

    def __init__(self, connections: Connections, hook: Webhook) -> None:
        super().__init__("portcullis-notifier")
        self.connections = connections
        self.hook = hook
        self._http = requests.Session()

    def run(self) -> None:
        while self.pause(1.0):
            try:
                self.deliver_due()
            except StoreError as exc:
                log.error("notifier: %s", exc)

    def deliver_due(self) -> None:
        with self.connections.use() as store:
            pending = due(store, _iso(datetime.now(UTC)))
        for outgoing in pending:
            attempts = outgoing.attempts + 1
            error = self._post(outgoing.id, outgoing.body.encode())
            now = datetime.now(UTC)
            with self.connections.use() as store:
                if error is None:
                    mark_delivered(store, outgoing.id, attempts, _iso(now))
                    log.info("notification %d delivered (attempt %d)", outgoing.id, attempts)
                else:
                    delay = min(self.hook.backoff * 2 ** (attempts - 1), MAX_DELAY)
                    later = GIVEN_UP if attempts >= self.hook.attempts else _iso(now + timedelta(seconds=delay))
                    mark_failed(store, outgoing.id, attempts, later, error)
                    log.warning(
                        "notification %d, attempt %d of %d: %s; %s",
                        outgoing.id,
                        attempts,
                        self.hook.attempts,
                        error,
                        "given up" if later == GIVEN_UP else f"next in {delay:g} s",
                    )
                store.commit()

    def _post(self, notification_id: int, body: bytes) -> str | None:
        """None when the receiver took it (2xx), else why not."""
        return post_signed(self._http, self.hook.url, self.hook.secret, str(notification_id), body, self.hook.timeout)


def identity(path: Path) -> tuple[int, int, int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns)


class Watcher(_Loop):
    """Re-matches when the database file changes identity; the file as the service found it is the baseline."""

    def __init__(self, rematcher: Rematcher, interval: float) -> None:
        super().__init__("portcullis-db-watch")
        self.rematcher = rematcher
        self.interval = interval
        self._seen = identity(rematcher.db_path)

    def run(self) -> None:
        while self.pause(self.interval):
            now = identity(self.rematcher.db_path)
            if now is None or now == self._seen:
                continue
            time.sleep(min(1.0, self.interval))  # let a writer that changes the file in place finish
            if identity(self.rematcher.db_path) != now:
                continue  # still changing: look again next time
            self._seen = now
            try:
                self.rematcher.run()
            except (VulnerabilityInputError, StoreError) as exc:
                log.error("re-match after the database changed: %s", exc)


class Pruner(_Loop):
    """Removes runs older than `days` at start and every `every` seconds; each stream's newest run, pinned runs,
    pending notifications and deployed images' inventories stay (store/retention.py)."""

    def __init__(self, connections: Connections, days: float, every: float = 3600.0) -> None:
        super().__init__("portcullis-retention")
        self.connections = connections
        self.days = days
        self.every = every

    def run(self) -> None:
        while True:
            try:
                self.prune_now()
            except StoreError as exc:
                log.error("retention: %s", exc)
            if not self.pause(self.every):
                return

    def prune_now(self) -> Pruned:
        cutoff = datetime.now(UTC) - timedelta(days=self.days)
        with self.connections.use() as store:
            pruned = prune(store, Retention(keep_last=1, older_than=cutoff))
        if pruned.runs or pruned.notifications or pruned.inventories:
            log.info(
                "retention: removed %d run(s) with %d finding(s), %d notification(s), %d inventory(ies) older than "
                "%g day(s)",
                len(pruned.runs),
                pruned.findings,
                pruned.notifications,
                pruned.inventories,
                self.days,
            )
        return pruned
