"""Sending the spool to the fleet service, oldest report first, and deleting a report only once the server has it.

The server is idempotent on the report id: 201 stored, 200 stored before (a retry after a lost answer). Either way
the report is safe and leaves the spool. 409 means the id was stored with a different report: that is a bug (ids
are never reused), so the report is held, not retried, and said loudly. A server that cannot be reached, answers
5xx or refuses the token stops the pass: everything stays queued, in order, for the next one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import requests

from portcullis.agent.spool import Spool, Spooled

log = logging.getLogger("portcullis.agent")
REPORTS = "/api/v1/reports"
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 120.0  # a large report is stored in one transaction on the server


class Answer(Enum):
    STORED = "stored"  # 201, or 200: the server has it
    HOLD = "hold"  # never acceptable as it is: out of the queue, kept
    STOP = "stop"  # the server is away, failing, or refuses us: try again later


@dataclass(frozen=True)
class Outcome:
    answer: Answer
    detail: str


@dataclass(frozen=True)
class Pass:
    delivered: int
    held: int
    left: int
    stopped_by: str | None  # why delivery stopped early, or None when the spool was emptied


class Server:
    def __init__(self, url: str, token: str, ca_bundle: Path | None) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.headers["Content-Type"] = "application/json"
        self.session.verify = str(ca_bundle) if ca_bundle is not None else True
        self.session.trust_env = False  # no proxy or CA bundle from the environment in between agent and server

    def close(self) -> None:
        self.session.close()

    def send(self, body: bytes) -> Outcome:
        try:
            response = self.session.post(self.url + REPORTS, data=body, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
        except requests.exceptions.SSLError as exc:
            return Outcome(Answer.STOP, f"TLS with {self.url} failed ({_first_line(exc)}): check --ca-bundle")
        except requests.exceptions.RequestException as exc:
            return Outcome(Answer.STOP, f"{self.url} cannot be reached: {_first_line(exc)}")
        said = _error_text(response)
        status = response.status_code
        if status in (200, 201):
            return Outcome(Answer.STORED, "stored" if status == 201 else "stored before (a retry)")
        if status == 409:
            return Outcome(Answer.HOLD, f"409 from the server, a bug: {said}")
        if status in (401, 403):
            return Outcome(Answer.STOP, f"the server refuses the token ({status}): {said}")
        if status in (400, 413, 422):
            return Outcome(Answer.HOLD, f"the server rejects the report ({status}): {said}")
        return Outcome(Answer.STOP, f"the server answered {status}: {said}")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _error_text(response: requests.Response) -> str:
    try:
        return str(response.json().get("error", response.text[:200]))
    except ValueError:
        return response.text[:200].strip() or response.reason


def deliver(spool: Spool, server: Server) -> Pass:
    """Send every queued report, oldest first, until the spool is empty or the server stops the pass."""
    delivered = held = 0
    queue = spool.pending()
    for position, spooled in enumerate(queue):
        outcome = _send(server, spooled)
        if outcome.answer is Answer.STORED:
            spool.remove(spooled)
            delivered += 1
        elif outcome.answer is Answer.HOLD:
            where = spool.hold(spooled, outcome.detail)
            log.error("report %s held in %s, not retried: %s", spooled.report_id, where, outcome.detail)
            held += 1
        else:
            return Pass(delivered, held, len(queue) - position, outcome.detail)
    return Pass(delivered, held, 0, None)


def _send(server: Server, spooled: Spooled) -> Outcome:
    try:
        body = spooled.body()
    except OSError as exc:
        return Outcome(Answer.STOP, f"cannot read {spooled.path}: {exc.strerror or exc}")
    return server.send(body)
