"""The common ground of the feed parsers: the `Feed` they produce, `FeedError`, and reading a document."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
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
