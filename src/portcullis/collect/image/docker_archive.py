"""`docker save` tarballs, read in one forward pass: from a file or straight from the Engine API's export stream.

The save format puts manifest.json last, so layers are scanned as they stream past and put in order
once the manifest arrives. Only names the manifest lists are used; a name that is absolute, climbs
with '..' or is simply absent from the archive is an error, never a path on the host.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import tarfile
from dataclasses import replace
from functools import partial
from typing import IO, TYPE_CHECKING, Any

from portcullis.collect.image.assemble import ImageMeta, config_diff_ids, image_facts, parse_json
from portcullis.collect.image.errors import ImageError, Limits
from portcullis.collect.image.layer import LayerScan, normalise, scan_layer
from portcullis.collect.image.layer_pool import LayerJob, scan_layers
from portcullis.collect.image.streams import CHUNK, READ_ERRORS, HashingReader, MemberReader, buffered
from portcullis.model.facts import ImageFacts

if TYPE_CHECKING:
    from portcullis.collect.image.layer_cache import LayerCache

_METADATA_NAMES = ("manifest.json", "repositories", "oci-layout", "index.json")


def _is_metadata(name: str) -> bool:
    return name in _METADATA_NAMES or name.endswith((".json", "/json", "/VERSION"))


class _ArchiveContent:
    def __init__(self) -> None:
        self.documents: dict[str, bytes] = {}
        self.layers: dict[str, LayerScan] = {}
        self.aliases: dict[str, str] = {}
        self.used = 0

    def find(self, name: str) -> str:
        seen = 0
        while name in self.aliases and seen < 8:
            name, seen = self.aliases[name], seen + 1
        return name


def read_docker_archive(
    stream: IO[bytes], meta: ImageMeta, limits: Limits, cache: LayerCache | None = None
) -> ImageFacts:
    """The archive's first image."""
    content = _read_archive(stream, meta.reference, limits, cache)
    return _assemble(content, _manifest(content, meta.reference)[0], meta, limits, cache)


def read_docker_archive_images(
    stream: IO[bytes], metas: list[ImageMeta], what: str, limits: Limits, cache: LayerCache | None = None
) -> list[ImageFacts]:
    """Every image `metas` names by id (a config digest), from one archive of several (`docker save A B`)."""
    content = _read_archive(stream, what, limits, cache)
    by_config: dict[str, dict[str, Any]] = {}
    for listed in _manifest(content, what):
        name = _manifest_path(content, listed.get("Config"), "Config")
        config = content.documents.get(name)
        if config is not None:
            by_config["sha256:" + hashlib.sha256(config).hexdigest()] = listed
    images = []
    for meta in metas:
        entry = by_config.get(meta.image_id)
        if entry is None:
            raise ImageError(f"{what} has no image {meta.image_id[:19]} ({meta.reference})")
        images.append(_assemble(content, entry, meta, limits, cache, shared=len(metas) > 1))
    return images


def _read_archive(stream: IO[bytes], what: str, limits: Limits, cache: LayerCache | None) -> _ArchiveContent:
    content = _ArchiveContent()
    try:
        # A file can seek: its layers are listed first, then read by offset, two at a time where there are CPUs
        # for it (and not at all when the cache holds them). The Engine API's export stream is made to look
        # seekable, forward only; its layers are read as they pass.
        seekable = stream.seekable()
        source = stream if seekable else buffered(HashingReader(stream, hashing=False), 2 * CHUNK)
        later: list[tuple[str, LayerJob]] | None = [] if seekable else None
        with tarfile.open(fileobj=source, mode="r:") as outer:
            while (member := outer.next()) is not None:
                _take(member, content, limits, stream.fileno() if seekable else source, later, cache)
                outer.members.clear()  # type: ignore[attr-defined]
        if later:
            expected = _expected_diff_ids(content)
            jobs = [replace(job, diff_id=expected.get(name, "")) for name, job in later]
            for (name, _), scan in zip(later, scan_layers(jobs, limits, cache=cache), strict=True):
                if scan.digest:  # a cached scan was not read here: there is no blob to check
                    _check_blob_name(name, scan.digest)
                content.layers[name] = scan
    except ImageError:
        raise
    except tarfile.ReadError as exc:
        raise ImageError(f"{what} is not a readable docker-archive tar ({exc or 'empty'})") from None
    except READ_ERRORS as exc:
        raise ImageError(f"{what} is truncated or corrupt ({exc})") from None
    return content


