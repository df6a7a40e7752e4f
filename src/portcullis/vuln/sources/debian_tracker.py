"""The Debian Security Tracker JSON (https://security-tracker.debian.org/tracker/data/json).

Shape: {source package: {CVE id: {description, debianbug, scope, releases: {codename: {status, fixed_version,
urgency, nodsa, nodsa_reason, repositories}}}}}. The tracker has already resolved every release (a release
without its own line inherits the unstable one upstream), so each release block is stored as published.
"""

from __future__ import annotations

from typing import Any

from portcullis.model.vuln import Ecosystem
from portcullis.vuln.db import Advisory, AffectedRow
from portcullis.vuln.sources.feed import Feed, FeedError

SOURCE_NAME = "debian-tracker"
URL = "https://security-tracker.debian.org/tracker/data/json"
_STATUSES = {"resolved", "open", "undetermined"}


def parse(document: Any, origin: str) -> Feed:
    if not isinstance(document, dict) or not document:
        raise FeedError(f"{origin}: the Debian tracker JSON must be a non-empty object of source packages")
    feed = Feed(SOURCE_NAME)
    by_id: dict[str, Advisory] = {}
    for source, cves in document.items():
        if not isinstance(cves, dict):
            raise FeedError(f"{origin}: package {source!r} is not an object of CVE ids (unexpected shape)")
        for cve_id, record in cves.items():
            releases = record.get("releases") if isinstance(record, dict) else None
            if not isinstance(releases, dict):
                raise FeedError(f"{origin}: {source}/{cve_id} has no 'releases' object (unexpected shape)")
            adv = by_id.get(cve_id)
            if adv is None:
                adv = by_id[cve_id] = Advisory(id=cve_id, summary=str(record.get("description") or ""))
            for release, block in releases.items():
                status = block.get("status") if isinstance(block, dict) else None
                if not isinstance(status, str) or status not in _STATUSES:
                    feed.skipped.append(f"{source}/{cve_id}/{release}: unknown status {status!r}")
                    continue
                adv.affected.append(
                    AffectedRow(
                        ecosystem=Ecosystem.DEBIAN.value,
                        release=release,
                        package=source,
                        data={
                            "k": "tracker",
                            "status": status,
                            "fixed_version": block.get("fixed_version"),
                            "urgency": block.get("urgency", ""),
                            "nodsa": block.get("nodsa", ""),
                            "nodsa_reason": block.get("nodsa_reason", ""),
                        },
                    )
                )
    feed.advisories = list(by_id.values())
    return feed
