"""Is the image's distribution release still getting security fixes? From os-release ID and VERSION_ID and the table
in `portcullis/data/os_eol.toml` (Debian, Ubuntu, Alpine, RHEL and its rebuilds, Amazon Linux, Fedora).

An end-of-life release matters beyond its own advisories: the feeds stop recording new vulnerabilities for it, so a
clean scan of an end-of-life image proves little.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from portcullis.model.facts import EolTables
from portcullis.model.vuln import OsRelease

EolStatus = tuple[bool | None, date | None, str]  # (end-of-life? None = unknown, the end date, a sentence for people)


@dataclass(frozen=True)
class ReleaseSupport:
    distribution: str
    release: str
    end: date
    name: str = ""
    regular_end: date | None = None
    paid_until: date | None = None
    approximate: bool = False


def _date(value: Any) -> date | None:
    if value is None:
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def parse_table(document: dict[str, Any]) -> dict[str, dict[str, ReleaseSupport]]:
    table: dict[str, dict[str, ReleaseSupport]] = {}
    for distribution, releases in document["distributions"].items():
        table[distribution] = {
            str(release): ReleaseSupport(
                distribution=distribution,
                release=str(release),
                end=_date(entry["end"]) or date.min,
                name=str(entry.get("name") or ""),
                regular_end=_date(entry.get("regular_end")),
                paid_until=_date(entry.get("paid_until")),
                approximate=bool(entry.get("approximate")),
            )
            for release, entry in releases.items()
        }
    return table


@cache
def _frozen() -> tuple[str, dict[str, dict[str, ReleaseSupport]]]:
    document = tomllib.loads(resources.files("portcullis").joinpath("data/os_eol.toml").read_text(encoding="utf-8"))
    return str(document["as_of"]), parse_table(document)


def default_table() -> dict[str, dict[str, ReleaseSupport]]:
    return _frozen()[1]


def table_for(distribution: str, refreshed: EolTables | None) -> tuple[dict[str, dict[str, ReleaseSupport]], str]:
    """The table to judge `distribution` by, and which one it is for the evidence: the one `db update` refreshed
    when it lists the distribution, else the one frozen into this release."""
    if refreshed is not None and distribution in refreshed.distributions:
        table = parse_table({"distributions": {distribution: refreshed.distributions[distribution]}})
        return table, f"{refreshed.origin}, fetched {refreshed.fetched_at}"
    as_of, frozen = _frozen()
    return frozen, f"built-in table, as of {as_of}"


def _numbers(release: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", release))


def _candidates(version_id: str) -> list[str]:
    """The keys a VERSION_ID may be listed under: exact, MAJOR.MINOR, MAJOR ('3.19.1' -> 3.19.1, 3.19, 3)."""
    parts = re.match(r"\d+(\.\d+)*", version_id)
    numeric = parts.group(0) if parts else ""
    pieces = numeric.split(".") if numeric else []
    keys = [version_id, *(".".join(pieces[:n]) for n in (2, 1) if len(pieces) >= n)]
    return list(dict.fromkeys(k for k in keys if k))


def eol_status(
    os_release: OsRelease, today: date, table: dict[str, dict[str, ReleaseSupport]] | None = None
) -> EolStatus:
    """(is_eol, eol_date, note) for one distribution release on `today`; is_eol is None when the table cannot tell."""
    releases = (table if table is not None else default_table()).get(os_release.id)
    label = f"{os_release.id} {os_release.version_id}".strip()
    if releases is None:
        return None, None, f"{label}: no end-of-life data for this distribution"
    if not os_release.version_id:
        if os_release.id == "debian":  # testing and sid carry no VERSION_ID: rolling, never end-of-life
            return False, None, f"debian {os_release.codename or 'testing/unstable'}: rolling suite, no end of life"
        return None, None, f"{label}: os-release has no VERSION_ID"
    support = next((releases[k] for k in _candidates(os_release.version_id) if k in releases), None)
    if support is None:
        oldest = min(releases.values(), key=lambda s: _numbers(s.release))
        if _numbers(os_release.version_id) and _numbers(os_release.version_id) < _numbers(oldest.release):
            return True, None, f"{label}: older than {oldest.distribution} {oldest.release}, itself end-of-life"
        return None, None, f"{label}: release not in the end-of-life table (newer than its last update?)"
    return _verdict(support, label, today)


def _verdict(support: ReleaseSupport, label: str, today: date) -> EolStatus:
    named = f"{label} ({support.name})" if support.name else label
    around = "around " if support.approximate else ""
    if today > support.end:
        note = f"{named}: security support ended on {around}{support.end.isoformat()}"
        if support.paid_until and today <= support.paid_until:
            note += f"; paid extended support runs to {support.paid_until.isoformat()}"
        return True, support.end, note
    if support.regular_end and today > support.regular_end:
        note = (
            f"{named}: regular security support ended on {support.regular_end.isoformat()}; "
            f"LTS fixes until {around}{support.end.isoformat()}"
        )
        return False, support.end, note
    return False, support.end, f"{named}: security support until {around}{support.end.isoformat()}"
