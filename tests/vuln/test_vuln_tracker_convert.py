"""The list-form -> tracker-JSON converter (test tooling), on the real records."""

from __future__ import annotations

import json

from vuln_tracker_convert import carried_from_dpkg_tsv, convert, load_records
from vulndata import SHARED, TRACKER_JSON

RECORDS = SHARED / "debian" / "vuln-list-debian" / "tracker"
TSV = SHARED / "image-inventory" / "vulnlab-debian-bookworm-layered.dpkg.tsv"


def converted() -> dict:  # type: ignore[type-arg]
    return convert(load_records(RECORDS), {"bookworm": carried_from_dpkg_tsv(TSV)})


def test_committed_fixture_is_the_converter_output() -> None:
    assert json.loads(TRACKER_JSON.read_text()) == converted()


def test_release_own_fixed_line_wins_over_unstable() -> None:
    block = converted()["curl"]["CVE-2024-2398"]["releases"]["bookworm"]
    assert (block["status"], block["fixed_version"]) == ("resolved", "7.88.1-10+deb12u6")
    assert converted()["curl"]["CVE-2024-2398"]["releases"]["sid"]["fixed_version"] == "8.7.1-1"


def test_inherited_unstable_fix_the_release_does_not_carry_is_open() -> None:
    out = converted()
    for source, cve in (("curl", "CVE-2023-38545"), ("zlib", "CVE-2023-45853")):
        block = out[source][cve]["releases"]["bookworm"]
        assert block["status"] == "open" and "fixed_version" not in block, (source, cve)


def test_inherited_unfixed_is_open_and_nodsa_kinds_keep_reason() -> None:
    out = converted()
    assert out["curl"]["CVE-2025-0167"]["releases"]["bookworm"]["status"] == "open"
    sqlite = out["sqlite3"]["CVE-2025-6965"]["releases"]["bookworm"]
    assert (sqlite["nodsa"], sqlite["nodsa_reason"]) == ("Minor issue", "")
    assert out["openssl"]["CVE-2024-5535"]["releases"]["bookworm"]["nodsa_reason"] == "postponed"
    coreutils = out["coreutils"]["CVE-2016-2781"]["releases"]["bookworm"]
    assert (coreutils["nodsa_reason"], coreutils["urgency"]) == ("ignored", "low")


def test_not_affected_is_resolved_with_version_zero() -> None:
    assert converted()["curl"]["CVE-2025-0167"]["releases"]["bullseye"] == {
        "status": "resolved",
        "urgency": "not yet assigned",
        "fixed_version": "0",
    }


def test_removed_and_uncarried_packages_get_no_release_block() -> None:
    out = converted()
    assert "glibc" not in out or "CVE-2010-4756" not in out["glibc"]  # removed (unimportant) everywhere
    assert "bookworm" not in out["eglibc"]["CVE-2010-4756"]["releases"]  # bookworm does not carry eglibc
    assert "minizip" not in out  # removed
    assert "CVE-2023-7104" not in json.dumps(out)  # no package line at all (TODO: check)
    assert out["libxmltok"]["CVE-2023-52425"]["releases"]["bookworm"]["nodsa_reason"] == "ignored"
    assert "sid" not in out["libxmltok"]["CVE-2023-52425"]["releases"]
