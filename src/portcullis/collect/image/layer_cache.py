"""The content-addressed layer cache: what one layer yields, kept under its diff_id for every later scan.

A layer's scan (its entries, whiteouts, package evidence, binary inventories and secret hits) depends only on
the layer's bytes, the code that reads them and the content limits, so it is stored under the layer's diff_id
(the digest of those bytes) with a key for the other two. Image configs are kept under the image id, which is
their own digest, and checked against it when read.

Nothing read back is trusted blindly: the directory must be a real directory owned by this user and closed to
everyone else (0700), every entry must be a regular file owned by this user, and every entry carries the digest
of its payload, its format and the reader's key; an entry that fails any of these is ignored (and replaced by
the next scan), never used. Entries are written to a private temporary file and renamed into place, so a
reader never sees half an entry.

The cache is bounded: a hit sets its entry's modification time (one utime call), so that time is when the entry was
last used, and after a scan the least recently used entries are removed until the cache is under its size cap.
Two scans may share the cache: an entry another one removed between listing and reading is just a miss.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import ValidationError

from portcullis import __version__
from portcullis.collect.image.assemble import ImageMeta
from portcullis.collect.image.errors import MIB, ImageError, Limits
from portcullis.collect.image.layer import Entry, LayerScan
from portcullis.collect.inventory import Inventory
from portcullis.model.facts import ImageFacts
from portcullis.model.vuln import Package

CACHE_ENV = "PORTCULLIS_CACHE_DIR"
INDEX_DIR = "index"  # under the cache root, beside (never over) the vulnerability database
FORMAT = 1
MAGIC = b"portcullis-layer-cache\n"
MAX_ENTRY_BYTES = 512 * MIB  # a stored entry larger than this is not read: it cannot be one of ours
ENTRY_DIRS = ("layers", "configs", "images")
STALE_INCOMING = 24 * 3600.0  # a temporary file this old is a crashed writer's, not a scan still writing it
DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")
# The modules whose code decides what a layer scan holds: a change to any of them makes older entries foreign.
_READER_MODULES = ("layer.py", "tarwalk.py", "evidence.py", "secrets.py", "streams.py")
# ...and what an image's facts hold besides: how layers are squashed and packages attributed, and the facts' shape.
_IMAGE_MODULES = ("assemble.py", "squash.py", "packages.py", "waste.py")
_MODEL_MODULES = ("facts.py", "layers.py", "vuln.py")


class CacheUnusable(Exception):
    """The cache directory cannot be used safely (owned by someone else, open to others, not a directory)."""


def default_root() -> Path:
    """$PORTCULLIS_CACHE_DIR, else the user's cache directory (platformdirs), the vulnerability database's home."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path(platformdirs.user_cache_dir("portcullis"))


def image_key(limits: Limits) -> str:
    """What besides the layers decides an image's facts: the layer key, the squashing code and the facts' model."""
    digest = hashlib.sha256(reader_key(limits).encode())
    here = Path(__file__).parent
    model = here.parent.parent / "model"
    for path in [*(here / name for name in _IMAGE_MODULES), *(model / name for name in _MODEL_MODULES)]:
        digest.update(path.read_bytes())
    digest.update(repr((limits.max_entries, limits.max_total_bytes)).encode())
    return digest.hexdigest()


def reader_key(limits: Limits) -> str:
    """What besides the bytes decides a scan: the reader's code and version, and the content limits."""
    digest = hashlib.sha256(f"{FORMAT}\0{__version__}\0".encode())
    here = Path(__file__).parent
    for name in _READER_MODULES:
        digest.update((here / name).read_bytes())
    package = here.parent.parent
    for path in [*sorted((package / "collect" / "inventory").glob("*.py")), package / "model" / "redaction.py"]:
        digest.update(path.read_bytes())
    content_limits = (
        limits.max_file_bytes,
        limits.content_file_bytes,
        limits.content_read_bytes,
        limits.package_file_bytes,
    )
    digest.update(repr(content_limits).encode())
    return digest.hexdigest()


@dataclass
class CacheStats:
    images: int = 0  # whole images answered from the cache (their layers not even looked up)
    hits: int = 0
    misses: int = 0
    written: int = 0
    rejected: list[str] = field(default_factory=list)  # "<entry>: <why>", each entry ignored

    def touched(self) -> bool:
        return bool(self.images or self.hits or self.misses or self.written or self.rejected)

    def line(self) -> str:
        text = f"layer cache: {self.hits} hit, {self.misses} missed, {self.written} written"
        if self.images:
            text += f"; {self.images} whole image{'s' if self.images > 1 else ''} from the cache"
        if self.rejected:
            text += f", {len(self.rejected)} ignored ({self.rejected[0]}{', …' if len(self.rejected) > 1 else ''})"
        return text


