"""Re-match and notify (Clair's notifier): the fleet service keeps each pushed image's package inventory and which
images the engines run; when the vulnerability database changes, the inventories of the deployed images are matched
again and what the new database adds (advisories an image was not matched to before) becomes one notification.

An image's first match is its baseline, recorded without a notification: its report already told of those.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from portcullis.model.facts import Facts, ImageFacts
from portcullis.model.findings import Status
from portcullis.model.fleet import DeployedContainer, ImageInventory
from portcullis.model.vuln import VULN_RULE_ID
from portcullis.pipelines.errors import VulnerabilityInputError
from portcullis.store import Store
from portcullis.store.rematch import (
    KeptInventory,
    MatchRow,
    deployed_inventories,
    enqueue,
    inventories,
    keep_inventory,
    placements,
    replace_containers,
    replace_matches,
    stored_matches,
)

EVENT = "portcullis.rematch"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def image_inventory(reference: str, image: ImageFacts) -> ImageInventory | None:
    """What an agent pushes beside an image's report so it can be re-matched; None when the content was not read."""
    if image.content is None:
        return None
    return ImageInventory(
        image=reference, image_id=image.id, os_release=image.content.os_release, packages=image.content.packages
    )


def deployed_containers(facts: Facts) -> list[DeployedContainer]:
    """The engine's containers as an agent pushes them beside its audit report."""
    return [
        DeployedContainer(
            id=c.id,
            name=c.name.lstrip("/"),
            image=c.config.image,
            image_id=c.image_id,
            running=c.state.running,
        )
        for c in facts.containers
    ]


def _matches(inventory: ImageInventory, db_path: Path) -> list[MatchRow]:
    """The advisories that apply to the inventory's packages now: failing DKR-VULN findings, one per package."""
    from portcullis.vuln import scan
    from portcullis.vuln.db import DatabaseError, VulnDB

    try:
        with VulnDB.open(db_path) as db:
            found = scan(inventory.packages, db, inventory.os_release)
    except DatabaseError as exc:
        raise VulnerabilityInputError(str(exc)) from exc
    rows = {
        (f.vulnerability.advisory_id, f.vulnerability.package): MatchRow(
            f.vulnerability.advisory_id,
            f.vulnerability.package,
            f.vulnerability.installed_version,
            f.vulnerability.fixed_version,
            f.vulnerability.severity.value,
        )
        for f in found
        if f.rule_id == VULN_RULE_ID and f.status is Status.FAIL and f.vulnerability is not None
    }
    return sorted(rows.values(), key=lambda m: m.key)


def accept_inventories(
    store: Store,
    agent: str,
    pushed: Sequence[ImageInventory],
    containers: Sequence[DeployedContainer] | None,
    db_path: Path,
) -> None:
    """Keep what an agent pushed beside a report: inventories (an image never matched is matched now, as its
    baseline, when there is a database) and, when given, its engine's containers. One commit."""
    when = _now()
    for inventory in pushed:
        keep_inventory(store, agent, inventory, when)
    if containers is not None:
        replace_containers(store, agent, containers, when)
    if db_path.exists():
        for kept in inventories(store, [i.image_id for i in pushed]):
            if kept.matched_at is None:
                replace_matches(store, kept.image_id, _matches(kept.inventory, db_path), when)
    store.commit()


@dataclass(frozen=True)
class Rematched:
    images: int  # deployed images re-matched
    new_matches: int
    notification: int | None  # the queued notification's id, when there was something new


def _database(db_path: Path) -> dict[str, object]:
    from portcullis.vuln.db import VulnDB

    with VulnDB.open(db_path) as db:
        return {
            "built_at": db.meta("updated_at"),
            "sources": [{"name": s.name, "fetched_at": s.fetched_at} for s in db.sources()],
        }


def rematch(store: Store, db_path: Path) -> Rematched:
    """Match every deployed image's inventory against the database at `db_path`; keep the new matches and queue
    one notification listing what is newly affected (images, their containers on which engines, the advisories)."""
    if not db_path.exists():
        raise VulnerabilityInputError(f"no vulnerability database at {db_path}: nothing to re-match against")
    when = _now()
    deployed: list[KeptInventory] = deployed_inventories(store)
    news: dict[str, list[MatchRow]] = {}
    for kept in deployed:
        now = _matches(kept.inventory, db_path)
        before = {m.key for m in stored_matches(store, kept.image_id)}
        added = [m for m in now if m.key not in before]
        if added:
            news[kept.image_id] = added
        replace_matches(store, kept.image_id, now, when)
    notification = None
    if news:
        notification = enqueue(store, _body(store, deployed, news, db_path, when), when)
    store.commit()
    return Rematched(len(deployed), sum(len(m) for m in news.values()), notification)


def _body(
    store: Store, deployed: list[KeptInventory], news: dict[str, list[MatchRow]], db_path: Path, when: str
) -> str:
    where = placements(store, list(news))
    names = {k.image_id: k.image for k in deployed}
    images = [
        {
            "image": names[image_id],
            "image_id": image_id,
            "containers": [
                {"engine": p.agent, "id": p.container_id, "name": p.name, "image": p.image}
                for p in where.get(image_id, [])
            ],
            "advisories": [
                {
                    "id": m.advisory,
                    "package": m.package,
                    "installed_version": m.installed,
                    "fixed_version": m.fixed,
                    "severity": m.severity,
                }
                for m in added
            ],
        }
        for image_id, added in sorted(news.items(), key=lambda item: names[item[0]])
    ]
    engines = sorted({p.agent for placed in where.values() for p in placed})
    return json.dumps(
        {"event": EVENT, "created_at": when, "database": _database(db_path), "engines": engines, "images": images},
        sort_keys=True,
    )
