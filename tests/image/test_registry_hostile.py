"""A hostile registry (issue 13), served here on 127.0.0.1: a token endpoint that never ends, a manifest or blob
dripped a byte at a time. Each ends as one clear line and exit 1, in bounded time and memory."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from support.bounded import run_bounded

CONFIG = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG).hexdigest()
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": CONFIG_DIGEST, "size": 1},
        "layers": [],
    }
).encode()


def serve(mode: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            with contextlib.suppress(OSError):  # the client hanging up mid-answer is the point
                self.answer()

        def answer(self) -> None:
            port = self.server.server_address[1]
            if self.path.startswith("/token"):  # a token answer that never ends
                self.send_response(200)
                self.end_headers()
                while True:
                    self.wfile.write(b'{"token": "' + b"a" * 65536)
            if mode == "endless-token" and "Authorization" not in self.headers:
                self.send_response(401)
                self.send_header("WWW-Authenticate", f'Bearer realm="http://127.0.0.1:{port}/token",service="x"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = MANIFEST if "/manifests/" in self.path else CONFIG
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            drip = (mode == "drip-manifest" and "/manifests/" in self.path) or (
                mode == "drip-blob" and "/blobs/" in self.path
            )
            for start in range(0, len(body), 1 if drip else len(body)):
                self.wfile.write(body[start : start + (1 if drip else len(body))])
                self.wfile.flush()
                if drip:
                    time.sleep(0.2)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture()
def registry(request: pytest.FixtureRequest) -> Iterator[str]:
    server = serve(request.param)
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("registry", "message"),
    [
        ("endless-token", "the token answer of http://127.0.0.1:"),
        ("drip-manifest", "the manifest of 127.0.0.1:"),
        ("drip-blob", f"blob {CONFIG_DIGEST[:19]}: not complete after 2 s"),
    ],
    indirect=["registry"],
)
def test_hostile_registry_is_one_clear_line(registry: str, message: str) -> None:
    result = run_bounded(
        "image",
        f"registry:{registry}/x/y:1",
        "--insecure-registry",
        registry,
        env={"PORTCULLIS_DOWNLOAD_TIMEOUT": "2"},
        timeout=60,
    )
    line = result.one_error_line()
    assert message in line
    assert result.seconds < 8 and result.peak_rss_mb < 200, result
