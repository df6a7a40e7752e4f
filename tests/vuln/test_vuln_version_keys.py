"""The dpkg and semver sort keys built in portcullis.vuln.versions must order exactly as the libraries they replace
(python-debian's Version; univers' SemverVersion and GolangVersion), and reject exactly the strings they reject.

Checked on real version strings (this machine's dpkg database, the test image inventories, the Debian tracker
extract, the PyPA advisory database, an npm lockfile), on variants of them that hit the rules' corners, and on
generated strings."""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from debian.debian_support import Version as DpkgVersion
from hypothesis import given, settings
from hypothesis import strategies as st
from univers.versions import GolangVersion, SemverVersion
from vulndata import PYPI_DIR, SHARED, TRACKER_JSON

from portcullis.model.vuln import Ecosystem
from portcullis.vuln.versions import VersionError, compare, sort_key

DPKG_STATUS = Path("/var/lib/dpkg/status")


def _sign(a: Any, b: Any) -> int:
    return -1 if a < b else (1 if a > b else 0)


def _library_or_none(make: Callable[[str], Any], text: str) -> Any:
    try:
        return make(text)
    except ValueError:
        return None


def _key_or_none(ecosystem: Ecosystem, text: str) -> Any:
    try:
        return sort_key(ecosystem, text)
    except VersionError:
        return None


def _assert_same_order(ecosystem: Ecosystem, make: Callable[[str], Any], strings: Iterable[str]) -> int:
    """Same accepted strings, and the same sign for every pair of accepted ones; returns the pairs compared."""
    parsed = []
    for text in sorted(set(strings)):
        ours, theirs = _key_or_none(ecosystem, text), _library_or_none(make, text)
        assert (ours is None) == (theirs is None), text
        if ours is not None:
            parsed.append((text, ours, theirs))
    pairs = 0
    for (a, key_a, lib_a), (b, key_b, lib_b) in itertools.combinations(parsed, 2):
        assert _sign(key_a, key_b) == _sign(lib_a, lib_b), (a, b)
        pairs += 1
    return pairs


def _sample(strings: Iterable[str], n: int) -> list[str]:
    pool = sorted(set(strings))
    return pool if len(pool) <= n else random.Random(7).sample(pool, n)


# --- dpkg ------------------------------------------------------------------------------------------------------


def _real_dpkg_versions() -> set[str]:
    found: set[str] = set()
    if DPKG_STATUS.is_file():
        found.update(re.findall(r"^Version: (\S+)$", DPKG_STATUS.read_text(errors="replace"), re.MULTILINE))
    for tsv in (SHARED / "image-inventory").glob("*.dpkg.tsv"):
        for line in tsv.read_text().splitlines()[1:]:
            _, version, _, source_version, _ = line.split("\t")
            found.update((version, source_version))

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("fixed_version", "bookworm", "bullseye", "buster", "trixie", "sid") and isinstance(
                    value, str
                ):
                    found.add(value)
                walk(value)

    walk(json.loads(TRACKER_JSON.read_text()))
    return {v for v in found if v}


# the corners of the ordering: epochs, '~' before everything, letters before other characters, numeric runs,
# missing revisions (same as "0"), leading non-digits
DPKG_EDGES = [
    "1.0", "1.0-0", "1.0-1", "1.00", "1.0.0", "1.0~rc1", "1.0~~", "1.0~", "1.0+", "1.0a", "1.0.a", "1.0-1~bpo1",
    "0:1.0", "1:0.1", "2:0", "1.0-1+deb12u1", "1.0-1+deb12u10", "1.0-1+b1", "a1", "A1", "~1", "~~1", "1a~", "1:1:1",
    "1.2.13.dfsg-1", "1:1.2.13.dfsg-1", "1.3.dfsg-2", "7.88.1-10+deb12u15", "7.88.1-10+deb12u6", "1.0-1.1",
    "1.0-1.a", "10", "9", "09", "1-2-3", "1.0-", "-1", "1.", "1-0", "0", "1.0+dfsg-1~exp1", "3.0.20-1~deb12u1",
    "2.9.14+dfsg-1.3~deb12u1", "1.0-~", "1.0-a",
]  # fmt: skip


