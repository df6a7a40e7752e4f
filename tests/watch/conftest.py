"""The engine client and the labelled, always-removed containers the watch tests make on the real engine."""

from __future__ import annotations

import os
from collections.abc import Iterator

import docker
import pytest

from support.containers import ContainerFactory, labelled_containers


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    engine = docker.from_env()
    yield engine
    engine.close()


@pytest.fixture
def containers(client: docker.DockerClient) -> Iterator[ContainerFactory]:
    with labelled_containers(client, f"pc-watch-{os.getpid()}") as factory:
        yield factory
