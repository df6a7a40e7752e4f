"""`portcullis serve`: the fleet service, where agents push reports and readers look at the fleet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from portcullis.cli.common import StoreOption, die, say, shout
from portcullis.pipelines.database import database_path
from portcullis.service.notify import Webhook
from portcullis.service.server import Rematching, ServeError, Tls, parse_bind, prepare, read_secret, webhook_url
from portcullis.service.server import serve as run_server

MIB = 1024 * 1024


def serve(
    bind: Annotated[
        str,
        typer.Option("--bind", metavar="ADDR:PORT", help="where to listen: 127.0.0.1:8443, [::]:8443"),
    ] = "127.0.0.1:8443",
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", dir_okay=False, help="serve HTTPS with this PEM certificate (chain)")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", dir_okay=False, help="the certificate's PEM key")] = None,
    max_body: Annotated[
        int, typer.Option("--max-body", metavar="MIB", min=1, max=1024, help="largest pushed report, in MiB")
    ] = 32,
    db: Annotated[
        Path | None,
        typer.Option("--db", dir_okay=False, help="the vulnerability database deployed images are re-matched against"),
    ] = None,
    db_watch: Annotated[
        float,
        typer.Option(
            "--db-watch", metavar="SECONDS", min=0, help="look this often for a new database and re-match; 0: never"
        ),
    ] = 60.0,
    notify_url: Annotated[
        str | None, typer.Option("--notify-url", help="POST a signed JSON webhook here when images are newly affected")
    ] = None,
    notify_secret_file: Annotated[
        Path | None,
        typer.Option("--notify-secret-file", dir_okay=False, help="the webhook's shared HMAC-SHA256 secret"),
    ] = None,
    notify_backoff: Annotated[
        float,
        typer.Option("--notify-backoff", metavar="SECONDS", min=0.1, help="first retry delay, doubled each time"),
    ] = 5.0,
    retain_days: Annotated[
        float | None,
        typer.Option(
            "--retain-days",
            metavar="DAYS",
            min=0.01,
            help="prune runs older than this, at start and hourly; the newest of each engine and image stays",
        ),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Serve the fleet API: agents push reports (POST /api/v1/reports), readers list engines, images, findings
    and trends; every request needs a token from `portcullis token add`. A person reads the fleet in a browser at
    the same address, with a reader token.

    When the vulnerability database (--db) changes, the images that run on some engine are matched again and what is
    newly affected is sent, signed, to --notify-url; an admin token can ask for that now (POST /api/v1/rematch).

    With --retain-days the store stays bounded: older runs go with their findings, and delivered notifications and
    the inventories of images no engine runs any more go too; pinned runs (`history pin`) stay.

    PostgreSQL (--store postgresql://…) is the store for production; the default SQLite file suits a one-machine
    trial. Examples: `portcullis serve --bind 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem --store
    postgresql://portcullis@db/portcullis`, `portcullis serve --bind 127.0.0.1:8080`.
    """
    if (tls_cert is None) != (tls_key is None):
        die("--tls-cert and --tls-key go together")
    if (notify_url is None) != (notify_secret_file is None):
        die("--notify-url and --notify-secret-file go together")
    try:
        where = parse_bind(bind)
        tls = Tls(tls_cert, tls_key) if tls_cert is not None and tls_key is not None else None
        hook = None
        if notify_url is not None and notify_secret_file is not None:
            hook = Webhook(webhook_url(notify_url), read_secret(notify_secret_file), backoff=notify_backoff)
        rematching = Rematching(database_path(db), db_watch, hook, retain_days)
        prepared = prepare(store, where, tls, max_body * MIB, rematching)
    except ServeError as exc:
        die(str(exc))
    if tls is None and not where.loopback:
        shout(
            f"portcullis serve: WARNING: plain HTTP on {where.host}, which is not a loopback address: tokens and "
            "reports cross the network readable by anyone on the path; give --tls-cert and --tls-key"
        )
    say(f"portcullis serve: listening on {where.url(tls is not None, prepared.port)}, store {prepared.store}")
    run_server(prepared)
