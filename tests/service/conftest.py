"""A real `portcullis serve` on a fresh store of each backend, one per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.fleet_service import MAX_BODY_MIB, Service, start_server, stop_server
from support.postgres import BACKENDS, fresh_store


@pytest.fixture(scope="module", params=BACKENDS)
def service(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    directory = tmp_path_factory.mktemp("service")
    with fresh_store(request, request.param, directory) as store:
        running = start_server(store, directory / "serve.log", "--max-body", str(MAX_BODY_MIB))
        try:
            yield running
        finally:
            stop_server(running.process)
        assert "Traceback" not in running.log.read_text()