def _dpkg_variants(version: str) -> list[str]:
    return [version, f"{version}~rc1", f"{version}+b1", f"{version}.0", f"{version}a", f"{version}-0", f"1:{version}"]


def test_dpkg_keys_order_real_versions_as_python_debian() -> None:
    real = _real_dpkg_versions()
    assert len(real) > 100
    strings = [v for version in _sample(real, 150) for v in _dpkg_variants(version)] + DPKG_EDGES
    assert _assert_same_order(Ecosystem.DEBIAN, DpkgVersion, strings) > 400_000


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.text(alphabet="0123456789.~+-:aZ", min_size=1, max_size=9), min_size=2, max_size=6))
def test_dpkg_keys_order_generated_strings_as_python_debian(strings: list[str]) -> None:
    _assert_same_order(Ecosystem.UBUNTU, DpkgVersion, strings)


def test_dpkg_rejects_what_python_debian_rejects() -> None:
    for bad in ("", "a:1.0", "1.0 beta", "1:", "1.0_1", "1.0:1"):
        with pytest.raises(VersionError, match="does not parse"):
            sort_key(Ecosystem.DEBIAN, bad)
        with pytest.raises(ValueError):
            DpkgVersion(bad)


# --- semver (npm, crates.io, Go) -------------------------------------------------------------------------------


def _real_semver_like_versions() -> set[str]:
    found: set[str] = set()
    pattern = re.compile(r"(?:^\s*-\s*|(?:introduced|fixed|last_affected):\s*)['\"]?([0-9][^\s'\"]*)", re.MULTILINE)
    for path in sorted(PYPI_DIR.glob("*/*.yaml"))[:400]:
        found.update(pattern.findall(path.read_text()))
    lock = json.loads((SHARED / "image-inventory" / "layered-opt-app-package-lock.json").read_text())
    found.update(str(entry["version"]) for entry in lock.get("packages", {}).values() if "version" in entry)
    return found


SEMVER_EDGES = [
    "1", "1.2", "1.2.3", "01.02.03", "v1.2.3", "V1.2.3", "vv1.2.3", " 1.2.3", "1.2.3-alpha", "1.2.3-alpha.1",
    "1.2.3-alpha.beta", "1.2.3-beta", "1.2.3-beta.2", "1.2.3-beta.11", "1.2.3-rc.1", "1.2.3-0", "1.2.3-1", "1.2.3-01",
    "1.2.3+build.5", "1.2.3-rc.1+build", "1.2.3.4", "1.2.3.4.5", "1.2-beta", "1.2.3_1", "1.2.3-a-b", "1.2.3--", "x",
    "", "1.2.3-", "1.2.3+", "1..2", "1.2.3-αβ", "١.٢.٣",
]  # fmt: skip


def _go(text: str) -> GolangVersion:
    return GolangVersion(text if text.startswith("v") else f"v{text}")


def test_semver_keys_order_real_versions_as_univers() -> None:
    real = _real_semver_like_versions()
    assert len(real) > 500
    strings = _sample(real, 600) + SEMVER_EDGES
    assert _assert_same_order(Ecosystem.NPM, SemverVersion, strings) > 100_000
    _assert_same_order(Ecosystem.CARGO, SemverVersion, strings)
    _assert_same_order(Ecosystem.GO, _go, strings)


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.text(alphabet="0123456789.-+vab", min_size=1, max_size=10), min_size=2, max_size=6))
def test_semver_keys_order_generated_strings_as_univers(strings: list[str]) -> None:
    _assert_same_order(Ecosystem.NPM, SemverVersion, strings)
    _assert_same_order(Ecosystem.GO, _go, strings)


def test_equal_strings_compare_equal_without_parsing() -> None:
    """As before the keys: two identical strings are equal even when they do not parse."""
    assert compare(Ecosystem.DEBIAN, "not a version!", "not a version!") == 0
    with pytest.raises(VersionError):
        compare(Ecosystem.DEBIAN, "not a version!", "1.0")
