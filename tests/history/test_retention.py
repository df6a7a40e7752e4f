"""Retention on both backends: which runs `history prune` and the fleet service's --retain-days remove and which they
keep (each stream's newest, pinned baselines, pending notifications, deployed images' inventories), findings gone
with their runs, and a dry run that removes nothing."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from portcullis.model.findings import Finding, Report, Severity, Status, Summary, Target, TargetKind, ToolInfo
from portcullis.model.fleet import DeployedContainer, ImageInventory
from portcullis.service.connections import Connections
from portcullis.service.notify import Pruner
from portcullis.store import Store, open_store
from portcullis.store.rematch import (
    GIVEN_UP,
    MatchRow,
    enqueue,
    keep_inventory,
    mark_delivered,
    mark_failed,
    replace_containers,
    replace_matches,
)
from portcullis.store.retention import Retention, pin, prune

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from clirun import run_cli

NOW = datetime.now(UTC)


def _report(command: str, subject: str, days_ago: float, failures: int = 3) -> Report:
    items = [
        Finding(
            rule_id=f"R-{i}",
            title="t",
            cis=None,
            status=Status.FAIL,
            severity=Severity.HIGH,
            target=Target(kind=TargetKind.CONTAINER, name="web"),
            message=f"m{i}",
        )
        for i in range(failures)
    ]
    return Report(
        command=command,
        tool=ToolInfo(version="9.9"),
        subject=subject,
        started_at=NOW - timedelta(days=days_ago),
        findings=items,
        summary=Summary.of(items),
    )


def _fill(store: Store) -> dict[str, int]:
    """Runs of two subjects, oldest first: engine a at 40, 30, 20, 5 days; image b at 50 and 45 days."""
    ids = {}
    for name, command, subject, age in [
        ("a40", "audit", "a", 40),
        ("a30", "audit", "a", 30),
        ("b50", "image", "b", 50),
        ("a20", "audit", "a", 20),
        ("b45", "image", "b", 45),
        ("a5", "audit", "a", 5),
    ]:
        ids[name] = store.save(_report(command, subject, age))
    return ids


def _kept(store: Store, ids: dict[str, int]) -> list[str]:
    present = {r.id for r in store.runs()}
    return [name for name, run_id in ids.items() if run_id in present]


def _findings(store: Store) -> int:
    return int(store.execute("SELECT count(*) FROM findings")[0][0])


def test_age_and_newest_per_subject_and_pins_decide_what_goes(store_url: str) -> None:
    store = open_store(store_url)
    try:
        ids = _fill(store)
        pin(store, ids["a40"])
        month = NOW - timedelta(days=25)
        looked = prune(store, Retention(keep_last=1, older_than=month), dry_run=True)
        assert [r.id for r in looked.runs] == [ids["b50"], ids["a30"]]  # b45 is b's newest, a40 is pinned
        assert looked.findings == 6
        assert len(store.runs()) == 6 and _findings(store) == 18  # a dry run removes nothing

        gone = prune(store, Retention(keep_last=1, older_than=month))
        assert ([r.id for r in gone.runs], gone.findings) == ([ids["b50"], ids["a30"]], 6)
        assert _kept(store, ids) == ["a40", "a20", "b45", "a5"]
        assert _findings(store) == 12  # the cascade took the removed runs' findings, no others
        assert store.execute("SELECT count(*) FROM findings WHERE run_id IN (?, ?)", (ids["b50"], ids["a30"])) == [(0,)]

        # --keep-last alone: the newest 2 of each subject whatever their age; the pin still holds
        prune(store, Retention(keep_last=2))
        assert _kept(store, ids) == ["a40", "a20", "b45", "a5"]
        pin(store, ids["a40"], pinned=False)
        assert store.execute("SELECT count(*) FROM runs WHERE pinned = 1") == [(0,)]
        prune(store, Retention(keep_last=1))
        assert _kept(store, ids) == ["b45", "a5"]
    finally:
        store.close()


IMAGE_ID = "sha256:" + "1" * 64
GONE_IMAGE_ID = "sha256:" + "2" * 64


def test_the_service_keeps_current_state_and_the_pending_outbox(store_url: str) -> None:
    store = open_store(store_url)
    old = (NOW - timedelta(days=60)).isoformat(timespec="seconds")
    try:
        ids = _fill(store)
        for image_id in (IMAGE_ID, GONE_IMAGE_ID):
            keep_inventory(store, "agent-1", ImageInventory(image="b", image_id=image_id), old)
            replace_matches(store, image_id, [MatchRow("CVE-1", "openssl", "1.0", "1.1", "high")], old)
        replace_containers(
            store, "agent-1", [DeployedContainer(id="a" * 12, name="web", image_id=IMAGE_ID, running=False)], old
        )
        delivered, given_up, pending = (enqueue(store, "{}", old) for _ in range(3))
        mark_delivered(store, delivered, 1, old)
        mark_failed(store, given_up, 8, GIVEN_UP, "refused")
        mark_failed(store, pending, 2, old, "timeout")
        store.commit()
    finally:
        store.close()

    connections = Connections(store_url)
    try:
        pruned = Pruner(connections, days=10).prune_now()
        assert (len(pruned.runs), pruned.findings, pruned.notifications, pruned.inventories) == (4, 12, 2, 1)
        with connections.use() as store:
            assert _kept(store, ids) == ["b45", "a5"]  # every stream's newest stays, however old
            assert store.execute("SELECT id FROM notifications") == [(pending,)]
            assert store.execute("SELECT image_id FROM inventories") == [(IMAGE_ID,)]  # a container still has it
            assert store.execute("SELECT image_id FROM image_matches") == [(IMAGE_ID,)]
        assert Pruner(connections, days=10).prune_now().runs == []  # nothing left to take
    finally:
        connections.close()


def test_history_prune_and_pin_from_the_command_line(tmp_path: Path) -> None:
    where = str(tmp_path / "history.sqlite3")
    store = open_store(where)
    ids = _fill(store)
    store.close()

    assert run_cli("history", "pin", str(ids["a30"]), "--store", where).code == 0
    looked = run_cli("history", "prune", "--keep-days", "25", "--dry-run", "--store", where, "-f", "json").json()
    assert (looked["dry_run"], [r["id"] for r in looked["runs"]], looked["findings"]) == (
        True,
        [ids["b50"], ids["a40"]],
        6,
    )

    text = run_cli("history", "prune", "--keep-days", "10", "--keep-last", "2", "--store", where)
    assert text.code == 0
    # a40 alone: a30 is pinned, a20 and a5 are a's last 2, b has only 2 runs
    assert "removed 1 run(s) and 3 finding(s)" in text.stderr
    listed = run_cli("history", "--store", where, "-f", "json").json()
    assert sorted(r["id"] for r in listed) == sorted(ids[n] for n in ("a30", "b50", "a20", "b45", "a5"))
    assert [r["id"] for r in listed if r["pinned"]] == [ids["a30"]]
    assert f"{ids['a30']:>5}  " in run_cli("history", "--store", where).stdout.split("(pinned)")[0].splitlines()[-1]

    refused = run_cli("history", "prune", "--store", where)
    assert refused.code == 1
    assert refused.one_error_line() == "portcullis: error: say what to keep: --keep-days N and/or --keep-last N"
    assert run_cli("history", "pin", "999", "--store", where).one_error_line().endswith("has no run 999")
