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


EOL_FEED = "eol"  # the end-of-life tables, named like a feed in --only and --url


def update_database(
    path: Path,
    only: Sequence[str],
    mirrors: Sequence[str],
    progress: Callable[[str, int, int | None], None],
    timeout: float = 900.0,
) -> UpdateResult:
    """Download the chosen feeds (all without `only`; `mirrors` are NAME=URL) and rebuild the database atomically,
    then refresh the end-of-life tables from endoflife.date (feed name `eol`); each download must end within
    `timeout` seconds. A failed refresh of the tables keeps the previous ones and raises VulnerabilityInputError."""
    from portcullis.vuln.db import DatabaseError
    from portcullis.vuln.download import FeedSpec, UpdateResult, default_feeds
    from portcullis.vuln.download import update as run_update
    from portcullis.vuln.eol_refresh import API, PRODUCT_DEADLINE, EolTableError, refresh
    from portcullis.vuln.sources import FeedError

    feeds = {spec.name: spec for spec in default_feeds()}
    eol_base = API
    for mirror in mirrors:
        name, sep, target = mirror.partition("=")
        if sep and name == EOL_FEED:
            eol_base = target
            continue
        if not sep or name not in feeds:
            raise UsageError(f"--url wants NAME=URL with NAME one of {', '.join([*feeds, EOL_FEED])}; got {mirror!r}")
        feeds[name] = FeedSpec(name, target, feeds[name].kind)
    unknown = [n for n in only if n not in feeds and n != EOL_FEED]
    if unknown:
        raise UsageError(f"unknown feed {unknown[0]!r}; known: {', '.join([*feeds, EOL_FEED])}")
    selected = [feeds[n] for n in only if n != EOL_FEED] if only else list(feeds.values())
    try:
        result = run_update(path, selected, progress, timeout) if selected else UpdateResult()
    except (FeedError, DatabaseError) as exc:
        raise VulnerabilityInputError(f"update failed, the existing database is unchanged: {exc}") from exc
    if only and EOL_FEED not in only:
        return result
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        result.eol_tables = refresh(path, eol_base, min(timeout, PRODUCT_DEADLINE))
    except (EolTableError, OSError) as exc:
        done = "the feeds were updated, but " if selected else ""
        raise VulnerabilityInputError(
            f"{done}the end-of-life tables were not refreshed (the previous ones are kept): {exc}"
        ) from exc
    return result


@dataclass(frozen=True)
class DatabaseStatus:
    size_bytes: int
    updated_at: str  # "unknown" when the database does not record it
    sources: list[SourceInfo]
    eol_tables: str  # which end-of-life tables the rules use: refreshed (origin and date) or the built-in ones


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
    return DatabaseStatus(
        size_bytes=path.stat().st_size, updated_at=updated, sources=sources, eol_tables=eol_tables_in_use(path)
    )


def eol_tables_in_use(path: Path) -> str:
    """A line saying which end-of-life tables the rules will use with the database at `path`."""
    from portcullis.vuln.eol_refresh import EolTableError, eol_path, load

    try:
        tables = load(path)
    except EolTableError as exc:
        return f"built-in (the refreshed ones are unusable: {exc})"
    if tables is None:
        return "built-in (run `portcullis db update` to refresh them from endoflife.date)"
    return f"{eol_path(path)}: from {tables.origin}, fetched {tables.fetched_at}"


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
