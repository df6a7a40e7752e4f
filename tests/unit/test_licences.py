"""Declared licences: each source format's declaration becomes an SPDX expression, and the deny-list judgement."""

from __future__ import annotations

import json

import pytest

from portcullis.collect.inventory import (
    parse_apk_installed,
    parse_dpkg_copyright,
    parse_npm_lock,
    parse_package_json,
    parse_python_metadata,
)
from portcullis.model.licences import UNKNOWN, denied, from_classifiers, to_spdx


@pytest.mark.parametrize(
    ("declared", "spdx"),
    [
        ("GPL-2+", "GPL-2.0-or-later"),
        ("GPL-2+ or Artistic", "GPL-2.0-or-later OR Artistic-1.0-Perl"),
        ("LGPL-2.1", "LGPL-2.1-only"),
        ("Expat", "MIT"),
        ("BSD-3-clause", "BSD-3-Clause"),
        ("Apache 2.0", "Apache-2.0"),
        ("GPLv2+ and LGPLv2+", "GPL-2.0-or-later AND LGPL-2.0-or-later"),
        ("MIT AND (LGPL-2.1-or-later OR BSD-3-Clause)", "MIT AND (LGPL-2.1-or-later OR BSD-3-Clause)"),
        ("GPL-3.0-or-later WITH GCC-exception-3.1", "GPL-3.0-or-later WITH GCC-exception-3.1"),
        ("GPL-2 with OpenSSL exception", "GPL-2.0-only AND LicenseRef-OpenSSL-exception"),
        ("public-domain", "LicenseRef-public-domain"),
        ("Some Vendor Licence", "LicenseRef-Some-Vendor-Licence"),
        ("", ""),
        ("UNKNOWN", ""),
        ("Permission is hereby granted, free of charge,\nto any person obtaining a copy", ""),
    ],
)
def test_declarations_become_spdx(declared: str, spdx: str) -> None:
    assert to_spdx(declared) == spdx


DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: zlib

Files: *
Copyright: 1995-2013 Jean-loup Gailly and Mark Adler
License: Zlib

Files: contrib/dotzlib/*
License: BSL-1.0
 Boost Software License - Version 1.0

Files: debian/*
License: GPL-2+
"""


def test_dpkg_machine_readable_copyright_ands_every_licence() -> None:
    assert parse_dpkg_copyright(DEP5) == "Zlib AND BSL-1.0 AND GPL-2.0-or-later"


def test_dpkg_free_form_copyright_gives_the_common_licences_it_cites() -> None:
    text = "This is the Debian package of bash.\nOn Debian systems, see /usr/share/common-licenses/GPL-3.\n"
    assert parse_dpkg_copyright(text) == "GPL-3.0-only"
    assert parse_dpkg_copyright("Copyright 2001 someone. All rights reserved.\n") == ""
    mixed = "License: The main library is under the LGPL\n\nLicense: Expat\nLicense: LGPLv3+_or_GPLv2+\n"
    assert parse_dpkg_copyright(mixed) == "MIT AND (LGPL-3.0-or-later OR GPL-2.0-or-later)"


def test_python_metadata_prefers_expression_then_license_then_classifiers() -> None:
    where = "site-packages/x-1.dist-info/METADATA"
    expression = "Name: x\nVersion: 1\nLicense-Expression: MIT OR Apache-2.0\nLicense: BSD\n"
    assert parse_python_metadata(expression, where).packages[0].license == "MIT OR Apache-2.0"
    field = "Name: x\nVersion: 1\nLicense: BSD\nClassifier: License :: OSI Approved :: MIT License\n"
    assert parse_python_metadata(field, where).packages[0].license == "BSD-3-Clause"
    prose = (
        "Name: x\nVersion: 1\nLicense: Copyright (c) 2010 someone, " + "permission granted " * 20 + "\n"
        "Classifier: License :: OSI Approved :: Apache Software License\n"
    )
    assert parse_python_metadata(prose, where).packages[0].license == "Apache-2.0"
    assert parse_python_metadata("Name: x\nVersion: 1\n", where).packages[0].license == UNKNOWN
    assert from_classifiers(["License :: OSI Approved :: MIT License", "License :: OSI Approved :: BSD License"]) == (
        "MIT OR BSD-3-Clause"
    )


def test_npm_license_forms() -> None:
    where = "app/node_modules/a/package.json"
    assert parse_package_json('{"name":"a","version":"1.0.0","license":"ISC"}', where).packages[0].license == "ISC"
    old = '{"name":"a","version":"1.0.0","license":{"type":"MIT"}}'
    assert parse_package_json(old, where).packages[0].license == "MIT"
    listed = '{"name":"a","version":"1.0.0","licenses":[{"type":"MIT"},{"type":"Apache-2.0"}]}'
    assert parse_package_json(listed, where).packages[0].license == "MIT OR Apache-2.0"
    assert parse_package_json('{"name":"a","version":"1.0.0"}', where).packages[0].license == UNKNOWN
    lock = {
        "lockfileVersion": 3,
        "packages": {
            "": {"name": "app"},
            "node_modules/b": {"version": "2.0.0", "license": "(MIT OR CC0-1.0)"},
        },
    }
    assert parse_npm_lock(json.dumps(lock), "app/package-lock.json").packages[0].license == "MIT OR CC0-1.0"


def test_apk_l_field() -> None:
    text = "P:musl\nV:1.2.4-r2\nL:MIT\n\nP:busybox\nV:1.36.1-r5\nL:GPL-2.0-only\n\nP:x\nV:1\n"
    licences = [p.license for p in parse_apk_installed(text).packages]
    assert licences == ["MIT", "GPL-2.0-only", UNKNOWN]


def test_denied_only_when_no_choice_avoids_the_denied_licences() -> None:
    assert denied("GPL-3.0-only", ["GPL-3.0-only"])
    assert denied("MIT AND GPL-3.0-or-later", ["gpl-3.0*"])
    assert not denied("MIT OR GPL-3.0-only", ["GPL-3.0*"])
    assert denied("GPL-3.0-or-later WITH GCC-exception-3.1", ["GPL-3.0-or-later"])
    assert not denied("Apache-2.0", ["GPL-*"])
    assert not denied(UNKNOWN, ["*"])
    assert not denied("GPL-3.0-only", [])
