"""rpm inventory: the package database in either container rpm has used for images.

- sqlite `var/lib/rpm/rpmdb.sqlite` (rpm >= 4.16: RHEL 9, Fedora 33+, Rocky/Alma 9, Amazon Linux 2023): each row of
  its `Packages` table is one header blob.
- Berkeley DB hash `var/lib/rpm/Packages` (RHEL/CentOS 7 and 8, UBI 8, Amazon Linux 2): each record's value is one
  header blob, usually on a chain of overflow pages. Read directly from the file's pages, no Berkeley DB library.
The ndb `Packages.db` (SUSE) is not read.

A header blob in rpm's header format: a big-endian index count and data length, then 16-byte index entries (tag,
type, offset, count) and the data store they point into.
"""

from __future__ import annotations

import sqlite3
import struct
from dataclasses import dataclass
from typing import Any

from packageurl import PackageURL

from portcullis.collect.inventory import Inventory
from portcullis.model.licences import UNKNOWN, to_spdx
from portcullis.model.vuln import Ecosystem, OsRelease, Package

RPMDB_SQLITE = "var/lib/rpm/rpmdb.sqlite"
RPMDB_BDB = "var/lib/rpm/Packages"

# Header tags (rpmtag.h) and value types (rpm's header format) that inventory needs.
TAG_NAME, TAG_VERSION, TAG_RELEASE, TAG_EPOCH = 1000, 1001, 1002, 1003
TAG_ARCH, TAG_SOURCERPM, TAG_LICENSE, TAG_VENDOR = 1022, 1044, 1014, 1011
TYPE_INT32, TYPE_STRING, TYPE_STRING_ARRAY, TYPE_I18NSTRING = 4, 6, 8, 9
_WANTED = {TAG_NAME, TAG_VERSION, TAG_RELEASE, TAG_EPOCH, TAG_ARCH, TAG_SOURCERPM, TAG_LICENSE, TAG_VENDOR}
_MAX_INDEX_ENTRIES = 100_000  # rpm's own limit (HEADER_TAGS_MAX is far lower); a bigger count means corruption
_NOT_PACKAGES = {"gpg-pubkey"}  # imported signing keys are stored as pseudo-packages


class RpmHeaderError(ValueError):
    """A header blob that does not follow the format."""


@dataclass(frozen=True)
class RpmHeader:
    name: str
    version: str
    release: str
    epoch: int | None
    arch: str
    source_rpm: str
    license: str
    vendor: str

    @property
    def evr(self) -> str:
        """[epoch:]version-release, the string rpm versions are compared by."""
        prefix = f"{self.epoch}:" if self.epoch is not None else ""
        return f"{prefix}{self.version}-{self.release}"

    @property
    def source_name(self) -> str:
        """The source package name from `name-version-release.src.rpm`; '' when absent."""
        stem = self.source_rpm.removesuffix(".rpm").removesuffix(".src").removesuffix(".nosrc")
        parts = stem.rsplit("-", 2)
        return parts[0] if len(parts) == 3 else ""


def _string_at(store: bytes, offset: int) -> tuple[str, int]:
    end = store.find(b"\0", offset)
    if end < 0:
        raise RpmHeaderError(f"string at offset {offset} is not NUL-terminated")
    return store[offset:end].decode("utf-8", "replace"), end + 1


def parse_header(blob: bytes) -> dict[int, Any]:
    """The tags inventory needs from one header blob: strings, first string of arrays, int32 values."""
    if len(blob) < 8:
        raise RpmHeaderError(f"header of {len(blob)} bytes is shorter than its 8-byte preamble")
    count, data_length = struct.unpack_from(">II", blob, 0)
    index_end = 8 + 16 * count
    if count > _MAX_INDEX_ENTRIES or index_end + data_length > len(blob):
        raise RpmHeaderError(f"header claims {count} entries and {data_length} data bytes but has {len(blob)} bytes")
    store = blob[index_end : index_end + data_length]
    values: dict[int, Any] = {}
    for entry in range(count):
        tag, kind, offset, n = struct.unpack_from(">iIiI", blob, 8 + 16 * entry)
        if tag not in _WANTED:
            continue
        if offset < 0 or offset >= data_length:
            raise RpmHeaderError(f"tag {tag} points outside the data store (offset {offset})")
        if kind in (TYPE_STRING, TYPE_STRING_ARRAY, TYPE_I18NSTRING):
            values[tag] = _string_at(store, offset)[0]  # arrays: the first (untranslated) value is the one we want
        elif kind == TYPE_INT32 and n >= 1:
            if offset + 4 > data_length:
                raise RpmHeaderError(f"tag {tag} int32 runs past the data store")
            values[tag] = struct.unpack_from(">i", store, offset)[0]
    return values


