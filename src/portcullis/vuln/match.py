"""Deciding, per installed package, which advisories apply and in what fix state.

OS packages are matched on their source package in the block for the image's release; language packages on
their normalised name. Version comparisons always use the package ecosystem's own ordering.

Speed: the database hands over decoded columns (OSV events already sorted), so a candidate row is decided with a few
cached version comparisons; report objects are only built for rows that apply.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from portcullis.model.vuln import Ecosystem, FixState, Match, OsRelease, Package, VendorStatus
from portcullis.vuln.db import (
    EVENT_CODES,
    UNSORTED_EVENTS,
    CandidateRow,
    VulnDB,
    decode_events,
    range_ecosystem,
    sort_osv_events,
)
from portcullis.vuln.sources.osv import normalise_name
from portcullis.vuln.versions import VersionError
from portcullis.vuln.versions import compare as ordering_compare

# A scan asks the same (installed, bound) questions for every image built on the same packages; answers never change.
compare = lru_cache(maxsize=100_000)(ordering_compare)

OS_ECOSYSTEMS = {Ecosystem.DEBIAN, Ecosystem.UBUNTU, Ecosystem.ALPINE, Ecosystem.RPM}


@dataclass
class Verdict:
    state: FixState
    fixed_version: str | None
    vendor: dict[str, str]  # VendorStatus fields; the model is only built for verdicts that become matches


@dataclass
class MatchResult:
    matches: list[Match] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what could not be decided, and why


def tracker_verdict(installed: str, release: str, block: dict[str, Any]) -> Verdict:
    """A Debian tracker release block against the installed source version."""
    status = block.get("status", "")
    nodsa = block.get("nodsa") or ""
    reason = block.get("nodsa_reason") or ""
    urgency = block.get("urgency") or ""
    vendor = {
        "source": "debian-tracker",
        "release": release,
        "status": status,
        "urgency": urgency,
        "nodsa": nodsa,
        "nodsa_reason": reason,
    }
    if status == "resolved":
        fixed = block.get("fixed_version")
        if fixed and fixed != "0" and compare(Ecosystem.DEBIAN, installed, fixed) < 0:
            return Verdict(FixState.FIXED, fixed, vendor)
        return Verdict(FixState.NOT_AFFECTED, fixed or None, vendor)
    if status == "open":
        # no-dsa (nodsa set, reason '') and ignored: Debian does not plan a security update for this release;
        # postponed: a fix is expected with a later update, so it is still "not fixed" rather than "won't fix".
        wont = urgency.rstrip("*") == "end-of-life" or reason == "ignored" or (bool(nodsa) and reason == "")
        return Verdict(FixState.WONT_FIX if wont else FixState.NOT_FIXED, None, vendor)
    return Verdict(FixState.UNDETERMINED, None, vendor)


def secdb_verdict(ecosystem: Ecosystem, installed: str, release: str, fixed: str) -> Verdict:
    vendor = {"source": "alpine-secdb", "release": release, "status": "fixed"}
    if fixed != "0" and compare(ecosystem, installed, fixed) < 0:
        return Verdict(FixState.FIXED, fixed, vendor)
    return Verdict(FixState.NOT_AFFECTED, None if fixed == "0" else fixed, vendor)


def osv_range_hit(ecosystem: Ecosystem, installed: str, events: list[dict[str, str]]) -> tuple[bool, str | None]:
    """OSV range evaluation: (affected, the fixed version closing the interval that holds `installed`)."""
    ordered = sort_osv_events(ecosystem, events)
    return encoded_range_hit(ecosystem, installed, [EVENT_CODES[kind] + value for kind, value in ordered])


def osv_verdict(ecosystem: Ecosystem, installed: str, release: str, data: dict[str, Any]) -> Verdict:
    vendor = {"source": "osv", "release": release}
    hit, fixed = False, None
    for rng in data.get("ranges", []):
        in_range, fix = osv_range_hit(
            range_ecosystem(ecosystem, str(rng.get("type"))), installed, rng.get("events", [])
        )
        if in_range:
            hit, fixed = True, fix
            vendor = {"source": "osv", "release": release, "status": f"{str(rng.get('type', '')).lower()} range"}
            break
    if not hit and installed in data.get("versions", []):
        hit = True
        vendor = {"source": "osv", "release": release, "status": "listed version"}
    if not hit:
        return Verdict(FixState.NOT_AFFECTED, None, vendor)
    return Verdict(FixState.FIXED if fixed else FixState.NOT_FIXED, fixed, vendor)


def _lookup_key(package: Package) -> str:
    if package.ecosystem in OS_ECOSYSTEMS:
        return package.match_name
    return normalise_name(package.ecosystem, package.name)


def _releases(package: Package, release: OsRelease | None) -> set[str]:
    """The release names advisory rows may carry for this package's distribution."""
    if package.ecosystem not in OS_ECOSYSTEMS:
        return {""}
    if release is None:
        return set()
    if package.ecosystem is Ecosystem.ALPINE:
        return {release.alpine_branch}
    names = {release.codename, release.version_id.split(".")[0]}
    return {n for n in names if n}


def encoded_range_hit(ecosystem: Ecosystem, installed: str, events: list[str]) -> tuple[bool, str | None]:
    """Whether `installed` lies in an OSV range given as version-ordered encoded events ('i0', 'f1.2', 'l1.1',
    as the database stores them: the hot loop of a scan), and the fixed version closing that interval."""
    affected = False
    for event in events:
        kind, value = event[0], event[1:]
        if kind == "i":
            if value == "0" or compare(ecosystem, installed, value) >= 0:
                affected = True
        elif kind == "f":
            if compare(ecosystem, installed, value) >= 0:
                affected = False
            elif affected:
                return True, value
        elif compare(ecosystem, installed, value) > 0:  # last_affected
            affected = False
        elif affected:
            return True, None
    return affected, None


