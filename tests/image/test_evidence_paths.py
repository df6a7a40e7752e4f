"""The cheap suffix gate in front of `is_evidence` never turns away a file the full check would keep."""

from __future__ import annotations

from pathlib import Path

from portcullis.collect.image.evidence import (
    OS_RELEASE_PATHS,
    is_dpkg_copyright,
    is_dpkg_file_list,
    is_evidence,
    text_parser,
)

EVIDENCE = [
    "var/lib/dpkg/status",
    "var/lib/dpkg/status.d/base",
    "var/lib/dpkg/status.d/libc6",
    "var/lib/dpkg/info/libc6:amd64.list",
    "lib/apk/db/installed",
    "var/lib/rpm/rpmdb.sqlite",
    "usr/lib/sysimage/rpm/rpmdb.sqlite",
    "var/lib/rpm/Packages",
    "usr/lib/python3/dist-packages/requests-2.28.1.dist-info/METADATA",
    "usr/lib/python3.11/site-packages/six-1.16.0.egg-info/PKG-INFO",
    "app/package-lock.json",
    "app/node_modules/.package-lock.json",
    "app/node_modules/left-pad/package.json",
    "app/node_modules/@scope/name/package.json",
    "usr/share/rubygems-integration/all/specifications/rake-13.0.6.gemspec",
    "usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec",
    "usr/share/doc/libc6/copyright",
    *OS_RELEASE_PATHS,
]


def full_check(path: str) -> bool:
    return (
        path in OS_RELEASE_PATHS
        or is_dpkg_file_list(path)
        or is_dpkg_copyright(path)
        or text_parser(path, None) is not None
    )


def test_every_kind_of_evidence_passes_the_gate() -> None:
    assert all(full_check(p) for p in EVIDENCE)
    assert [p for p in EVIDENCE if not is_evidence(p)] == []


def test_gate_agrees_with_the_full_check_on_a_real_file_tree() -> None:
    """Every path dpkg installed on this machine (tens of thousands of real names), plus the evidence above."""
    paths = list(EVIDENCE)
    for listing in Path("/var/lib/dpkg/info").glob("*.list"):
        paths += [line.lstrip("/") for line in listing.read_text(errors="replace").splitlines() if line != "/."]
    assert len(paths) > 10_000
    disagree = [p for p in paths if is_evidence(p) != full_check(p)]
    assert disagree == []
