"""`portcullis serve --retain-days` on both backends: at start the service removes the runs older than that, keeping
each stream's newest run and pinned runs, and goes on taking pushes."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from portcullis.model.findings import Finding, Report, Severity, Status, Summary, Target, TargetKind, ToolInfo
from portcullis.service.tokens import Role
from portcullis.store import open_store
from portcullis.store.retention import pin
from support.fleet_service import start_server, stop_server


def _report(subject: str, days_ago: float) -> Report:
    items = [
        Finding(
            rule_id="R-1",
            title="t",
            cis=None,
            status=Status.FAIL,
            severity=Severity.HIGH,
            target=Target(kind=TargetKind.DAEMON, name=subject),
            message="m",
        )
    ]
    return Report(
        command="audit",
        tool=ToolInfo(version="9.9"),
        subject=subject,
        started_at=datetime.now(UTC) - timedelta(days=days_ago),
        findings=items,
        summary=Summary.of(items),
    )


def test_serve_prunes_old_runs_at_start_and_keeps_the_current_state(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url)
    try:
        kept = {}
        for name, agent, age in [("e1-40", "e1", 40), ("e1-30", "e1", 30), ("e1-20", "e1", 20),
                                 ("e2-50", "e2", 50), ("e2-3", "e2", 3)]:  # fmt: skip
            kept[name] = store.save(_report(f"unix:///{agent}.sock", age), agent=agent, report_uid=str(uuid.uuid4()))
        pin(store, kept["e1-40"])
    finally:
        store.close()

    service = start_server(store_url, tmp_path / "serve.log", "--retain-days", "10", "--db-watch", "0")
    try:
        deadline = time.monotonic() + 20
        while True:
            store = open_store(store_url, migrate=False)
            try:
                left = sorted(int(r[0]) for r in store.execute("SELECT id FROM runs"))
            finally:
                store.close()
            if len(left) < len(kept) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        # e1-30 and e2-50 go; e1-40 is pinned, e1-20 is e1's newest, e2-3 is young
        assert left == sorted(kept[n] for n in ("e1-40", "e1-20", "e2-3"))

        token = service.token("e1", Role.AGENT)
        body = {
            "report_id": str(uuid.uuid4()),
            "agent": "e1",
            "report": _report("unix:///e1.sock", 0).model_dump(mode="json"),
        }
        pushed = service.call("POST", "/reports", token, json=body)
        assert pushed.status_code == 201, pushed.text
    finally:
        stop_server(service.process)
    assert "Traceback" not in service.log.read_text()
