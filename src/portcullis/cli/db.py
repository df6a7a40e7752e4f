"""`portcullis db update|status|import|export`: the local vulnerability database."""

from __future__ import annotations

import os
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from portcullis.cli.common import die, say

app = typer.Typer(name="db", help="Build, inspect and move the local vulnerability database.", no_args_is_help=True)

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="the database file (default: vuln.db in the user cache dir, or $PORTCULLIS_DB)"),
]
STALE_DAYS = 3.0


def _db_path(db: Path | None) -> Path:
    from portcullis.vuln.location import default_path

    return db if db is not None else default_path()


def _progress(label: str, received: int, total: int | None) -> None:
    """Byte progress on stderr, one line rewritten in place on a terminal and quiet otherwise."""
    if not sys.stderr.isatty():
        return
    size = f"{received / 1e6:.1f}" + (f"/{total / 1e6:.1f}" if total else "") + " MB"
    sys.stderr.write(f"\r{label[-60:]}: {size}   ")
    sys.stderr.flush()


@app.command()
def update(
    db: DbOption = None,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="update just these feeds: debian, osv:PyPI, alpine, ...")
    ] = None,
    url: Annotated[
        list[str] | None,
        typer.Option("--url", help="NAME=URL: fetch a feed from a mirror instead of its upstream URL"),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="seconds one feed download may take, from request to last byte")
    ] = 900.0,  # download.DEADLINE, not imported here to keep the CLI light
) -> None:
    """Download the upstream feeds (Debian tracker, OSV, Alpine secdb) and rebuild the database atomically.

    Each download must end within --timeout and stay under its feed's limit:
    tracker JSON 512 MiB, OSV zip 512 MiB, secdb document 64 MiB, secdb index 1 MiB."""
    from portcullis.vuln.db import DatabaseError
    from portcullis.vuln.download import FeedSpec, default_feeds
    from portcullis.vuln.download import update as run_update
    from portcullis.vuln.sources import FeedError

    feeds = {spec.name: spec for spec in default_feeds()}
    for override in url or []:
        name, sep, target = override.partition("=")
        if not sep or name not in feeds:
            die(f"--url wants NAME=URL with NAME one of {', '.join(feeds)}; got {override!r}")
        feeds[name] = FeedSpec(name, target, feeds[name].kind)
    if only:
        unknown = [n for n in only if n not in feeds]
        if unknown:
            die(f"unknown feed {unknown[0]!r}; known: {', '.join(feeds)}")
        selected = [feeds[n] for n in only]
    else:
        selected = list(feeds.values())
    path = _db_path(db)
    try:
        result = run_update(path, selected, _progress, timeout)
    except (FeedError, DatabaseError) as exc:
        if sys.stderr.isatty():
            sys.stderr.write("\n")
        die(f"update failed, the existing database is unchanged: {exc}")
    for info in result.updated:
        say(f"updated {info.name}: {info.advisories} advisories, {info.affected} package rows")
    for name in result.not_modified:
        say(f"{name}: not modified upstream")
    say(f"database: {path}")


@app.command()
def status(
    db: DbOption = None,
    max_age: Annotated[float, typer.Option("--max-age", help="warn when a source is older than this many days")] = (
        STALE_DAYS
    ),
) -> None:
    """Show every source in the database: where it came from, how old it is, how many advisories it holds."""
    from portcullis.vuln.db import DatabaseError, VulnDB

    path = _db_path(db)
    try:
        with VulnDB.open(path) as database:
            sources = database.sources()
            updated = database.meta("updated_at") or "unknown"
    except DatabaseError as exc:
        die(str(exc))
    except sqlite3.DatabaseError as exc:  # the header and meta read fine, a later page did not
        die(f"{path} is damaged ({exc}); remove it and run `portcullis db update` or `db import`")
    now = datetime.now(UTC)
    lines = [
        f"database: {path} ({path.stat().st_size / 1e6:.1f} MB, last changed {updated})",
        f"{'source':<32} {'fetched (UTC)':<26} {'age':>8} {'advisories':>10} {'rows':>8}  origin",
    ]
    stale = []
    for source in sources:
        age = source.age_days(now)
        if age > max_age:
            stale.append(source.name)
        lines.append(
            f"{source.name:<32} {source.fetched_at:<26} {age:>7.1f}d {source.advisories:>10} {source.affected:>8}"
            f"  {source.origin}"
        )
    try:
        typer.echo("\n".join(lines))
    except OSError as exc:  # stdout on a full disk or a closed pipe
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the flush at exit cannot fail again
        die(f"cannot write to standard output: {exc.strerror or exc}")
    if not sources:
        say("warning: the database holds no sources")
    if stale:
        say(
            f"warning: {len(stale)} source(s) older than {max_age:g} days: {', '.join(stale)};"
            " run `portcullis db update`"
        )


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="a bundle from `db export`, or feed files: tracker JSON, OSV, secdb")],
    db: DbOption = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="feed files: replace each source they name whole (by default they are merged: an advisory in the"
            " files replaces the one with its id, the source's other advisories are kept)",
        ),
    ] = False,
) -> None:
    """Import a bundle (checked against its manifest) or upstream feed files/directories/zips.

    A bundle replaces the whole database (like `grype db import`); feed files are merged into the sources they name.
    Limits: a feed document 512 MiB; a zip member 16 MiB;
    a zip's members together 100 times the zip (at least 64 MiB, at most 4 GiB);
    a bundle's manifest 1 MiB, its database 8 GiB."""
    from portcullis.vuln.bundle import BundleError, import_bundle, import_feeds, is_bundle
    from portcullis.vuln.db import DatabaseError
    from portcullis.vuln.sources import FeedError

    target = _db_path(db)
    try:
        if is_bundle(path):
            manifest = import_bundle(path, target)
            say(
                f"imported bundle created {manifest.get('created_at')} with {len(manifest.get('sources', []))} "
                f"source(s) into {target}"
            )
            return
        for done in import_feeds(path, target, replace):
            info = done.info
            if done.before is None:
                say(f"imported {info.name}: {info.advisories} advisories, {info.affected} package rows")
            elif replace:
                say(f"replaced {info.name}: its {done.before} advisories by the {info.advisories} in {path}")
            else:
                say(
                    f"merged {done.files} advisories into {info.name}: {done.replaced} replaced by the same id,"
                    f" {done.files - done.replaced} new; {info.advisories} in all (--replace replaces the source)"
                )
    except (BundleError, FeedError, DatabaseError, UnicodeDecodeError) as exc:
        die(f"import failed, the existing database is unchanged: {exc}")
    say(f"database: {target}")


@app.command()
def export(
    path: Annotated[Path, typer.Argument(help="where to write the bundle (.tar.gz)")],
    db: DbOption = None,
) -> None:
    """Write the database and a checksum manifest as one bundle for an air-gapped host."""
    from portcullis.vuln.bundle import export_bundle
    from portcullis.vuln.db import DatabaseError

    try:
        manifest = export_bundle(_db_path(db), path)
    except DatabaseError as exc:
        die(str(exc))
    except OSError as exc:
        die(f"cannot write {path}: {exc.strerror or exc}")
    say(f"exported {len(manifest['sources'])} source(s) to {path}")
