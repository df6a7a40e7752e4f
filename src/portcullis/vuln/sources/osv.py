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
from typing import Any

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


def _record_source(record: dict[str, Any]) -> str:
    for affected in record.get("affected") or []:
        eco = (affected.get("package") or {}).get("ecosystem", "")
        if eco:
            return source_name(eco.partition(":")[0])
    return source_name("unknown")


def to_advisory(record: Any, origin: str) -> tuple[Advisory | None, str]:
    """The advisory for one record, or None and why it was left out."""
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        raise FeedError(f"{origin}: an OSV record must be an object with a string 'id' (unexpected shape)")
    adv_id = record["id"]
    if record.get("withdrawn"):
        return None, f"{adv_id}: withdrawn"
    affected_list = record.get("affected") or []
    if not isinstance(affected_list, list):
        raise FeedError(f"{origin}: {adv_id}: 'affected' is not a list (unexpected shape)")
    severity_word = str((record.get("database_specific") or {}).get("severity") or "")
    cvss = [s["score"] for s in record.get("severity") or [] if isinstance(s, dict) and "score" in s]
    rows: list[AffectedRow] = []
    for affected in affected_list:
        package = affected.get("package") if isinstance(affected, dict) else None
        if not isinstance(package, dict) or "name" not in package or "ecosystem" not in package:
            raise FeedError(f"{origin}: {adv_id}: affected[] entry without package name/ecosystem")
        ecosystem, release = split_ecosystem(str(package["ecosystem"]))
        if ecosystem is None:
            continue
        raw_ranges = affected.get("ranges") or []
        if isinstance(raw_ranges, dict):  # seen upstream (PYSEC-2022-42969): one range written as a mapping
            raw_ranges = [{"type": "ECOSYSTEM", **raw_ranges}]
        ranges = [
            {"type": r.get("type"), "events": r.get("events") or []}
            for r in raw_ranges
            if isinstance(r, dict) and r.get("type") in _MATCHABLE_RANGES
        ]
        versions = [str(v) for v in affected.get("versions") or []]
        if not ranges and not versions:
            continue
        data: dict[str, Any] = {"k": "osv", "ranges": ranges, "versions": versions}
        eco_severity = (affected.get("ecosystem_specific") or {}).get("severity")
        if isinstance(eco_severity, str):
            data["severity"] = eco_severity
        for s in affected.get("severity") or []:
            if isinstance(s, dict) and "score" in s and s["score"] not in cvss:
                cvss.append(s["score"])
        rows.append(AffectedRow(ecosystem.value, release, normalise_name(ecosystem, str(package["name"])), data))
    if not rows:
        return None, f"{adv_id}: no affected package in a supported ecosystem with matchable ranges"
    aliases = [str(a) for a in record.get("aliases") or []]
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


def parse_zip(data: bytes, origin: str, default_source: str | None) -> list[Feed]:
    """An OSV all.zip: every member is one JSON record; a bad CRC or truncated archive is an error."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        broken = archive.testzip()
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
        raise FeedError(f"{origin}: not a valid zip archive (truncated or corrupt?): {exc}") from None
    if broken is not None:
        raise FeedError(f"{origin}: member {broken} fails its CRC check (corrupt download)")
    members = [m for m in archive.namelist() if m.lower().endswith((".json", ".yaml", ".yml"))]
    if not members:
        raise FeedError(f"{origin}: the archive holds no OSV records")
    records = ((load_document(archive.read(m), f"{origin}!{m}"), f"{origin}!{m}") for m in members)
    return parse_records(records, default_source)
