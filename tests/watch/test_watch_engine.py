"""`portcullis watch` on the real engine: a container started with dangerous options is reported within a second
with the rules it breaks, a hardened one with none; a signed webhook reaches a real receiver; SIGTERM and Ctrl-C end
it with 0; bad input is one line."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from support.containers import ContainerFactory, wait_until

pytestmark = pytest.mark.engine
SRC = str(Path(__file__).resolve().parents[2] / "src")
# Root, SYS_ADMIN and the engine's socket: each breaks its own rule.
DANGEROUS = {"cap_add": ["SYS_ADMIN"], "volumes": {"/var/run/docker.sock": {"bind": "/var/run/docker.sock"}}}
DANGEROUS_RULES = {"CIS-5.4", "CIS-5.32", "DKR-RT-001"}
HARDENED: dict[str, Any] = {
    "read_only": True,
    "mem_limit": "64m",
    "cpu_shares": 512,
    "pids_limit": 64,
    "network_mode": "none",
    "user": "1000:1000",
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
    "healthcheck": {"test": ["CMD", "true"], "interval": 1_000_000_000},
    "restart_policy": {"Name": "on-failure", "MaximumRetryCount": 3},
}


class Watcher:
    """`portcullis watch ARGS` in a subprocess; its stdout lines parsed as they come."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.out, self.err = tmp / "watch.jsonl", tmp / "watch.log"
        env = {**os.environ, "PYTHONPATH": SRC}
        with self.out.open("w") as out, self.err.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "portcullis", "watch", *args], stdout=out, stderr=err, env=env
            )
        wait_until(lambda: "following" in self.log() or self.process.poll() is not None, 60, "the watcher to follow")
        assert self.process.poll() is None, self.log()

    def log(self) -> str:
        return self.err.read_text()

    def lines(self) -> list[dict[str, Any]]:
        text = self.out.read_text()
        complete = text[: text.rfind("\n") + 1]  # a line being written is read next time
        return [json.loads(line) for line in complete.splitlines()]

    def about(self, container_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        return [
            line
            for line in self.lines()
            if line["subject"]["id"] == container_id and (kind is None or line["type"] == kind)
        ]

    def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=20)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


def _started(watcher: Watcher, container_id: str) -> dict[str, Any]:
    """The summary of the judgement that saw the container running."""
    wait_until(
        lambda: any(s["subject"]["state"] == "running" for s in watcher.about(container_id, "summary")),
        10,
        "the started container's judgement",
    )
    return next(s for s in watcher.about(container_id, "summary") if s["subject"]["state"] == "running")


def _created(watcher: Watcher, container_id: str) -> dict[str, Any] | None:
    """The summary of the judgement that saw the container created and not yet started, if there is one."""
    return next((s for s in watcher.about(container_id, "summary") if s["subject"]["state"] == "created"), None)


def test_a_dangerous_container_is_reported_within_a_second_and_a_hardened_one_is_clean(
    tmp_path: Path, containers: ContainerFactory
) -> None:
    watcher = Watcher(tmp_path, "--inside", "--fail-on", "critical", "--min-severity", "medium")
    try:
        dangerous = containers.run("dangerous", **DANGEROUS)
        hardened = containers.run("hardened", **HARDENED)
        summary = _started(watcher, dangerous.id)
        assert set(summary["failed_rules"]) >= DANGEROUS_RULES, summary
        assert any(rule.startswith("DKR-IN-") for rule in summary["failed_rules"]), summary  # --inside judged it
        findings = watcher.about(dangerous.id, "finding")
        assert {line["finding"]["rule_id"] for line in findings} >= DANGEROUS_RULES
        assert summary["tripped"] is True  # CIS-5.32, the engine's socket, is critical
        assert set(summary["failed_by_severity"]) <= {"medium", "high", "critical"}
        for line in findings:
            assert line["finding"]["severity"] in ("medium", "high", "critical")  # --min-severity medium
            assert line["finding"]["target"]["id"] == dangerous.id
            assert line["finding"]["status"] in ("fail", "error")
            assert 0 <= line["latency_ms"] < 1000, line  # the engine's event time to the line written
        # Its create was judged too, from the engine's files rather than an inspect that waits for the start.
        wait_until(lambda: _created(watcher, dangerous.id) is not None, 10, "the create event's judgement")
        at_create = _created(watcher, dangerous.id)
        assert at_create is not None and at_create["event"] == "container create", at_create
        assert set(at_create["failed_rules"]) >= DANGEROUS_RULES, at_create
        assert 0 <= at_create["latency_ms"] < 1000, at_create
        clean = _started(watcher, hardened.id)
        assert clean["failed_rules"] == [] and clean["judged"] > 10 and clean["tripped"] is False, clean
        assert all(s["failed_rules"] == [] for s in watcher.about(hardened.id, "summary"))
        assert watcher.about(hardened.id, "finding") == []
        latencies = sorted(
            line["latency_ms"] for line in watcher.lines() if line["type"] == "summary" and line["latency_ms"]
        )
        print(f"event -> summary latency: {latencies}")
    finally:
        code = watcher.stop(signal.SIGTERM)
    assert code == 0, watcher.log()
    assert "Traceback" not in watcher.log()