class LayerCache:
    """Layer scans by diff_id and image configs by image id, under `root/index`."""

    def __init__(self, root: Path, limits: Limits) -> None:
        self.root = root
        self.index = root / INDEX_DIR
        self.key = reader_key(limits)
        self.facts_key = image_key(limits)
        self.stats = CacheStats()
        self._decoded: dict[str, dict[str, Any]] = {}  # payloads already read in this process, by diff_id
        for directory in (root, self.index, self.index / "layers", self.index / "configs", self.index / "images"):
            _private_directory(directory)

    # --- layers ---

    def layer(self, diff_id: str) -> LayerScan | None:
        """A fresh LayerScan for `diff_id` (callers mutate entries as they squash), or None: scan the layer."""
        payload = self._decoded.get(diff_id)
        if payload is not None:
            self.stats.hits += 1
            return _scan_from(payload, diff_id)
        found = self._read_layer(diff_id)
        if found is None:
            self.stats.misses += 1
            return None
        self._decoded[diff_id], scan = found
        self.stats.hits += 1
        return scan

    def layers(self, diff_ids: list[str], limits: Limits) -> list[LayerScan] | None:
        """Every layer of an image, or None as soon as one is missing; the image's limits hold as if read."""
        scans = []
        for diff_id in diff_ids:
            scan = self.layer(diff_id)
            if scan is None:
                return None
            if len(scan.entries) > limits.max_entries:
                raise ImageError(f"layer {diff_id[:19]} holds more than {limits.max_entries} entries")
            scans.append(scan)
        if sum(scan.size for scan in scans) > limits.max_total_bytes:
            raise ImageError(f"the image expands beyond the limit of {limits.max_total_bytes} bytes")
        return scans

    def keep_layer(self, scan: LayerScan) -> None:
        """Store a scan under the diff_id its bytes hashed to (never one a document claimed)."""
        if not DIGEST.match(scan.diff_id) or scan.unread:
            return  # a root directory's synthetic id, or a partial read: nothing to reuse
        payload = _payload_of(scan)
        body = zlib.compress(json.dumps(payload, separators=(",", ":")).encode(), 1)
        self._write(self._layer_path(scan.diff_id), scan.diff_id, body)
        self._decoded[scan.diff_id] = payload
        self.stats.written += 1

    def _read_layer(self, diff_id: str) -> tuple[dict[str, Any], LayerScan] | None:
        if not DIGEST.match(diff_id):
            return None
        body = self._read(self._layer_path(diff_id), diff_id)
        if body is None:
            return None
        try:
            payload = json.loads(zlib.decompressobj().decompress(body, MAX_ENTRY_BYTES))
            return payload, _scan_from(payload, diff_id)  # every field must have the shape the reader expects
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, zlib.error, ValidationError) as exc:
            self._reject(diff_id, f"malformed payload ({type(exc).__name__})")
            return None

    def _layer_path(self, diff_id: str) -> Path:
        return self.index / "layers" / diff_id.removeprefix("sha256:")

    # --- image configs ---

    def config(self, image_id: str) -> bytes | None:
        """The config whose digest is `image_id`, checked against it; None when not kept (or not intact)."""
        if not DIGEST.match(image_id):
            return None
        data = self._read(self.index / "configs" / image_id.removeprefix("sha256:"), image_id)
        if data is not None and "sha256:" + hashlib.sha256(data).hexdigest() != image_id:
            self._reject(image_id, "config does not hash to its image id")
            return None
        return data

    def keep_config(self, data: bytes) -> None:
        image_id = "sha256:" + hashlib.sha256(data).hexdigest()
        self._write(self.index / "configs" / image_id.removeprefix("sha256:"), image_id, data)

    # --- whole images: the facts an image's config and layers yield, by its config digest ---

    def image(self, config_digest: str, meta: ImageMeta) -> ImageFacts | None:
        """The facts kept for this config (which names every layer by diff_id), under `meta`'s names; or None."""
        if not DIGEST.match(config_digest):
            return None
        body = self._read(self.index / "images" / config_digest.removeprefix("sha256:"), config_digest, self.facts_key)
        if body is None:
            return None
        try:
            kept = ImageFacts.model_validate_json(zlib.decompressobj().decompress(body, MAX_ENTRY_BYTES))
        except (ValueError, zlib.error) as exc:  # pydantic's ValidationError is a ValueError
            self._reject(config_digest, f"malformed image facts ({type(exc).__name__})")
            return None
        self.stats.images += 1
        return _named(kept, meta, config_digest)

    def keep_image(self, config_digest: str, facts: ImageFacts) -> None:
        if not DIGEST.match(config_digest) or facts.content is None or facts.content.unread:
            return
        body = zlib.compress(facts.model_dump_json(by_alias=True).encode(), 1)
        self._write(self.index / "images" / config_digest.removeprefix("sha256:"), config_digest, body, self.facts_key)

    # --- entries on disk ---

    def _read(self, path: Path, name: str, key: str = "") -> bytes | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._reject(name, f"cannot open ({exc.strerror})")
            return None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                self._reject(name, "not a regular file")
                return None
            if info.st_uid != os.geteuid():
                self._reject(name, f"written by uid {info.st_uid}, not this user")
                return None
            if info.st_size > MAX_ENTRY_BYTES:
                self._reject(name, "larger than any entry this cache writes")
                return None
            data = handle.read(MAX_ENTRY_BYTES + 1)
        head, newline, rest = data[len(MAGIC) :].partition(b"\n")
        if not data.startswith(MAGIC) or not newline:
            self._reject(name, "not a cache entry")
            return None
        try:
            header = json.loads(head)
        except ValueError:
            self._reject(name, "unreadable header")
            return None
        if not isinstance(header, dict) or header.get("key") != (key or self.key) or header.get("name") != name:
            return None  # written by another version of the reader, or for other limits: foreign, rebuilt
        if header.get("sha256") != hashlib.sha256(rest).hexdigest():
            self._reject(name, "checksum mismatch (corrupt)")
            return None
        with contextlib.suppress(OSError):  # the entry's last use, for eviction; a read-only cache still reads
            os.utime(path, follow_symlinks=False)
        return rest

    def _write(self, path: Path, name: str, body: bytes, key: str = "") -> None:
        header = json.dumps({"name": name, "key": key or self.key, "sha256": hashlib.sha256(body).hexdigest()})
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")  # 0600, this user's
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(MAGIC + header.encode() + b"\n" + body)
            os.replace(temporary, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def _reject(self, name: str, why: str) -> None:
        self.stats.rejected.append(f"{name[:19]}: {why}")

    def trim(self, max_bytes: int) -> tuple[int, int]:
        """Remove the least recently used entries until the cache holds at most `max_bytes`; (files, bytes)."""
        return evict(self.root, max_bytes=max_bytes)


def open_cache(root: Path | None, limits: Limits) -> LayerCache:
    """The cache under `root` (default: default_root()); raises CacheUnusable with the reason."""
    return LayerCache(root or default_root(), limits)


def _index_of(root: Path | None) -> Path | None:
    """The index under `root` (default: default_root()), None when there is none yet."""
    root = root or default_root()
    if root.exists() and not root.is_dir():
        raise CacheUnusable(f"{root} is not a directory")
    index = root / INDEX_DIR
    if not index.exists():
        return None
    _private_directory(index, create=False)
    return index


@dataclass(frozen=True)
class Kept:
    path: Path
    size: int
    used: float  # the modification time: when the entry was written or last read


def entries(index: Path) -> list[Kept]:
    """The entries under `index`, least recently used first; one that goes while listed is left out. A crashed
    writer's old temporary file counts as an entry (it takes room); a scan's fresh one does not."""
    found = []
    stale_before = time.time() - STALE_INCOMING
    for kind in ENTRY_DIRS:
        try:
            names = os.listdir(index / kind)
        except FileNotFoundError:
            continue
        for name in names:
            path = index / kind / name
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(info.st_mode) or (name.startswith(".incoming-") and info.st_mtime > stale_before):
                continue
            found.append(Kept(path, info.st_size, info.st_mtime))
    found.sort(key=lambda kept: kept.used)
    return found


def remove_entries(doomed: list[Kept]) -> tuple[int, int]:
    """Remove `doomed`, skipping what has gone already; (files, bytes) this call removed."""
    files = size = 0
    for kept in doomed:
        try:
            kept.path.unlink()
        except FileNotFoundError:
            continue  # another scan evicted it first
        files += 1
        size += kept.size
    return files, size


def evict(
    root: Path | None = None, *, max_bytes: int | None = None, older_than: float | None = None
) -> tuple[int, int]:
    """Remove the entries not used for `older_than` seconds, then the least recently used ones until at most
    `max_bytes` are kept; (files, bytes) removed. The database beside the index is left alone."""
    index = _index_of(root)
    if index is None:
        return 0, 0
    kept = entries(index)
    doomed: list[Kept] = []
    if older_than is not None:
        cutoff = time.time() - older_than
        doomed = [k for k in kept if k.used < cutoff]
        kept = kept[len(doomed) :]  # sorted by use: the old ones are the first
    if max_bytes is not None:
        total = sum(k.size for k in kept)
        for k in kept:
            if total <= max_bytes:
                break
            doomed.append(k)
            total -= k.size
    return remove_entries(doomed)


def clean(root: Path | None = None) -> tuple[int, int]:
    """Remove every cached layer and config under `root`; returns (files, bytes). The database is left alone."""
    index = _index_of(root)
    if index is None:
        return 0, 0
    files = size = 0
    for path in _walk(index):
        with contextlib.suppress(FileNotFoundError):
            size += path.lstat().st_size
            files += 1
    shutil.rmtree(index, ignore_errors=True)  # a scan writing meanwhile may recreate a directory: it is only a miss
    return files, size


def usage(root: Path | None = None) -> tuple[Path, int, int, int, int]:
    """(the cache root, layers kept, configs kept, whole images kept, bytes on disk)."""
    root = root or default_root()
    if root.exists() and not root.is_dir():
        raise OSError(f"{root} is not a directory")
    index = root / INDEX_DIR
    counts = dict.fromkeys(ENTRY_DIRS, 0)
    size = 0
    if index.is_dir():
        for path in _walk(index):
            with contextlib.suppress(FileNotFoundError):  # evicted by a scan while counted
                size += path.lstat().st_size
                if path.parent.name in counts:
                    counts[path.parent.name] += 1
    return root, counts["layers"], counts["configs"], counts["images"], size


def _walk(directory: Path) -> Iterator[Path]:
    for dirpath, _, filenames in os.walk(directory):
        for name in filenames:
            yield Path(dirpath) / name


def _private_directory(path: Path, create: bool = True) -> None:
    """Make sure `path` is a directory of this user's that nobody else can read or write."""
    if create:
        try:
            path.mkdir(mode=0o700, exist_ok=True)
        except FileExistsError:
            raise CacheUnusable(f"{path} is not a directory") from None
        except OSError as exc:
            raise CacheUnusable(f"cannot create {path}: {exc.strerror}") from None
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise CacheUnusable(f"{path} is not a directory (a symlink?)")
    if info.st_uid != os.geteuid():
        raise CacheUnusable(f"{path} belongs to uid {info.st_uid}, not this user")
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)  # our own directory, made private before anything is read from or written to it


