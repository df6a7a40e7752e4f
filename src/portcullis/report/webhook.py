"""Signed webhook delivery, shared by the fleet service's notifications and `watch`.

A body is POSTed as JSON with `X-Portcullis-Timestamp: T` (Unix seconds) and `X-Portcullis-Signature: sha256=HEX`,
HEX being HMAC-SHA256 with the shared secret over `T.` followed by the body's bytes: a receiver checks the signature
and refuses an old T (a replay). `X-Portcullis-Delivery` names the delivery, the same on every retry, so a receiver
can drop a repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import requests

SIGNATURE_HEADER = "X-Portcullis-Signature"
TIMESTAMP_HEADER = "X-Portcullis-Timestamp"
DELIVERY_HEADER = "X-Portcullis-Delivery"


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def post_signed(
    http: requests.Session, url: str, secret: bytes, delivery: str, body: bytes, timeout: float
) -> str | None:
    """One signed POST: None when the receiver took it (2xx), else why not (never the secret)."""
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        DELIVERY_HEADER: delivery,
    }
    try:
        answer = http.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        return f"{type(exc).__name__}: {exc}"
    if 200 <= answer.status_code < 300:
        return None
    return f"the receiver answered {answer.status_code}"
