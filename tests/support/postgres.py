"""A throw-away PostgreSQL cluster for the store and service tests: initdb in a temp dir, its socket there, stopped at
the end; and a fresh store on either backend. The fixtures are registered in tests/conftest.py."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Debian's postgresql package (scripts/programs.tsv) keeps its programs off PATH, under the major version.
INITDB = "/usr/lib/postgresql/15/bin/initdb"
PG_CTL = "/usr/lib/postgresql/15/bin/pg_ctl"
CLUSTER_USER = "postgres"  # initdb refuses root


def _as_cluster_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["setpriv", f"--reuid={CLUSTER_USER}", f"--regid={CLUSTER_USER}", "--clear-groups", *argv]


@contextlib.contextmanager
def throwaway_cluster(settings: str = "") -> Iterator[str]:
    """initdb and start a cluster whose only socket is in a temp dir (no port to collide); its URL; stopped and
    removed afterwards. `settings`: more `-c name=value` server options."""
    # not under pytest's temp root: that is root's alone, and the cluster user must reach its directory
    base = Path(tempfile.mkdtemp(prefix="portcullis-pg-"))
    data, socket_dir = base / "data", base / "run"
    socket_dir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, CLUSTER_USER, CLUSTER_USER)
        shutil.chown(socket_dir, CLUSTER_USER, CLUSTER_USER)
    subprocess.run(
        _as_cluster_user([INITDB, "-D", str(data), "-U", "portcullis", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    options = f"-k {socket_dir} -c listen_addresses='' {settings}".rstrip()
    subprocess.run(
        _as_cluster_user([PG_CTL, "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://portcullis@/postgres?host={socket_dir}"
    finally:
        subprocess.run(_as_cluster_user([PG_CTL, "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if not (Path(INITDB).exists() and Path(PG_CTL).exists()):
        pytest.skip(f"PostgreSQL is not installed ({INITDB}): `make test` installs it from scripts/programs.tsv")
    with throwaway_cluster() as url:
        yield url


BACKENDS = ["sqlite", "postgresql"]


@contextlib.contextmanager
def fresh_store(request: pytest.FixtureRequest, backend: str, directory: Path) -> Iterator[str]:
    """A new, empty store: an SQLite file under `directory`, or a new database in the test cluster."""
    if backend == "sqlite":
        yield str(directory / "data" / "history.sqlite3")
        return
    import psycopg

    server = request.getfixturevalue("postgres_url")
    name = f"t_{os.getpid()}_{abs(hash(request.node.nodeid)) % 10**8}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield server.replace("/postgres?", f"/{name}?")
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store on each backend, for one test."""
    with fresh_store(request, request.param, tmp_path) as url:
        yield url
