"""Every test run keeps its audit and image runs in a throw-away store, and its layer cache in a throw-away
directory: never in the user's data or cache dir. The PostgreSQL cluster and the fresh-store fixtures
(tests/support/postgres.py) are shared by every test directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.postgres import postgres_url, store_url

__all__ = ["postgres_url", "store_url"]  # the PostgreSQL cluster and a fresh store per backend, for any test
THROWAWAY = {"PORTCULLIS_STORE": "history.sqlite3", "PORTCULLIS_CACHE_DIR": "cache"}


@pytest.fixture(autouse=True, scope="session")
def _throwaway_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    previous = {name: os.environ.get(name) for name in THROWAWAY}
    # the environment, not a monkeypatch: the CLI tests run portcullis in subprocesses, which inherit it
    for name, leaf in THROWAWAY.items():
        os.environ[name] = str(Path(tmp_path_factory.mktemp("throwaway")) / leaf)
    yield
    for name, value in previous.items():
        if value is None:
            del os.environ[name]
        else:
            os.environ[name] = value
