"""The layer reader's plumbing: member names made relative and safe, and the forward-only reads and skips the
tar walk uses, checked against plain slicing of the same bytes."""

from __future__ import annotations

import io
import itertools
import os
import posixpath
import random
from pathlib import Path

import pytest

from portcullis.collect.image.layer import normalise
from portcullis.collect.image.streams import ForwardReader, MemberReader


def reference_normalise(name: str) -> str | None:
    if name.startswith("/"):
        return None
    clean = posixpath.normpath(name)
    if clean == ".":
        return ""
    return None if clean == ".." or clean.startswith("../") else clean


def test_normalise_agrees_with_normpath_on_every_short_name() -> None:
    pieces = ["a", "b", ".", "/", "..", ".a", "a.", "x y"]
    checked = 0
    for length in range(1, 6):
        for combo in itertools.product(pieces, repeat=length):
            name = "".join(combo)
            assert normalise(name) == reference_normalise(name), name
            checked += 1
    assert checked > 35_000


class Chunks(io.RawIOBase):
    """Returns the data in chunks of the sizes given (then in chunks of the last size): short reads, as pipes do."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self._data, self._sizes, self._pos = data, sizes, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        step = self._sizes.pop(0) if len(self._sizes) > 1 else self._sizes[0]
        step = min(step, size) if size is not None and size >= 0 else step
        chunk = self._data[self._pos : self._pos + step]
        self._pos += len(chunk)
        return chunk


@pytest.mark.parametrize("seed", range(20))
def test_forward_reads_and_skips_match_slicing(seed: int) -> None:
    rng = random.Random(seed)
    data = rng.randbytes(rng.randrange(1, 20_000))
    reader = ForwardReader(Chunks(data, [rng.randrange(1, 3000) for _ in range(50)]), chunk_size=rng.randrange(1, 4000))
    assert reader.peek(4) == data[:4]
    pos = 0
    while pos < len(data):
        size = rng.randrange(0, 5000)
        action = rng.choice(["read", "skip", "readinto", "peek"])
        if action == "read":
            assert reader.read(size) == data[pos : pos + size]
            pos = min(pos + size, len(data))
        elif action == "skip":
            assert reader.skip(size) == min(size, len(data) - pos)
            pos = min(pos + size, len(data))
        elif action == "readinto":
            buffer = bytearray(size + 1)
            got = reader.readinto(buffer)
            assert 0 < got <= size + 1 and bytes(buffer[:got]) == data[pos : pos + got]
            pos += got
        else:
            assert reader.peek(size % 8) == data[pos : pos + size % 8]
    assert reader.read(10) == b"" and reader.skip(10) == 0 and reader.read() == b""


def test_member_reader_reads_by_offset_and_stops_at_the_member_end(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    archive.write_bytes(b"before" + b"member-data" + b"after")
    fd = os.open(archive, os.O_RDONLY)
    try:
        assert MemberReader(fd, 6, 11).read() == b"member-data"
        reader = MemberReader(fd, 6, 11)
        buffer = bytearray(8)
        assert reader.readinto(buffer) == 8 and bytes(buffer) == b"member-d"
        assert reader.readinto(buffer) == 3 and bytes(buffer[:3]) == b"ata"
        assert reader.readinto(buffer) == 0 and reader.read(5) == b""
        truncated = MemberReader(fd, 18, 100)  # the member claims more than the file holds
        assert truncated.read(1000) == b"fter" and truncated.read(1000) == b""
    finally:
        os.close(fd)
