"""`db update`: fetch the upstream feeds over HTTPS and rebuild the database atomically.

Conditional requests (If-None-Match / If-Modified-Since) make an unchanged feed cost one 304. Every download is
checked before use: the byte count against Content-Length, the zip CRCs, the JSON/YAML syntax and the feed's
shape. Any failure aborts the whole update and the old database stays as it was (see `db.rebuild`).
"""

from __future__ import annotations

import hashlib
import http.client
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from portcullis import __version__
from portcullis.vuln.db import SourceInfo, VulnDB, now_iso, rebuild
from portcullis.vuln.sources import Feed, FeedError, alpine_secdb, debian_tracker, load_document, osv

CHUNK = 1 << 16
TIMEOUT = 60


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
    data: bytes
    etag: str
    last_modified: str
    sha256: str


@dataclass
class UpdateResult:
    updated: list[SourceInfo] = field(default_factory=list)
    not_modified: list[str] = field(default_factory=list)
    skipped_records: int = 0


Progress = Callable[[str, int, int | None], None]  # (label, bytes so far, total or None)


def fetch(url: str, etag: str = "", last_modified: str = "", progress: Progress | None = None) -> Fetched | None:
    """GET `url`; None when the server answers 304 Not Modified. Raises FeedError with one line otherwise."""
    if not url.startswith(("https://", "http://")):
        raise FeedError(f"{url}: only http(s) URLs can be fetched")
    headers = {"User-Agent": f"portcullis/{__version__}"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            length_header = response.headers.get("Content-Length")
            total = int(length_header) if length_header and length_header.isdigit() else None
            digest = hashlib.sha256()
            chunks: list[bytes] = []
            received = 0
            while chunk := response.read(CHUNK):
                chunks.append(chunk)
                digest.update(chunk)
                received += len(chunk)
                if progress:
                    progress(url, received, total)
            if total is not None and received != total:
                raise FeedError(f"{url}: truncated download ({received} of {total} bytes)")
            return Fetched(
                b"".join(chunks),
                response.headers.get("ETag", ""),
                response.headers.get("Last-Modified", ""),
                digest.hexdigest(),
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


def _parse(spec: FeedSpec, fetched: Fetched, source: str) -> Feed:
    if spec.kind == "osv":
        feeds = osv.parse_zip(fetched.data, spec.url, default_source=source)
        return feeds[0]
    document = load_document(fetched.data, spec.url)
    if spec.kind == "debian-tracker":
        return debian_tracker.parse(document, spec.url)
    return alpine_secdb.parse(document, spec.url)


def _alpine_documents(spec: FeedSpec, progress: Progress | None) -> list[tuple[str, str]]:
    """(source name, URL) of every branch/repo document listed on the secdb index page."""
    index = fetch(spec.url, progress=progress)
    if index is None:
        raise FeedError(f"{spec.url}: the index answered 304 to an unconditional request")
    branches = sorted(set(re.findall(r'href="(v\d+\.\d+)/?"', index.data.decode("utf-8", "replace"))))
    if not branches:
        raise FeedError(f"{spec.url}: the secdb index lists no release branches (unexpected shape)")
    base = spec.url if spec.url.endswith("/") else spec.url + "/"
    return [
        (alpine_secdb.source_name(b, repo), f"{base}{b}/{repo}.json") for b in branches for repo in alpine_secdb.REPOS
    ]


def _update_one(db: VulnDB, spec: FeedSpec, source: str, result: UpdateResult, progress: Progress | None) -> None:
    known = db.source(source)
    conditional = known is not None and known.origin == spec.url
    fetched = fetch(
        spec.url,
        known.etag if known and conditional else "",
        known.last_modified if known and conditional else "",
        progress,
    )
    if fetched is None:
        db.touch_source(source, now_iso())
        result.not_modified.append(source)
        return
    feed = _parse(spec, fetched, source)
    if spec.kind in ("osv", "debian-tracker") and not feed.advisories:
        raise FeedError(f"{spec.url}: the feed holds no advisories (unexpected shape)")
    if feed.name != source:
        raise FeedError(f"{spec.url}: expected the {source} feed, got {feed.name}")
    info = SourceInfo(
        source, spec.url, now_iso(), fetched.etag, fetched.last_modified, fetched.sha256, len(fetched.data)
    )
    result.updated.append(db.replace_source(info, feed.advisories))
    result.skipped_records += len(feed.skipped)


def update(path: Path, feeds: Sequence[FeedSpec], progress: Progress | None = None) -> UpdateResult:
    """Fetch every feed and swap the rebuilt database in; on any error the old database is left untouched."""
    result = UpdateResult()
    with rebuild(path) as db:
        for spec in feeds:
            if spec.kind == "alpine-index":
                for source, url in _alpine_documents(spec, progress):
                    _update_one(db, FeedSpec(spec.name, url, "alpine-secdb"), source, result, progress)
            elif spec.kind == "osv":
                _update_one(db, spec, osv.source_name(spec.name.partition(":")[2]), result, progress)
            else:
                _update_one(db, spec, debian_tracker.SOURCE_NAME, result, progress)
    return result
