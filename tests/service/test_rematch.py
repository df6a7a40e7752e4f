"""Re-match and notify, end to end on SQLite and PostgreSQL: a real `portcullis serve` over a vulnerability database
built from the real Debian tracker records, a real image read from the engine and a real container of it, the real
audit facts of the engine, and a real HTTP receiver. An older database (two advisories held back) is in place when the
agent pushes; `portcullis db import` of the full records makes the service re-match by itself, and exactly the two
new matches of the deployed image are notified, once, signed; the image no container runs is not."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from portcullis.model.findings import Report
from portcullis.pipelines.audit import audit_report, gather_facts
from portcullis.pipelines.image import ImageSource, judge_image, read_image
from portcullis.pipelines.rematch import deployed_containers, image_inventory
from portcullis.pipelines.vulnerabilities import VulnOptions
from portcullis.service.tokens import Role
from support.fleet_service import Service, start_server, stop_server
from support.postgres import BACKENDS, fresh_store

pytestmark = pytest.mark.engine

TRACKER = Path(__file__).parents[1] / "vuln" / "data" / "debian-tracker-converted.json"
HELD_BACK = {("expat", "CVE-2024-8176"), ("curl", "CVE-2025-0167")}  # what the older database does not know yet
OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'
# installed: curl 7.88.1-10+deb12u5 (CVE-2024-2398 fixed in u6, CVE-2025-0167 and CVE-2023-38545 open in bookworm)
# and libexpat1 2.5.0-1+deb12u1 (CVE-2023-52425 and CVE-2024-8176 fixed in u2)
PACKAGES = [("curl", "curl", "7.88.1-10+deb12u5"), ("libexpat1", "expat", "2.5.0-1+deb12u1")]
EXPECTED_NEW = [("CVE-2024-8176", "libexpat1"), ("CVE-2025-0167", "curl")]
SECRET = b"a shared secret of more than sixteen bytes"


def _stanza(binary: str, source: str, version: str) -> str:
    return (
        f"Package: {binary}\nStatus: install ok installed\nPriority: optional\nSection: libs\nInstalled-Size: 100\n"
        f"Maintainer: Debian <debian@example.invalid>\nArchitecture: amd64\nSource: {source}\nVersion: {version}\n"
        "Description: a package of the re-match test\n"
    )


def _build(directory: Path, name: str, packages: list[tuple[str, str, str]]) -> None:
    directory.mkdir()
    (directory / "os-release").write_text(OS_RELEASE)
    (directory / "status").write_text("\n".join(_stanza(*p) for p in packages))
    (directory / "Dockerfile").write_text(
        "FROM portcullis-test/busybox:1\nCOPY os-release /etc/os-release\nCOPY status /var/lib/dpkg/status\n"
        "LABEL portcullis.test=1\n"
    )
    subprocess.run(
        ["docker", "build", "-q", "-t", name, str(directory)],
        check=True,
        capture_output=True,
        env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin"},
    )


@dataclass
class Deployment:
    deployed: str  # image with a running container
    idle: str  # image with none
    container: str  # the running container's id


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tag = uuid.uuid4().hex[:8]
    deployed, idle = f"portcullis-test/rematch-web-{tag}:1", f"portcullis-test/rematch-idle-{tag}:1"
    container = ""
    try:
        _build(tmp_path_factory.mktemp("rematch") / "web", deployed, PACKAGES)
        _build(tmp_path_factory.mktemp("rematch") / "idle", idle, PACKAGES[1:])
        container = subprocess.run(
            ["docker", "run", "-d", "--label", "portcullis.test=1", "--network", "none", deployed, "sleep", "600"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        yield Deployment(deployed, idle, container)
    finally:
        if container:
            subprocess.run(["docker", "rm", "-f", container], check=False, capture_output=True)
        subprocess.run(["docker", "rmi", "-f", deployed, idle], check=False, capture_output=True)


def _tracker(path: Path, held_back: set[tuple[str, str]]) -> Path:
    records: dict[str, dict[str, Any]] = json.loads(TRACKER.read_text())
    for source, cve in held_back:
        del records[source][cve]
    path.write_text(json.dumps(records))
    return path


def _db_import(feed: Path, db: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "portcullis", "db", "import", str(feed), "--db", str(db), "--replace", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


@dataclass
class Receiver:
    """A webhook receiver that refuses its first delivery (500), to be retried, and takes the rest."""

    url: str = ""
    calls: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def taken(self) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return [(headers, body) for status, headers, body in self.calls if status == 200]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with got.lock:
                status = 500 if not got.calls else 200
                got.calls.append((status, dict(self.headers.items()), body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    got.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()


def _scan(reference: str, db: Path, packages: int) -> tuple[Report, dict[str, Any]]:
    """What an agent sends for one image: its report, and the inventory its scan read."""
    facts = read_image(ImageSource(f"engine:{reference}", cache=False))
    report = judge_image(reference, facts, (), (), VulnOptions(db_path=db, max_age_days=0))
    inventory = image_inventory(reference, facts)
    assert inventory is not None and len(inventory.packages) == packages
    loaded: dict[str, Any] = json.loads(inventory.model_dump_json())
    return report, loaded


def _verified(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    timestamp = headers["X-Portcullis-Timestamp"]
    assert abs(time.time() - int(timestamp)) < 300
    expected = "sha256=" + hmac.new(SECRET, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Portcullis-Signature"], expected)
    loaded: dict[str, Any] = json.loads(body)
    return loaded


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_new_database_notifies_the_new_matches_of_deployed_images_once(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, deployment: Deployment, receiver: Receiver
) -> None:
    db = tmp_path / "vuln.db"
    _db_import(_tracker(tmp_path / "older.json", HELD_BACK), db)
    (tmp_path / "secret").write_bytes(SECRET + b"\n")
    with fresh_store(request, backend, tmp_path) as store:
        service = start_server(
            store,
            tmp_path / "serve.log",
            *("--db", str(db), "--db-watch", "0.5", "--notify-url", receiver.url),
            *("--notify-secret-file", str(tmp_path / "secret"), "--notify-backoff", "0.5"),
        )
        try:
            _run(service, db, tmp_path, deployment, receiver)
        finally:
            stop_server(service.process)
        log = service.log.read_text()
        assert "Traceback" not in log
        assert "attempt 1 of 8: the receiver answered 500; next in 0.5 s" in log


def _run(service: Service, db: Path, tmp_path: Path, deployment: Deployment, receiver: Receiver) -> None:
    agent = service.token("rematch-web", Role.AGENT)
    admin = service.token("rematch-admin", Role.ADMIN)
    reader = service.token("rematch-reader", Role.READER)

    facts = gather_facts(None, None)  # the engine's real containers, as an agent's audit collects them
    containers = [json.loads(c.model_dump_json()) for c in deployed_containers(facts)]
    assert deployment.container in {c["id"] for c in containers}
    audit = json.loads(audit_report(facts, ["CIS-5.4"], [], None).model_dump_json())
    pushes = [{"report_id": "audit-1", "agent": "rematch-web", "report": audit, "containers": containers}]
    for number, (reference, packages) in enumerate(((deployment.deployed, 2), (deployment.idle, 1))):
        report, inventory = _scan(reference, db, packages)
        # the report itself holds what the older database knew: the baseline, never notified
        known = {f.vulnerability.advisory_id for f in report.findings if f.vulnerability}
        assert "CVE-2024-2398" in known or reference == deployment.idle
        assert not known & {cve for _, cve in HELD_BACK}
        body = json.loads(report.model_dump_json())
        pushes.append(
            {"report_id": f"image-{number}", "agent": "rematch-web", "report": body, "inventories": [inventory]}
        )
    for push in pushes:
        answer = service.call("POST", "/reports", agent, json=push)
        assert answer.status_code == 201, answer.text

    assert service.call("POST", "/rematch", reader).status_code == 403  # only an admin token asks for a re-match
    nothing = service.call("POST", "/rematch", admin)
    assert nothing.json() == {"images": 1, "new_matches": 0, "notification": None}  # same database: nothing new

    _db_import(TRACKER, db)  # the full records: the service notices the new file by itself
    deadline = time.monotonic() + 60
    while not receiver.taken() and time.monotonic() < deadline:
        time.sleep(0.2)
    taken = receiver.taken()
    assert len(taken) == 1, service.log.read_text()
    assert len(receiver.calls) == 2  # the refused first attempt, then the retry
    first_headers = receiver.calls[0][1]
    headers, raw = taken[0]
    assert headers["X-Portcullis-Delivery"] == first_headers["X-Portcullis-Delivery"]  # the same notification
    notice = _verified(headers, raw)
    assert notice["event"] == "portcullis.rematch"
    assert notice["engines"] == ["rematch-web"]
    assert [i["image"] for i in notice["images"]] == [deployment.deployed]  # not the idle image
    (image,) = notice["images"]
    assert [(c["engine"], c["id"]) for c in image["containers"]] == [("rematch-web", deployment.container)]
    assert [(a["id"], a["package"]) for a in image["advisories"]] == EXPECTED_NEW
    fixed = {a["id"]: a["fixed_version"] for a in image["advisories"]}
    assert fixed == {"CVE-2024-8176": "2.5.0-1+deb12u2", "CVE-2025-0167": None}
    assert any(s["name"] == "debian-tracker" for s in notice["database"]["sources"])

    tampered = raw.replace(b"rematch-web", b"rematch-xyz")
    with pytest.raises(AssertionError):
        _verified(headers, tampered)

    again = service.call("POST", "/rematch", admin)
    assert again.json() == {"images": 1, "new_matches": 0, "notification": None}  # notified once, not per look
    time.sleep(2)
    assert len(receiver.calls) == 2
    assert requests.get(service.url + "/engines", timeout=30).status_code == 401
