"""`portcullis token add|list|revoke`: who may push to and read from the fleet service (`portcullis serve`)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from portcullis.cli.common import StoreOption, die, say
from portcullis.service.tokens import Role, TokenError, issue, listing
from portcullis.service.tokens import revoke as revoke_token
from portcullis.store import Store, StoreError, open_store

app = typer.Typer(
    name="token",
    help="Tokens of the fleet service: agents push with theirs, readers read with theirs; only hashes are stored.",
    no_args_is_help=True,
)


def _open(location: str | None) -> Store:
    try:
        return open_store(location)
    except StoreError as exc:
        die(str(exc))


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="the agent's name (it pushes as this name), or the reader's")],
    role: Annotated[Role, typer.Option("--role", help="agent: push reports; reader: read the fleet")],
    store: StoreOption = None,
) -> None:
    """Make a token and print it once on stdout: it cannot be shown again, only revoked.

    Example: `portcullis token add web-01 --role agent`."""
    opened = _open(store)
    try:
        text = issue(opened, name, role)
    except TokenError as exc:
        die(str(exc))
    finally:
        opened.close()
    say(f"token for {role.value} {name}; store it now, it is not kept anywhere in readable form")
    typer.echo(text)


@app.command("list")
def list_tokens(
    as_json: Annotated[bool, typer.Option("--json", help="a JSON list instead of a table")] = False,
    store: StoreOption = None,
) -> None:
    """List the tokens: id, name, role, when made, when revoked. Never the tokens themselves."""
    opened = _open(store)
    try:
        found = listing(opened)
    except TokenError as exc:
        die(str(exc))
    finally:
        opened.close()
    rows = [
        {"id": t.token_id, "name": t.name, "role": t.role, "created_at": t.created_at, "revoked_at": t.revoked_at}
        for t in found
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "live"
        typer.echo(f"{row['id']}  {row['name']:<24} {row['role']:<7} {row['created_at']}  {state}")
    if not rows:
        typer.echo("no tokens")


@app.command()
def revoke(
    name: Annotated[str, typer.Argument(help="whose live tokens to revoke")],
    store: StoreOption = None,
) -> None:
    """Revoke every live token of NAME; a running server refuses them from its next request."""
    opened = _open(store)
    try:
        count = revoke_token(opened, name)
    except TokenError as exc:
        die(str(exc))
    finally:
        opened.close()
    say(f"revoked {count} token(s) of {name}")
