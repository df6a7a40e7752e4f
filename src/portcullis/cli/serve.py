"""`portcullis serve`: the fleet service, where agents push reports and readers look at the fleet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from portcullis.cli.common import StoreOption, die, say, shout
from portcullis.service.server import ServeError, Tls, parse_bind, prepare
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
    store: StoreOption = None,
) -> None:
    """Serve the fleet API: agents push reports (POST /api/v1/reports), readers list engines, images, findings
    and trends; every request needs a token from `portcullis token add`.

    PostgreSQL (--store postgresql://…) is the store for production; the default SQLite file suits a one-machine
    trial. Examples: `portcullis serve --bind 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem --store
    postgresql://portcullis@db/portcullis`, `portcullis serve --bind 127.0.0.1:8080`.
    """
    if (tls_cert is None) != (tls_key is None):
        die("--tls-cert and --tls-key go together")
    try:
        where = parse_bind(bind)
        tls = Tls(tls_cert, tls_key) if tls_cert is not None and tls_key is not None else None
        prepared = prepare(store, where, tls, max_body * MIB)
    except ServeError as exc:
        die(str(exc))
    if tls is None and not where.loopback:
        shout(
            f"portcullis serve: WARNING: plain HTTP on {where.host}, which is not a loopback address: tokens and "
            "reports cross the network readable by anyone on the path; give --tls-cert and --tls-key"
        )
    say(f"portcullis serve: listening on {where.url(tls is not None, prepared.port)}, store {prepared.store}")
    run_server(prepared)
