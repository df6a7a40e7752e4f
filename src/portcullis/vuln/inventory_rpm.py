"""rpm inventory: the sqlite rpmdb (`var/lib/rpm/rpmdb.sqlite`, rpm >= 4.16: Fedora 33+, RHEL 9, Rocky/Alma 9).

Each row of its `Packages` table is one package header blob in rpm's header format: a big-endian index count and
data length, then 16-byte index entries (tag, type, offset, count) and the data store they point into. The older
BerkeleyDB `Packages` and the ndb `Packages.db` databases are not read (reported as skipped by the caller).
"""

from __future__ import annotations

import sqlite3
import struct
from dataclasses import dataclass
from typing import Any

from packageurl import PackageURL

from portcullis.model.vuln import Ecosystem, OsRelease, Package
from portcullis.vuln.inventory import Inventory

RPMDB_SQLITE = "var/lib/rpm/rpmdb.sqlite"

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
    )


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
    for hnum, blob in rows:
        if not isinstance(blob, bytes):
            inventory.skipped.append(f"{location}: header {hnum}: not a blob")
            continue
        try:
            header = read_header(blob)
        except RpmHeaderError as exc:
            inventory.skipped.append(f"{location}: header {hnum}: {exc}")
            continue
        if header.name not in _NOT_PACKAGES:
            inventory.packages.append(_package(header, location, release))
    return inventory
