"""`db update`: fetch the upstream feeds over HTTPS and rebuild the database atomically.

Conditional requests (If-None-Match / If-Modified-Since) make an unchanged feed cost one 304. Every download is
checked before use: the byte count against Content-Length, the zip CRCs, the JSON/YAML syntax and the feed's
shape. Any failure aborts the whole update and the old database stays as it was (see `db.rebuild`).
"""

from __future__ import annotations

import hashlib
import http.client
import re
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from portcullis import __version__
from portcullis.model.facts import EolTables
from portcullis.vuln.db import SourceInfo, VulnDB, now_iso, rebuild
from portcullis.vuln.sources import Feed, FeedError, alpine_secdb, debian_tracker, load_document, osv
from portcullis.vuln.sources.feed import MAX_DOCUMENT_BYTES

CHUNK = 1 << 16
TIMEOUT = 60  # seconds one read may wait
DEADLINE = 900.0  # seconds one whole download may take (`db update --timeout`): a server dripping a byte at a
# time never trips the per-read timeout
# What one download may hold before it is refused as an endless response, per kind of document; sized well above
# the real feeds (tracker JSON ~80 MB, the largest OSV zips ~100 MB, secdb documents under 1 MB, in 2024).
MAX_BYTES = {
    "debian-tracker": MAX_DOCUMENT_BYTES,
    "osv": 512 * 1024 * 1024,
    "alpine-secdb": 64 * 1024 * 1024,
    "alpine-index": 1024 * 1024,
}


@dataclass(frozen=True)
class FeedSpec:
    """One upstream feed: `name` is what --only / --url refer to."""

    name: str
    url: str
    kind: str  # debian-tracker, osv, alpine-index


def default_feeds() -> list[FeedSpec]:
    feeds = [FeedSpec("debian", debian_tracker.URL, "debian-tracker")]
    feeds += [FeedSpec(f"osv:{eco}", osv.url(eco), "osv") for eco in osv.ECOSYSTEMS]
    feeds.append(FeedSpec("alpine", alpine_secdb.BASE_URL, "alpine-index"))
    return feeds


@dataclass
class Fetched:
    size: int
    etag: str
    last_modified: str
    sha256: str


@dataclass
class UpdateResult:
    updated: list[SourceInfo] = field(default_factory=list)
    not_modified: list[str] = field(default_factory=list)
    skipped_records: int = 0
    eol_tables: EolTables | None = None  # set when the end-of-life tables were refreshed too


Progress = Callable[[str, int, int | None], None]  # (label, bytes so far, total or None)


