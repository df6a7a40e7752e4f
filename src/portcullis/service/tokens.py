"""The fleet service's bearer tokens: `pcs_<id>_<secret>`, printed once, kept only as a salted scrypt hash.

An agent token pushes reports as its own name and reads nothing; a reader token reads and pushes nothing. The id
finds the stored hash without scanning; the secret (256 random bits) is what the hash proves. A server keeps, in
memory only, a fast digest of each token it has verified, so scrypt runs once per token and process, not per request;
revocation is still read from the store on every request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
from datetime import UTC, datetime
from enum import StrEnum

from portcullis.store import Store, StoreError
from portcullis.store.fleet import StoredToken, add_token, revoke_tokens, token, tokens

PREFIX = "pcs"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": 32}


class Role(StrEnum):
    AGENT = "agent"  # pushes reports, as its own name
    READER = "reader"  # reads the fleet
    ADMIN = "admin"  # runs the service's own tasks (a re-match now); reads and pushes nothing


class TokenError(Exception):
    """A token cannot be made, listed or revoked; one line."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _scrypt(secret: str, salt: str) -> str:
    return _b64(hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt), **_SCRYPT))


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise TokenError(f"{name!r} is not a token name: letters, digits, '.', '_', '-', at most 64, a letter first")
    return name


def issue(store: Store, name: str, role: Role) -> str:
    """A new token for `name`; the only time its text exists outside the caller's hands is this return value."""
    check_name(name)
    try:
        others = {t.role for t in tokens(store, name) if t.revoked_at is None} - {role.value}
        if others:
            raise TokenError(f"{name} already holds {others.pop()} tokens; one name has one role")
        token_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), _b64(secrets.token_bytes(16))
        add_token(store, StoredToken(token_id, name, role.value, salt, _scrypt(secret, salt), _now(), None))
    except StoreError as exc:
        raise TokenError(str(exc)) from exc
    return f"{PREFIX}_{token_id}_{secret}"


def listing(store: Store) -> list[StoredToken]:
    try:
        return tokens(store)
    except StoreError as exc:
        raise TokenError(str(exc)) from exc


def revoke(store: Store, name: str) -> int:
    """Revoke every live token of `name`; how many. None at all is an error (a typo should not pass silently)."""
    try:
        count = revoke_tokens(store, check_name(name), _now())
    except StoreError as exc:
        raise TokenError(str(exc)) from exc
    if not count:
        raise TokenError(f"no live token named {name}")
    return count


class Verifier:
    """Checks presented tokens against the store; remembers which it has proven (a digest, in this process only)."""

    def __init__(self) -> None:
        self._proven: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def verify(self, store: Store, presented: str) -> StoredToken | None:
        """The live token `presented` is, or None (malformed, unknown, wrong secret, revoked)."""
        prefix, _, rest = presented.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != PREFIX or not token_id or not secret:
            return None
        stored = token(store, token_id)
        if stored is None or stored.revoked_at is not None:
            return None
        quick = hashlib.sha256(presented.encode()).digest()
        with self._lock:
            known = self._proven.get(token_id)
        if known is not None and hmac.compare_digest(known, quick):
            return stored
        if not hmac.compare_digest(_scrypt(secret, stored.salt), stored.digest):
            return None
        with self._lock:
            self._proven[token_id] = quick
        return stored
