"""Every test run keeps its audit and image runs in a throw-away store, never in the user's data dir."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


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