def fetch(
    url: str,
    body: IO[bytes],
    etag: str = "",
    last_modified: str = "",
    progress: Progress | None = None,
    *,
    limit: int = MAX_DOCUMENT_BYTES,
    deadline: float = DEADLINE,
) -> Fetched | None:
    """GET `url` into `body` (left at its start); None when the server answers 304 Not Modified. Raises FeedError
    with one line otherwise, also when the body grows past `limit` bytes or takes longer than `deadline` seconds."""
    if not url.startswith(("https://", "http://")):
        raise FeedError(f"{url}: only http(s) URLs can be fetched")
    headers = {"User-Agent": f"portcullis/{__version__}"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    request = urllib.request.Request(url, headers=headers)
    give_up = time.monotonic() + deadline
    try:
        with urllib.request.urlopen(request, timeout=min(TIMEOUT, deadline)) as response:
            length_header = response.headers.get("Content-Length")
            total = int(length_header) if length_header and length_header.isdigit() else None
            if total is not None and total > limit:
                raise FeedError(f"{url}: announces {total} bytes, over the {limit}-byte limit for this feed")
            sha256 = _receive(response, body, url, limit, deadline, give_up, total, progress)
            size = body.tell()
            body.seek(0)
            return Fetched(
                size,
                response.headers.get("ETag", ""),
                response.headers.get("Last-Modified", ""),
                sha256,
            )
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return None
        raise FeedError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except http.client.IncompleteRead as exc:
        raise FeedError(f"{url}: truncated download ({len(exc.partial)} bytes, connection closed early)") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise FeedError(f"{url}: cannot download: {reason}") from None


def _receive(
    response: http.client.HTTPResponse,
    body: IO[bytes],
    url: str,
    limit: int,
    deadline: float,
    give_up: float,
    total: int | None,
    progress: Progress | None,
) -> str:
    """Copy the response body into `body` under the caps; its SHA-256."""
    digest = hashlib.sha256()
    received = 0
    # read1 returns what one read of the socket brings, so the deadline is checked however slow the drip
    while chunk := response.read1(CHUNK):
        body.write(chunk)
        digest.update(chunk)
        received += len(chunk)
        if received > limit:
            raise FeedError(f"{url}: over the {limit}-byte limit for this feed (an endless response?)")
        if time.monotonic() > give_up:
            raise FeedError(
                f"{url}: not complete after {deadline:g} s ({received} bytes), a stalled server?"
                " (db update --timeout sets the limit)"
            )
        if progress:
            progress(url, received, total)
    if total is not None and received != total:
        raise FeedError(f"{url}: truncated download ({received} of {total} bytes)")
    return digest.hexdigest()


def _parse(spec: FeedSpec, body: IO[bytes], source: str) -> Feed:
    if spec.kind == "osv":
        feeds = osv.parse_zip(body, spec.url, default_source=source)
        return feeds[0]
    document = load_document(body.read(), spec.url)
    if spec.kind == "debian-tracker":
        return debian_tracker.parse(document, spec.url)
    return alpine_secdb.parse(document, spec.url)


def _alpine_documents(spec: FeedSpec, progress: Progress | None, deadline: float) -> list[tuple[str, str]]:
    """(source name, URL) of every branch/repo document listed on the secdb index page."""
    with tempfile.TemporaryFile() as body:
        if fetch(spec.url, body, progress=progress, limit=MAX_BYTES[spec.kind], deadline=deadline) is None:
            raise FeedError(f"{spec.url}: the index answered 304 to an unconditional request")
        page = body.read().decode("utf-8", "replace")
    branches = sorted(set(re.findall(r'href="(v\d+\.\d+)/?"', page)))
    if not branches:
        raise FeedError(f"{spec.url}: the secdb index lists no release branches (unexpected shape)")
    base = spec.url if spec.url.endswith("/") else spec.url + "/"
    return [
        (alpine_secdb.source_name(b, repo), f"{base}{b}/{repo}.json") for b in branches for repo in alpine_secdb.REPOS
    ]


def _update_one(
    db: VulnDB, spec: FeedSpec, source: str, result: UpdateResult, progress: Progress | None, deadline: float
) -> None:
    known = db.source(source)
    conditional = known is not None and known.origin == spec.url
    with tempfile.TemporaryFile() as body:  # anonymous: a large feed waits on disk, not in memory, and never stays
        fetched = fetch(
            spec.url,
            body,
            known.etag if known and conditional else "",
            known.last_modified if known and conditional else "",
            progress,
            limit=MAX_BYTES[spec.kind],
            deadline=deadline,
        )
        if fetched is None:
            db.touch_source(source, now_iso())
            result.not_modified.append(source)
            return
        feed = _parse(spec, body, source)
    if spec.kind in ("osv", "debian-tracker") and not feed.advisories:
        raise FeedError(f"{spec.url}: the feed holds no advisories (unexpected shape)")
    if feed.name != source:
        raise FeedError(f"{spec.url}: expected the {source} feed, got {feed.name}")
    info = SourceInfo(source, spec.url, now_iso(), fetched.etag, fetched.last_modified, fetched.sha256, fetched.size)
    result.updated.append(db.replace_source(info, feed.advisories))
    result.skipped_records += len(feed.skipped)


def update(
    path: Path, feeds: Sequence[FeedSpec], progress: Progress | None = None, deadline: float = DEADLINE
) -> UpdateResult:
    """Fetch every feed and swap the rebuilt database in; on any error the old database is left untouched.
    Each download may take at most `deadline` seconds."""
    result = UpdateResult()
    with rebuild(path) as db:
        for spec in feeds:
            if spec.kind == "alpine-index":
                for source, url in _alpine_documents(spec, progress, deadline):
                    _update_one(db, FeedSpec(spec.name, url, "alpine-secdb"), source, result, progress, deadline)
            elif spec.kind == "osv":
                _update_one(db, spec, osv.source_name(spec.name.partition(":")[2]), result, progress, deadline)
            else:
                _update_one(db, spec, debian_tracker.SOURCE_NAME, result, progress, deadline)
    return result
