"""Errors, limits and credentials: the small types every image source shares."""

from __future__ import annotations

from dataclasses import dataclass, field

from portcullis.collect import CollectionError

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


class ImageError(CollectionError):
    """The image cannot be read safely (corrupt, hostile, over a limit, unreachable): one clear line."""


@dataclass(frozen=True)
class Limits:
    """Bounds on what an image may cost us; image content is attacker-controlled."""

    max_total_bytes: int = 32 * GIB  # uncompressed bytes over all layers (decompression bombs)
    max_file_bytes: int = 8 * GIB  # a member declaring more is skipped and reported
    max_entries: int = 2_000_000  # paths in the squashed view
    max_json_bytes: int = 4 * MIB  # manifests, indexes and configs
    content_file_bytes: int = 1 * MIB  # larger files are not read for secrets
    content_read_bytes: int = 64 * KIB  # bytes read from the start of a file for secrets
    package_file_bytes: int = 64 * MIB  # package databases (dpkg status, lockfiles) are read whole up to this


@dataclass(frozen=True)
class Credentials:
    """Basic-auth credentials for a registry (also exchanged for a bearer token when the registry asks), or the
    identity (refresh) token `docker login` stored for a token server. Secrets stay out of repr."""

    username: str
    password: str = field(repr=False)
    identity_token: str = field(default="", repr=False)
