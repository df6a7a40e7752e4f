"""`portcullis db update|status|import|export`: the local vulnerability database."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from portcullis.cli.common import die, listed, say
from portcullis.pipelines.database import (
    database_path,
    database_status,
    export_database,
    import_into_database,
    update_database,
)
from portcullis.pipelines.errors import PipelineError, VulnerabilityInputError

app = typer.Typer(name="db", help="Build, inspect and move the local vulnerability database.", no_args_is_help=True)

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="the database file (default: vuln.db in the user cache dir, or $PORTCULLIS_DB)"),
]
STALE_DAYS = 3.0


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
        list[str] | None,
        typer.Option("--only", help="update just these feeds: debian, osv:PyPI, alpine, ..., eol (end-of-life tables)"),
    ] = None,
    url: Annotated[
        list[str] | None,
        typer.Option(
            "--url", help="NAME=URL: fetch a feed from a mirror instead of its upstream URL (eol=URL: the API's base)"
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="seconds one feed download may take, from request to last byte")
    ] = 900.0,  # download.DEADLINE, not imported here to keep the CLI light
) -> None:
    """Download the upstream feeds (Debian tracker, OSV, Alpine secdb) and rebuild the database atomically, then
    refresh the OS and engine end-of-life tables from endoflife.date (kept beside the database as DB.eol.json).

    Each download must end within --timeout and stay under its feed's limit:
    tracker JSON 512 MiB, OSV zip 512 MiB, secdb document 64 MiB, secdb index 1 MiB,
    an endoflife.date product 2 MiB (and 60 s)."""
    path = database_path(db)
    try:
        result = update_database(path, listed(only), url or [], _progress, timeout)
    except VulnerabilityInputError as exc:
        if sys.stderr.isatty():
            sys.stderr.write("\n")  # end the progress line
        die(str(exc))
    except PipelineError as exc:
        die(str(exc))
    for info in result.updated:
        say(f"updated {info.name}: {info.advisories} advisories, {info.affected} package rows")
    for name in result.not_modified:
        say(f"{name}: not modified upstream")
    if result.eol_tables is not None:
        tables = result.eol_tables
        say(
            f"end-of-life tables: {len(tables.distributions)} distributions, {len(tables.engine_lines)} engine release"
            f" lines from {tables.origin}"
        )
    say(f"database: {path}")


@app.command()
def status(
    db: DbOption = None,
    max_age: Annotated[float, typer.Option("--max-age", help="warn when a source is older than this many days")] = (
        STALE_DAYS
    ),
) -> None:
    """Show every source in the database: where it came from, how old it is, how many advisories it holds."""
    path = database_path(db)
    try:
        database = database_status(path)
    except PipelineError as exc:
        die(str(exc))
    now = datetime.now(UTC)
    lines = [
        f"database: {path} ({database.size_bytes / 1e6:.1f} MB, last changed {database.updated_at})",
        f"{'source':<32} {'fetched (UTC)':<26} {'age':>8} {'advisories':>10} {'rows':>8}  origin",
    ]
    stale = []
    for source in database.sources:
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
    say(f"end-of-life tables: {database.eol_tables}")
    if not database.sources:
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
    target = database_path(db)
    try:
        outcome = import_into_database(path, target, replace)
    except PipelineError as exc:
        die(str(exc))
    manifest = outcome.bundle_manifest
    if manifest is not None:
        say(
            f"imported bundle created {manifest.get('created_at')} with {len(manifest.get('sources', []))} "
            f"source(s) into {target}"
        )
        return
    for done in outcome.feeds:
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
    say(f"database: {target}")


@app.command()
def export(
    path: Annotated[Path, typer.Argument(help="where to write the bundle (.tar.gz)")],
    db: DbOption = None,
) -> None:
    """Write the database and a checksum manifest as one bundle for an air-gapped host."""
    try:
        manifest = export_database(database_path(db), path)
    except PipelineError as exc:
        die(str(exc))
    say(f"exported {len(manifest['sources'])} source(s) to {path}")
