"""Every test run keeps its audit and image runs in a throw-away store, never in the user's data dir; the PostgreSQL
cluster and the fresh-store fixtures (tests/support/postgres.py) are shared by every test directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.postgres import postgres_url, store_url

__all__ = ["postgres_url", "store_url"]  # the PostgreSQL cluster and a fresh store per backend, for any test


@pytest.fixture(autouse=True, scope="session")
def _throwaway_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    previous = os.environ.get("PORTCULLIS_STORE")
    # the environment, not a monkeypatch: the CLI tests run portcullis in subprocesses, which inherit it
    os.environ["PORTCULLIS_STORE"] = str(Path(tmp_path_factory.mktemp("store")) / "history.sqlite3")
    yield
    if previous is None:
        del os.environ["PORTCULLIS_STORE"]
    else:
        os.environ["PORTCULLIS_STORE"] = previous
