"""`portcullis watch`: judge every container as it is created or started, and every image as it arrives, on the
engine's events; JSON lines on stdout and/or a signed webhook."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from portcullis.cli.common import (
    FailOn,
    TLSCACertOption,
    TLSCertOption,
    TLSKeyOption,
    TLSVerifyOption,
    die,
    is_quiet,
    listed,
    say,
    use_engine_tls,
)
from portcullis.cli.conventions import parse_duration
from portcullis.model.findings import Severity
from portcullis.pipelines.audit import choose_benchmark
from portcullis.pipelines.errors import PipelineError
from portcullis.pipelines.watch import watch_rules


def _read_secret(path: Path) -> bytes:
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        die(f"--webhook-secret-file {path}: {exc.strerror or exc}")
    if not secret:
        die(f"--webhook-secret-file {path} is empty")
    return secret


def watch(
    host: Annotated[
        str | None, typer.Option("--host", "-H", help="engine address (default: DOCKER_HOST, the context, the socket)")
    ] = None,
    tlsverify: TLSVerifyOption = False,
    tlscacert: TLSCACertOption = None,
    tlscert: TLSCertOption = None,
    tlskey: TLSKeyOption = None,
    select: Annotated[list[str] | None, typer.Option("--select", help="only these rule ids or prefixes")] = None,
    skip: Annotated[list[str] | None, typer.Option("--skip", help="leave out these rule ids or prefixes")] = None,
    level: Annotated[int | None, typer.Option("--level", min=1, max=2, help="1: level-1 controls only")] = None,
    min_severity: Annotated[
        Severity, typer.Option("--min-severity", help="neither write nor count findings below this severity")
    ] = Severity.INFO,
    fail_on: Annotated[
        FailOn | None,
        typer.Option("--fail-on", help="each summary line says whether failures at or above this severity were found"),
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--show-all", "-a", help="a line for every finding, not only fail and error")
    ] = False,
    inside: Annotated[
        bool, typer.Option("--inside", help="also judge each started container from its /proc, as `inside -c` does")
    ] = False,
    image_content: Annotated[
        bool, typer.Option("--image-content", help="read an arriving image's layers too, not only its configuration")
    ] = False,
    since: Annotated[
        str | None, typer.Option("--since", metavar="DURATION", help="first replay the engine's events of the last 10m")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=32, help="containers judged at once")] = 8,
    webhook: Annotated[
        str | None, typer.Option("--webhook", metavar="URL", help="also POST each judgement with findings here")
    ] = None,
    webhook_secret_file: Annotated[
        Path | None,
        typer.Option("--webhook-secret-file", dir_okay=False, help="the webhook's shared HMAC-SHA256 secret"),
    ] = None,
    stdout: Annotated[bool, typer.Option("--stdout/--no-stdout", help="write the JSON lines on stdout")] = True,
) -> None:
    """Judge each container when it is created and when it starts (the audit's container rules, and with --inside
    what it can reach), and each pulled, loaded or imported image (the image rules), within a second of the event.

    One JSON line per finding, then a summary line per container or image, each with the event's time, the time
    judged and the latency; with --webhook each judgement that has findings is also POSTed, signed like `serve`'s
    notifications. On start and whenever the engine comes back, what runs is listed and judged, each container once
    per start. Runs until SIGTERM or Ctrl-C (exit 0); exit 1 when the engine cannot be reached at start or stdout
    cannot be written.
    Example: `portcullis watch --fail-on high --webhook https://hooks.example/portcullis --webhook-secret-file s`.
    """
    from portcullis.collect import CollectionError
    from portcullis.collect.engine import connect
    from portcullis.watch.loop import Watch, WatchOptions
    from portcullis.watch.webhook import WebhookSender, WebhookTarget

    use_engine_tls(tlsverify, tlscacert, tlscert, tlskey)
    if (webhook is None) != (webhook_secret_file is None):
        die("--webhook and --webhook-secret-file go together")
    if webhook is not None and not webhook.startswith(("http://", "https://")):
        die(f"--webhook {webhook!r}: give the receiver's URL, http(s)://HOST/PATH")
    if not stdout and webhook is None:
        die("--no-stdout needs --webhook: the findings would go nowhere")
    secret = _read_secret(webhook_secret_file) if webhook_secret_file is not None else b""
    since_at = time.time() - parse_duration(since) if since else None
    try:
        rules = watch_rules(listed(select), listed(skip), level, choose_benchmark(None))
    except PipelineError as exc:
        die(str(exc))
    try:
        connect(host).close()  # an engine that is not there at start is a clear error, not a silent retry loop
    except CollectionError as exc:
        die(str(exc))
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING if is_quiet() else logging.INFO,
        format="%(asctime)s portcullis watch: %(message)s",
    )

    sender = WebhookSender(WebhookTarget(webhook, secret)) if webhook is not None else None
    stdout_lock = threading.Lock()
    stopping = threading.Event()
    lost: list[OSError] = []  # stdout failed (a closed pipe, a full disk): the watch ends with that error

    def emit(lines: list[dict[str, Any]]) -> None:
        if stdout:
            text = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
            with stdout_lock:
                if lost:
                    return
                try:
                    sys.stdout.write(text)
                    sys.stdout.flush()
                except OSError as exc:
                    lost.append(exc)
                    stopping.set()
        if sender is not None and len(lines) > 1:  # the summary is last; only judgements with findings are posted
            sender.send({"findings": lines[:-1], "summary": lines[-1]})

    options = WatchOptions(
        host=host,
        rules=rules,
        min_severity=min_severity,
        fail_on=Severity(fail_on.value) if fail_on not in (None, FailOn.none) else None,
        every_status=show_all,
        inside=inside,
        image_content=image_content,
        since=since_at,
        workers=workers,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    watcher = Watch(options, emit)
    if sender is not None:
        sender.start()
    watcher.start()
    say(f"portcullis watch: judging containers and images as they appear{', posting to the webhook' if sender else ''}")
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        watcher.stop()
        if sender is not None:
            sender.stop()
    if lost:
        raise lost[0]  # the CLI's entry point says it in one line, exit 1, as for every command
    say("portcullis watch: stopped")
