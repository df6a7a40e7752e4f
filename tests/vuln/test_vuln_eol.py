"""End-of-life flag from os-release ID/VERSION_ID and the shipped table (portcullis/data/os_eol.toml)."""

from __future__ import annotations

from datetime import date

import pytest

from portcullis.collect.inventory import parse_os_release
from portcullis.data.eol import default_table, eol_status
from portcullis.model.vuln import OsRelease

TODAY = date(2026, 11, 23)


def _os(os_id: str, version_id: str, codename: str = "") -> OsRelease:
    return OsRelease(id=os_id, version_id=version_id, codename=codename)


@pytest.mark.parametrize(
    ("os_id", "version_id", "expected", "end"),
    [
        ("debian", "10", True, date(2024, 6, 30)),  # LTS over too
        ("debian", "11", True, date(2026, 8, 31)),  # LTS ended three months before TODAY
        ("debian", "12", False, date(2028, 6, 30)),  # in LTS: still fixed, for free, from the normal archive
        ("ubuntu", "20.04", True, date(2025, 5, 31)),  # standard support over; ESM is paid
        ("ubuntu", "24.04", False, date(2029, 5, 31)),
        ("alpine", "3.18.4", True, date(2025, 5, 9)),  # keyed by branch
        ("alpine", "3.21.2", True, date(2026, 11, 1)),
        ("alpine", "3.22.1", False, date(2027, 5, 1)),
        ("rhel", "8.9", False, date(2029, 5, 31)),  # keyed by major
        ("centos", "7", True, date(2024, 6, 30)),
        ("rocky", "9.3", False, date(2032, 5, 31)),
        ("amzn", "2", True, date(2026, 6, 30)),
        ("amzn", "2023", False, date(2029, 6, 30)),
    ],
)
def test_known_releases(os_id: str, version_id: str, expected: bool, end: date) -> None:
    is_eol, eol_date, note = eol_status(_os(os_id, version_id), TODAY)
    assert (is_eol, eol_date) == (expected, end)
    assert version_id in note


def test_notes_say_what_kind_of_support_is_left() -> None:
    _, _, bookworm = eol_status(_os("debian", "12", "bookworm"), TODAY)
    assert bookworm == "debian 12 (bookworm): regular security support ended on 2026-06-10; LTS fixes until 2028-06-30"
    _, _, focal = eol_status(_os("ubuntu", "20.04"), TODAY)
    assert focal.endswith("security support ended on 2025-05-31; paid extended support runs to 2030-04-30")
    _, _, noble = eol_status(_os("ubuntu", "24.04"), TODAY)
    assert "around 2029-05-31" in noble  # announced as a month only


def test_the_same_release_on_either_side_of_its_end_date() -> None:
    bullseye = _os("debian", "11")
    assert eol_status(bullseye, date(2026, 8, 31))[0] is False
    assert eol_status(bullseye, date(2026, 9, 1))[0] is True


def test_unknown_and_rolling() -> None:
    assert eol_status(_os("alpine", "3.2.0"), TODAY)[0] is True  # older than every listed branch
    newer = eol_status(_os("alpine", "3.40.0"), TODAY)
    assert newer[0] is None and "not in the end-of-life table" in newer[2]
    other = eol_status(_os("gentoo", "2.15"), TODAY)
    assert other == (None, None, "gentoo 2.15: no end-of-life data for this distribution")
    sid = parse_os_release('PRETTY_NAME="Debian GNU/Linux trixie/sid"\nNAME="Debian GNU/Linux"\nID=debian\n')
    assert sid is not None and eol_status(sid, TODAY)[0] is False


def test_from_a_real_os_release_file() -> None:
    text = (
        'PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nNAME="Debian GNU/Linux"\nVERSION_ID="11"\n'
        'VERSION="11 (bullseye)"\nVERSION_CODENAME=bullseye\nID=debian\n'
    )
    release = parse_os_release(text)
    assert release is not None
    assert eol_status(release, TODAY)[:2] == (True, date(2026, 8, 31))


def test_table_is_well_formed() -> None:
    table = default_table()
    assert {"debian", "ubuntu", "alpine", "rhel", "centos", "rocky", "almalinux"} <= table.keys()
    for releases in table.values():
        for support in releases.values():
            assert support.end > date(2010, 1, 1)
            if support.regular_end:
                assert support.regular_end <= support.end
            if support.paid_until:
                assert support.paid_until >= support.end
