"""The vulnerability database flows: update it from the upstream feeds, describe it, import into it, export it.

Each raises VulnerabilityInputError (the database or an input cannot be used) or UsageError (bad arguments);
on any failure the existing database is left as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portcullis.pipelines.errors import UsageError, VulnerabilityInputError

if TYPE_CHECKING:  # the vuln modules load only when a flow runs
    from portcullis.vuln.bundle import Imported
    from portcullis.vuln.db import SourceInfo
    from portcullis.vuln.download import UpdateResult


def database_path(db: Path | None) -> Path:
    """The database a command works on: `db`, or the default (the user cache dir, or $PORTCULLIS_DB)."""
    from portcullis.vuln.location import default_path

    return db if db is not None else default_path()


def update_database(
    path: Path,
    only: Sequence[str],
    mirrors: Sequence[str],
    progress: Callable[[str, int, int | None], None],
    timeout: float = 900.0,
) -> UpdateResult:
    """Download the chosen feeds (all without `only`; `mirrors` are NAME=URL) and rebuild the database atomically;
    each download must end within `timeout` seconds."""
    from portcullis.vuln.db import DatabaseError
    from portcullis.vuln.download import FeedSpec, default_feeds
    from portcullis.vuln.download import update as run_update
    from portcullis.vuln.sources import FeedError

    feeds = {spec.name: spec for spec in default_feeds()}
    for mirror in mirrors:
        name, sep, target = mirror.partition("=")
        if not sep or name not in feeds:
            raise UsageError(f"--url wants NAME=URL with NAME one of {', '.join(feeds)}; got {mirror!r}")
        feeds[name] = FeedSpec(name, target, feeds[name].kind)
    unknown = [n for n in only if n not in feeds]
    if unknown:
        raise UsageError(f"unknown feed {unknown[0]!r}; known: {', '.join(feeds)}")
    selected = [feeds[n] for n in only] if only else list(feeds.values())
    try:
        return run_update(path, selected, progress, timeout)
    except (FeedError, DatabaseError) as exc:
        raise VulnerabilityInputError(f"update failed, the existing database is unchanged: {exc}") from exc


@dataclass(frozen=True)
class DatabaseStatus:
    size_bytes: int
    updated_at: str  # "unknown" when the database does not record it
    sources: list[SourceInfo]


def database_status(path: Path) -> DatabaseStatus:
    import sqlite3

    from portcullis.vuln.db import DatabaseError, VulnDB

    try:
        with VulnDB.open(path) as database:
            sources = database.sources()
            updated = database.meta("updated_at") or "unknown"
    except DatabaseError as exc:
        raise VulnerabilityInputError(str(exc)) from exc
    except sqlite3.DatabaseError as exc:  # the header and meta read fine, a later page did not
        raise VulnerabilityInputError(
            f"{path} is damaged ({exc}); remove it and run `portcullis db update` or `db import`"
        ) from exc
    return DatabaseStatus(size_bytes=path.stat().st_size, updated_at=updated, sources=sources)


@dataclass(frozen=True)
class ImportOutcome:
    bundle_manifest: dict[str, Any] | None  # set when `source` was a bundle from `db export`
    feeds: list[Imported]  # the sources loaded from feed files otherwise


def import_into_database(source: Path, path: Path, replace: bool = False) -> ImportOutcome:
    """Import a bundle (checked against its manifest; it replaces the whole database) or upstream feed files,
    directories or zips (merged into the sources they name, or replacing each whole with `replace`)."""
    from portcullis.vuln.bundle import BundleError, import_bundle, import_feeds, is_bundle
    from portcullis.vuln.db import DatabaseError
    from portcullis.vuln.sources import FeedError

    try:
        if is_bundle(source):
            return ImportOutcome(bundle_manifest=import_bundle(source, path), feeds=[])
        return ImportOutcome(bundle_manifest=None, feeds=import_feeds(source, path, replace))
    except (BundleError, FeedError, DatabaseError, UnicodeDecodeError) as exc:
        raise VulnerabilityInputError(f"import failed, the existing database is unchanged: {exc}") from exc


def export_database(path: Path, bundle: Path) -> dict[str, Any]:
    """Write the database and a checksum manifest as one bundle; returns the manifest."""
    from portcullis.vuln.bundle import export_bundle
    from portcullis.vuln.db import DatabaseError

    try:
        return export_bundle(path, bundle)
    except DatabaseError as exc:
        raise VulnerabilityInputError(str(exc)) from exc
    except OSError as exc:
        raise VulnerabilityInputError(f"cannot write {bundle}: {exc.strerror or exc}") from exc