def _precompiled_osv_verdict(ecosystem: Ecosystem, installed: str, row: CandidateRow) -> Verdict | None:
    for range_type, events in decode_events(row.events):
        in_range, fixed = encoded_range_hit(range_ecosystem(ecosystem, range_type), installed, events)
        if in_range:
            vendor = {"source": "osv", "release": row.release, "status": f"{range_type.lower()} range"}
            return Verdict(FixState.FIXED if fixed else FixState.NOT_FIXED, fixed, vendor)
    if row.versions and f"\n{installed}\n" in row.versions:
        return Verdict(FixState.NOT_FIXED, None, {"source": "osv", "release": row.release, "status": "listed version"})
    return None


def _verdict(package: Package, installed: str, row: CandidateRow) -> Verdict | None:
    """The verdict for one candidate row; None when the row says the installed version is not affected."""
    kind = row.kind
    if kind == "tracker":
        fixed = row.fixed
        if row.status == "resolved" and (not fixed or fixed == "0" or compare(Ecosystem.DEBIAN, installed, fixed) >= 0):
            return None  # the common case, decided without building the vendor record
        block = {"status": row.status, "fixed_version": fixed or None, "urgency": row.urgency}
        block.update(nodsa=row.nodsa, nodsa_reason=row.nodsa_reason)
        verdict = tracker_verdict(installed, row.release, block)
    elif kind == "secdb":
        verdict = secdb_verdict(package.ecosystem, installed, row.release, row.fixed)
    elif row.events != UNSORTED_EVENTS:
        return _precompiled_osv_verdict(package.ecosystem, installed, row)
    else:
        verdict = osv_verdict(package.ecosystem, installed, row.release, row.data)
    return None if verdict.state is FixState.NOT_AFFECTED else verdict


def match_packages(packages: Sequence[Package], db: VulnDB, release: OsRelease | None) -> MatchResult:
    """Every advisory that applies to each package (affected or undetermined; not-affected rows are dropped)."""
    result = MatchResult()
    by_ecosystem: dict[Ecosystem, list[Package]] = defaultdict(list)
    for package in packages:
        if package.ecosystem in OS_ECOSYSTEMS and release is None:
            result.problems.append(f"{package.name}: OS package but the distribution release is unknown; not matched")
            continue
        by_ecosystem[package.ecosystem].append(package)
    for ecosystem, group in by_ecosystem.items():
        releases = _releases(group[0], release)
        candidates = db.candidates(ecosystem.value, [_lookup_key(p) for p in group], sorted(releases))
        for package in group:
            rows = candidates.get(_lookup_key(package), [])
            result.matches.extend(_match_one(package, rows, result.problems))
    return result


@lru_cache(maxsize=4096)
def _vendor_status(fields: tuple[tuple[str, str], ...]) -> VendorStatus:
    """VendorStatus is frozen and a scan sees few distinct ones (osv + 'ecosystem range'...): share the instances."""
    return VendorStatus(**dict(fields))


def _match_one(package: Package, rows: Iterable[CandidateRow], problems: list[str]) -> list[Match]:
    # One advisory may hold several rows for a package (OSV: one affected[] entry per range); it applies when any
    # row does. The database hands rows of the vendor's own feed first so its verdict wins over OSV's copy.
    groups: dict[str, list[CandidateRow]] = {}
    for row in rows:
        groups.setdefault(row.advisory_id, []).append(row)
    matches: list[Match] = []
    seen: dict[str, Match] = {}  # every id and alias already reported for this package -> its match
    silenced: set[str] = set()  # ids a vendor feed declared not affected; OSV's copy must not revive them
    installed = package.match_version if package.ecosystem in OS_ECOSYSTEMS else package.version
    for adv_id, group in groups.items():
        first = group[0]
        if adv_id in silenced or (silenced and silenced.intersection(first.aliases)):
            continue
        hit: tuple[CandidateRow, Verdict] | None = None
        for row in group:
            try:
                verdict = _verdict(package, installed, row)
            except VersionError as exc:
                problems.append(f"{package.name} {package.version} vs {adv_id}: {exc}")
                continue
            if verdict is not None:
                hit = (row, verdict)
                break
        if hit is None:
            if not first.source.startswith("osv:"):  # only a vendor's "not affected" silences other feeds
                silenced.update((adv_id, *first.aliases))
            continue
        aliases = first.aliases  # decoded only for advisories that apply
        names = {adv_id, *aliases}
        earlier = next((seen[n] for n in names if n in seen), None)
        if earlier is not None:  # the same vulnerability from a second feed: keep the first, merge the names
            earlier.aliases.extend(sorted(n for n in names if n != earlier.advisory_id and n not in earlier.aliases))
            continue
        row, verdict = hit
        match = Match(
            advisory_id=adv_id,
            aliases=sorted(a for a in (aliases if row is first else row.aliases) if a != adv_id),
            summary=row.summary,
            package=package,
            fix_state=verdict.state,
            fixed_version=verdict.fixed_version,
            vendor=_vendor_status(tuple(verdict.vendor.items())),
            vendor_severity=row.severity or row.urgency,
            cvss=row.cvss,
        )
        matches.append(match)
        for name in names:
            seen[name] = match
    return matches
