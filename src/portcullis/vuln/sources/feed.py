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


MAX_DOCUMENT_BYTES = 512 * 1024 * 1024  # one JSON/YAML feed document; the Debian tracker JSON is ~80 MB (2024)
MAX_YAML_DEPTH = 64  # OSV and secdb documents nest about six levels


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
    try:
        text = data.decode("utf-8", errors="strict") if data else ""
    except UnicodeDecodeError as exc:
        raise FeedError(f"{origin}: not UTF-8 text (byte {exc.start}): a binary file or a wrong encoding") from None
    stripped = text.lstrip()
    if not stripped:
        raise FeedError(f"{origin}: empty document")
    try:
        document = json.loads(text) if stripped[0] in "{[" else _load_yaml(text, origin)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0]
        raise FeedError(f"{origin}: not valid JSON/YAML (truncated or corrupt?): {first}") from None
    except ValueError as exc:  # an integer over Python's digit limit
        raise FeedError(f"{origin}: not a usable JSON document: {exc}") from None
    except RecursionError:
        raise FeedError(f"{origin}: nested too deeply to be a feed document") from None
    if not isinstance(document, dict | list):
        raise FeedError(f"{origin}: not a JSON/YAML object or list (an error page instead of the feed?)")
    return document


def _load_yaml(text: str, origin: str) -> Any:
    """YAML as BaseLoader would build it (strings, lists, dicts), from the C parser's events without recursion.

    yaml.load composes recursively (a few thousand nested `- ` crash the process) and expands aliases, which
    lets a few lines stand for billions of nodes ("billion laughs"); feeds use neither deep nesting nor aliases.
    """
    root: Any = None
    stack: list[dict[str, Any] | list[Any]] = []
    keys: list[str | None] = []  # per open mapping: the key waiting for its value
    for event in yaml.parse(text, Loader=_YamlLoader):
        node: Any
        if isinstance(event, yaml.ScalarEvent):
            node = event.value
        elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            if len(stack) >= MAX_YAML_DEPTH:
                raise FeedError(f"{origin}: YAML nested more than {MAX_YAML_DEPTH} levels deep")
            stack.append([] if isinstance(event, yaml.SequenceStartEvent) else {})
            keys.append(None)
            continue
        elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            node = stack.pop()
            keys.pop()
        elif isinstance(event, yaml.AliasEvent):
            raise FeedError(f"{origin}: YAML aliases (*name) are not accepted in feed documents")
        else:
            continue
        if not stack:
            if root is not None:
                raise FeedError(f"{origin}: more than one YAML document")
            root = node
        elif isinstance(stack[-1], list):
            stack[-1].append(node)
        elif keys[-1] is None:
            if not isinstance(node, str):
                raise FeedError(f"{origin}: a YAML mapping key that is not a plain value")
            keys[-1] = node
        else:
            stack[-1][keys[-1]] = node
            keys[-1] = None
    return root


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
