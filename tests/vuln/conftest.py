"""Fixtures for the vulnerability tests: databases built from the real advisory data in ../shared/vulndata."""

from __future__ import annotations

from pathlib import Path

import pytest
from vulndata import NPM_DIR, PYPI_DIR, SECDB_DIR, TRACKER_JSON, build_db

from portcullis.vuln.db import VulnDB


@pytest.fixture(scope="session")
def full_db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tracker (converted), the whole PyPI advisory database, the npm records and every secdb release."""
    return build_db(tmp_path_factory.mktemp("vulndb") / "vuln.db", TRACKER_JSON, PYPI_DIR, NPM_DIR, SECDB_DIR)


@pytest.fixture()
def full_db(full_db_path: Path):  # type: ignore[no-untyped-def]
    with VulnDB.open(full_db_path) as db:
        yield db
