"""Test tooling: a local HTTP server on 127.0.0.1 serving upstream-shaped feeds built from ../shared/vulndata.

- /debian/json: the tracker JSON shape converted from the list-form records (see data/README.md);
- /osv/<Ecosystem>/all.zip: OSV zips built from the real records (the PyPA YAML files re-encoded as JSON, the
  npm GHSA JSON files as they are);
- /alpine/ (index page) and /alpine/<branch>/<repo>.json: the secdb YAML documents re-encoded as JSON.
Hostile servers too: a body dripped a byte at a time, or one that never ends.
Conditional requests are honoured (ETag / Last-Modified -> 304) and every request is recorded.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import threading
import time
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml


@dataclass
class Served:
    body: bytes
    etag: str = ""
    last_modified: str = "Thu, 10 Oct 2024 00:00:00 GMT"
    status: int = 200
    truncate_to: int | None = None  # announce the full length, send only this many bytes
    drip: float | None = None  # send the body one byte per this many seconds
    endless: bool = False  # no Content-Length, and `body` repeated until the client hangs up

    def __post_init__(self) -> None:
        self.etag = self.etag or f'"{hashlib.sha256(self.body).hexdigest()[:16]}"'


@dataclass
class FeedServer:
    files: dict[str, Served] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(self, path: str, body: bytes, **kwargs: object) -> None:
        self.files[path] = Served(body, **kwargs)  # type: ignore[arg-type]


def osv_zip(records: list[dict]) -> bytes:  # type: ignore[type-arg]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for record in records:
            archive.writestr(f"{record['id']}.json", json.dumps(record))
    return buffer.getvalue()


def yaml_records(directory: Path) -> list[dict]:  # type: ignore[type-arg]
    loader = getattr(yaml, "CBaseLoader", yaml.BaseLoader)  # keep versions as strings
    return [yaml.load(p.read_text(), Loader=loader) for p in sorted(directory.rglob("*.yaml"))]


def start(feeds: FeedServer) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            feeds.requests.append((self.path, dict(self.headers.items())))
            served = feeds.files.get(self.path)
            if served is None:
                self.send_error(404)
                return
            if served.status != 200:
                self.send_error(served.status)
                return
            if self.headers.get("If-None-Match") == served.etag or (
                not self.headers.get("If-None-Match") and self.headers.get("If-Modified-Since") == served.last_modified
            ):
                self.send_response(304)
                self.send_header("ETag", served.etag)
                self.end_headers()
                return
            self.send_response(200)
            if served.endless:
                self.end_headers()
                with contextlib.suppress(OSError):
                    while True:
                        self.wfile.write(served.body)
                return
            if served.drip is not None:
                self.send_header("Content-Length", str(len(served.body)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    for byte in served.body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(served.drip)
                return
            self.send_header("Content-Length", str(len(served.body)))
            self.send_header("ETag", served.etag)
            self.send_header("Last-Modified", served.last_modified)
            self.end_headers()
            body = served.body if served.truncate_to is None else served.body[: served.truncate_to]
            self.wfile.write(body)
            if served.truncate_to is not None:
                self.close_connection = True

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    feeds.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
