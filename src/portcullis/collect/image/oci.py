"""Images addressed by content digest: OCI layouts (directory or tar) and, through the same walk, registries.

Every blob is named by a validated digest, so a hostile index or manifest cannot name a path:
it can only name a blob, and each blob is checked against its digest while it is read.
"""

from __future__ import annotations

import hashlib
import os
import re
import tarfile
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, cast

from portcullis.collect.files import open_regular
from portcullis.collect.image.assemble import ImageMeta, config_diff_ids, image_facts, parse_json
from portcullis.collect.image.errors import ImageError, Limits
from portcullis.collect.image.layer import normalise
from portcullis.collect.image.layer_pool import LayerJob, scan_layers
from portcullis.collect.image.platforms import Platform, select_manifest
from portcullis.collect.image.streams import MemberReader, read_exactly
from portcullis.model.facts import ImageFacts

if TYPE_CHECKING:
    from portcullis.collect.image.layer_cache import LayerCache

DIGEST = re.compile(r"^(sha256):([a-f0-9]{64})$")
INDEX_TYPES = frozenset(
    {"application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"}
)
MAX_INDEX_DEPTH = 4


class BlobStore(Protocol):
    # Whether open_blob works the same from a forked child (files opened by path or read by offset), so layers
    # may be scanned two at a time; a network stream may not.
    forkable: bool

    def open_blob(self, digest: str) -> IO[bytes]: ...


def check_digest(digest: Any) -> tuple[str, str]:
    match = DIGEST.match(digest) if isinstance(digest, str) else None
    if match is None:
        raise ImageError(f"{digest!r} is not a sha256 digest")
    return match.group(1), match.group(2)


def verified_bytes(data: bytes, digest: str, what: str) -> bytes:
    algorithm, hexdigest = check_digest(digest)
    actual = hashlib.new(algorithm, data).hexdigest()
    if actual != hexdigest:
        raise ImageError(f"{what}: content digest {algorithm}:{actual} does not match {digest}")
    return data


def read_document(store: BlobStore, digest: str, limits: Limits, what: str) -> tuple[dict[str, Any], bytes]:
    check_digest(digest)
    with store.open_blob(digest) as handle:
        data = read_exactly(handle, limits.max_json_bytes + 1)
    if len(data) > limits.max_json_bytes:
        raise ImageError(f"{what} {digest} is over the {limits.max_json_bytes}-byte metadata limit")
    verified_bytes(data, digest, what)
    return parse_json(data, f"{what} {digest}"), data


def is_index(document: dict[str, Any]) -> bool:
    return document.get("mediaType") in INDEX_TYPES or (
        "manifests" in document and "layers" not in document and "config" not in document
    )


def resolve_manifest(
    store: BlobStore, document: dict[str, Any], platform: Platform | None, ref_name: str, limits: Limits, what: str
) -> tuple[dict[str, Any], str]:
    """Follow indexes down to one image manifest; returns it and its digest ('' when given directly)."""
    digest = ""
    for _ in range(MAX_INDEX_DEPTH):
        if not is_index(document):
            return document, digest
        descriptor = select_manifest(document, platform, ref_name, what)
        ref_name = ""  # names apply to the top-level index only
        digest = descriptor["digest"]
        document, _ = read_document(store, digest, limits, "manifest")
    raise ImageError(f"{what}: indexes nest deeper than {MAX_INDEX_DEPTH} levels")


def read_image(
    store: BlobStore, manifest: dict[str, Any], meta: ImageMeta, limits: Limits, cache: LayerCache | None = None
) -> ImageFacts:
    """The image a manifest describes; layers the cache holds (by the config's diff_ids) are not fetched."""
    config_desc = manifest.get("config")
    layers = manifest.get("layers")
    if not isinstance(config_desc, dict) or not isinstance(layers, list):
        raise ImageError("the image manifest has no config or no layers list")
    config_digest = str(config_desc.get("digest"))
    whole = cache.image(config_digest, meta) if cache is not None else None
    if whole is not None:
        return whole
    kept = cache.config(config_digest) if cache is not None else None
    if kept is not None:
        config = parse_json(kept, f"config {config_digest}")
    else:
        config, config_bytes = read_document(store, config_digest, limits, "config")
        if cache is not None:
            cache.keep_config(config_bytes)
    diff_ids = config_diff_ids(config, "the image config")
    digests = []
    for descriptor in layers:
        digest = descriptor.get("digest") if isinstance(descriptor, dict) else None
        check_digest(digest)
        digests.append(str(digest))
    jobs = [
        LayerJob(
            partial(store.open_blob, digest),
            _declared_size(descriptor),
            f"layer {index} ({digest[:19]})",
            diff_ids[index] if len(diff_ids) == len(digests) else "",
        )
        for index, (digest, descriptor) in enumerate(zip(digests, layers, strict=True))
    ]
    scans = scan_layers(jobs, limits, parallel=store.forkable, cache=cache)
    for index, (digest, scan) in enumerate(zip(digests, scans, strict=True)):
        if scan.digest and scan.digest != digest:  # a cached scan was not read: its blob was not fetched
            raise ImageError(f"layer {index}: blob digest {scan.digest} does not match the manifest's {digest}")
    meta.image_id = meta.image_id or str(config_digest)
    facts = image_facts(meta, config, str(config_digest), scans, limits)
    if cache is not None:
        cache.keep_image(config_digest, facts)
    return facts