# --- the payload: a LayerScan as plain JSON (no pickle: a cache file must never be able to run code) ---


def _named(kept: ImageFacts, meta: ImageMeta, config_digest: str) -> ImageFacts:
    """Kept facts under the names this read found them by: tags, digests, source and reference are not content."""
    content = kept.content
    if content is not None:
        content = content.model_copy(update={"source": meta.source, "reference": meta.reference})
    return kept.model_copy(
        update={
            "id": meta.image_id or config_digest,
            "repo_tags": meta.repo_tags,
            "repo_digests": meta.repo_digests,
            "content": content,
        }
    )


def _payload_of(scan: LayerScan) -> dict[str, Any]:
    return {
        "entries": [(e.path, e.kind, e.mode, e.size, e.link, e.secret) for e in scan.entries],
        "whiteouts": scan.whiteouts,
        "opaque_dirs": scan.opaque_dirs,
        "unsafe": scan.unsafe,
        "size": scan.size,
        "package_files": {path: base64.b64encode(data).decode() for path, data in scan.package_files.items()},
        "binary_inventories": {
            path: {"packages": [p.model_dump(mode="json") for p in found.packages], "skipped": found.skipped}
            for path, found in scan.binary_inventories.items()
        },
    }


def _scan_from(payload: dict[str, Any], diff_id: str) -> LayerScan:
    entries = [
        Entry(str(path), str(kind), int(mode), int(size), str(link), None if secret is None else str(secret))
        for path, kind, mode, size, link, secret in payload["entries"]
    ]
    return LayerScan(
        entries=entries,
        whiteouts=[str(path) for path in payload["whiteouts"]],
        opaque_dirs=[str(path) for path in payload["opaque_dirs"]],
        unsafe=[(str(name), str(why)) for name, why in payload["unsafe"]],
        diff_id=diff_id,
        size=int(payload["size"]),
        package_files={
            str(path): base64.b64decode(text, validate=True) for path, text in payload["package_files"].items()
        },
        binary_inventories={
            str(path): Inventory(
                packages=[Package.model_validate(p) for p in found["packages"]],
                skipped=[str(s) for s in found["skipped"]],
            )
            for path, found in payload["binary_inventories"].items()
        },
    )