def read_header(blob: bytes) -> RpmHeader:
    values = parse_header(blob)
    if not values.get(TAG_NAME) or not values.get(TAG_VERSION):
        raise RpmHeaderError("header without a name or version")
    epoch = values.get(TAG_EPOCH)
    return RpmHeader(
        name=values[TAG_NAME],
        version=values[TAG_VERSION],
        release=values.get(TAG_RELEASE, ""),
        epoch=epoch if isinstance(epoch, int) else None,
        arch=values.get(TAG_ARCH, ""),
        source_rpm=values.get(TAG_SOURCERPM, ""),
        license=values.get(TAG_LICENSE, ""),
        vendor=values.get(TAG_VENDOR, ""),
    )


def _package(header: RpmHeader, location: str, release: OsRelease | None) -> Package:
    qualifiers = {"arch": header.arch} if header.arch else {}
    if header.epoch is not None:
        qualifiers["epoch"] = str(header.epoch)
    if release and release.version_id:
        qualifiers["distro"] = f"{release.id}-{release.version_id}"
    if header.source_rpm:
        qualifiers["upstream"] = header.source_rpm
    purl = PackageURL(
        type="rpm",
        namespace=release.id if release else None,
        name=header.name,
        version=f"{header.version}-{header.release}" if header.release else header.version,
        qualifiers=qualifiers,
    )
    source = header.source_name
    return Package(
        ecosystem=Ecosystem.RPM,
        name=header.name,
        version=header.evr,
        purl=purl.to_string(),
        arch=header.arch,
        source_name=source if source and source != header.name else "",
        location=location,
        license=to_spdx(header.license) or UNKNOWN,
    )


def _inventory(blobs: list[tuple[int, bytes]], location: str, release: OsRelease | None) -> Inventory:
    inventory = Inventory()
    for number, blob in blobs:
        try:
            header = read_header(blob)
        except RpmHeaderError as exc:
            inventory.skipped.append(f"{location}: header {number}: {exc}")
            continue
        if header.name not in _NOT_PACKAGES:
            inventory.packages.append(_package(header, location, release))
    return inventory


def parse_rpmdb_sqlite(data: bytes, location: str = RPMDB_SQLITE, release: OsRelease | None = None) -> Inventory:
    """Every package in a sqlite rpmdb given as bytes (opened in memory; nothing is written anywhere)."""
    inventory = Inventory()
    if data[18:20] == b"\x02\x02":
        # rpm keeps the database in WAL mode, which an in-memory copy cannot open; the journal mode bytes of the
        # header are set back to rollback on our copy (changes still in a -wal file are not seen; rpm checkpoints
        # on close, so an image's database is normally complete).
        data = data[:18] + b"\x01\x01" + data[20:]
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(data)
        rows = conn.execute("SELECT hnum, blob FROM Packages ORDER BY hnum").fetchall()
    except sqlite3.DatabaseError as exc:
        return Inventory(skipped=[f"{location}: not a readable sqlite rpmdb: {exc}"])
    finally:
        conn.close()
    blobs = []
    for hnum, blob in rows:
        if isinstance(blob, bytes):
            blobs.append((int(hnum), blob))
        else:
            inventory.skipped.append(f"{location}: header {hnum}: not a blob")
    found = _inventory(blobs, location, release)
    found.skipped[:0] = inventory.skipped
    return found


# --- Berkeley DB hash ---------------------------------------------------------------------------------------

_BDB_HASH_MAGIC = 0x061561
_PAGE_HEADER = 26  # lsn 8, pgno 4, prev 4, next 4, entries 2, hf_offset 2, level 1, type 1
_P_HASH_UNSORTED, _P_OVERFLOW, _P_HASH = 2, 7, 13
_H_KEYDATA, _H_OFFPAGE = 1, 3


