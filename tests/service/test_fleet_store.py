"""Migration 2 on a store written before it: the runs already kept get their engine and image, and later pushes are
told apart by agent and report id. On both backends."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from portcullis.store import MIGRATIONS, SCHEMA_VERSION, StoreConflict, open_store
from portcullis.store.fleet import FindingFilter, engines, find, images

V1_RUNS = [  # (id, command, subject), as portcullis before the fleet service stored them
    (1, "audit", "unix:///var/run/docker.sock"),
    (2, "image", "alpine:3.20"),
]


def _make_v1(url: str) -> None:
    postgres = url.startswith("postgresql://")
    key = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY" if postgres else "INTEGER PRIMARY KEY"
    statements = [s.replace("{id}", key) for s in MIGRATIONS[0]]
    statements += ["CREATE TABLE schema_version (version INTEGER NOT NULL)", "INSERT INTO schema_version VALUES (1)"]
    for run_id, command, subject in V1_RUNS:
        statements.append(
            "INSERT INTO runs (started_at, command, subject, tool_version, report)"
            f" VALUES ('2026-01-0{run_id}T00:00:00+00:00', '{command}', '{subject}', '0.1', '{{}}')"
        )
        statements.append(
            f"INSERT INTO findings VALUES ({run_id}, 0, 'p{run_id}', 'R-{run_id}', 'fail', 'high',"
            f" '{'daemon' if command == 'audit' else 'image'}', 'x', 'm', NULL)"
        )
    if postgres:
        import psycopg

        with psycopg.connect(url, autocommit=True) as db:
            for statement in statements:
                db.execute(statement)
    else:
        Path(url).parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(url) as db:
            for statement in statements:
                db.execute(statement)


def test_a_store_from_before_the_service_is_migrated_and_backfilled(store_url: str) -> None:
    _make_v1(store_url)
    store = open_store(store_url)
    try:
        assert store.execute("SELECT max(version) FROM schema_version") == [(SCHEMA_VERSION,)]
        assert [(e.name, e.failing) for e in engines(store)] == [("unix:///var/run/docker.sock", {"high": 1})]
        assert [(i.name, i.failing) for i in images(store)] == [("alpine:3.20", {"high": 1})]
        assert [f.advisory for f in find(store, FindingFilter(), limit=10)] == ["R-2", "R-1"]
        store.execute("INSERT INTO runs (started_at, command, subject, tool_version, report, agent, report_uid)"
                      " VALUES ('t', 'audit', 's', 'v', '{}', 'a', 'same')")  # fmt: skip
        try:
            store.execute("INSERT INTO runs (started_at, command, subject, tool_version, report, agent, report_uid)"
                          " VALUES ('t', 'audit', 's', 'v', '{}', 'a', 'same')")  # fmt: skip
        except StoreConflict:
            pass
        else:
            raise AssertionError("a second run with the same agent and report id was accepted")
    finally:
        store.close()
