"""`portcullis authz`: serve the Docker authorization plugin protocol; the plugin itself lives in portcullis.authz."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from portcullis.authz import AuthzError
from portcullis.authz.server import serve
from portcullis.cli.common import die, say

DEFAULT_SOCKET = Path("/run/docker/plugins/portcullis.sock")


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def authz(
    policy: Annotated[
        Path, typer.Option("--policy", dir_okay=False, help="the policy file (YAML): deny, log, exemptions")
    ],
    socket: Annotated[
        Path,
        typer.Option(
            "--socket", dir_okay=False, help="where to listen; dockerd finds NAME.sock in /run/docker/plugins"
        ),
    ] = DEFAULT_SOCKET,
    engine: Annotated[
        Path | None,
        typer.Option(
            "--engine",
            dir_okay=False,
            help="the API socket of the dockerd this plugin guards: an exec or create that leaves the user unset "
            "is judged by the container's or image's user, read from it (2 s timeout, denies when unreadable)",
        ),
    ] = None,
) -> None:
    """Serve a Docker authorization plugin that judges container create, exec and update requests with the audit's
    section-5 rules under --policy, and fails closed.

    Start dockerd with `--authorization-plugin=NAME` where the socket is /run/docker/plugins/NAME.sock. Denied and
    logged requests are written to stderr as JSON lines.
    """
    try:
        serve(
            socket,
            policy,
            _log,
            ready=lambda: say(f"portcullis authz: listening on {socket} with policy {policy}"),
            engine_socket=engine,
        )
    except AuthzError as exc:
        die(str(exc))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
