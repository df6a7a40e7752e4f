"""Fuzz target for the feed parsers, run by test_vuln_fuzz.py in a child under a memory limit: generated
documents (near-OSV, near-tracker, near-secdb, any JSON, raw bytes) must parse or raise FeedError, nothing else,
and every row they yield must encode for the database."""

from __future__ import annotations

import contextlib
import io
import json
import sys
import zipfile
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portcullis.vuln.db import AffectedRow, match_columns, pack
from portcullis.vuln.sources import FeedError, parse_document
from portcullis.vuln.sources.feed import load_document
from portcullis.vuln.sources.osv import parse_zip

SETTINGS = settings(
    max_examples=int(sys.argv[1]) if len(sys.argv) > 1 else 300,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples every run: a failure here is reproducible
    suppress_health_check=list(HealthCheck),
)

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
anything = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
versions = st.sampled_from(["0", "1.0", "1.2.3", "2:1.0-1", "1.0rc1", "", "v1", "\x1e", "1.0~b1"]) | anything


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return strategy | anything


event = st.dictionaries(st.sampled_from(["introduced", "fixed", "last_affected", "limit", "x"]), versions, max_size=2)
osv_range = st.fixed_dictionaries(
    {"type": st.sampled_from(["ECOSYSTEM", "SEMVER", "GIT"]) | anything},
    optional={"events": maybe(st.lists(maybe(event)))},
)
package = st.fixed_dictionaries(
    {
        "name": maybe(st.sampled_from(["requests", "lodash", "curl"])),
        "ecosystem": maybe(st.sampled_from(["PyPI", "npm", "Debian:12", "Alpine:v3.19", "Go", "crates.io"])),
    }
)
affected = st.fixed_dictionaries(
    {"package": maybe(package)},
    optional={
        "ranges": maybe(st.lists(maybe(osv_range), max_size=3) | osv_range),
        "versions": maybe(st.lists(versions, max_size=4)),
        "severity": anything,
        "ecosystem_specific": anything,
    },
)
osv_record = st.fixed_dictionaries(
    {"id": maybe(st.text(min_size=1, max_size=10)), "affected": maybe(st.lists(maybe(affected), max_size=3))},
    optional={
        "modified": anything,
        "aliases": anything,
        "summary": anything,
        "details": anything,
        "severity": anything,
        "database_specific": anything,
        "withdrawn": anything,
    },
)
tracker = st.dictionaries(
    st.text(max_size=6),
    maybe(
        st.dictionaries(
            st.text(max_size=6),
            maybe(
                st.fixed_dictionaries(
                    {
                        "releases": maybe(
                            st.dictionaries(
                                st.text(max_size=6),
                                maybe(
                                    st.fixed_dictionaries(
                                        {"status": maybe(st.sampled_from(["open", "resolved", "undetermined"]))},
                                        optional={"fixed_version": anything, "urgency": anything},
                                    )
                                ),
                            )
                        )
                    },
                    optional={"description": anything},
                )
            ),
        )
    ),
    min_size=1,
    max_size=3,
)
secdb = st.fixed_dictionaries(
    {"distroversion": maybe(st.just("v3.19")), "reponame": maybe(st.just("main"))},
    optional={
        "packages": maybe(
            st.lists(
                maybe(
                    st.fixed_dictionaries(
                        {
                            "pkg": maybe(
                                st.fixed_dictionaries(
                                    {
                                        "name": anything,
                                        "secfixes": maybe(
                                            st.dictionaries(st.text(max_size=8), maybe(st.lists(anything)))
                                        ),
                                    }
                                )
                            )
                        }
                    )
                )
            )
        )
    },
)
documents = osv_record | st.lists(osv_record, max_size=3) | tracker | secdb | anything


def check_rows(feeds: list[Any]) -> None:
    """What the database build does with every row: encode its match columns and pack them."""
    for feed in feeds:
        for adv in feed.advisories:
            for row in adv.affected:
                assert isinstance(row, AffectedRow)
                pack([match_columns(row)])
                json.dumps(row.data)


@SETTINGS
@given(documents)
def parse_documents(document: Any) -> None:
    with contextlib.suppress(FeedError):
        check_rows(parse_document(document, "fuzz"))


@SETTINGS
@given(
    st.binary(max_size=200) | documents.map(lambda d: json.dumps(d).encode()) | st.text(max_size=200).map(str.encode)
)
def load_bytes(data: bytes) -> None:
    with contextlib.suppress(FeedError):
        check_rows(parse_document(load_document(data, "fuzz"), "fuzz"))


@SETTINGS
@given(st.lists(documents.map(json.dumps), max_size=3), st.integers(0, 600), st.binary(max_size=4))
def parse_zips(records: list[str], at: int, junk: bytes) -> None:
    """Zips of generated records, some with a few bytes overwritten (headers, sizes, CRCs, data)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for n, record in enumerate(records):
            archive.writestr(f"r{n}.json", record)
    data = buffer.getvalue()
    data = data[:at] + junk + data[at + len(junk) :]
    with contextlib.suppress(FeedError):
        check_rows(parse_zip(data, "fuzz.zip", default_source=None))


if __name__ == "__main__":
    parse_documents()
    load_bytes()
    parse_zips()
