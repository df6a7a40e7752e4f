"""The engine's event stream (GET /events), narrowed to what changes an audit's answer: by default a container that
starts and an image that arrives (pulled, loaded, imported or tagged)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from portcullis.collect.engine import EngineConnection, connect

WATCHED = {"container": ("start",), "image": ("pull", "load", "import", "tag")}


@dataclass(frozen=True)
class EngineEvent:
    kind: str  # container | image
    action: str
    name: str  # the container's name, the image's reference
    time_nano: int
    id: str = ""  # the container's id, the image's reference as the engine sent it


def _event(raw: dict[str, Any], watched: Mapping[str, tuple[str, ...]]) -> EngineEvent | None:
    kind, action = raw.get("Type", ""), raw.get("Action", "")
    if action not in watched.get(kind, ()):
        return None
    actor = raw.get("Actor") or {}
    attributes = actor.get("Attributes") or {}
    actor_id = str(actor.get("ID", ""))
    return EngineEvent(kind, action, str(attributes.get("name") or actor_id), int(raw.get("timeNano", 0)), actor_id)


class EventStream:
    """The watched events of the engine at `host`, as they happen, until the engine goes away (the iteration ends
    or raises) or `close()` is called from another thread. `watched` names the actions wanted per object type;
    `since` (Unix seconds) replays what happened from then on first. Connecting raises CollectionError."""

    def __init__(
        self, host: str | None, watched: Mapping[str, tuple[str, ...]] = WATCHED, since: float | None = None
    ) -> None:
        self._conn: EngineConnection = connect(host)
        self._watched = watched
        filters = {"type": list(watched), "event": sorted({a for actions in watched.values() for a in actions})}
        self._raw = self._conn.api.events(filters=filters, decode=True, since=since)
        self._lock = threading.Lock()
        self._closed = False

    def __iter__(self) -> Iterator[EngineEvent]:
        for raw in self._raw:
            event = _event(raw, self._watched)
            if event is not None:
                yield event

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        with suppress(Exception):  # the socket may already be gone with the daemon
            self._raw.close()
        self._conn.close()
