"""One pass over one layer: a streaming tar walk that records metadata and sniffs small files for secrets.

Nothing is written to disk. Member names are normalised and anything that could not be applied
safely ('..' or absolute names, hardlinks leaving the tree, device nodes, oversized members) is
skipped and recorded as an unsafe entry, so the rules can report it.
"""

from __future__ import annotations

import dataclasses
import posixpath
from dataclasses import dataclass, field

from portcullis.collect.image import evidence, secrets, tarwalk
from portcullis.collect.image.errors import ImageError, Limits
from portcullis.collect.image.streams import READ_ERRORS, ForwardReader, HashingReader, Readable, decompressed
from portcullis.collect.image.tarwalk import Member, TarFormatError, TarWalker
from portcullis.collect.inventory import Inventory

FILE, DIR, SYMLINK, HARDLINK, OTHER = "file", "dir", "symlink", "hardlink", "other"
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"


@dataclass(slots=True)
class Entry:
    """A path as one layer wrote it. `path` is relative to the image root, without a leading slash."""

    path: str
    kind: str
    mode: int
    size: int = 0
    link: str = ""  # symlink target as written; hardlink target normalised
    secret: str | None = None
    layer: int = -1  # set when the layer is applied to the squashed view

    def __reduce__(self) -> tuple[type[Entry], tuple[str, str, int, int, str, str | None, int]]:
        # A forked scanner sends thousands of these back (layer_pool): as constructor arguments they pickle several
        # times faster than through the slots dataclass's generic state
        return Entry, (self.path, self.kind, self.mode, self.size, self.link, self.secret, self.layer)


@dataclass
class LayerScan:
    entries: list[Entry] = field(default_factory=list)
    whiteouts: list[str] = field(default_factory=list)  # paths this layer deletes from lower layers
    opaque_dirs: list[str] = field(default_factory=list)  # dirs whose lower-layer content this layer hides
    unsafe: list[tuple[str, str]] = field(default_factory=list)  # (member name, why it was skipped)
    unread: list[tuple[str, str]] = field(default_factory=list)  # (path, why): a root directory's unreadable parts
    diff_id: str = ""  # sha256 of the uncompressed tar
    digest: str = ""  # sha256 of the blob as stored (compressed)
    compression: str = "none"
    size: int = 0  # uncompressed bytes
    package_files: dict[str, bytes] = field(default_factory=dict)  # package evidence, read whole (see packages)
    binary_inventories: dict[str, Inventory] = field(default_factory=dict)  # packages proved by binaries, archives

    def for_another_image(self) -> LayerScan:
        """A copy whose entries a second image can squash: applying a layer rewrites its entries' paths."""
        entries = [Entry(e.path, e.kind, e.mode, e.size, e.link, e.secret) for e in self.entries]
        return dataclasses.replace(self, entries=entries)


def normalise(name: str) -> str | None:
    """The member path relative to the root, '' for the root itself, None when it is absolute or escapes."""
    if name.startswith("/"):
        return None
    trimmed = name[:-1] if name.endswith("/") else name  # layer tars write directories with a trailing slash
    if trimmed and not trimmed.endswith("/") and "//" not in trimmed and "/." not in "/" + trimmed:
        return trimmed  # no empty, '.' or '..' component: already normal (most names; normpath is slower)
    clean = posixpath.normpath(name)
    if clean == ".":
        return ""
    if clean == ".." or clean.startswith("../"):
        return None
    return clean


