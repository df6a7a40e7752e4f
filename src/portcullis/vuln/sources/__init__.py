"""Parsers for the upstream feed formats, and recognising which format a local file is in.

Each parser turns one feed document into `Feed`s (one per database source) and raises `FeedError` with one
clear line when the document is not in the shape it expects.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from portcullis.vuln.sources import alpine_secdb, debian_tracker, osv
from portcullis.vuln.sources.feed import MAX_DOCUMENT_BYTES, Feed, FeedError, kind_of, load_document

__all__ = ["Feed", "FeedError", "kind_of", "load_document", "load_path", "parse_document"]


def parse_document(document: Any, origin: str) -> list[Feed]:
    kind = kind_of(document)
    if kind == "debian-tracker":
        return [debian_tracker.parse(document, origin)]
    if kind == "alpine-secdb":
        return [alpine_secdb.parse(document, origin)]
    records = document if isinstance(document, list) else [document]
    return osv.parse_records(((r, origin) for r in records), default_source=None)


def _walk(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.suffix.lower() in (".json", ".yaml", ".yml", ".zip"):
            yield path


def load_path(path: Path) -> list[Feed]:
    """Feeds from a local file or directory in any supported upstream format (tracker JSON, OSV, secdb)."""
    if not path.exists():
        raise FeedError(f"{path}: no such file or directory")
    files = list(_walk(path)) if path.is_dir() else [path]
    if not files:
        raise FeedError(f"{path}: no .json, .yaml or .zip feed files inside")
    feeds: dict[str, Feed] = {}
    osv_records: list[tuple[Any, str]] = []
    for file in files:
        if file.suffix.lower() == ".zip" or zipfile.is_zipfile(file):
            feed_list = osv.parse_zip(file, str(file), default_source=None)
        else:
            document = load_document(_read(file), str(file))
            if kind_of(document) == "osv":  # gather OSV records so one ecosystem becomes one source
                records = document if isinstance(document, list) else [document]
                osv_records.extend((r, str(file)) for r in records)
                continue
            feed_list = parse_document(document, str(file))
        for feed in feed_list:
            _merge(feeds, feed)
    for feed in osv.parse_records(iter(osv_records), default_source=None):
        _merge(feeds, feed)
    return list(feeds.values())


def _read(file: Path) -> bytes:
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)  # read no further than the cap, whatever the file says
    except OSError as exc:
        raise FeedError(f"{file}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise FeedError(f"{file}: over the {MAX_DOCUMENT_BYTES}-byte limit for a feed document")
    return data


def _merge(feeds: dict[str, Feed], feed: Feed) -> None:
    known = feeds.get(feed.name)
    if known is None:
        feeds[feed.name] = feed
    else:
        known.advisories.extend(feed.advisories)
        known.skipped.extend(feed.skipped)
