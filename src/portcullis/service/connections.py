"""One store connection per server thread: SQLite's connections belong to the thread that opened them, and a
PostgreSQL connection is not shared by two requests at once. Each use ends its transaction."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from portcullis.store import Store, open_store


class Connections:
    def __init__(self, location: str) -> None:
        self.location = location
        first = open_store(location)  # migrates, or fails here in one line before the server binds its port
        self.where = first.where
        self._local = threading.local()
        self._local.store = first
        self._opened = [first]
        self._lock = threading.Lock()

    @contextmanager
    def use(self) -> Iterator[Store]:
        store: Store | None = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = open_store(self.location, migrate=False)
            with self._lock:
                self._opened.append(store)
        try:
            yield store
        finally:
            store.release()

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for store in opened:
            store.close()