def escapes_root(parent: str, target: str) -> bool:
    """Whether a relative symlink target climbs above the root when followed from `parent`."""
    if target.startswith("/"):
        return False
    depth = parent.count("/") + 1 if parent else 0
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def scan_layer(raw: Readable, limits: Limits, byte_budget: int, what: str) -> LayerScan:
    """Walk one layer blob (gzip, zstd or plain tar) once; digests cover every byte read."""
    stored = HashingReader(raw, what=what)
    compression = "none"
    try:
        head = ForwardReader(stored)
        plain, compression = decompressed(head)
        if compression == "none":  # the blob is the tar: one reader hashes (digest = diff_id) and counts
            stored.limit, counted, source = byte_budget, stored, head
        else:
            counted = HashingReader(plain, limit=byte_budget, what=what)
            source = ForwardReader(counted)
        scan = LayerScan(compression=compression)
        walker = TarWalker(source)
        for member in walker:
            _record(walker, member, scan, limits)
            if len(scan.entries) > limits.max_entries:
                raise ImageError(f"{what} holds more than {limits.max_entries} entries")
        if not scan.entries and not walker.ended_cleanly and counted.count == 0:
            raise ImageError(f"{what} is not a readable tar archive (empty)")
        counted.drain()
        stored.drain()
    except ImageError:
        raise
    except TarFormatError as exc:
        raise ImageError(f"{what} is not a readable tar archive ({exc})") from None
    except READ_ERRORS as exc:
        raise ImageError(f"{what} is truncated or corrupt ({compression}: {exc})") from None
    scan.digest, scan.diff_id, scan.size = stored.digest, counted.digest, counted.count
    return scan


def _record(walker: TarWalker, member: Member, scan: LayerScan, limits: Limits) -> None:
    path = normalise(member.name)
    if path is None:
        scan.unsafe.append((member.name, "absolute or '..' member name"))
        return
    if not path:
        return  # the root directory itself
    parent, _, base = path.rpartition("/")
    if base.startswith(WHITEOUT_PREFIX):
        if base == OPAQUE_MARKER:
            scan.opaque_dirs.append(parent)
        elif not base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):  # other .wh..wh. names are aufs metadata
            scan.whiteouts.append(posixpath.join(parent, base[len(WHITEOUT_PREFIX) :]))
        return
    mode = member.mode & 0o7777
    kind = member.type
    if member.is_regular():
        size = member.size
        if size > limits.max_file_bytes:
            scan.unsafe.append(("/" + path, f"declares {size} bytes, over the per-file limit"))
            return
        head: bytes | None
        if member.sparse:
            head = None  # holes and data need a map to put together: the content is not readable in one pass
        elif size == 0:
            head = b""
        elif size <= limits.package_file_bytes and evidence.is_evidence(path) and evidence.within_bound(path, size):
            whole = walker.read(size)
            scan.package_files[path] = whole
            head = whole[: limits.content_read_bytes]
        elif size <= limits.package_file_bytes and evidence.wants_binary(path, mode):
            whole = walker.read(size)
            found = evidence.binary_inventory(path, whole)
            if found is not None:
                scan.binary_inventories[path] = found
            head = whole[: limits.content_read_bytes] if size <= limits.content_file_bytes else None
        else:
            head = walker.read(limits.content_read_bytes) if size <= limits.content_file_bytes else None
        secret = secrets.classify(path, head) if head is not None else secrets.path_kind(path)
        scan.entries.append(Entry(path, FILE, mode, size, secret=secret))
    elif kind == tarwalk.DIRECTORY:
        scan.entries.append(Entry(path, DIR, mode))
    elif kind == tarwalk.SYMLINK:
        if escapes_root(parent, member.linkname):
            scan.unsafe.append(
                ("/" + path, f"symlink to {member.linkname!r} climbs above the root (kept, resolved inside)")
            )
        scan.entries.append(Entry(path, SYMLINK, mode, link=member.linkname))
    elif kind == tarwalk.HARDLINK:
        target = normalise(member.linkname)
        if not target:
            scan.unsafe.append(("/" + path, f"hardlink to {member.linkname!r} leaves the image"))
            return
        scan.entries.append(Entry(path, HARDLINK, mode, link=target))
    elif kind in (tarwalk.CHAR_DEVICE, tarwalk.BLOCK_DEVICE):
        scan.unsafe.append(("/" + path, f"device node {member.devmajor}:{member.devminor}"))
    else:
        scan.entries.append(Entry(path, OTHER, mode))
