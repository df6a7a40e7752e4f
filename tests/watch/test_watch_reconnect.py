"""The watcher on a private dockerd: an image loaded or pulled is judged with the image rules (its layers too with
--image-content); when the daemon restarts, a container started before the watcher follows again is judged by the
reconciliation, once; and the new stream's events are followed."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from portcullis.harden.trial_daemon import TrialDaemon, missing_requirement
from portcullis.pipelines.audit import choose_benchmark
from portcullis.pipelines.watch import watch_rules
from portcullis.watch.loop import Watch, WatchOptions
from support.containers import BUSYBOX, TEST_LABEL, wait_until

pytestmark = pytest.mark.engine
REGISTRY = "127.0.0.1:5000"  # scripts/start-test-registry.sh; 127.0.0.0/8 needs no TLS
PULLED = f"{REGISTRY}/portcullis-test/hardened:1"  # runs as a user, unlike busybox
RECONNECT_FIRST = 8.0  # long enough that the test starts its container while the watcher is still away


class Collected:
    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, lines: list[dict[str, Any]]) -> None:
        with self._lock:
            self.lines.extend(lines)

    def summaries(self, subject_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [s for s in self.lines if s["type"] == "summary" and s["subject"]["id"] == subject_id]

    def image_summaries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [s for s in self.lines if s["type"] == "summary" and s["subject"]["kind"] == "image"]


@pytest.fixture(scope="module")
def engine() -> Iterator[TrialDaemon]:
    missing = missing_requirement()
    if missing:
        pytest.skip(missing)
    running = TrialDaemon({})
    try:
        running.start()
        yield running
    finally:
        running.stop()


def _docker(engine: TrialDaemon, *args: str) -> str:
    done = subprocess.run(["docker", "-H", engine.host, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _answers(engine: TrialDaemon) -> bool:
    return subprocess.run(["docker", "-H", engine.host, "version"], capture_output=True, timeout=30).returncode == 0


def _run(engine: TrialDaemon, name: str) -> str:
    return _docker(engine, "run", "-d", "--name", name, "--label", f"{TEST_LABEL}=1", BUSYBOX, "sleep", "600")


def test_images_and_a_restart_of_the_daemon(engine: TrialDaemon) -> None:
    collected = Collected()
    rules = watch_rules([], [], None, choose_benchmark(None))
    watch = Watch(WatchOptions(host=engine.host, rules=rules, reconnect_first=RECONNECT_FIRST), collected)
    names = [f"pc-watch-{role}-{os.getpid()}" for role in ("away", "back")]
    watch.start()
    try:
        wait_until(watch.connected.is_set, 30, "the watcher to follow the private engine")
        saved = subprocess.Popen(["docker", "save", BUSYBOX], stdout=subprocess.PIPE)
        subprocess.run(["docker", "-H", engine.host, "load", "-q"], stdin=saved.stdout, check=True, timeout=120)
        assert saved.wait(timeout=60) == 0
        wait_until(lambda: collected.image_summaries(), 10, "the loaded image's judgement")
        image = collected.image_summaries()[0]
        assert image["event"] == "image load" and image["latency_ms"] < 1000
        assert image["subject"]["id"] == _docker(engine, "image", "inspect", "-f", "{{.Id}}", BUSYBOX)
        assert image["judged"] > 5 and "CIS-4.1" in image["failed_rules"]  # busybox runs as root

        assert engine.process is not None
        engine.process.send_signal(signal.SIGTERM)  # the daemon goes away...
        engine.process.wait(timeout=60)
        wait_until(lambda: not watch.connected.is_set(), 30, "the watcher to notice")
        lost_at = time.monotonic()
        with engine.log_path.open("ab") as daemon_log:  # ...and comes back with the same configuration
            engine.process = subprocess.Popen(
                engine.argv(), stdout=daemon_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        wait_until(lambda: _answers(engine), 60, "the daemon to answer again")
        away = _run(engine, names[0])
        assert not watch.connected.is_set(), f"the watcher came back {time.monotonic() - lost_at:.1f} s after the loss"
        wait_until(watch.connected.is_set, 60, "the watcher to follow again")
        wait_until(lambda: collected.summaries(away), 15, "the reconciliation")
        judged = collected.summaries(away)
        assert judged[0]["event"] == "reconcile" and judged[0]["latency_ms"] is None
        assert judged[0]["subject"]["state"] == "running" and "DKR-RT-001" in judged[0]["failed_rules"]

        back = _run(engine, names[1])  # the new stream's events are followed
        wait_until(lambda: any(s["subject"]["state"] == "running" for s in collected.summaries(back)), 10, "an event")
        assert {s["event"] for s in collected.summaries(back)} <= {"container create", "container start"}
        time.sleep(1)
        assert len(collected.summaries(away)) == 1  # judged once, though it is in the list and was never an event
    finally:
        watch.stop()
        subprocess.run(["docker", "-H", engine.host, "rm", "-f", *names], capture_output=True, timeout=60)


def _registry_up() -> bool:
    try:
        return requests.get(f"http://{REGISTRY}/v2/", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.skipif(not _registry_up(), reason="run scripts/start-test-registry.sh first")
@pytest.mark.parametrize("content", [False, True], ids=["config", "content"])
def test_a_pulled_image_is_judged(engine: TrialDaemon, content: bool) -> None:
    collected = Collected()
    rules = watch_rules([], [], None, choose_benchmark(None))
    watch = Watch(WatchOptions(host=engine.host, rules=rules, image_content=content), collected)
    watch.start()
    try:
        wait_until(watch.connected.is_set, 30, "the watcher to follow the private engine")
        _docker(engine, "pull", "-q", PULLED)
        wait_until(lambda: collected.image_summaries(), 30, "the pulled image's judgement")
        judged = collected.image_summaries()[0]
        assert judged["event"] == "image pull" and judged["subject"]["name"] == PULLED
        assert judged["latency_ms"] < 1000 and judged["problems"] == []
        assert judged["failed_rules"] == [] and judged["by_status"]["pass"] > 5  # a user, no setuid files, no secrets
        skipped = judged["by_status"].get("skip", 0)
        # the content rules (files, secrets, packages) skip on a configuration alone and judge once layers are read
        assert skipped <= 1 if content else skipped >= 5, judged["by_status"]
    finally:
        watch.stop()
        subprocess.run(["docker", "-H", engine.host, "rmi", "-f", PULLED], capture_output=True, timeout=60)
