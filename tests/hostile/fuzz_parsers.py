"""Property fuzzing of the parsers that read hostile input; run as a script by test_fuzz_parsers.py in a child
process under a memory cap, so a parser that blows up cannot take the machine with it.

Each parser, on generated input, must return or raise its module's own one-line error: the tar walker
TarFormatError, the compose loader, Dockerfile parser and facts loader CollectionError. Anything else would reach
the CLI as "internal error".
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portcullis.collect import CollectionError
from portcullis.collect.audit import load_facts
from portcullis.collect.compose import load_compose
from portcullis.collect.dockerfile import KNOWN_INSTRUCTIONS, parse_dockerfile
from portcullis.collect.image.tarwalk import BLOCK, TarFormatError, TarWalker
from portcullis.model.facts import EngineFacts, EngineInfo, EngineVersion, Facts

FUZZ = settings(
    max_examples=int(sys.argv[1]) if len(sys.argv) > 1 else 100,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
WORK = Path(tempfile.mkdtemp(prefix="portcullis-fuzz-"))

# --- the tar walker: valid archives, then damaged ------------------------------------------------------------

TYPES = [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE]
names = st.text(st.characters(codec="utf-8", exclude_characters="\0"), min_size=1, max_size=120)
members = st.tuples(names, st.sampled_from(TYPES), st.binary(max_size=700), names, st.integers(0, 0o7777))


def _archive(entries: list[tuple[str, bytes, bytes, str, int]], form: int) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=form) as tar:
        for name, kind, data, link, mode in entries:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.linkname = kind, mode, link
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            try:
                tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
            except ValueError:  # a name or link the chosen format cannot hold: tarfile writes nothing for it
                continue
    return out.getvalue()


def _with_checksum(data: bytearray, header: int) -> None:
    """Re-sign a damaged header, so damage gets past the checksum into the fields behind it."""
    block = data[header : header + BLOCK]
    if len(block) < BLOCK:
        return
    block[148:156] = b" " * 8
    data[header + 148 : header + 156] = b"%06o\0 " % sum(block)


@FUZZ
@given(
    st.lists(members, max_size=6),
    st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]),
    st.lists(st.tuples(st.integers(0, 1 << 16), st.binary(min_size=1, max_size=16)), max_size=6),
    st.booleans(),
    st.integers(0, 1 << 16),
)
def fuzz_tar_walker(
    entries: list[tuple[str, bytes, bytes, str, int]],
    form: int,
    damage: list[tuple[int, bytes]],
    resign: bool,
    cut: int,
) -> None:
    data = bytearray(_archive(entries, form))
    for offset, patch in damage:
        at = offset % max(len(data), 1)
        data[at : at + len(patch)] = patch
        if resign:
            _with_checksum(data, at - at % BLOCK)
    if cut:
        del data[cut % max(len(data), 1) :]
    walker = TarWalker(io.BufferedReader(io.BytesIO(bytes(data))))  # type: ignore[arg-type]
    try:
        for _ in walker:
            walker.read(64)
    except TarFormatError:
        pass


# --- the compose loader: YAML built from compose-like pieces, anchors and aliases included ------------------

scalars = st.one_of(
    st.sampled_from(["nginx:1.27", "true", "~", "0o777", "'${X:-y}'", '"$$"', "${A:?no}", "!reset x", "!override"]),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20).map(json.dumps),
)
keys = st.sampled_from(["services", "web", "image", "privileged", "ports", "volumes", "command", "<<", "x-a", "env"])


def _yaml(value: Any, indent: int) -> str:
    pad = "  " * indent
    if isinstance(value, dict):
        return "".join(f"\n{pad}{key}:{_yaml(item, indent + 1)}" for key, item in value.items()) or " {}"
    if isinstance(value, list):
        return "".join(f"\n{pad}- {_yaml(item, indent + 1).lstrip()}" for item in value) or " []"
    return f" {value}"


documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=25,
)
tricks = st.lists(
    st.sampled_from(["&a ", "*a", "&b [*a, *a, *a]", "[" * 120, "{", "? ", "---\n", "\t", "%YAML 1.1\n", "!!binary"]),
    max_size=4,
)


@FUZZ
@given(st.dictionaries(keys, documents, max_size=4), tricks, st.integers(0, 400), st.booleans())
def fuzz_compose_loader(document: dict[str, Any], trick_list: list[str], at: int, as_services: bool) -> None:
    text = _yaml({"services": document} if as_services else document, 0).lstrip("\n")
    for trick in trick_list:
        spot = at % (len(text) + 1)
        text = text[:spot] + trick + text[spot:]
    path = WORK / "compose.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    try:
        load_compose([path], environ={"A": "1"})
    except CollectionError as exc:
        assert "\n" not in str(exc), str(exc)


# --- the Dockerfile parser -----------------------------------------------------------------------------------

words = st.sampled_from([*sorted(KNOWN_INSTRUCTIONS), "AS", "--mount=type=cache", "<<EOF"])
tails = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
lines = st.one_of(
    st.tuples(words, tails).map(" ".join),
    st.sampled_from(["\\", "EOF", "# portcullis ignore=DKR-DF-001", "# escape=`", "", '["sh", "-c", "x"]']),
)


@FUZZ
@given(st.lists(lines, max_size=25), st.booleans())
def fuzz_dockerfile_parser(body: list[str], starts_with_from: bool) -> None:
    text = "\n".join((["FROM alpine:3.20"] if starts_with_from else []) + body)
    try:
        parse_dockerfile(text, "Dockerfile")
    except CollectionError as exc:
        assert "\n" not in str(exc), str(exc)


# --- the facts loader: a real snapshot, with values replaced by anything JSON can say ------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
SNAPSHOT = json.loads(
    Facts(engine=EngineFacts(endpoint="unix:///x", local=False, info=EngineInfo(), version=EngineVersion())).to_json()
)
SPOTS = [
    "schema_version",
    "engine",
    "images",
    "containers",
    "networks",
    "host",
    "daemon",
    "problems",
    "swarm_nodes",
    "collected_at",
]


@FUZZ
@given(st.dictionaries(st.sampled_from(SPOTS), json_values, max_size=4), st.binary(max_size=64), st.booleans())
def fuzz_facts_loader(changes: dict[str, Any], junk: bytes, raw: bool) -> None:
    path = WORK / "facts.json"
    path.write_bytes(junk if raw else json.dumps({**SNAPSHOT, **changes}).encode())
    try:
        load_facts(str(path))
    except CollectionError as exc:
        assert "\n" not in str(exc), str(exc)


if __name__ == "__main__":
    for fuzz in (fuzz_tar_walker, fuzz_compose_loader, fuzz_dockerfile_parser, fuzz_facts_loader):
        fuzz()
    print("fuzzed: tar walker, compose loader, Dockerfile parser, facts loader")
