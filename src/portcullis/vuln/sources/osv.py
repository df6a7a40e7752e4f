"""OSV records (https://ossf.github.io/osv-schema/): single files, directories and the per-ecosystem all.zip.

Each record becomes one advisory; each `affected[]` entry in an ecosystem we match becomes one row keeping its
ECOSYSTEM/SEMVER ranges and explicit version list (GIT ranges cannot be matched against installed versions).
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from portcullis.model.vuln import Ecosystem
from portcullis.vuln.db import Advisory, AffectedRow
from portcullis.vuln.sources.feed import Feed, FeedError, load_document

BASE_URL = "https://osv-vulnerabilities.storage.googleapis.com/"
ECOSYSTEMS = ("Debian", "Ubuntu", "Alpine", "PyPI", "npm", "Go", "Maven", "RubyGems", "crates.io")

_ECOSYSTEM_MAP = {
    "debian": Ecosystem.DEBIAN,
    "ubuntu": Ecosystem.UBUNTU,
    "alpine": Ecosystem.ALPINE,
    "pypi": Ecosystem.PYPI,
    "npm": Ecosystem.NPM,
    "go": Ecosystem.GO,
    "maven": Ecosystem.MAVEN,
    "rubygems": Ecosystem.RUBYGEMS,
    "crates.io": Ecosystem.CARGO,
}
_MATCHABLE_RANGES = {"ECOSYSTEM", "SEMVER"}


def url(ecosystem: str) -> str:
    return f"{BASE_URL}{ecosystem}/all.zip"


def source_name(ecosystem: str) -> str:
    return f"osv:{ecosystem}"


def normalise_name(ecosystem: Ecosystem, name: str) -> str:
    """The key packages are looked up by: PEP 503 for PyPI, verbatim elsewhere."""
    if ecosystem is Ecosystem.PYPI:
        return re.sub(r"[-_.]+", "-", name).lower()
    return name


def split_ecosystem(osv_ecosystem: str) -> tuple[Ecosystem | None, str]:
    """'Debian:12' -> (debian, '12'); 'PyPI' -> (pypi, ''); unknown -> (None, '')."""
    base, _, release = osv_ecosystem.partition(":")
    return _ECOSYSTEM_MAP.get(base.lower()), release


def _record_source(record: Any) -> str:
    affected_list = record.get("affected") if isinstance(record, dict) else None
    for affected in affected_list if isinstance(affected_list, list) else []:
        package = affected.get("package") if isinstance(affected, dict) else None
        eco = package.get("ecosystem") if isinstance(package, dict) else None
        if eco and isinstance(eco, str):
            return source_name(eco.partition(":")[0])
    return source_name("unknown")


def _list(value: Any, origin: str, what: str) -> list[Any]:
    """An optional OSV list field: absent or null is empty; any other non-list is not a record we understand."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise FeedError(f"{origin}: {what} is not a list but {type(value).__name__} (unexpected shape)")
    return value


def _mapping(value: Any) -> dict[str, Any]:
    """A free-form `*_specific` object; anything else is ignored like an absent one."""
    return value if isinstance(value, dict) else {}


def _scores(severities: list[Any]) -> list[str]:
    return [s["score"] for s in severities if isinstance(s, dict) and isinstance(s.get("score"), str)]


def _ranges(raw: Any, origin: str, what: str) -> list[dict[str, Any]]:
    """The matchable ranges, each {type, events: [{kind: version}]} with every version a string."""
    if isinstance(raw, dict):  # seen upstream (PYSEC-2022-42969): one range written as a mapping
        raw = [{"type": "ECOSYSTEM", **raw}]
    ranges = []
    for rng in _list(raw, origin, what):
        if not isinstance(rng, dict) or not isinstance(rng.get("type"), str) or rng["type"] not in _MATCHABLE_RANGES:
            continue
        events = _list(rng.get("events"), origin, f"{what} events")
        if not all(isinstance(event, dict) for event in events):
            raise FeedError(f"{origin}: {what} events must be objects (unexpected shape)")
        ranges.append({"type": rng["type"], "events": [{str(k): str(v) for k, v in e.items()} for e in events]})
    return ranges