def _declared_size(descriptor: Any) -> int:
    size = descriptor.get("size") if isinstance(descriptor, dict) else None
    return size if isinstance(size, int) and size >= 0 else 0  # only balances the work; never trusted as a bound


# --- OCI image layouts --------------------------------------------------------------------------------


class LayoutDirectory:
    """blobs/<alg>/<hex> under a directory; a blob path that resolves outside it is refused."""

    forkable = True

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def read_file(self, name: str, limits: Limits) -> bytes:
        path = self._inside(self.root / name, name)
        try:
            with open_regular(path, ImageError) as handle:
                data = read_exactly(handle, limits.max_json_bytes + 1)
        except OSError as exc:
            raise ImageError(f"cannot read {name} in the OCI layout {self.root}: {exc.strerror}") from None
        if len(data) > limits.max_json_bytes:
            raise ImageError(f"{name} is over the {limits.max_json_bytes}-byte metadata limit")
        return data

    def open_blob(self, digest: str) -> IO[bytes]:
        algorithm, hexdigest = check_digest(digest)
        name = f"blobs/{algorithm}/{hexdigest}"
        path = self._inside(self.root / name, name)
        if not path.exists():
            raise ImageError(f"blob {digest} is missing from the OCI layout")
        return open_regular(path, ImageError)

    def _inside(self, path: Path, name: str) -> Path:
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(self.root):
            raise ImageError(f"{name} in the OCI layout points outside it")
        return real


class LayoutArchive:
    """An OCI layout inside a tar: members looked up by name, regular files only, read by offset."""

    forkable = True

    def __init__(self, path: Path) -> None:
        self.file = open_regular(path, ImageError)  # kept open for blob reads, closed by close()
        try:
            with tarfile.open(fileobj=self.file, mode="r:") as tar:
                members = tar.getmembers()
        except (OSError, tarfile.TarError) as exc:
            self.file.close()
            raise ImageError(f"{path} is not a readable tar archive ({exc})") from None
        self.members: dict[str, tarfile.TarInfo] = {}
        for member in members:
            name = normalise(member.name)
            if name and member.isreg():
                self.members[name] = member

    def close(self) -> None:
        self.file.close()

    def read_file(self, name: str, limits: Limits) -> bytes:
        member = self.members.get(name)
        if member is None:
            raise ImageError(f"the OCI archive has no {name}")
        if member.size > limits.max_json_bytes:
            raise ImageError(f"{name} is over the {limits.max_json_bytes}-byte metadata limit")
        return self._open(member).read()

    def open_blob(self, digest: str) -> IO[bytes]:
        algorithm, hexdigest = check_digest(digest)
        member = self.members.get(f"blobs/{algorithm}/{hexdigest}")
        if member is None:
            raise ImageError(f"blob {digest} is missing from the OCI archive")
        return self._open(member)

    def _open(self, member: tarfile.TarInfo) -> IO[bytes]:
        if member.sparse is not None:
            raise ImageError(f"{member.name} in the OCI archive is a sparse file")
        return cast(IO[bytes], MemberReader(self.file.fileno(), member.offset_data, member.size))


def read_layout(
    layout: LayoutDirectory | LayoutArchive,
    meta: ImageMeta,
    platform: Platform | None,
    ref_name: str,
    limits: Limits,
    cache: LayerCache | None = None,
) -> ImageFacts:
    index = parse_json(layout.read_file("index.json", limits), "index.json")
    manifest, _ = resolve_manifest(layout, index, platform, ref_name, limits, "index.json")
    return read_image(layout, manifest, meta, limits, cache)
