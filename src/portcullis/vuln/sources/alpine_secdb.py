"""Alpine secdb (https://secdb.alpinelinux.org/<branch>/<repo>.json; the archived git repo has the same in YAML).

Fixed-only data: {distroversion, reponame, packages: [{pkg: {name, secfixes: {"<fixed apk version>": [ids]}}}]}.
A fixed version of "0" means the package was never affected.
"""

from __future__ import annotations

import re
from typing import Any

from portcullis.model.vuln import Ecosystem
from portcullis.vuln.db import Advisory, AffectedRow
from portcullis.vuln.sources.feed import Feed, FeedError

BASE_URL = "https://secdb.alpinelinux.org/"
REPOS = ("main", "community")
_ID = re.compile(r"(CVE-\d{4}-\d+|XSA-\d+|GHSA-[\w-]+|ZBX-\d+)")


def source_name(branch: str, repo: str) -> str:
    return f"alpine-secdb:{branch}/{repo}"


def parse(document: Any, origin: str) -> Feed:
    if isinstance(document, dict) and document.get("packages") in (None, ""):
        document = {**document, "packages": []}  # a repository with no fixes yet: `packages:` left empty
    if not isinstance(document, dict) or not isinstance(document.get("packages"), list):
        raise FeedError(f"{origin}: an Alpine secdb document needs a 'packages' list (unexpected shape)")
    branch = str(document.get("distroversion") or "")
    repo = str(document.get("reponame") or "")
    if not branch:
        raise FeedError(f"{origin}: the secdb document names no distroversion")
    feed = Feed(source_name(branch, repo))
    for entry in document["packages"]:
        pkg = entry.get("pkg") if isinstance(entry, dict) else None
        if not isinstance(pkg, dict) or not pkg.get("name"):
            raise FeedError(f"{origin}: a packages[] entry has no pkg.name (unexpected shape)")
        secfixes = pkg.get("secfixes") or {}
        if not isinstance(secfixes, dict):
            raise FeedError(f"{origin}: {pkg['name']}: secfixes is not a mapping (unexpected shape)")
        for fixed, ids in secfixes.items():
            if isinstance(ids, str):  # `7.4.0-r0:` left empty reads as '' (BaseLoader); one id on the line as itself
                ids = [ids] if ids else []
            if not isinstance(ids, list | None):
                raise FeedError(f"{origin}: {pkg['name']}: secfixes {fixed!r} is not a list of ids (unexpected shape)")
            for text in ids or []:
                found = _ID.findall(str(text))  # entries sometimes hold two ids or a trailing remark
                if not found:
                    feed.skipped.append(f"{pkg['name']} {fixed}: no advisory id in {text!r}")
                for adv_id in found:
                    feed.advisories.append(
                        Advisory(
                            id=adv_id,
                            affected=[
                                AffectedRow(
                                    ecosystem=Ecosystem.ALPINE.value,
                                    release=branch,
                                    package=str(pkg["name"]),
                                    data={"k": "secdb", "fixed": str(fixed)},
                                )
                            ],
                        )
                    )
    return feed