class BdbError(ValueError):
    """A Berkeley DB file whose pages do not hold together."""


def _overflow(data: bytes, order: str, page_size: int, first: int, total: int) -> bytes:
    """The value stored on a chain of overflow pages starting at `first`, `total` bytes long."""
    chunks: list[bytes] = []
    got, page, visited = 0, first, set()
    while page and got < total:
        if page in visited or (page + 1) * page_size > len(data):
            raise BdbError(f"overflow chain breaks at page {page}")
        visited.add(page)
        base = page * page_size
        next_page, _, length, _, kind = struct.unpack_from(order + "IHHBB", data, base + 16)
        if kind != _P_OVERFLOW or _PAGE_HEADER + length > page_size:
            raise BdbError(f"page {page} is not an overflow page")
        chunks.append(data[base + _PAGE_HEADER : base + _PAGE_HEADER + length])
        got += length
        page = next_page
    if got != total:
        raise BdbError(f"overflow chain from page {first} holds {got} of {total} bytes")
    return b"".join(chunks)


def bdb_hash_values(data: bytes) -> tuple[list[tuple[bytes, bytes]], list[str]]:
    """Every (key, value) record of a Berkeley DB hash file, in page order, and the records that could not be read
    (a broken overflow chain loses one value, not the file). Raises BdbError when the file itself is not one."""
    if len(data) < 512:
        raise BdbError("shorter than one page")
    for order in ("<", ">"):
        if struct.unpack_from(order + "I", data, 12)[0] == _BDB_HASH_MAGIC:
            break
    else:
        raise BdbError("not a Berkeley DB hash file (magic)")
    page_size = struct.unpack_from(order + "I", data, 20)[0]
    if page_size < 512 or page_size > 65536 or page_size & (page_size - 1):
        raise BdbError(f"page size {page_size} is not a Berkeley DB page size")
    records: list[tuple[bytes, bytes]] = []
    problems: list[str] = []
    for page in range(1, len(data) // page_size):
        base = page * page_size
        entries, _, _, kind = struct.unpack_from(order + "HHBB", data, base + 20)
        if kind not in (_P_HASH, _P_HASH_UNSORTED) or entries == 0:
            continue
        if _PAGE_HEADER + 2 * entries > page_size:
            raise BdbError(f"page {page} claims {entries} entries")
        offsets = struct.unpack_from(f"{order}{entries}H", data, base + _PAGE_HEADER)
        items: list[bytes | None] = []
        for index, offset in enumerate(offsets):
            end = page_size if index == 0 else offsets[index - 1]  # items are laid out from the page end down
            if not _PAGE_HEADER <= offset < end <= page_size:
                raise BdbError(f"page {page} item {index} lies outside the page")
            item = data[base + offset : base + end]
            if item[0] == _H_KEYDATA:
                items.append(item[1:])
            elif item[0] == _H_OFFPAGE and len(item) >= 12:
                first, total = struct.unpack_from(order + "II", item, 4)
                try:
                    items.append(_overflow(data, order, page_size, first, total))
                except BdbError as exc:
                    problems.append(f"page {page} item {index}: {exc}")
                    items.append(None)
            else:
                raise BdbError(f"page {page} item {index} has type {item[0]} (duplicates are not used by rpm)")
        records.extend(
            (k, v) for k, v in zip(items[0::2], items[1::2], strict=False) if k is not None and v is not None
        )
    return records, problems


def parse_rpmdb_bdb(data: bytes, location: str = RPMDB_BDB, release: OsRelease | None = None) -> Inventory:
    """Every package in a Berkeley DB `Packages` file given as bytes."""
    try:
        records, problems = bdb_hash_values(data)
    except (BdbError, struct.error) as exc:
        return Inventory(skipped=[f"{location}: not a readable Berkeley DB rpmdb: {exc}"])
    # keys are 4-byte instance numbers in the machine's byte order; record 0 holds rpm's counter, not a header
    blobs = [(int.from_bytes(key, "little"), value) for key, value in records if key != b"\0\0\0\0"]
    found = _inventory(blobs, location, release)
    found.skipped[:0] = [f"{location}: {problem}; that package is not listed" for problem in problems]
    return found
