"""Version ordering per ecosystem: dpkg (python-debian), apk, rpm, PEP 440, npm/semver, Go, Maven, RubyGems (univers).

Every comparison goes through `compare(ecosystem, a, b)`; parsed versions are cached because matching compares
the same few installed versions against many advisory bounds.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from debian.debian_support import Version as DpkgVersion
from packaging.version import InvalidVersion as PepInvalidVersion
from packaging.version import Version as PepVersion
from univers import versions as univers_versions

from portcullis.model.vuln import Ecosystem


class VersionError(ValueError):
    """A version string the ecosystem's rules cannot parse."""


_UNIVERS: dict[Ecosystem, type[univers_versions.Version]] = {
    Ecosystem.ALPINE: univers_versions.AlpineLinuxVersion,
    Ecosystem.RPM: univers_versions.RpmVersion,
    Ecosystem.NPM: univers_versions.SemverVersion,
    Ecosystem.GO: univers_versions.GolangVersion,
    Ecosystem.MAVEN: univers_versions.MavenVersion,
    Ecosystem.RUBYGEMS: univers_versions.RubygemsVersion,
    Ecosystem.CARGO: univers_versions.SemverVersion,
}


@lru_cache(maxsize=200_000)
def parse(ecosystem: Ecosystem, text: str) -> Any:
    """A comparable object for `text` under the ecosystem's ordering rules."""
    try:
        if ecosystem in (Ecosystem.DEBIAN, Ecosystem.UBUNTU):
            return DpkgVersion(text)
        if ecosystem is Ecosystem.PYPI:
            return PepVersion(text)
        cls = _UNIVERS[ecosystem]
        if ecosystem is Ecosystem.GO:
            text = text if text.startswith("v") else f"v{text}"
        return cls(text)
    except (ValueError, PepInvalidVersion, TypeError) as exc:
        raise VersionError(f"{ecosystem.value} version {text!r} does not parse: {exc}") from None


def compare(ecosystem: Ecosystem, a: str, b: str) -> int:
    """-1, 0 or 1 as `a` sorts before, equal to or after `b`."""
    if a == b:
        return 0
    va, vb = parse(ecosystem, a), parse(ecosystem, b)
    if va < vb:
        return -1
    return 1 if va > vb else 0
