"""The plugin's Unix-socket HTTP server: Plugin.Activate, AuthZPlugin.AuthZReq and AuthZPlugin.AuthZRes.

Every path out of a request that is not a judged allow is a denial: a policy that cannot be (re)read, a plugin
message too large or not JSON, an exception anywhere in judging. The policy file is checked for changes before
each request (one stat) and re-read when it changed; while it cannot be read, every request is denied.
"""

from __future__ import annotations

import json
import os
import socketserver
import stat
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from portcullis.authz import AuthzError
from portcullis.authz.judge import Judge, Verdict, deny, judged_rules
from portcullis.authz.lookup import EngineLookup
from portcullis.authz.policy import Policy, load_policy

CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json"
# The plugin message wraps the body in base64 inside JSON with headers around it; beyond this it is not read.
MESSAGE_OVERHEAD = 256 * 1024
DISCARD_LIMIT = 64 * 1024 * 1024  # larger messages are not even drained: the connection is closed after the reply
SOCKET_TIMEOUT = 10.0


class PolicyFile:
    """The policy as last loaded, re-read when the file changes; an unreadable file leaves an error, not a policy."""

    def __init__(self, path: Path, known_rules: list[str]) -> None:
        self.path = path
        self.known_rules = known_rules
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None
        self.policy: Policy | None = None
        self.error = ""
        self.refresh()
        if self.policy is None:
            raise AuthzError(self.error)

    def refresh(self) -> None:
        with self._lock:
            try:
                info = os.stat(self.path)
            except OSError as exc:
                self._fail(f"policy {self.path} cannot be read: {exc.strerror}", None)
                return
            signature = (info.st_ino, info.st_size, info.st_mtime_ns)
            if signature == self._signature:
                return
            if not stat.S_ISREG(info.st_mode):
                self._fail(f"policy {self.path} is not a regular file", signature)
                return
            try:
                self.policy = load_policy(self.path, self.known_rules)
                self.error = ""
            except AuthzError as exc:
                self._fail(str(exc), signature)
                return
            self._signature = signature

    def _fail(self, error: str, signature: tuple[int, int, int] | None) -> None:
        self.policy = None
        self.error = error
        self._signature = signature


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    judge: Judge
    policy_file: PolicyFile
    log: Callable[[str], None]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that broke (timeout, reset) is logged in one line; the server goes on."""
        self.log(json.dumps({"connection_error": "a plugin connection failed before a reply could be sent"}))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = SOCKET_TIMEOUT

    def address_string(self) -> str:
        return "unix"

    def log_message(self, format: str, *args: Any) -> None:
        """The plugin logs its verdicts, not every HTTP line."""

    def _send(self, status: int, payload: dict[str, Any], close: bool = False) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        if self.path == "/Plugin.Activate":
            self._read(MESSAGE_OVERHEAD)
            self._send(200, {"Implements": ["authz"]})
        elif self.path == "/AuthZPlugin.AuthZRes":
            self._read(DISCARD_LIMIT)
            self._send(200, {"Allow": True})
        elif self.path == "/AuthZPlugin.AuthZReq":
            self._authz_request()
        else:
            self._read(MESSAGE_OVERHEAD)
            self._send(404, {"Err": f"portcullis authz does not implement {self.path}"}, close=True)

    def _read(self, limit: int) -> bytes | None:
        """The message, or None when it is larger than `limit` (drained if not too large, else the socket closes)."""
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            return None
        if length < 0:
            self.close_connection = True
            return None
        if length > limit:
            if length > DISCARD_LIMIT:
                self.close_connection = True
                return None
            remaining = length
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                remaining -= len(chunk)
            return None
        data = self.rfile.read(length)
        return data if len(data) == length else None

    def _authz_request(self) -> None:
        verdict: Verdict
        try:
            policy_file = self.server.policy_file
            policy_file.refresh()
            policy = policy_file.policy
            limit = (policy.max_body_bytes * 4) // 3 + MESSAGE_OVERHEAD if policy else MESSAGE_OVERHEAD
            raw = self._read(limit)
            if policy is None:
                verdict = deny("AUTHZ-POLICY", f"{policy_file.error}; every request is denied until it loads")
            elif raw is None:
                verdict = deny("AUTHZ-BODY-SIZE", "the plugin message is missing its length, truncated or too large")
            else:
                try:
                    message = json.loads(raw)
                except (ValueError, RecursionError):
                    verdict = deny("AUTHZ-BODY-INVALID", "the plugin message is not JSON")
                else:
                    verdict = self.server.judge.request(message, policy)
        except Exception as exc:  # fail closed: whatever went wrong, the request does not pass
            verdict = deny("AUTHZ-INTERNAL", f"the plugin failed ({type(exc).__name__})")
            self.close_connection = True
        if not verdict.allow or verdict.logged:
            self.server.log(json.dumps({"allow": verdict.allow, "message": verdict.message, "logged": verdict.logged}))
        self._send(200, verdict.reply(), close=self.close_connection)


def serve(
    socket_path: Path,
    policy_path: Path,
    log: Callable[[str], None],
    ready: Callable[[], None] | None = None,
    engine_socket: Path | None = None,
) -> None:
    """Answer the engine on `socket_path` until interrupted; `ready` is called once it listens. With
    `engine_socket` (the guarded dockerd's API socket) a user left to the engine's default is read from it. Raises
    AuthzError when the policy or socket is unusable."""
    judge = Judge(judged_rules(), EngineLookup(str(engine_socket)) if engine_socket else None)
    policy_file = PolicyFile(policy_path, judge.rule_ids)
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    if socket_path.exists() or socket_path.is_symlink():
        if not stat.S_ISSOCK(socket_path.lstat().st_mode):
            raise AuthzError(f"{socket_path} exists and is not a socket")
        socket_path.unlink()
    try:
        server = _Server(str(socket_path), _Handler)
    except OSError as exc:
        raise AuthzError(f"cannot listen on {socket_path}: {exc.strerror}") from None
    server.judge, server.policy_file, server.log = judge, policy_file, log
    os.chmod(socket_path, 0o600)
    try:
        if ready is not None:
            ready()
        server.serve_forever()
    finally:
        server.server_close()
        socket_path.unlink(missing_ok=True)