Received = list[tuple[dict[str, str], bytes]]


@pytest.fixture
def receiver() -> Iterator[tuple[str, Received]]:
    """A real HTTP receiver on a free port: every POST's headers (lower-case names) and body; the first is answered
    503 (so it must be retried), the rest 204."""
    got: Received = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(503 if len(got) == 1 else 204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    finally:
        server.shutdown()
        server.server_close()


def test_the_webhook_gets_each_judgement_with_findings_signed(
    tmp_path: Path, containers: ContainerFactory, receiver: tuple[str, Received]
) -> None:
    url, got = receiver
    secret = b"watch-test-secret-" + os.urandom(8).hex().encode()
    (tmp_path / "secret").write_bytes(secret + b"\n")
    watcher = Watcher(tmp_path, "--webhook", url, "--webhook-secret-file", str(tmp_path / "secret"), "--no-stdout")
    try:
        dangerous = containers.run("hooked", **DANGEROUS)

        def posted() -> list[dict[str, Any]]:
            documents = [json.loads(body) for _, body in got]
            return [d for d in documents if d["summary"]["subject"]["id"] == dangerous.id]

        wait_until(lambda: any(d["summary"]["subject"]["state"] == "running" for d in posted()), 10, "the webhook")
        for headers, body in got:
            stamp = headers["x-portcullis-timestamp"]
            expected = "sha256=" + hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(headers["x-portcullis-signature"], expected)
            assert abs(time.time() - int(stamp)) < 60
            assert headers["content-type"] == "application/json"
        delivered = posted()[0]
        assert set(delivered["summary"]["failed_rules"]) >= DANGEROUS_RULES
        assert {line["finding"]["rule_id"] for line in delivered["findings"]} >= DANGEROUS_RULES
        deliveries = [headers["x-portcullis-delivery"] for headers, _ in got]
        assert deliveries[1] == deliveries[0]  # the refused first delivery was retried, under the same id
        assert len(set(deliveries)) == len(deliveries) - 1  # and nothing else was sent twice
        assert watcher.out.read_text() == ""  # --no-stdout
        assert secret.decode() not in watcher.log()
    finally:
        code = watcher.stop(signal.SIGINT)  # Ctrl-C
    assert code == 0, watcher.log()


def _watch(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run(
        [sys.executable, "-m", "portcullis", "watch", *args], capture_output=True, text=True, env=env, timeout=60
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--webhook", "http://127.0.0.1:9/x"], "--webhook and --webhook-secret-file go together"),
        (["--no-stdout"], "--no-stdout needs --webhook"),
        (["--select", "CIS-9.99"], "--select 'CIS-9.99' matches no rule `watch` runs"),
        (["--host", "unix:///nonexistent/docker.sock"], "no Docker engine answers at unix:///nonexistent/docker.sock"),
    ],
)
def test_bad_input_is_one_line(args: list[str], said: str) -> None:
    done = _watch(*args)
    assert done.returncode == 1
    assert said in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stdout == ""


def test_an_empty_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("\n")
    done = _watch("--webhook", "http://127.0.0.1:9/x", "--webhook-secret-file", str(tmp_path / "secret"))
    assert done.returncode == 1 and "is empty" in done.stderr


def test_help_shows_the_example() -> None:
    done = _watch("--help")
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout and "--webhook-secret-file" in done.stdout and "Example:" in done.stdout


def test_a_closed_stdout_ends_the_watch_with_one_line(containers: ContainerFactory) -> None:
    containers.run("already-running")  # the reconciliation at start writes its judgement at once
    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "portcullis", "watch"],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": SRC},
            timeout=60,
        )
    finally:
        os.close(writer)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == "portcullis: error: cannot write to stdout: Broken pipe"
    assert "Traceback" not in done.stderr
