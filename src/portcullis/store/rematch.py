"""The store's side of re-match and notify: image inventories, the containers each agent's engine has, the advisories
each image was last matched to, and the webhook outbox. Nothing here commits: the caller ends each step with one
commit, so matches and the notification announcing them are kept together or not at all."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from portcullis.model.fleet import DeployedContainer, ImageInventory
from portcullis.store import Store

GIVEN_UP = "9999-12-31T23:59:59+00:00"  # the next attempt of a notification no attempt is left for: never


@dataclass(frozen=True)
class KeptInventory:
    image_id: str
    image: str
    inventory: ImageInventory
    matched_at: str | None  # None: never matched, so it has no baseline yet


@dataclass(frozen=True)
class MatchRow:
    """One advisory on one package of one image."""

    advisory: str
    package: str
    installed: str
    fixed: str | None
    severity: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.advisory, self.package)


@dataclass(frozen=True)
class Placement:
    """Where an image runs: one container on one agent's engine."""

    agent: str
    container_id: str
    name: str
    image: str
    running: bool


@dataclass(frozen=True)
class Outgoing:
    id: int
    body: str
    attempts: int


def keep_inventory(store: Store, agent: str, inventory: ImageInventory, when: str) -> None:
    """Keep (or refresh) an image's inventory; an image id already matched keeps its baseline."""
    store.execute(
        "INSERT INTO inventories (image_id, image, agent, inventory, pushed_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (image_id) DO UPDATE SET image = excluded.image, agent = excluded.agent,"
        " inventory = excluded.inventory, pushed_at = excluded.pushed_at",
        (inventory.image_id, inventory.image, agent, inventory.model_dump_json(), when),
    )


def replace_containers(store: Store, agent: str, containers: Sequence[DeployedContainer], when: str) -> None:
    """The containers of `agent`'s engine are now exactly `containers`."""
    store.execute("DELETE FROM containers WHERE agent = ?", (agent,))
    store.execute_many(
        "INSERT INTO containers (agent, container_id, name, image, image_id, running, seen_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(agent, c.id, c.name, c.image, c.image_id, int(c.running), when) for c in containers],
    )


def _kept(rows: Iterable[tuple[str, str, str, str | None]]) -> list[KeptInventory]:
    return [KeptInventory(r[0], r[1], ImageInventory.model_validate_json(r[2]), r[3]) for r in rows]


def inventories(store: Store, image_ids: Sequence[str]) -> list[KeptInventory]:
    if not image_ids:
        return []
    marks = ", ".join("?" for _ in image_ids)
    return _kept(
        store.execute(
            f"SELECT image_id, image, inventory, matched_at FROM inventories WHERE image_id IN ({marks})",
            list(image_ids),
        )
    )


def deployed_inventories(store: Store) -> list[KeptInventory]:
    """The kept inventories of images some agent's engine runs a container of, by image id."""
    return _kept(
        store.execute(
            "SELECT i.image_id, i.image, i.inventory, i.matched_at FROM inventories i WHERE EXISTS"
            " (SELECT 1 FROM containers c WHERE c.image_id = i.image_id AND c.running = 1) ORDER BY i.image_id"
        )
    )


def placements(store: Store, image_ids: Sequence[str]) -> dict[str, list[Placement]]:
    """The running containers of each image, by agent and name."""
    if not image_ids:
        return {}
    marks = ", ".join("?" for _ in image_ids)
    found: dict[str, list[Placement]] = {}
    for image_id, agent, container_id, name, image, running in store.execute(
        f"SELECT image_id, agent, container_id, name, image, running FROM containers WHERE image_id IN ({marks})"
        " AND running = 1 ORDER BY agent, name",
        list(image_ids),
    ):
        found.setdefault(image_id, []).append(Placement(agent, container_id, name, image, bool(running)))
    return found


def stored_matches(store: Store, image_id: str) -> list[MatchRow]:
    return [
        MatchRow(*row)
        for row in store.execute(
            "SELECT advisory, package, installed, fixed, severity FROM image_matches WHERE image_id = ?", (image_id,)
        )
    ]


def replace_matches(store: Store, image_id: str, matches: Sequence[MatchRow], when: str) -> None:
    store.execute("DELETE FROM image_matches WHERE image_id = ?", (image_id,))
    store.execute_many(
        "INSERT INTO image_matches (image_id, advisory, package, installed, fixed, severity) VALUES (?, ?, ?, ?, ?, ?)",
        [(image_id, m.advisory, m.package, m.installed, m.fixed, m.severity) for m in matches],
    )
    store.execute("UPDATE inventories SET matched_at = ? WHERE image_id = ?", (when, image_id))


def enqueue(store: Store, body: str, when: str) -> int:
    rows = store.execute(
        "INSERT INTO notifications (created_at, body, next_attempt_at) VALUES (?, ?, ?) RETURNING id",
        (when, body, when),
    )
    return int(rows[0][0])


def due(store: Store, now: str, limit: int = 20) -> list[Outgoing]:
    """Notifications not yet delivered (nor given up) whose next attempt is due, oldest first."""
    rows = store.execute(
        "SELECT id, body, attempts FROM notifications WHERE delivered_at IS NULL AND next_attempt_at <= ?"
        f" ORDER BY id LIMIT {int(limit)}",
        (now,),
    )
    return [Outgoing(int(r[0]), r[1], int(r[2])) for r in rows]


def mark_delivered(store: Store, notification_id: int, attempts: int, when: str) -> None:
    store.execute(
        "UPDATE notifications SET delivered_at = ?, attempts = ?, last_error = NULL WHERE id = ?",
        (when, attempts, notification_id),
    )


def mark_failed(store: Store, notification_id: int, attempts: int, next_attempt_at: str, error: str) -> None:
    """A failed attempt; `next_attempt_at` far in the future (GIVEN_UP) when no attempt is left."""
    store.execute(
        "UPDATE notifications SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
        (attempts, next_attempt_at, error[:500], notification_id),
    )
