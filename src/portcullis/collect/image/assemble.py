"""From an image config and its scanned layers to ImageFacts, checking every layer against its diff_id."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from portcullis.collect import first_problem
from portcullis.collect.image import packages
from portcullis.collect.image.errors import ImageError, Limits
from portcullis.collect.image.layer import LayerScan
from portcullis.collect.image.squash import SquashedView, content_facts
from portcullis.model.facts import HistoryEntry, ImageConfig, ImageContentFacts, ImageFacts
from portcullis.model.layers import LayerRef
from portcullis.model.redaction import redact_line


@dataclass
class ImageMeta:
    """What a source knows besides the config: names and digests."""

    source: str
    reference: str
    image_id: str = ""
    repo_tags: list[str] = field(default_factory=list)
    repo_digests: list[str] = field(default_factory=list)


def parse_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ImageError(f"{what} is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ImageError(f"{what} is not a JSON object")
    return value


def _epoch(created: Any) -> int:
    if not isinstance(created, str) or not created:
        return 0
    try:  # RFC 3339 with up to nanoseconds; fromisoformat takes microseconds at most
        head, dot, tail = created.rstrip("Z").partition(".")
        stamp = head + (("." + tail[:6]) if dot else "") + "+00:00"
        return int(datetime.fromisoformat(stamp).timestamp())
    except ValueError:
        return 0


def layer_refs(config: dict[str, Any], diff_ids: list[str]) -> list[LayerRef]:
    """Map history lines that made a layer (empty_layer false) onto the layers, in order.

    The line is masked (secret assignments, URL passwords): it is quoted beside every finding about the layer.
    """
    history = config.get("history")
    lines = [
        str(h.get("created_by", ""))
        for h in (history if isinstance(history, list) else [])
        if isinstance(h, dict) and not h.get("empty_layer", False)
    ]
    return [
        LayerRef(index=i, diff_id=diff_id, created_by=redact_line(lines[i]) if i < len(lines) else "")
        for i, diff_id in enumerate(diff_ids)
    ]


def history_entries(config: dict[str, Any]) -> list[HistoryEntry] | None:
    history = config.get("history")
    if not isinstance(history, list):
        return None
    entries = [
        HistoryEntry(
            id="<missing>",
            created=_epoch(h.get("created")),
            created_by=str(h.get("created_by", "")),
            comment=str(h.get("comment", "")),
        )
        for h in history
        if isinstance(h, dict)
    ]
    return entries[::-1]  # newest first, as the Engine API returns it


def config_diff_ids(config: dict[str, Any], what: str) -> list[str]:
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise ImageError(f"{what} has no rootfs.diff_ids list")
    return list(diff_ids)


def verify_layers(diff_ids: list[str], scans: list[LayerScan]) -> None:
    if len(diff_ids) != len(scans):
        raise ImageError(f"the config lists {len(diff_ids)} layers but the manifest {len(scans)}")
    for index, (expected, scan) in enumerate(zip(diff_ids, scans, strict=True)):
        if scan.diff_id != expected:
            raise ImageError(f"layer {index}: content digest {scan.diff_id} does not match the config's {expected}")


def image_facts(
    meta: ImageMeta, config: dict[str, Any], config_digest: str, scans: list[LayerScan], limits: Limits
) -> ImageFacts:
    diff_ids = config_diff_ids(config, "the image config")
    verify_layers(diff_ids, scans)
    refs = layer_refs(config, diff_ids)
    view = SquashedView(limits)
    for index, scan in enumerate(scans):
        view.apply(index, scan)
    runtime = config.get("config")
    try:
        runtime_config = ImageConfig.model_validate(runtime if isinstance(runtime, dict) else {})
    except ValidationError as exc:
        raise ImageError(f"the image config is malformed: config.{first_problem(exc)}") from None
    content = content_facts(view, refs, meta.source, meta.reference)
    _attach_inventory(content, scans, refs)
    return ImageFacts(
        id=meta.image_id or config_digest,
        repo_tags=meta.repo_tags,
        repo_digests=meta.repo_digests,
        created=str(config.get("created", "")),
        size=sum(scan.size for scan in scans),
        config=runtime_config,
        history=history_entries(config),
        content=content,
    )


def rootfs_facts(meta: ImageMeta, scan: LayerScan, limits: Limits) -> ImageFacts:
    """A root directory is one layer with no config and no history."""
    view = SquashedView(limits)
    view.apply(0, scan)
    refs = [LayerRef(index=0, diff_id=scan.diff_id, created_by="")]
    content = content_facts(view, refs, meta.source, meta.reference)
    _attach_inventory(content, [scan], refs)
    return ImageFacts(id=meta.image_id, repo_tags=meta.repo_tags, size=scan.size, content=content)


def _attach_inventory(content: ImageContentFacts, scans: list[LayerScan], refs: list[LayerRef]) -> None:
    found, content.os_release = packages.inventory(scans, refs)
    content.packages, content.inventory_skipped = found.packages, found.skipped
