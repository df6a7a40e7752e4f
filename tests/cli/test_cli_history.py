"""History against the real engine: a misconfigured container started between two audits is new in their diff and
fixed once removed; --baseline lets the gate pass on the failures an earlier run already had, and only those."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from clirun import BUSYBOX, LABELS, run_cli

pytestmark = pytest.mark.engine


def names(findings: list[dict[str, Any]]) -> set[str]:
    return {f["target"]["name"] for f in findings}


def test_diff_and_baseline_follow_a_container_that_comes_and_goes(engine: docker.DockerClient, tmp_path: Path) -> None:
    store = str(tmp_path / "history.sqlite3")
    facts, first = tmp_path / "facts.json", tmp_path / "first.json"
    opts = ("--store", store, "--fail-on", "medium", "--no-vulns")  # no database here: DKR-ENGINE would fail closed
    before = run_cli("audit", *opts, "-f", "json", "-o", str(first), "--facts-out", str(facts))
    assert before.code == 2, before.stderr  # the test engine has medium failures of its own
    assert "stored as run 1" in before.stderr

    # the same engine against its own baseline (replayed: other tests' containers come and go on this engine)
    for baseline in (str(first), "1"):
        same = run_cli("audit", *opts, "--facts-in", str(facts), "--no-store", "--baseline", baseline)
        assert same.code == 0, same.stderr

    name = f"pc-history-priv-{uuid.uuid4().hex[:8]}"
    try:
        # created, never started (a privileged container cannot start on every VM): CIS-5.5 fails, critical
        engine.containers.create(BUSYBOX, "sleep 600", name=name, privileged=True, labels=LABELS)
        during = run_cli("audit", *opts, "-f", "json", "--baseline", str(first))
        assert during.code == 2, during.stderr
        report = during.json()
        open_failures = [f for f in report["findings"] if f["status"] == "fail" and not f["suppressed_by"]]
        assert name in names(open_failures)
        known = [f for f in report["findings"] if f["suppressed_by"] == "in baseline"]
        assert known and name not in names(known)  # still listed, marked, not gated
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            engine.containers.get(name).remove(force=True)
    after = run_cli("audit", *opts, "-f", "json")
    assert name not in {f["target"]["name"] for f in after.json()["findings"]}

    started = run_cli("diff", "1", "2", "--store", store, "-f", "json").json()
    assert name in names(started["new"])
    assert name not in names(started["fixed"]) | names(started["unchanged"])
    assert any(f["rule_id"] == "CIS-5.5" and f["target"]["name"] == name for f in started["new"])
    gone = run_cli("diff", "previous", "latest", "--store", store, "-f", "json").json()
    assert (gone["before"]["id"], gone["after"]["id"]) == (2, 3)
    assert {f["fingerprint"] for f in gone["fixed"] if f["target"]["name"] == name} == {
        f["fingerprint"] for f in started["new"] if f["target"]["name"] == name
    }
    assert name not in names(gone["new"])
    text = run_cli("diff", "previous", "latest", "--store", store)
    assert text.code == 0 and "fixed" in text.stdout and name in text.stdout
    listed = run_cli("history", "--store", store, "-f", "json").json()
    assert [r["id"] for r in listed] == [3, 2, 1]
    assert all(r["command"] == "audit" and r["counts"].get("fail") for r in listed)
