"""Serving the API with uvicorn on a socket bound here, so a taken port or a bad address is one clear error before
anything starts, and the real port (for `:0`) is known."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn

from portcullis.service.app import create_app
from portcullis.service.notify import Webhook
from portcullis.store import StoreError, default_location


class ServeError(Exception):
    """The service cannot start; one line."""


@dataclass(frozen=True)
class Bind:
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name: only localhost is known to stay on this machine
            return False

    def url(self, tls: bool, port: int | None = None) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if tls else 'http'}://{host}:{self.port if port is None else port}"


def parse_bind(text: str) -> Bind:
    """ADDR:PORT, [IPv6]:PORT."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ServeError(f"--bind {text!r}: give ADDR:PORT, e.g. 127.0.0.1:8443 or [::1]:8443")
    return Bind(host, int(port))


def listen(bind: Bind) -> socket.socket:
    try:
        family = socket.AF_INET6 if ":" in bind.host else socket.AF_INET
        sock = socket.create_server((bind.host, bind.port), family=family, reuse_port=False)
    except OSError as exc:
        raise ServeError(f"cannot listen on {bind.host}:{bind.port}: {exc.strerror or exc}") from exc
    # inherited by accepted connections: a response's head and body leave at once, not 40 ms apart (delayed ACK)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


@dataclass(frozen=True)
class Tls:
    cert: Path
    key: Path

    def check(self) -> None:
        """Load the pair once now, so a wrong file is a clear error rather than a server that cannot start."""
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            raise ServeError(f"--tls-cert {self.cert} / --tls-key {self.key}: {exc.strerror or exc}") from exc


@dataclass(frozen=True)
class Prepared:
    server: uvicorn.Server
    socket: socket.socket
    store: str  # where the store is, without a password

    @property
    def port(self) -> int:
        return int(self.socket.getsockname()[1])


@dataclass(frozen=True)
class Rematching:
    """Where the vulnerability database is, how often to look for a new one, where to tell of new matches; and how
    long the service keeps runs."""

    db_path: Path
    watch_every: float
    webhook: Webhook | None
    retain_days: float | None = None  # None: keep every run


def read_secret(path: Path) -> bytes:
    """The webhook's shared secret: the file's bytes without a final newline, at least 16 of them."""
    try:
        secret = path.read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise ServeError(f"--notify-secret-file {path}: {exc.strerror or exc}") from exc
    if len(secret) < 16:
        raise ServeError(f"--notify-secret-file {path}: the secret is shorter than 16 bytes; make a longer one")
    return secret


def webhook_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ServeError(f"--notify-url {url!r}: give an http:// or https:// URL")
    return url


def prepare(store: str | None, bind: Bind, tls: Tls | None, max_body: int, rematching: Rematching) -> Prepared:
    """The server and its listening socket, ready for `serve`. The store is opened and migrated here."""
    if tls is not None:
        tls.check()
    try:
        app = create_app(
            store or default_location(),
            max_body=max_body,
            db_path=rematching.db_path,
            webhook=rematching.webhook,
            watch_every=rematching.watch_every,
            retain_days=rematching.retain_days,
        )
    except StoreError as exc:
        raise ServeError(str(exc)) from exc
    sock = listen(bind)
    config = uvicorn.Config(
        app,
        ssl_certfile=str(tls.cert) if tls else None,
        ssl_keyfile=str(tls.key) if tls else None,
        server_header=False,
        proxy_headers=False,
        log_level="info",
        timeout_graceful_shutdown=5,  # pushes are short; a stuck client must not hold a restart
    )
    return Prepared(uvicorn.Server(config), sock, app.state.store_where)


def serve(prepared: Prepared) -> None:
    try:
        prepared.server.run(sockets=[prepared.socket])
    finally:
        prepared.socket.close()
