"""`portcullis cache info|clean`: the layer cache that lets image scans skip layers they have read before."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from portcullis.cli.common import die, say
from portcullis.pipelines.cache import cache_usage, clean_cache
from portcullis.pipelines.errors import PipelineError

app = typer.Typer(name="cache", help="Inspect or empty the layer cache of image scans.", no_args_is_help=True)

CacheDirOption = Annotated[
    Path | None,
    typer.Option("--cache-dir", help="the cache directory (default: the user cache dir, or $PORTCULLIS_CACHE_DIR)"),
]


@app.command()
def info(cache_dir: CacheDirOption = None) -> None:
    """Where the layer cache is and what it holds."""
    try:
        usage = cache_usage(cache_dir)
    except PipelineError as exc:
        die(str(exc))
    typer.echo(
        f"{usage.root}: {usage.layers} layers, {usage.configs} image configs, {usage.images} whole images, "
        f"{usage.bytes / 1e6:.1f} MB"
    )


@app.command()
def clean(cache_dir: CacheDirOption = None) -> None:
    """Remove every cached layer and image config; the vulnerability database kept beside them stays."""
    try:
        files, size = clean_cache(cache_dir)
    except PipelineError as exc:
        die(str(exc))
    say(f"removed {files} cache entries ({size / 1e6:.1f} MB)")