def _expected_diff_ids(content: _ArchiveContent) -> dict[str, str]:
    """Layer member name -> the diff_id its image's config gives it, for the cache; what cannot be paired is left
    out here and reported by _assemble."""
    expected: dict[str, str] = {}
    try:
        entries = _manifest(content, "the archive")
    except ImageError:
        return expected
    for entry in entries:
        config = content.documents.get(content.find(normalise(str(entry.get("Config"))) or ""))
        layers = entry.get("Layers")
        if config is None or not isinstance(layers, list):
            continue
        try:
            diff_ids = config_diff_ids(parse_json(config, "config"), "config")
        except ImageError:
            continue
        for value, diff_id in zip(layers, diff_ids, strict=False):
            name = normalise(value) if isinstance(value, str) else None
            if name:
                expected[content.find(name)] = diff_id
    return expected


def _take(
    member: tarfile.TarInfo,
    content: _ArchiveContent,
    limits: Limits,
    data: IO[bytes] | int,
    later: list[tuple[str, LayerJob]] | None,
    cache: LayerCache | None,
) -> None:
    """Keep a metadata document, scan a layer now (a stream), or list it for `scan_layers` (a file: `later`)."""
    name = normalise(member.name)
    if not name:
        return  # hostile names are never looked up, so they are never used
    if member.issym() or member.islnk():  # `docker save` links a layer shared by two images
        base = posixpath.dirname(name) if member.issym() else ""
        target = normalise(posixpath.join(base, member.linkname))
        if target:
            content.aliases[name] = target
        return
    if not member.isreg() or member.sparse is not None:
        return
    handle = _member_reader(data, member)
    if _is_metadata(name):
        if member.size > limits.max_json_bytes:
            raise ImageError(f"{name} is {member.size} bytes, over the {limits.max_json_bytes}-byte metadata limit")
        content.documents[name] = handle.read()
        return
    first = os.pread(data, 1, member.offset_data) if isinstance(data, int) else handle.peek(1)[:1]
    if first == b"{" and member.size <= limits.max_json_bytes:  # OCI-style saves keep configs in blobs/
        content.documents[name] = handle.read()
        return
    if later is not None:
        job = LayerJob(partial(MemberReader, data, member.offset_data, member.size), member.size, f"layer {name}")
        later.append((name, job))
        return
    scan = scan_layer(handle, limits, limits.max_total_bytes - content.used, f"layer {name}")
    _check_blob_name(name, scan.digest)
    if cache is not None:
        cache.keep_layer(scan)
    content.used += scan.size
    content.layers[name] = scan


def _member_reader(data: IO[bytes] | int, member: tarfile.TarInfo) -> io.BufferedReader:
    return buffered(MemberReader(data, member.offset_data, member.size), CHUNK + 1)  # > the hasher's reads


def _check_blob_name(name: str, digest: str) -> None:
    """Content-addressed names (blobs/sha256/<hex>) must match what was read."""
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == "blobs" and parts[1] == "sha256" and digest != "sha256:" + parts[2]:
        raise ImageError(f"{name}: content digest {digest} does not match its name")


def _manifest_path(content: _ArchiveContent, value: Any, what: str) -> str:
    name = normalise(value) if isinstance(value, str) else None
    if not name:
        raise ImageError(f"manifest.json: {what} {value!r} points outside the archive")
    return content.find(name)


def _manifest(content: _ArchiveContent, what: str) -> list[dict[str, Any]]:
    raw_manifest = content.documents.get("manifest.json")
    if raw_manifest is None:
        raise ImageError(f"{what} has no manifest.json: not a `docker save` archive")
    try:
        manifest = json.loads(raw_manifest)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ImageError(f"manifest.json is not valid JSON ({exc})") from None
    if not isinstance(manifest, list) or not manifest or not all(isinstance(entry, dict) for entry in manifest):
        raise ImageError("manifest.json does not list any image")
    return manifest


def _assemble(
    content: _ArchiveContent,
    entry: dict[str, Any],
    meta: ImageMeta,
    limits: Limits,
    cache: LayerCache | None,
    shared: bool = False,
) -> ImageFacts:
    """One image of the archive; `shared`: other images may use its layers too, so squash copies of them."""
    config_name = _manifest_path(content, entry.get("Config"), "Config")
    config_bytes = content.documents.get(config_name)
    if config_bytes is None:
        raise ImageError(f"manifest.json: Config {config_name!r} is not in the archive")
    config = parse_json(config_bytes, f"config {config_name}")
    layer_names = entry.get("Layers")
    if not isinstance(layer_names, list):
        raise ImageError("manifest.json: Layers is not a list")
    scans = []
    for value in layer_names:
        layer_name = _manifest_path(content, value, "layer")
        if layer_name not in content.layers:
            raise ImageError(f"manifest.json: layer {layer_name!r} is not in the archive")
        scan = content.layers[layer_name]
        scans.append(scan.for_another_image() if shared else scan)
    if not meta.repo_tags and isinstance(entry.get("RepoTags"), list):
        meta.repo_tags = [str(t) for t in entry["RepoTags"]]
    digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    facts = image_facts(meta, config, digest, scans, limits)
    if cache is not None:
        cache.keep_config(config_bytes)
        cache.keep_image(digest, facts)
    return facts
