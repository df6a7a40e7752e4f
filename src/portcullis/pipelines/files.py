"""Reading a file the user names: bounded, and every failure one line."""

from __future__ import annotations

from pathlib import Path

from portcullis.pipelines.errors import UsageError


def read_bounded_text(path: Path, limit: int, what: str) -> str:
    """The UTF-8 text of `path`; over `limit` bytes, unreadable or not text is a UsageError naming `what`."""
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise UsageError(f"{what} {path} is over {limit} bytes")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise UsageError(f"{what} {path} is not UTF-8 text") from None
