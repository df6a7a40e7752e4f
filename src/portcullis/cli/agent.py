"""`portcullis agent`: audit this engine and its images on an interval and on engine events, and push the reports to
the fleet service through a durable spool."""

from __future__ import annotations

import logging
import signal
import socket
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated

import platformdirs
import typer

from portcullis.agent.delivery import Server
from portcullis.agent.rounds import RoundOptions
from portcullis.agent.runner import Agent, AgentOptions
from portcullis.agent.spool import Spool, SpoolError
from portcullis.cli.cache import CacheDirOption, CacheMaxSizeOption
from portcullis.cli.common import (
    TLSCACertOption,
    TLSCertOption,
    TLSKeyOption,
    TLSVerifyOption,
    die,
    is_quiet,
    say,
    use_engine_tls,
)
from portcullis.cli.conventions import parse_duration
from portcullis.pipelines.cache import DEFAULT_CACHE_MAX_BYTES
from portcullis.pipelines.errors import PipelineError
from portcullis.pipelines.trust import load_trust_policy
from portcullis.service.tokens import NAME_PATTERN


def read_token(token: str | None, token_file: Path | None, name: str) -> str:
    """--token, else --token-file: one token, or lines `NAME TOKEN` (one secret serving many agents, each taking the
    line of its own name)."""
    if token:
        return token.strip()
    if token_file is None:
        die("give the agent's token: --token, --token-file or PORTCULLIS_TOKEN")
    try:
        lines = [line.split() for line in token_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as exc:
        die(f"--token-file {token_file}: {exc.strerror or exc}")
    if len(lines) == 1 and len(lines[0]) == 1:
        return lines[0][0]
    if any(len(line) != 2 for line in lines):
        die(f"--token-file {token_file}: give one token, or one `NAME TOKEN` line per agent")
    mine = [line[1] for line in lines if line[0] == name]
    if not mine:
        die(f"--token-file {token_file} has no line for agent {name} (--name)")
    return mine[0]


def agent(
    server: Annotated[
        str, typer.Option("--server", metavar="URL", help="the fleet service: https://fleet.example:8443")
    ],
    token: Annotated[
        str | None, typer.Option("--token", help="this agent's token (`portcullis token add NAME --role agent`)")
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file", dir_okay=False, help="read the token from this file (one token, or `NAME TOKEN` lines)"
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="the name the token was issued to (default: this host's name)")
    ] = None,
    ca_bundle: Annotated[
        Path | None, typer.Option("--ca-bundle", dir_okay=False, help="PEM CA certificates to verify the server with")
    ] = None,
    host: Annotated[str | None, typer.Option("--host", "-H", help="the engine to audit (as docker -H)")] = None,
    tlsverify: TLSVerifyOption = False,
    tlscacert: TLSCACertOption = None,
    tlscert: TLSCertOption = None,
    tlskey: TLSKeyOption = None,
    engine_name: Annotated[
        str | None, typer.Option("--engine-name", help="the engine's name in the fleet (default: the daemon's own)")
    ] = None,
    interval: Annotated[
        str, typer.Option("--interval", metavar="DURATION", help="time between rounds: 900, 15m, 1h")
    ] = "1h",
    events: Annotated[
        bool, typer.Option("--events/--no-events", help="also a round soon after a container starts or an image lands")
    ] = True,
    images: Annotated[
        bool, typer.Option("--images/--no-images", help="read every image on the engine in each round")
    ] = True,
    no_vulns: Annotated[
        bool, typer.Option("--no-vulns", help="do not match image packages against advisories")
    ] = False,
    db: Annotated[Path | None, typer.Option("--db", help="vulnerability database (default: the user cache)")] = None,
    cache_dir: CacheDirOption = None,
    cache_max_size: CacheMaxSizeOption = DEFAULT_CACHE_MAX_BYTES,
    spool_dir: Annotated[
        Path | None,
        typer.Option(
            "--spool-dir", file_okay=False, help="where reports wait for the server (default: user state dir)"
        ),
    ] = None,
    spool_max: Annotated[
        int, typer.Option("--spool-max", min=1, help="most reports kept while the server is away; the oldest go first")
    ] = 1000,
    once: Annotated[bool, typer.Option("--once", help="one round and one delivery, then exit (cron, tests)")] = False,
    trust_policy: Annotated[
        Path | None,
        typer.Option(
            "--trust-policy",
            metavar="FILE",
            help="CIS-4.12 verifies the cosign signatures of running containers' images against this policy",
        ),
    ] = None,
    verify_key: Annotated[
        list[Path] | None,
        typer.Option("--verify-key", metavar="KEY.pub", help="a cosign public key trusted for every repository"),
    ] = None,
) -> None:
    """Audit this engine and its images on an interval and on engine events, and push the reports to the fleet
    service (`portcullis serve`). Every report is written to the spool before it is sent and deleted only once the
    server has stored it: a server that is away gets them later, in order, each once.

    Exit: with --once, 0 when the round ran and the spool is empty, 1 otherwise (what remains is delivered next
    time); without it the agent runs until SIGTERM or Ctrl-C. Example: `portcullis agent --server
    https://fleet:8443 --token-file /run/secrets/agent_token --ca-bundle ca.pem --interval 15m`.
    """
    agent_name = name or socket.gethostname().split(".")[0]
    if not NAME_PATTERN.fullmatch(agent_name):
        die(f"--name {agent_name!r}: letters, digits, '.', '_', '-', at most 64, a letter or digit first")
    if not server.startswith(("http://", "https://")):
        die(f"--server {server!r}: give the service's URL, http(s)://HOST:PORT")
    secret = read_token(token, token_file, agent_name)
    seconds = parse_duration(interval)
    use_engine_tls(tlsverify, tlscacert, tlscert, tlskey)
    if ca_bundle is not None and not ca_bundle.is_file():
        die(f"--ca-bundle {ca_bundle} is not a file")
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING if is_quiet() else logging.INFO,
        format="%(asctime)s portcullis agent: %(message)s",
    )
    try:
        trust = load_trust_policy(trust_policy, verify_key or [])
    except PipelineError as exc:
        die(str(exc))
    try:
        spool = Spool(spool_dir or Path(platformdirs.user_state_dir("portcullis")) / "spool", spool_max)
    except SpoolError as exc:
        die(str(exc))
    options = RoundOptions(
        agent=agent_name,
        host=host,
        engine_name=engine_name,
        images=images,
        vulns=not no_vulns,
        db=db,
        cache_dir=cache_dir,
        trust=trust,
        cache_max_bytes=cache_max_size,
    )
    delivery = Server(server, secret, ca_bundle)
    runner = Agent(AgentOptions(options, float(seconds), events=events and not once), spool, delivery)

    def stop(signum: int, frame: FrameType | None) -> None:
        runner.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        if once:
            audited, result = runner.once()
            if not audited or result.left or result.held:
                die(
                    f"{'the round failed; ' if not audited else ''}{result.left} reports wait in {spool.directory}"
                    f"{f', {result.held} held' if result.held else ''}: {result.stopped_by or 'see above'}"
                )
            return
        say(f"portcullis agent: {agent_name} pushing to {server} every {interval}, spool {spool.directory}")
        runner.run()
    except SpoolError as exc:
        die(str(exc))
    finally:
        delivery.close()
