"""Deciding, per installed package, which advisories apply and in what fix state.

OS packages are matched on their source package in the block for the image's release; language packages on
their normalised name. Version comparisons always use the package ecosystem's own ordering.

Speed: the database hands over decoded columns (OSV events already sorted), and versions are compared through
cached sort keys, so a candidate row is decided with a few dictionary lookups and tuple comparisons. Vendor records
and report objects are only built for rows that apply, and only their advisories' summaries are read. A Matcher
decides each distinct (ecosystem, lookup key, releases, installed version) once for as long as it lives, reading the
rows of the keys it has not seen in one query per ecosystem: images that share base layers share their verdicts.
"""

from __future__ import annotations

import contextlib
import gc
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple, TypeVar

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


T = TypeVar("T")


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


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector off for the block: matching allocates tens of thousands of small acyclic objects, and
    the collections they would trigger walk every object the process holds (the images' facts included)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@lru_cache(maxsize=65536)
def _normalised(ecosystem: Ecosystem, name: str) -> str:
    return normalise_name(ecosystem, name)


def _releases(ecosystem: Ecosystem, release: OsRelease | None) -> tuple[str, ...]:
    """The release names advisory rows may carry for packages of this ecosystem, sorted."""
    if ecosystem not in OS_ECOSYSTEMS:
        return ("",)
    if release is None:
        return ()
    if ecosystem is Ecosystem.ALPINE:
        return (release.alpine_branch,)
    names = {release.codename, release.version_id.split(".")[0]}
    return tuple(sorted(n for n in names if n))


@dataclass(slots=True)
class Hit:
    """One advisory that applies to an installed version: a Match without its package (and, until the advisories
    that applied are read, without its summary). Shared by every package with the same lookup key and version."""

    advisory_id: str
    aliases: tuple[str, ...]  # tuples of text: the collector stops tracking them, and hits live as long as the memo
    fix_state: FixState
    fixed_version: str | None
    vendor: VendorStatus
    vendor_severity: str
    cvss: tuple[str, ...]
    advisory: str  # CandidateRow.advisory: where its summary is read
    summary: str = ""


class Affects(NamedTuple):
    """What the database says of one installed version: the advisories that apply, in matching order, and the
    (advisory id, reason) of each one that could not be decided."""

    hits: list[Hit]
    undecided: list[tuple[str, str]]


_UNAFFECTED = Affects([], [])  # shared by every installed version no advisory names (most of them)

# (ecosystem, lookup key, releases, installed version): everything a verdict depends on
VerdictKey = tuple[Ecosystem, str, tuple[str, ...], str]

_MEMO_LIMIT = 200_000  # verdicts kept per Matcher; a fleet of images stays far below it, a service is bounded


class Matcher:
    """Matching against one open database, memoised for the life of the object.

    Each distinct (ecosystem, lookup key, releases, installed version) is decided once, however many packages or
    images carry it; each lookup key's rows are read once, in one query per ecosystem and call for the keys not read
    yet; each advisory's summary is read once. The database must not change while the object is used: the process-wide
    instances (`portcullis.vuln.scanner`) are keyed by the file's identity for that reason.
    """

    def __init__(self, db: VulnDB) -> None:
        self.db = db
        self._rows: dict[tuple[Ecosystem, str, tuple[str, ...]], list[CandidateRow]] = {}
        self._affects: dict[VerdictKey, Affects] = {}
        self._summaries: dict[str, str] = {}

    def verdicts(self, packages: Sequence[Package], release: OsRelease | None) -> list[Affects | None]:
        """What applies to each package, in the packages' order; None for an OS package whose distribution release
        is unknown (it cannot be matched)."""
        if len(self._affects) > _MEMO_LIMIT:
            self._rows.clear()
            self._affects.clear()
            self._summaries.clear()
        releases = {e: _releases(e, release) for e in {p.ecosystem for p in packages}}
        keys: list[VerdictKey | None] = []
        for package in packages:
            ecosystem = package.ecosystem
            if ecosystem in OS_ECOSYSTEMS:
                if release is None:
                    keys.append(None)
                    continue
                keys.append((ecosystem, package.match_name, releases[ecosystem], package.match_version))
            else:
                keys.append((ecosystem, _normalised(ecosystem, package.name), ("",), package.version))
        self._decide([k for k in keys if k is not None])
        affects = self._affects
        return [None if k is None else affects[k] for k in keys]

    def _decide(self, keys: list[VerdictKey]) -> None:
        """Fill the memo for the keys it lacks: their rows read in one query per (ecosystem, releases), then the
        summaries of the advisories that apply in one more."""
        missing = [k for k in dict.fromkeys(keys) if k not in self._affects]
        if not missing:
            return
        unread: dict[tuple[Ecosystem, tuple[str, ...]], set[str]] = defaultdict(set)
        for ecosystem, name, releases, _ in missing:
            if (ecosystem, name, releases) not in self._rows:
                unread[ecosystem, releases].add(name)
        for (ecosystem, releases), names in unread.items():
            found = self.db.candidates(ecosystem.value, sorted(names), releases)
            for name in names:
                self._rows[ecosystem, name, releases] = found.get(name, [])
        decided: dict[VerdictKey, Affects] = {}
        for key in missing:
            ecosystem, name, releases, installed = key
            rows = self._rows[ecosystem, name, releases]
            decided[key] = _affects(ecosystem, installed, rows) if rows else _UNAFFECTED
        new_hits = [hit for verdict in decided.values() for hit in verdict.hits]
        unknown = {hit.advisory for hit in new_hits} - self._summaries.keys()
        if unknown:
            self._summaries.update(self.db.summaries(unknown))
        for hit in new_hits:
            hit.summary = self._summaries[hit.advisory]
        self._affects.update(decided)  # only now: a verdict in the memo always has its summaries


def in_matching_order(packages: Sequence[Package], outcomes: Sequence[T | None]) -> list[T]:
    """The outcomes of the matchable packages (those not None) in the order a scan reports them: by ecosystem in
    order of first appearance, then in the packages' own order."""
    rank: dict[Ecosystem, int] = {}
    ranked: list[tuple[int, T]] = []
    for package, outcome in zip(packages, outcomes, strict=True):
        if outcome is not None:
            ranked.append((rank.setdefault(package.ecosystem, len(rank)), outcome))
    ranked.sort(key=lambda entry: entry[0])  # stable: the packages' own order within an ecosystem
    return [outcome for _, outcome in ranked]


def unmatched(package: Package) -> str:
    return f"{package.name}: OS package but the distribution release is unknown; not matched"


def undecided(package: Package, verdict: Affects) -> list[str]:
    return [f"{package.name} {package.version} vs {adv}: {why}" for adv, why in verdict.undecided]


def match_packages(packages: Sequence[Package], db: VulnDB, release: OsRelease | None) -> MatchResult:
    """Every advisory that applies to each package (affected or undetermined; not-affected rows are dropped)."""
    with gc_paused():
        return _match_packages(packages, db, release)


def _match_packages(packages: Sequence[Package], db: VulnDB, release: OsRelease | None) -> MatchResult:
    verdicts = Matcher(db).verdicts(packages, release)
    result = MatchResult(problems=[unmatched(p) for p, v in zip(packages, verdicts, strict=True) if v is None])
    paired = [None if v is None else (p, v) for p, v in zip(packages, verdicts, strict=True)]
    for package, verdict in in_matching_order(packages, paired):
        result.problems.extend(undecided(package, verdict))
        result.matches.extend(
            _new_match(
                {
                    "advisory_id": hit.advisory_id,
                    "aliases": list(hit.aliases),
                    "summary": hit.summary,
                    "package": package,
                    "fix_state": hit.fix_state,
                    "fixed_version": hit.fixed_version,
                    "vendor": hit.vendor,
                    "vendor_severity": hit.vendor_severity,
                    "cvss": list(hit.cvss),
                }
            )
            for hit in verdict.hits
        )
    return result


def _merge_names(earlier: Hit, names: set[str]) -> None:
    """The same vulnerability from a second feed: keep the first hit, add the names it lacks."""
    added = sorted(n for n in names if n != earlier.advisory_id and n not in earlier.aliases)
    earlier.aliases = (*earlier.aliases, *added)


def _affects(ecosystem: Ecosystem, installed: str, rows: list[CandidateRow]) -> Affects:
    """The advisories among one lookup key's rows that apply to the installed version."""
    # One advisory may hold several rows for a package (OSV: one affected[] entry per range); it applies when any
    # row does. The database hands rows of the vendor's own feed first so its verdict wins over OSV's copy.
    groups: dict[str, list[CandidateRow]] = {}
    for row in rows:
        group = groups.get(row.advisory_id)
        if group is None:
            groups[row.advisory_id] = [row]
        else:
            group.append(row)
    result = Affects([], [])
    seen: dict[str, Hit] = {}  # every id and alias already reported for this package -> its hit
    silenced: set[str] = set()  # ids a vendor feed declared not affected; OSV's copy must not revive them
    keys = sort_keys(ecosystem)
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
                result.undecided.append((adv_id, str(exc)))
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
        own_aliases = sorted(a for a in (aliases if row is first else row.aliases) if a != adv_id)
        hit = Hit(
            adv_id,
            tuple(own_aliases),
            verdict.state,
            verdict.fixed_version,
            verdict.vendor,
            row.severity or row.urgency,
            tuple(row.cvss),
            row.advisory,
        )
        result.hits.append(hit)
        seen[adv_id] = hit
        for name in aliases:
            seen[name] = hit
    return result
