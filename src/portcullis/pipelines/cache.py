"""The layer cache as the user manages it: where it is, what it holds, emptying it or removing what has not been
used for a while (`portcullis cache`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from portcullis.pipelines.errors import PipelineError

DEFAULT_CACHE_MAX_BYTES = 2 * 1024**3  # the layer cache's size cap unless --cache-max-size says otherwise


@dataclass(frozen=True)
class CacheUsage:
    root: Path
    layers: int
    configs: int
    images: int
    bytes: int


def cache_usage(cache_dir: Path | None) -> CacheUsage:
    from portcullis.collect.image.layer_cache import usage

    try:
        root, layers, configs, images, size = usage(cache_dir)
    except OSError as exc:
        raise PipelineError(f"cannot read the layer cache: {exc.strerror or exc}") from exc
    return CacheUsage(root, layers, configs, images, size)


def clean_cache(cache_dir: Path | None) -> tuple[int, int]:
    """Remove the cached layers and configs (the vulnerability database beside them stays); (files, bytes)."""
    from portcullis.collect.image.layer_cache import CacheUnusable, clean

    try:
        return clean(cache_dir)
    except (CacheUnusable, OSError) as exc:
        raise PipelineError(f"cannot clean the layer cache: {exc}") from exc


def evict_cache(cache_dir: Path | None, older_than: float) -> tuple[int, int]:
    """Remove the entries not used (read or written) for `older_than` seconds; (files, bytes)."""
    from portcullis.collect.image.layer_cache import CacheUnusable, evict

    try:
        return evict(cache_dir, older_than=older_than)
    except (CacheUnusable, OSError) as exc:
        raise PipelineError(f"cannot clean the layer cache: {exc}") from exc
