"""`portcullis cache info|clean`: the layer cache that lets image scans skip layers they have read before."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from portcullis.cli.common import die, say
from portcullis.cli.conventions import parse_duration
from portcullis.pipelines.cache import DEFAULT_CACHE_MAX_BYTES, cache_usage, clean_cache, evict_cache
from portcullis.pipelines.errors import PipelineError

app = typer.Typer(name="cache", help="Inspect, trim or empty the layer cache of image scans.", no_args_is_help=True)

CacheDirOption = Annotated[
    Path | None,
    typer.Option("--cache-dir", help="the cache directory (default: the user cache dir, or $PORTCULLIS_CACHE_DIR)"),
]

_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str | int) -> int:
    """Bytes from `2GiB`, `2G`, `500MiB`, `500M`, `64k` or a plain number of bytes (units are powers of 1024)."""
    if isinstance(text, int):  # the default, already in bytes
        return text
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text.lower())
    if not match:
        raise typer.BadParameter(f"{text!r} is not a size (examples: 2GiB, 500M, 0 for no cap)")
    return int(float(match[1]) * _UNITS[match[2]])


CacheMaxSizeOption = Annotated[
    int,
    typer.Option(
        "--cache-max-size",
        metavar="SIZE",
        parser=parse_size,
        show_default="2GiB",
        help="after a scan, remove the least recently used cache entries beyond this size (2GiB, 500M; 0: no cap)",
    ),
]


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


@app.command()
def info(cache_dir: CacheDirOption = None, cache_max_size: CacheMaxSizeOption = DEFAULT_CACHE_MAX_BYTES) -> None:
    """Where the layer cache is, what it holds, and the size cap scans keep it under."""
    try:
        usage = cache_usage(cache_dir)
    except PipelineError as exc:
        die(str(exc))
    entries = usage.layers + usage.configs + usage.images
    cap = f"cap {cache_max_size / 1024**3:g} GiB" if cache_max_size else "no cap"
    typer.echo(
        f"{usage.root}: {entries} entries ({usage.layers} layers, {usage.configs} image configs, {usage.images} "
        f"whole images), {_megabytes(usage.bytes)}, {cap}"
    )


@app.command()
def clean(
    cache_dir: CacheDirOption = None,
    older_than: Annotated[
        str | None,
        typer.Option("--older-than", metavar="DURATION", help="only the entries not used for this long: 7d, 12h, 30m"),
    ] = None,
) -> None:
    """Remove every cached layer and image config (or, with --older-than, those no scan has used for that long);
    the vulnerability database kept beside them stays. Example: `portcullis cache clean --older-than 30d`."""
    try:
        if older_than is None:
            files, size = clean_cache(cache_dir)
        else:
            files, size = evict_cache(cache_dir, parse_duration(older_than))
    except PipelineError as exc:
        die(str(exc))
    say(f"removed {files} cache entries ({_megabytes(size)})")
