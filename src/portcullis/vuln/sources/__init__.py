"""Parsers for the upstream feed formats, and recognising which format a local file is in.

Each parser turns one feed document into `Feed`s (one per database source) and raises `FeedError` with one
clear line when the document is not in the shape it expects.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from portcullis.vuln.db import Advisory

try:  # the C loader is ~10x faster on the PyPI advisory database
    from yaml import CBaseLoader as _YamlLoader
except ImportError:  # pragma: no cover - libyaml is present in the pinned environment
    from yaml import BaseLoader as _YamlLoader  # type: ignore[assignment]


class FeedError(Exception):
    """A feed that is corrupt, truncated or not in the expected shape."""


@dataclass
class Feed:
    """The content of one database source."""

    name: str
    advisories: list[Advisory] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # records left out, with the reason


def load_document(data: bytes, origin: str) -> Any:
    """JSON or YAML; YAML scalars stay strings (a version like 1.10 must not become the float 1.1)."""
    text = data.decode("utf-8", errors="strict") if data else ""
    stripped = text.lstrip()
    if not stripped:
        raise FeedError(f"{origin}: empty document")
    try:
        # BaseLoader builds only strings, lists and dicts
        document = json.loads(text) if stripped[0] in "{[" else yaml.load(text, Loader=_YamlLoader)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0]
        raise FeedError(f"{origin}: not valid JSON/YAML (truncated or corrupt?): {first}") from None
    if not isinstance(document, dict | list):
        raise FeedError(f"{origin}: not a JSON/YAML object or list (an error page instead of the feed?)")
    return document


def kind_of(document: Any) -> str:
    """Which feed format a parsed document is: debian-tracker, osv or alpine-secdb."""
    if isinstance(document, dict):
        if "packages" in document and ("distroversion" in document or "reponame" in document):
            return "alpine-secdb"
        if "id" in document and ("affected" in document or "modified" in document):
            return "osv"
        sample = next(iter(document.values()), None)
        if isinstance(sample, dict):
            cve = next(iter(sample.values()), None)
            if isinstance(cve, dict) and "releases" in cve:
                return "debian-tracker"
    if isinstance(document, list) and document and all(isinstance(r, dict) and "id" in r for r in document):
        return "osv"
    raise FeedError("not a Debian tracker JSON, OSV record or Alpine secdb document")


def parse_document(document: Any, origin: str) -> list[Feed]:
    from portcullis.vuln.sources import alpine_secdb, debian_tracker, osv

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
    from portcullis.vuln.sources import osv

    if not path.exists():
        raise FeedError(f"{path}: no such file or directory")
    files = list(_walk(path)) if path.is_dir() else [path]
    if not files:
        raise FeedError(f"{path}: no .json, .yaml or .zip feed files inside")
    feeds: dict[str, Feed] = {}
    osv_records: list[tuple[Any, str]] = []
    for file in files:
        if file.suffix.lower() == ".zip" or zipfile.is_zipfile(file):
            feed_list = osv.parse_zip(file.read_bytes(), str(file), default_source=None)
        else:
            document = load_document(file.read_bytes(), str(file))
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


def _merge(feeds: dict[str, Feed], feed: Feed) -> None:
    known = feeds.get(feed.name)
    if known is None:
        feeds[feed.name] = feed
    else:
        known.advisories.extend(feed.advisories)
        known.skipped.extend(feed.skipped)
