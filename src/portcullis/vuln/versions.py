"""Version ordering per ecosystem: dpkg (python-debian), apk, rpm, PEP 440, npm/semver, Go, Maven, RubyGems (univers).

Every version string is turned once into a sort key, and versions are compared by their keys. Matching compares
the same few hundred installed versions against thousands of advisory bounds, so the keys are cached per ecosystem.

For dpkg and semver the key is a plain tuple built here, because the libraries' own objects are slow to build
(semantic_version) or to compare (python-debian compares in pure Python on every call). These tuples reproduce the
libraries' orderings exactly; tests/vuln/test_vuln_version_keys.py checks them against the libraries on real
version strings. The other ecosystems use the library objects themselves as keys.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from debian.debian_support import Version as DpkgVersion
from packaging.version import InvalidVersion as PepInvalidVersion
from packaging.version import Version as PepVersion

from portcullis.model.vuln import Ecosystem


class VersionError(ValueError):
    """A version string the ecosystem's rules cannot parse."""


# --- dpkg, as python-debian's NativeVersion orders it ------------------------------------------------------------
#
# NativeVersion splits upstream version and revision into maximal runs of digits and non-digits and compares the
# runs pairwise, padding the shorter list with "0". Two digit runs compare as numbers; any other pair compares as
# strings of character weights ('~' -1, digit d+1, letter its code, other characters code+256), padded with 0.
# Runs alternate, so once the first runs agree in kind, run i of one version always meets a run of the same kind
# in the other. The key is therefore: a marker for the kind of the first run (a leading '~' run sorts below digits,
# any other non-digit run above), then one (number, weights of the following non-digit run) unit per digit run.
# A missing non-digit run is the padding "0" compared as a string: weights (1, 0). Trailing units equal to the
# padding are dropped and one padding unit closes every key, so a shorter key meets the padding exactly where
# NativeVersion would.

_DPKG_UNITS = re.compile(r"(\d+)(\D*)")  # a digit run and the non-digit run after it
# every non-digit character a valid version can hold
_DPKG_WEIGHTS = {c: ord(c) for c in string.ascii_letters} | {c: ord(c) + 256 for c in ".+:-"} | {"~": -1}
_DPKG_NON_DIGITS = "".join(_DPKG_WEIGHTS)
_DPKG_ZERO_TEXT = (1, 0)  # the weights of the padding run "0" where a non-digit run is expected
_DPKG_PAD = (0, _DPKG_ZERO_TEXT)


@lru_cache(maxsize=4096)  # the same few runs ('.', '-', '+deb', 'u', '~') make up most versions
def _dpkg_weights(run: str) -> tuple[int, ...]:
    return (*map(_DPKG_WEIGHTS.__getitem__, run), 0)


def _dpkg_part_key(text: str) -> tuple[Any, ...]:
    lead = len(text) - len(text.lstrip(_DPKG_NON_DIGITS))
    head: tuple[Any, ...]
    if lead:
        weights = _dpkg_weights(text[:lead])
        head = (0 if weights[0] < 0 else 2, weights)
    else:
        head = (1,)
    units = [(int(d), _dpkg_weights(s) if s else _DPKG_ZERO_TEXT) for d, s in _DPKG_UNITS.findall(text, lead)]
    if units and units[-1] == _DPKG_PAD:  # only the last unit can lack its non-digit run
        units.pop()
    return (*head, *units, _DPKG_PAD)


def _dpkg_key(text: str) -> tuple[Any, ...]:
    # python-debian's own validation: its pattern, and no ':' in the upstream version without an epoch
    m = DpkgVersion.re_valid_version.match(text)
    if m is None or (m.group("epoch") is None and ":" in m.group("upstream_version")):
        raise ValueError(f"Invalid version string {text!r}")
    epoch, upstream, revision = m.group("epoch", "upstream_version", "debian_revision")
    return int(epoch or "0"), _dpkg_part_key(upstream or "0"), _dpkg_part_key(revision or "0")


