"""Deciding, per installed package, which advisories apply and in what fix state.

OS packages are matched on their source package in the block for the image's release; language packages on
their normalised name. Version comparisons always use the package ecosystem's own ordering.

Speed: the database hands over decoded columns (OSV events already sorted), and versions are compared through
cached sort keys, so a candidate row is decided with a few dictionary lookups and tuple comparisons. Vendor records
and report objects are only built for rows that apply, and only their advisories' summaries are read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

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
from portcullis.vuln.versions import SortKeys, VersionError, sort_keys

OS_ECOSYSTEMS = {Ecosystem.DEBIAN, Ecosystem.UBUNTU, Ecosystem.ALPINE, Ecosystem.RPM}
_DPKG = sort_keys(Ecosystem.DEBIAN)  # the tracker's versions are dpkg versions whatever the image's distribution


class Verdict(NamedTuple):
    state: FixState
    fixed_version: str | None
    vendor: VendorStatus


# Match(**fields) with the same validation, minus BaseModel.__init__'s Python wrapper (a third of the cost of the
# thousands of matches a scan builds).
_new_match: Callable[[dict[str, Any]], Match] = Match.__pydantic_validator__.validate_python


@dataclass
class MatchResult:
    matches: list[Match] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what could not be decided, and why


@lru_cache(maxsize=4096)
def _vendor(
    source: str, release: str, status: str = "", urgency: str = "", nodsa: str = "", nodsa_reason: str = ""
) -> VendorStatus:
    """VendorStatus is frozen and a scan sees few distinct ones (osv + 'ecosystem range'...): share the instances."""
    return VendorStatus(
        source=source, release=release, status=status, urgency=urgency, nodsa=nodsa, nodsa_reason=nodsa_reason
    )


# compare(a, b) < 0 and compare(a, b) > 0 of versions.compare, on an ecosystem's key cache; equal strings are equal
# without being parsed, as there.
def _before(keys: SortKeys, a: str, b: str) -> bool:
    return a != b and keys[a] < keys[b]


def _after(keys: SortKeys, a: str, b: str) -> bool:
    return a != b and keys[a] > keys[b]


def tracker_verdict(
    installed: str, release: str, status: str, fixed: str, urgency: str, nodsa: str, nodsa_reason: str
) -> Verdict | None:
    """A Debian tracker release block (its columns) against the installed source version; None: not affected."""
    if status == "resolved":
        if not fixed or fixed == "0" or not _before(_DPKG, installed, fixed):
            return None
        state = FixState.FIXED
    elif status == "open":
        # no-dsa (nodsa set, reason '') and ignored: Debian does not plan a security update for this release;
        # postponed: a fix is expected with a later update, so it is still "not fixed" rather than "won't fix".
        wont = urgency.rstrip("*") == "end-of-life" or nodsa_reason == "ignored" or (bool(nodsa) and nodsa_reason == "")
        state, fixed = FixState.WONT_FIX if wont else FixState.NOT_FIXED, ""
    else:
        state, fixed = FixState.UNDETERMINED, ""
    return Verdict(state, fixed or None, _vendor("debian-tracker", release, status, urgency, nodsa, nodsa_reason))


def secdb_verdict(keys: SortKeys, installed: str, release: str, fixed: str) -> Verdict | None:
    if fixed == "0" or not _before(keys, installed, fixed):
        return None
    return Verdict(FixState.FIXED, fixed, _vendor("alpine-secdb", release, "fixed"))


def encoded_range_hit(keys: SortKeys, installed: str, events: list[str]) -> tuple[bool, str | None]:
    """Whether `installed` lies in an OSV range given as version-ordered encoded events ('i0', 'f1.2', 'l1.1',
    as the database stores them: the hot loop of a scan), and the fixed version closing that interval."""
    affected = False
    for event in events:  # _before / _after written out: this loop runs for every OSV row
        kind, value = event[0], event[1:]
        if kind == "i":
            if value == "0" or value == installed or not keys[installed] < keys[value]:
                affected = True
        elif kind == "f":
            if value == installed or not keys[installed] < keys[value]:
                affected = False
            elif affected:
                return True, value
        elif value != installed and keys[installed] > keys[value]:  # last_affected
            affected = False
        elif affected:
            return True, None
    return affected, None


def osv_range_hit(ecosystem: Ecosystem, installed: str, events: list[dict[str, str]]) -> tuple[bool, str | None]:
    """OSV range evaluation: (affected, the fixed version closing the interval that holds `installed`)."""
    ordered = sort_osv_events(ecosystem, events)
    return encoded_range_hit(sort_keys(ecosystem), installed, [EVENT_CODES[kind] + value for kind, value in ordered])


def _osv_hit(fixed: str | None, release: str, status: str) -> Verdict:
    return Verdict(FixState.FIXED if fixed else FixState.NOT_FIXED, fixed, _vendor("osv", release, status))


def osv_verdict(ecosystem: Ecosystem, installed: str, release: str, data: dict[str, Any]) -> Verdict | None:
    """An OSV affected entry as the feed gave it (JSON) against the installed version; None: not affected."""
    for rng in data.get("ranges", []):
        range_type = str(rng.get("type", ""))
        in_range, fixed = osv_range_hit(range_ecosystem(ecosystem, range_type), installed, rng.get("events", []))
        if in_range:
            return _osv_hit(fixed, release, f"{range_type.lower()} range")
    if installed in data.get("versions", []):
        return _osv_hit(None, release, "listed version")
    return None


def _verdict(ecosystem: Ecosystem, keys: SortKeys, installed: str, row: CandidateRow) -> Verdict | None:
    """The verdict for one candidate row; None when the row says the installed version is not affected.

    The hot loop of a scan: the common cases (a tracker fix the installed version has, OSV events pre-sorted by the
    database) are decided here; the rest goes to the functions above."""
    kind = row.kind
    if kind == "tracker":
        status, fixed = row.status, row.fixed
        if status == "resolved" and (
            not fixed or fixed == "0" or fixed == installed or _DPKG[installed] >= _DPKG[fixed]
        ):
            return None
        return tracker_verdict(installed, row.release, status, fixed, row.urgency, row.nodsa, row.nodsa_reason)
    if kind == "secdb":
        return secdb_verdict(keys, installed, row.release, row.fixed)
    if row.events == UNSORTED_EVENTS:
        return osv_verdict(ecosystem, installed, row.release, row.data)
    for range_type, events in decode_events(row.events):  # osv_verdict on the pre-sorted columns
        in_range, closing = encoded_range_hit(sort_keys(range_ecosystem(ecosystem, range_type)), installed, events)
        if in_range:
            return _osv_hit(closing, row.release, f"{range_type.lower()} range")
    if row.versions and f"\n{installed}\n" in row.versions:
        return _osv_hit(None, row.release, "listed version")
    return None


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
        names = [_lookup_key(p) for p in group]
        candidates = db.candidates(ecosystem.value, names, sorted(_releases(group[0], release)))
        found: list[Match] = []
        advisories: list[str] = []  # CandidateRow.advisory of each match found, in the same order
        for package, name in zip(group, names, strict=True):
            rows = candidates.get(name)
            if rows:
                found.extend(_match_one(package, rows, result.problems, advisories))
        summaries = db.summaries(advisories)  # read at once, for the advisories that apply only
        for match, advisory in zip(found, advisories, strict=True):
            match.summary = summaries[advisory]
        result.matches.extend(found)
    return result


def _merge_names(earlier: Match, names: set[str]) -> None:
    """The same vulnerability from a second feed: keep the first match, add the names it lacks."""
    earlier.aliases.extend(sorted(n for n in names if n != earlier.advisory_id and n not in earlier.aliases))


def _match_one(package: Package, rows: list[CandidateRow], problems: list[str], advisories: list[str]) -> list[Match]:
    """The advisories that apply; their summaries are left empty, their CandidateRow.advisory added to `advisories`."""
    # One advisory may hold several rows for a package (OSV: one affected[] entry per range); it applies when any
    # row does. The database hands rows of the vendor's own feed first so its verdict wins over OSV's copy.
    groups: dict[str, list[CandidateRow]] = {}
    for row in rows:
        group = groups.get(row.advisory_id)
        if group is None:
            groups[row.advisory_id] = [row]
        else:
            group.append(row)
    matches: list[Match] = []
    seen: dict[str, Match] = {}  # every id and alias already reported for this package -> its match
    silenced: set[str] = set()  # ids a vendor feed declared not affected; OSV's copy must not revive them
    ecosystem = package.ecosystem
    keys = sort_keys(ecosystem)
    installed = package.match_version if ecosystem in OS_ECOSYSTEMS else package.version
    for adv_id, group in groups.items():
        first = group[0]
        aliases = first.aliases if silenced else None  # decoded once, and only when needed
        if aliases is not None and (adv_id in silenced or not silenced.isdisjoint(aliases)):
            continue
        verdict = None
        for row in group:
            try:
                verdict = _verdict(ecosystem, keys, installed, row)
            except VersionError as exc:
                problems.append(f"{package.name} {package.version} vs {adv_id}: {exc}")
                continue
            if verdict is not None:
                break
        if verdict is None:
            if not first.source.startswith("osv:"):  # only a vendor's "not affected" silences other feeds
                silenced.add(adv_id)
                silenced.update(first.aliases if aliases is None else aliases)
            continue
        if aliases is None:
            aliases = first.aliases
        names = {adv_id, *aliases} if aliases else None
        if seen and (adv_id in seen if names is None else not seen.keys().isdisjoint(names)):
            if names is not None:  # an id without aliases that is already known adds no name
                _merge_names(next(seen[n] for n in names if n in seen), names)
            continue
        own_aliases = [a for a in (aliases if row is first else row.aliases) if a != adv_id]
        own_aliases.sort()
        match = _new_match(
            {
                "advisory_id": adv_id,
                "aliases": own_aliases,
                "summary": "",
                "package": package,
                "fix_state": verdict.state,
                "fixed_version": verdict.fixed_version,
                "vendor": verdict.vendor,
                "vendor_severity": row.severity or row.urgency,
                "cvss": row.cvss,
            }
        )
        matches.append(match)
        advisories.append(row.advisory)
        seen[adv_id] = match
        for name in aliases:
            seen[name] = match
    return matches
