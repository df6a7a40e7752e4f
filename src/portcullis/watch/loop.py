"""The watcher: one thread follows the engine's events and hands each container or image to a small pool that
judges it at once (no debounce: a burst of fifty containers is fifty judgements, a few at a time).

A container is judged once per (id, start time): its create and its start are two judgements (a created container
has no start time yet), and a restart is a new one. When the stream opens (at start and after the daemon comes back)
the running and created containers are listed and judged too, so one started while the stream was down is not
missed, and one already judged is not judged again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests

from portcullis.collect import CollectionError
from portcullis.collect.audit import collect_context
from portcullis.collect.engine import EngineConnection, connect
from portcullis.collect.events import EngineEvent, EventStream
from portcullis.collect.subjects import current_containers, read_container, read_created_container, read_image_config
from portcullis.model.facts import ContainerFacts, Facts, ImageFacts
from portcullis.model.findings import Finding, Severity, Status, Summary
from portcullis.model.redaction import redact_line, redact_value
from portcullis.pipelines.errors import PipelineError
from portcullis.pipelines.watch import WatchRules, judge_container, judge_image_facts, judge_inside

log = logging.getLogger("portcullis.watch")
# A destroyed container is forgotten (what was judged of it), so a long watch does not grow with every container.
WATCHED = {"container": ("create", "start", "destroy"), "image": ("pull", "load", "import")}
RECONNECT_MOST = 30.0
SHOWN = (Status.FAIL, Status.ERROR)  # the statuses a finding line is written for, unless every status is asked for

T = TypeVar("T")
Emit = Callable[[list[dict[str, Any]]], None]  # one judgement's lines: its findings, then its summary


@dataclass(frozen=True)
class WatchOptions:
    host: str | None
    rules: WatchRules
    min_severity: Severity = Severity.INFO  # findings below it are neither written nor counted
    fail_on: Severity | None = None  # a summary says whether failures at or above it were found
    every_status: bool = False  # also a line for pass, skip, n/a and manual findings
    inside: bool = False  # also the inside rules over each started container's /proc
    image_content: bool = False  # read a pulled image's layers (the `image` pipeline), not only its configuration
    since: float | None = None  # Unix seconds: replay the engine's events from then on when first connecting
    workers: int = 8  # judging mostly waits on the engine (it locks a container while starting it)
    reconnect_first: float = 1.0  # seconds before the first reconnect attempt, doubled up to RECONNECT_MOST


def _iso(nanoseconds: int) -> str:
    return datetime.fromtimestamp(nanoseconds / 1e9, UTC).isoformat(timespec="microseconds")


def _redacted(finding: Finding) -> dict[str, Any]:
    clean = finding.model_copy(
        update={"message": redact_line(finding.message), "evidence": redact_value(finding.evidence)}
    )
    return clean.model_dump(mode="json", exclude_none=True)


class Watch(threading.Thread):
    def __init__(self, options: WatchOptions, emit: Emit) -> None:
        super().__init__(name="portcullis-watch-events", daemon=True)
        self.options = options
        self.emit = emit
        self.stopping = threading.Event()
        self.connected = threading.Event()  # set while a stream is open and its reconciliation queued
        self._pool = ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="portcullis-watch")
        self._lock = threading.Lock()
        self._judged: dict[str, set[str]] = {}  # container id -> start times judged; image id -> {"image"}
        self._context: Facts | None = None
        self._stream: EventStream | None = None
        self._local = threading.local()
        self._connections: list[EngineConnection] = []

    # --- the event thread -----------------------------------------------------------------------------------------

    def run(self) -> None:
        delay, lost, since = self.options.reconnect_first, False, self.options.since
        while not self.stopping.is_set():
            try:
                self._follow(since, lost)
                reason = "the stream ended (the daemon stopped?)"
            except (CollectionError, requests.exceptions.RequestException, OSError, ValueError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if self.connected.is_set():  # it had been following: a fresh loss, with the first delay again
                delay, lost, since = self.options.reconnect_first, False, None  # later gaps are reconciled instead
            self.connected.clear()
            self._close_stream()
            if self.stopping.is_set():
                return
            if not lost:
                log.warning("engine events lost: %s; reconnecting", reason)
                lost = True
            self.stopping.wait(delay)
            delay = min(delay * 2, RECONNECT_MOST)

    def _follow(self, since: float | None, lost: bool) -> None:
        # The stream opens before the containers are listed: whatever starts in between is in both, judged once.
        stream = EventStream(self.options.host, WATCHED, since=since)
        with self._lock:
            self._stream = stream
        if self.stopping.is_set():
            return
        conn = connect(self.options.host)
        try:
            self._context = collect_context(conn)  # again after a restart: the daemon's configuration may differ
            running = current_containers(conn)
        finally:
            conn.close()
        self.connected.set()
        log.info(
            "following %s%s; %d container(s) running or created",
            self._context.engine.endpoint,
            " again" if lost else "",
            len(running),
        )
        for container_id in running:
            self._submit(self._judge_container, container_id, None)
        for event in stream:
            if event.action == "destroy":
                self._forget(event.id)
            elif event.kind == "container":
                self._submit(self._judge_container, event.id, event)
            else:
                self._submit(self._judge_image, event.id, event)

    def _submit(self, job: Callable[[str, EngineEvent | None], None], subject: str, event: EngineEvent | None) -> None:
        if self.stopping.is_set():
            return
        future = self._pool.submit(job, subject, event)
        future.add_done_callback(self._report_crash)

    @staticmethod
    def _report_crash(future: Future[None]) -> None:
        if not future.cancelled() and (exc := future.exception()) is not None:
            log.error("judging failed: %s: %s", type(exc).__name__, exc)

    # --- the pool's jobs ------------------------------------------------------------------------------------------

    def _connection(self) -> EngineConnection:
        """This worker's own engine client (a requests session is not shared between threads)."""
        conn: EngineConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.options.host)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _forget_connection(self) -> None:
        """The engine went away: close this worker's client; its next job connects afresh."""
        conn: EngineConnection | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                self._connections.remove(conn)
            conn.close()

    def _read(self, what: Callable[[EngineConnection], T]) -> T:
        """`what` with this worker's engine client, and once more with a fresh one if that fails (a client from
        before a daemon restart may hold a dead connection); a second failure raises CollectionError."""
        try:
            return what(self._connection())
        except CollectionError:
            self._forget_connection()
            return what(self._connection())

    def _claim(self, subject_id: str, state: str) -> bool:
        with self._lock:
            seen = self._judged.setdefault(subject_id, set())
            if state in seen:
                return False
            seen.add(state)
            return True

    def _forget(self, container_id: str) -> None:
        with self._lock:
            self._judged.pop(container_id, None)

    def _judge_container(self, container_id: str, event: EngineEvent | None) -> None:
        context = self._context
        if context is None or self.stopping.is_set():
            return
        # At its create event a container's own files are read, where they can be: the engine holds the container's
        # lock while it starts it, and an inspect now would wait for the start.
        stored_in = (
            context.engine.info.docker_root_dir if event and event.action == "create" and context.engine.local else None
        )
        try:
            read = self._read(lambda conn: self._container_and_images(conn, container_id, stored_in))
        except CollectionError as exc:
            self._forget_connection()
            log.warning("container %s not judged: %s", container_id[:12], exc)
            return
        if read is None:
            return  # removed already
        container, images = read
        if not self._claim(container.id, container.state.started_at):
            return
        findings = judge_container(self.options.rules, context, container, images)
        problems: list[str] = []
        if self.options.inside and container.state.running:
            if not context.engine.local:
                problems.append("--inside reads the container's /proc: run watch on the engine's host")
            else:
                try:
                    findings += judge_inside(self.options.rules, container)
                except PipelineError as exc:
                    problems.append(str(exc))
        subject = {
            "kind": "container",
            "id": container.id,
            "name": container.short_name,
            "image": container.config.image,
            "state": container.state.status,  # a create event judged late sees the container running already
            "started_at": container.state.started_at,
        }
        self._emit(subject, event, findings, problems)

    @staticmethod
    def _container_and_images(
        conn: EngineConnection, container_id: str, stored_in: str | None
    ) -> tuple[ContainerFacts, list[ImageFacts]] | None:
        """The container, the image it runs and the one its tag names now (the freshness rule compares them); None
        when the container is gone. A container never started is read from the engine's files under `stored_in`
        when that directory is given and readable here, else inspected."""
        container = read_created_container(stored_in, container_id) if stored_in else None
        if container is None:
            container = read_container(conn, container_id)
        if container is None:
            return None
        images: dict[str, ImageFacts] = {}
        for reference in (container.image_id, container.config.image):
            image = read_image_config(conn, reference, history=False) if reference else None
            if image is not None:
                images[image.id] = image
        return container, list(images.values())

    def _judge_image(self, reference: str, event: EngineEvent | None) -> None:
        if self.stopping.is_set():
            return
        try:
            image = self._read(lambda conn: read_image_config(conn, reference))
        except CollectionError as exc:
            self._forget_connection()
            log.warning("image %s not judged: %s", reference, exc)
            return
        if image is None or not self._claim(image.id, "image"):
            return
        problems: list[str] = []
        if self.options.image_content:
            from portcullis.pipelines.image import ImageSource, read_image

            try:
                image = read_image(ImageSource(reference=f"engine:{image.id}", engine_host=self.options.host))
            except PipelineError as exc:
                problems.append(f"the image's layers were not read: {exc}")
        findings = judge_image_facts(self.options.rules, image)
        subject = {"kind": "image", "id": image.id, "name": image.display_name}
        self._emit(subject, event, findings, problems)

    # --- output ---------------------------------------------------------------------------------------------------

    def _emit(
        self, subject: dict[str, str], event: EngineEvent | None, findings: list[Finding], problems: list[str]
    ) -> None:
        kept = [f for f in findings if f.severity.rank >= self.options.min_severity.rank]
        shown = [f for f in kept if self.options.every_status or f.status in SHOWN]
        judged_ns = time.time_ns()
        timing: dict[str, Any] = {
            "event": f"{event.kind} {event.action}" if event else "reconcile",
            "event_time": _iso(event.time_nano) if event and event.time_nano else None,
            "judged_at": _iso(judged_ns),
            "latency_ms": round((judged_ns - event.time_nano) / 1e6, 1) if event and event.time_nano else None,
        }
        lines = [{"type": "finding", **timing, "subject": subject, "finding": _redacted(f)} for f in shown]
        summary = Summary.of(kept)
        failed = [f for f in kept if f.status is Status.FAIL]
        gate = self.options.fail_on
        lines.append(
            {
                "type": "summary",
                **timing,
                "subject": subject,
                "judged": len(kept),
                "by_status": {status.value: count for status, count in summary.by_status.items()},
                "failed_by_severity": {sev.value: count for sev, count in summary.failed_by_severity.items()},
                "failed_rules": sorted({f.rule_id for f in failed}),
                "tripped": None if gate is None else any(f.severity.rank >= gate.rank for f in failed),
                "problems": problems,
            }
        )
        self.emit(lines)

    # --- stopping -------------------------------------------------------------------------------------------------

    def _close_stream(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    def stop(self, wait: float = 10.0) -> None:
        """Stop following, drop what has not started judging, let the judgements under way finish."""
        self.stopping.set()
        self._close_stream()
        self.join(timeout=wait)
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