def to_advisory(record: Any, origin: str) -> tuple[Advisory | None, str]:
    """The advisory for one record, or None and why it was left out. Raises FeedError for a record of the wrong
    shape, field types included: whatever the document holds, nothing but FeedError comes out."""
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        raise FeedError(f"{origin}: an OSV record must be an object with a string 'id' (unexpected shape)")
    adv_id = record["id"]
    if record.get("withdrawn"):
        return None, f"{adv_id}: withdrawn"
    where = f"{origin}: {adv_id}"
    affected_list = _list(record.get("affected"), where, "'affected'")
    severity_word = str(_mapping(record.get("database_specific")).get("severity") or "")
    cvss = _scores(_list(record.get("severity"), where, "'severity'"))
    rows: list[AffectedRow] = []
    for affected in affected_list:
        package = affected.get("package") if isinstance(affected, dict) else None
        if not isinstance(package, dict) or "name" not in package or "ecosystem" not in package:
            raise FeedError(f"{where}: affected[] entry without package name/ecosystem")
        ecosystem, release = split_ecosystem(str(package["ecosystem"]))
        if ecosystem is None:
            continue
        ranges = _ranges(affected.get("ranges"), where, "'ranges'")
        versions = [str(v) for v in _list(affected.get("versions"), where, "'versions'")]
        if not ranges and not versions:
            continue
        data: dict[str, Any] = {"k": "osv", "ranges": ranges, "versions": versions}
        eco_severity = _mapping(affected.get("ecosystem_specific")).get("severity")
        if isinstance(eco_severity, str):
            data["severity"] = eco_severity
        cvss += (s for s in _scores(_list(affected.get("severity"), where, "affected[] 'severity'")) if s not in cvss)
        rows.append(AffectedRow(ecosystem.value, release, normalise_name(ecosystem, str(package["name"])), data))
    if not rows:
        return None, f"{adv_id}: no affected package in a supported ecosystem with matchable ranges"
    aliases = [str(a) for a in _list(record.get("aliases"), where, "'aliases'")]
    summary = str(record.get("summary") or record.get("details") or "").strip().split("\n")[0][:300]
    return Advisory(adv_id, aliases, summary, severity_word, cvss, str(record.get("modified") or ""), rows), ""


def parse_records(records: Iterable[tuple[Any, str]], default_source: str | None) -> list[Feed]:
    """Advisories grouped into one source per ecosystem (or all into `default_source`)."""
    feeds: dict[str, Feed] = {}
    for record, origin in records:
        adv, why = to_advisory(record, origin)
        name = default_source or _record_source(record)
        feed = feeds.setdefault(name, Feed(name))
        if adv is None:
            feed.skipped.append(why)
        else:
            feed.advisories.append(adv)
    return list(feeds.values())


# Zip bombs: an archive is read member by member with these caps on what it expands to. Real OSV archives expand
# about ten times (JSON compresses well); deflate can reach a thousand times.
MAX_MEMBER_BYTES = 16 * 1024 * 1024  # one OSV record; the largest upstream ones are a few hundred KB
MAX_EXPANSION = 100  # uncompressed bytes over all members, per byte of archive...
MIN_EXPANSION_ALLOWANCE = 64 * 1024 * 1024  # ...but a small archive may always reach this
MAX_ARCHIVE_BYTES = 4 * 1024 * 1024 * 1024  # and no archive beyond this


def parse_zip(source: bytes | Path | IO[bytes], origin: str, default_source: str | None) -> list[Feed]:
    """An OSV all.zip (its bytes, its path or an open file): every member is one JSON record; a bad CRC, a truncated
    archive or one over the caps above is an error. Members are read one at a time, each at most MAX_MEMBER_BYTES."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as exc:
        raise FeedError(f"{origin}: not a valid zip archive (truncated or corrupt?): {exc}") from None
    with archive:
        members = [m for m in archive.infolist() if m.filename.lower().endswith((".json", ".yaml", ".yml"))]
        if not members:
            raise FeedError(f"{origin}: the archive holds no OSV records")
        size = _size(source)
        allowed = min(MAX_ARCHIVE_BYTES, max(MIN_EXPANSION_ALLOWANCE, MAX_EXPANSION * size))
        # the declared sizes bound what zipfile will produce: it stops at file_size and checks the CRC there
        declared = sum(m.file_size for m in archive.infolist())
        if declared > allowed:
            raise FeedError(
                f"{origin}: the archive would expand to {declared} bytes, over the {allowed}-byte limit"
                f" (at most {MAX_EXPANSION} times its size, {MAX_ARCHIVE_BYTES} bytes in all): a zip bomb?"
            )
        records = (
            (load_document(_member(archive, m, origin), f"{origin}!{m.filename}"), f"{origin}!{m.filename}")
            for m in members
        )
        return parse_records(records, default_source)


def _size(source: bytes | Path | IO[bytes]) -> int:
    if isinstance(source, bytes):
        return len(source)
    if isinstance(source, Path):
        return source.stat().st_size
    return source.seek(0, io.SEEK_END)


def _member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, origin: str) -> bytes:
    if member.file_size > MAX_MEMBER_BYTES:
        raise FeedError(f"{origin}: member {member.filename} is over the {MAX_MEMBER_BYTES}-byte limit for a record")
    try:
        with archive.open(member) as handle:
            return handle.read(MAX_MEMBER_BYTES)  # zipfile stops at the declared size, checked above
    except zipfile.BadZipFile as exc:  # zipfile checks the CRC when a member is read to its end
        raise FeedError(f"{origin}: member {member.filename} fails its check (corrupt download): {exc}") from None
    except (
        zlib.error,
        EOFError,
        ValueError,
        OSError,
        NotImplementedError,
        RuntimeError,
    ) as exc:  # RuntimeError: encrypted
        raise FeedError(f"{origin}: member {member.filename} cannot be read (corrupt?): {exc}") from None
