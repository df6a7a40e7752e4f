"""The tcp-api-no-tls template on a live endpoint: a private dockerd that also serves plain HTTP on loopback TCP."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from portcullis.harden.trial_daemon import missing_requirement
from portcullis.model.paths import Certainty, EntryKind
from portcullis.pipelines.paths import paths_report
from support.tls_engine import TLSDaemon

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def plain_tcp() -> Iterator[TLSDaemon]:
    missing = missing_requirement()
    if missing:
        pytest.skip(missing)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    daemon = TLSDaemon({}, port=port, flags=[])
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()


def test_plain_http_api_on_loopback_is_a_host_local_path(plain_tcp: TLSDaemon) -> None:
    report = paths_report(plain_tcp.host, None, inside=False)
    (path,) = [p for p in report.paths if p.template == "tcp-api-no-tls"]
    assert (path.target, path.entry.kind, path.certainty) == ("daemon", EntryKind.HOST_LOCAL, Certainty.CONFIRMED)
    assert path.entry.description.startswith(f"127.0.0.1:{plain_tcp.port}")
    assert path.steps[0].finding == "CIS-2.8" and path.steps[0].evidence.startswith("plain_http")
    assert path.fix == "require client certificates (--tlsverify) or stop listening on TCP"
