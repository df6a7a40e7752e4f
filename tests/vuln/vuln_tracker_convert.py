"""Test tooling: the Debian tracker's *list* form (as parsed to JSON by aquasecurity/vuln-list-debian) turned into
the tracker's published JSON shape, which is what Portcullis reads.

The rules (from ../shared/vulndata/README.md, the tracker's own semantics):
- a release's own line wins; a release without one inherits the unstable (no-release) line, but only when that
  release carries the source package (`carried` gives the release's version of each source package);
- `fixed V` on the release's own line -> resolved, fixed_version V; an inherited unstable fix -> resolved only if
  the release's version is at least V, otherwise open (affected, no fix in this release);
- unfixed -> open; no-dsa / postponed / ignored -> open with `nodsa` = the reason text and `nodsa_reason` = ''
  for no-dsa, else postponed / ignored; not-affected -> resolved with fixed_version '0';
  undetermined -> undetermined; removed / end-of-life -> no block;
- urgency = the line's own severity, else the unstable line's, else 'not yet assigned'.
Unstable itself is emitted as release 'sid'.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from debian.debian_support import Version

UNSTABLE = "sid"
_NODSA_KINDS = {"no-dsa": "", "postponed": "postponed", "ignored": "ignored"}


def _block(line: dict[str, Any], unstable: dict[str, Any] | None, inherited: bool, carried: str | None) -> Any:
    kind = line["Kind"]
    urgency = line.get("Severity") or (unstable or {}).get("Severity") or "not yet assigned"
    block: dict[str, Any] = {"status": "open", "urgency": urgency}
    if carried is not None:
        block["repositories"] = {"_": carried}
    if kind == "fixed":
        fixed = line["Version"]
        if inherited and carried is not None and Version(carried) < Version(fixed):
            return block  # fixed in unstable only: this release still ships an affected version
        block.update(status="resolved", fixed_version=fixed)
    elif kind == "not-affected":
        block.update(status="resolved", fixed_version="0")
    elif kind in _NODSA_KINDS:
        block.update(nodsa=line.get("Description", ""), nodsa_reason=_NODSA_KINDS[kind])
    elif kind == "undetermined":
        block["status"] = "undetermined"
    elif kind in ("removed", "end-of-life"):
        return None
    elif kind != "unfixed":
        raise ValueError(f"unknown tracker kind {kind!r} in {line.get('Original')!r}")
    return block


def convert(records: Iterable[dict[str, Any]], carried: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """`records`: vuln-list-debian CVE documents; `carried`: {release: {source package: version in that release}}."""
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        cve = record["Header"]["ID"]
        lines = [a for a in record.get("Annotations", []) if a.get("Type") == "package"]
        for source in sorted({line["Package"] for line in lines}):
            own = {line["Release"]: line for line in lines if line["Package"] == source and line.get("Release")}
            unstable = next((ln for ln in lines if ln["Package"] == source and not ln.get("Release")), None)
            releases: dict[str, Any] = {}
            if unstable is not None:
                block = _block(unstable, None, inherited=False, carried=None)
                if block is not None:
                    releases[UNSTABLE] = block
            for release in sorted(set(own) | set(carried)):
                version = carried.get(release, {}).get(source)
                if release in own:
                    block = _block(own[release], unstable, inherited=False, carried=version)
                elif unstable is not None and version is not None:
                    block = _block(unstable, unstable, inherited=True, carried=version)
                else:
                    continue
                if block is not None:
                    if "repositories" in block:
                        block["repositories"] = {release: block["repositories"]["_"]}
                    releases[release] = block
            if releases:
                entry = {"description": record["Header"].get("Description", "").strip("() ."), "releases": releases}
                out.setdefault(source, {})[cve] = entry
    return out


def carried_from_dpkg_tsv(path: Path) -> dict[str, str]:
    """{source package: source version} from an image-inventory *.dpkg.tsv (the bookworm versions the test image
    carries, i.e. what the release ships in its main suite)."""
    carried: dict[str, str] = {}
    rows = path.read_text().splitlines()
    header = rows[0].split("\t")
    for row in rows[1:]:
        values = dict(zip(header, row.split("\t"), strict=True))
        carried[values["source"]] = values["source_version"]
    return carried


def load_records(directory: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(directory.rglob("CVE-*.json"))]
