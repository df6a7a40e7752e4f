"""The pure inventory parsers and layer attribution."""

from __future__ import annotations

import json

from test_vuln_cases import status_file
from vulndata import BOOKWORM, SHARED

from portcullis.collect.inventory import (
    attribute_layers,
    inventory_from_layers,
    parse_apk_installed,
    parse_dpkg_status,
    parse_dpkg_status_d,
    parse_npm_lock,
    parse_os_release,
    parse_package_json,
    parser_for,
)
from portcullis.model.layers import LayerRef
from portcullis.model.vuln import Ecosystem

STATUS = """Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u14
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.

Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl (3.0.20-1~deb12u2)
Version: 3.0.20-1~deb12u2
Description: Secure Sockets Layer toolkit

Package: oldpkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: broken
Status: install ok installed
this line is garbage
"""

L0 = LayerRef(index=0, diff_id="sha256:aaa", created_by="debootstrap")
L3 = LayerRef(index=3, diff_id="sha256:ddd", created_by="RUN dpkg -i /tmp/debs/*.deb")


def test_dpkg_status() -> None:
    inventory = parse_dpkg_status(STATUS, release=BOOKWORM)
    assert [(p.name, p.version, p.match_name, p.match_version) for p in inventory.packages] == [
        ("libc6", "2.36-9+deb12u14", "glibc", "2.36-9+deb12u14"),
        ("libssl3", "3.0.20-1~deb12u2", "openssl", "3.0.20-1~deb12u2"),
    ]
    assert (
        inventory.packages[0].purl
        == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=debian-12&upstream=glibc"
    )
    assert inventory.skipped == [
        "var/lib/dpkg/status:25: not a field line: 'this line is garbage'",
        "var/lib/dpkg/status: a stanza without Package/Version (broken)",
    ]


def test_binary_with_different_source_version() -> None:
    text = "Package: libfoo1\nStatus: install ok installed\nSource: foo (1:2.0-3)\nVersion: 2.0-3+b1\n"
    [pkg] = parse_dpkg_status(text).packages
    assert (pkg.match_name, pkg.match_version, pkg.version) == ("foo", "1:2.0-3", "2.0-3+b1")


def test_distroless_status_d_has_no_status_field() -> None:
    text = "Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n"
    [pkg] = parse_dpkg_status_d(text, "var/lib/dpkg/status.d/base-files").packages
    assert (pkg.name, pkg.location) == ("base-files", "var/lib/dpkg/status.d/base-files")


def test_apk_installed() -> None:
    text = (
        "C:Q1x=\nP:musl\nV:1.2.4-r2\nA:x86_64\nS:1\no:musl\n\n"
        "C:Q1y=\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\no:openssl\nF:usr/lib\nR:libcrypto.so.3\n\n"
    )
    inventory = parse_apk_installed(text, release=parse_os_release("ID=alpine\nVERSION_ID=3.19.1\n"))
    assert [(p.name, p.version, p.match_name) for p in inventory.packages] == [
        ("musl", "1.2.4-r2", "musl"),
        ("libcrypto3", "3.1.4-r5", "openssl"),
    ]
    assert inventory.packages[1].purl == (
        "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=alpine-3.19.1&upstream=openssl"
    )


def test_npm_lock_v3_real_file() -> None:
    text = (SHARED / "image-inventory" / "layered-opt-app-package-lock.json").read_text()
    inventory = parse_npm_lock(text, "opt/app/package-lock.json")
    assert [(p.name, p.version, p.purl) for p in inventory.packages] == [
        ("lodash", "4.17.15", "pkg:npm/lodash@4.17.15"),
        ("minimist", "1.2.5", "pkg:npm/minimist@1.2.5"),
    ]


def test_npm_lock_v1_nested_and_scoped() -> None:
    lock = {
        "lockfileVersion": 1,
        "dependencies": {
            "@babel/core": {"version": "7.1.0", "dependencies": {"debug": {"version": "2.6.9"}}},
            "local": {"version": "file:../local"},
        },
    }
    inventory = parse_npm_lock(json.dumps(lock), "package-lock.json")
    assert [p.purl for p in inventory.packages] == ["pkg:npm/%40babel/core@7.1.0", "pkg:npm/debug@2.6.9"]
    assert inventory.skipped == ["package-lock.json: local: version 'file:../local' is not a registry version"]


def test_npm_lock_v2_nested_node_modules_and_links() -> None:
    lock = {
        "lockfileVersion": 2,
        "packages": {
            "": {"name": "app"},
            "node_modules/a": {"version": "1.0.0"},
            "node_modules/a/node_modules/b": {"version": "2.0.0"},
            "node_modules/ws": {"resolved": "packages/ws", "link": True},
            "packages/ws": {"version": "0.0.1"},
        },
    }
    assert [(p.name, p.version) for p in parse_npm_lock(json.dumps(lock), "x").packages] == [
        ("a", "1.0.0"),
        ("b", "2.0.0"),
    ]


def test_package_json_and_dispatch() -> None:
    [pkg] = parse_package_json('{"name": "lodash", "version": "4.17.15"}', "x").packages
    assert pkg.ecosystem is Ecosystem.NPM
    assert parser_for("/opt/app/node_modules/lodash/package.json") is not None
    assert parser_for("opt/app/node_modules/@scope/x/package.json") is not None
    assert parser_for("opt/app/node_modules/lodash/fp/package.json") is None
    assert parser_for("usr/lib/python3/dist-packages/pip-23.0.1.dist-info/METADATA") is not None
    assert parser_for("var/lib/dpkg/status.d/base.md5sums") is None
    assert parser_for("etc/passwd") is None


def test_layer_attribution_ignores_the_top_layer_rewrite() -> None:
    """Layer 3 installs expat and rewrites the status file: earlier packages keep layer 0 (syft blames layer 3)."""
    base = status_file("libc6", "glibc", "2.36-9+deb12u14") + "\n" + status_file("curl", "curl", "7.88.1-10+deb12u5")
    upgraded = (
        status_file("libc6", "glibc", "2.36-9+deb12u14")
        + "\n"
        + status_file("curl", "curl", "7.88.1-10+deb12u6")
        + "\n"
        + status_file("expat", "expat", "2.5.0-1+deb12u1")
    )
    inventory = attribute_layers(
        [(L0, base), (L3, upgraded)], lambda t, loc: parse_dpkg_status(t, loc), "var/lib/dpkg/status"
    )
    layers = {(p.name, p.version): p.layer.index for p in inventory.packages if p.layer}
    assert layers == {
        ("libc6", "2.36-9+deb12u14"): 0,
        ("curl", "7.88.1-10+deb12u6"): 3,
        ("expat", "2.5.0-1+deb12u1"): 3,
    }


def test_layer_attribution_after_whiteout() -> None:
    pkg_json = '{"name": "lodash", "version": "4.17.15"}'
    path = "opt/app/node_modules/lodash/package.json"
    l1, l2 = LayerRef(index=1, diff_id="b"), LayerRef(index=2, diff_id="c")
    gone = inventory_from_layers({path: [(l1, pkg_json), (l2, None)]}, None)
    assert gone.packages == []
    back = inventory_from_layers({path: [(l1, pkg_json), (l2, None), (L3, pkg_json)]}, None)
    assert [p.layer.index for p in back.packages if p.layer] == [3]


def test_os_release() -> None:
    text = "\n".join(
        ['PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"', 'VERSION_ID="12"', "VERSION_CODENAME=bookworm", "ID=debian"]
    )
    assert parse_os_release(text) == BOOKWORM
    assert parse_os_release("NAME=x\n") is None
