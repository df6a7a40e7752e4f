"""Exact version ordering per ecosystem."""

from __future__ import annotations

import pytest

from portcullis.model.vuln import Ecosystem
from portcullis.vuln.versions import VersionError, compare

E = Ecosystem


@pytest.mark.parametrize(
    ("ecosystem", "lower", "higher"),
    [
        (E.DEBIAN, "7.88.1-10+deb12u6", "7.88.1-10+deb12u15"),  # +debNuM: numeric, not lexical
        (E.DEBIAN, "7.88.1-10+deb12u5", "7.88.1-10+deb12u6"),
        (E.DEBIAN, "1.3.dfsg-2", "1:1.2.13.dfsg-1"),  # the epoch outranks everything
        (E.DEBIAN, "1:1.2.13.dfsg-1", "1:1.3.dfsg-2"),
        (E.DEBIAN, "1.0~rc1-1", "1.0-1"),  # ~ sorts before the empty string
        (E.DEBIAN, "3.0.20-1~deb12u1", "3.0.20-1"),
        (E.DEBIAN, "2.9.14+dfsg-1.3~deb12u1", "2.9.14+dfsg-1.3~deb12u6"),
        (E.ALPINE, "1.2.3-r4", "1.2.3-r10"),
        (E.ALPINE, "1.2.3_rc1-r0", "1.2.3-r0"),
        (E.ALPINE, "1.2.3-r0", "1.2.3_p1-r0"),
        (E.RPM, "2.0-1", "1:1.0-1"),
        (E.RPM, "1.0~rc1-1", "1.0-1"),
        (E.RPM, "1.0-1", "1.0^git1-1"),
        (E.PYPI, "2.25.1", "2.31.0"),
        (E.PYPI, "1.9", "1.10"),
        (E.PYPI, "2.0rc1", "2.0"),
        (E.PYPI, "2.0", "2.0.post1"),
        (E.PYPI, "1!0.1", "1!1.0"),
        (E.NPM, "4.17.15", "4.17.20"),
        (E.NPM, "1.2.6-beta.1", "1.2.6"),
        (E.GO, "1.2.3", "v1.10.0"),
    ],
)
def test_ordering(ecosystem: Ecosystem, lower: str, higher: str) -> None:
    assert compare(ecosystem, lower, higher) == -1
    assert compare(ecosystem, higher, lower) == 1


@pytest.mark.parametrize(
    ("ecosystem", "a", "b"),
    [(E.DEBIAN, "1:2.0-1", "1:2.0-1"), (E.PYPI, "1.0", "1.0.0"), (E.DEBIAN, "2.5.0-1+deb12u2", "2.5.0-1+deb12u2")],
)
def test_equal(ecosystem: Ecosystem, a: str, b: str) -> None:
    assert compare(ecosystem, a, b) == 0


def test_unparseable_version_raises_a_clear_error() -> None:
    with pytest.raises(VersionError, match="pypi version 'not a version' does not parse"):
        compare(E.PYPI, "not a version", "1.0")