# --- semver, as univers' SemverVersion orders it -------------------------------------------------------------------
#
# univers strips spaces and leading 'v's, coerces the rest with semantic_version (missing minor/patch are 0, leading
# zeros dropped, extra parts become build metadata) and orders by (major, minor, patch, prerelease) where numeric
# prerelease identifiers sort below alphanumeric ones and a release sorts above all of its prereleases; build
# metadata never decides the order. Plain numeric versions are read directly; the rest goes through the library.

_PLAIN_SEMVER = re.compile(r"[vV]*([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?")
_RELEASE = ((2,),)  # sorts above every prerelease tuple


def _semver_fields_key(major: int, minor: int, patch: int, prerelease: tuple[str, ...]) -> tuple[Any, ...]:
    if not prerelease:
        return major, minor, patch, _RELEASE
    return major, minor, patch, tuple((0, int(p)) if p.isdigit() else (1, p) for p in prerelease)


def _univers(class_name: str) -> Callable[[str], Any]:
    """A univers version class, imported on first use: univers and its dependencies cost ~50 ms to import, which
    an image scan without a vulnerability database (or without such packages) should not pay."""

    def make(text: str) -> Any:
        from univers import versions

        return getattr(versions, class_name)(text)

    return make


_SEMVER = _univers("SemverVersion")
_GOLANG = _univers("GolangVersion")


def _semver_key(text: str, library: Callable[[str], Any] = _SEMVER) -> Any:
    m = _PLAIN_SEMVER.fullmatch(text)
    if m is not None:
        major, minor, patch = m.groups("0")
        return int(major), int(minor), int(patch), _RELEASE
    v = library(text).value
    return _semver_fields_key(v.major, v.minor, v.patch, v.prerelease)


def _go_key(text: str) -> Any:
    return _semver_key(text if text.startswith("v") else f"v{text}", _GOLANG)


_KEY_MAKERS: dict[Ecosystem, Callable[[str], Any]] = {
    Ecosystem.DEBIAN: _dpkg_key,
    Ecosystem.UBUNTU: _dpkg_key,
    Ecosystem.PYPI: PepVersion,
    Ecosystem.NPM: _semver_key,
    Ecosystem.CARGO: _semver_key,
    Ecosystem.GO: _go_key,
    Ecosystem.ALPINE: _univers("AlpineLinuxVersion"),
    Ecosystem.RPM: _univers("RpmVersion"),
    Ecosystem.MAVEN: _univers("MavenVersion"),
    Ecosystem.RUBYGEMS: _univers("RubygemsVersion"),
}

_CACHE_LIMIT = 200_000  # per ecosystem; a full scan of a large image stays far below it


class SortKeys(dict[str, Any]):
    """version string -> its sort key under one ecosystem's ordering; `keys[text]` computes and caches a missing
    key and raises VersionError when the string does not parse (unparsable strings are not cached)."""

    def __init__(self, ecosystem: Ecosystem) -> None:
        super().__init__()
        self.ecosystem = ecosystem
        self._make = _KEY_MAKERS[ecosystem]

    def __missing__(self, text: str) -> Any:
        try:
            key = self._make(text)
        except (ValueError, PepInvalidVersion, TypeError) as exc:
            raise VersionError(f"{self.ecosystem.value} version {text!r} does not parse: {exc}") from None
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        self[text] = key
        return key


_SORT_KEYS = {ecosystem: SortKeys(ecosystem) for ecosystem in Ecosystem}


def sort_keys(ecosystem: Ecosystem) -> SortKeys:
    """The key cache of one ecosystem, for loops that compare many versions of it."""
    return _SORT_KEYS[ecosystem]


def sort_key(ecosystem: Ecosystem, text: str) -> Any:
    """A comparable key for `text` under the ecosystem's ordering rules. Raises VersionError."""
    return _SORT_KEYS[ecosystem][text]


def compare(ecosystem: Ecosystem, a: str, b: str) -> int:
    """-1, 0 or 1 as `a` sorts before, equal to or after `b`."""
    if a == b:
        return 0
    keys = _SORT_KEYS[ecosystem]
    ka, kb = keys[a], keys[b]
    if ka < kb:
        return -1
    return 1 if ka > kb else 0


def clear_caches() -> None:
    """Forget every cached key (benchmarks measure the first scan of a process with this)."""
    for keys in _SORT_KEYS.values():
        keys.clear()
