"""The agent's spool on a real directory: private, written whole, in order, bounded with the oldest dropped loudly."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest

from portcullis.agent.spool import Spool


def _body(n: int) -> dict[str, object]:
    return {"report_id": f"r-{n:04d}", "agent": "a1", "report": {"n": n}}


def test_spool_is_private_and_keeps_order_across_instances(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    directory.mkdir(mode=0o755)
    spool = Spool(directory, limit=100)
    spool.put([_body(0), _body(1)])
    spool.put([_body(2)])
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.path.stat().st_mode) == 0o600 for p in spool.pending())
    (directory / ".partial-crashed").write_bytes(b'{"report_id": "half')  # a write a crash cut short
    again = Spool(directory, limit=100)  # an agent restart
    assert [p.report_id for p in again.pending()] == ["r-0000", "r-0001", "r-0002"]
    assert not (directory / ".partial-crashed").exists()
    assert json.loads(again.pending()[2].body()) == _body(2)


def test_full_spool_drops_the_oldest_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path / "spool", limit=3)
    with caplog.at_level(logging.WARNING, logger="portcullis.agent"):
        for n in range(5):
            spool.put([_body(n)])
    assert [p.report_id for p in spool.pending()] == ["r-0002", "r-0003", "r-0004"]
    assert sum("spool full" in r.getMessage() for r in caplog.records) == 2


def test_held_reports_leave_the_queue_with_their_reason(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", limit=10)
    first, second = spool.put([_body(0), _body(1)])
    kept = spool.hold(first, "409 from the server")
    assert [p.report_id for p in spool.pending()] == [second.report_id]
    assert spool.held() == [kept]
    assert kept.with_suffix(".reason").read_text() == "409 from the server\n"
