"""A forward-only walk over tar headers, for layer streams.

Layers are the hot path of an image scan: the standard library's tarfile spends most of its time building
TarInfo objects we do not need, so this walker decodes only the fields the layer scan uses. It reads the
formats image builders write (ustar, POSIX pax with local and global headers, GNU long names and sparse
files) and treats everything it does not understand as an error rather than a guess:

- every header's checksum is verified, numbers are octal or base-256, a short block is a truncation;
- the extension headers it buffers (pax, GNU long names, sparse maps) are bounded;
- like Go's archive/tar, which wrote most layers, link, device, directory and FIFO headers carry no data
  whatever their size field says.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from portcullis.collect.image.streams import ForwardReader, Readable

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
REGULAR, HARDLINK, SYMLINK, CHAR_DEVICE, BLOCK_DEVICE, DIRECTORY, FIFO = b"0", b"1", b"2", b"3", b"4", b"5", b"6"
OLD_REGULAR, CONTIGUOUS = b"\0", b"7"
PAX_LOCAL, PAX_GLOBAL, GNU_LONGNAME, GNU_LONGLINK, GNU_SPARSE = b"x", b"g", b"L", b"K", b"S"
HEADER_ONLY = frozenset((HARDLINK, SYMLINK, CHAR_DEVICE, BLOCK_DEVICE, DIRECTORY, FIFO))
REGULAR_TYPES = frozenset((REGULAR, OLD_REGULAR, CONTIGUOUS))
EXTENSIONS = frozenset((PAX_LOCAL, PAX_GLOBAL, GNU_LONGNAME, GNU_LONGLINK))
POSIX_MAGIC = b"ustar\x0000"
MAX_EXTENSION_BYTES = 1024 * 1024  # a pax record set, long name or sparse map larger than this is hostile
MAX_SPARSE_BLOCKS = 2048  # GNU extended sparse headers after one member
_SIGNED_HEADER = struct.Struct("148b8x356b")


class TarFormatError(ValueError):
    """The stream is not a tar archive we can read safely (bad checksum, bad number, truncation...)."""


@dataclass(slots=True)
class Member:
    name: str
    type: bytes  # the typeflag byte; see is_regular() for the regular-file family
    mode: int
    size: int  # the file's size; for sparse files the expanded size, not the bytes stored
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    sparse: bool = False  # content is a map of holes and data: not readable in one forward pass

    def is_regular(self) -> bool:
        return self.type in REGULAR_TYPES or self.sparse


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _number(field: bytes) -> int:
    """An octal field (NUL or space terminated) or a GNU base-256 one (high bit set; negatives refused).

    Only digits are accepted: int() alone would also take a sign, underscores or a '0o' prefix.
    """
    if field[0] & 0x80:
        if field[0] == 0x80:
            return int.from_bytes(field[1:], "big")
        raise TarFormatError("negative or invalid base-256 number in a header")
    digits = field.rstrip(b"\0")  # the common case: octal digits padded with NULs ('0000644\0')
    if not digits.isdigit():
        digits = field.split(b"\0", 1)[0].strip()
        if not digits:
            return 0
    if digits.isdigit():
        try:
            return int(digits, 8)
        except ValueError:  # an 8 or a 9
            pass
    raise TarFormatError(f"invalid number {digits[:20]!r} in a header")


def _checksum_ok(block: bytes) -> bool:
    try:
        stored = _number(block[148:156])
    except TarFormatError:
        return False  # not even a number where the checksum belongs: not a tar header
    # The byte sum, in C: Adler-32's low half is 1 + the sum of the bytes modulo 65521, and the sum of 256 bytes
    # (at most 65280) never wraps, so two halves give the exact sum of the block.
    total = (zlib.adler32(block[:256]) & 0xFFFF) + (zlib.adler32(block[256:]) & 0xFFFF) - 2
    if stored == total - sum(block[148:156]) + 256:  # the checksum field counts as eight spaces
        return True
    signed: int = sum(_SIGNED_HEADER.unpack(block))  # some old tars summed signed bytes
    return stored == signed + 256


def parse_pax(data: bytes) -> dict[str, str]:
    """'LENGTH KEY=VALUE\\n' records; LENGTH counts the whole record."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos] != 0:
        space = data.find(b" ", pos, pos + 24)
        try:
            length = int(data[pos:space]) if space > pos else 0
        except ValueError:
            length = 0
        end = pos + length
        if length <= space - pos + 1 or end > len(data) or data[end - 1] != 0x0A:
            raise TarFormatError("malformed pax extended header")
        key, sep, value = data[space + 1 : end - 1].partition(b"=")
        if not sep:
            raise TarFormatError("malformed pax extended header")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos = end
    return records


class TarWalker:
    """Iterate the members of a tar stream; while a member is current, `read` returns its first bytes.

    Any binary stream will do; it is read through a ForwardReader, so skipped member data is never copied.
    """

    def __init__(self, source: ForwardReader | Readable) -> None:
        self._source = source if isinstance(source, ForwardReader) else ForwardReader(source)
        self._left = 0  # data bytes of the current member not consumed yet
        self._padding = 0
        self._readable = False  # whether the current member's data is its plain content
        self._globals: dict[str, str] = {}
        self.ended_cleanly = False  # an end-of-archive block was seen (rather than bare EOF)

    def read(self, size: int) -> bytes:
        """Up to `size` bytes from the start of the current member's content; b'' when it is not plain content."""
        if not self._readable or size <= 0:
            return b""
        want = min(size, self._left)
        data = self._source.read(want)
        if len(data) < want:
            raise TarFormatError("archive ends inside a member's data")
        self._left -= want
        self._readable = False  # only the head is ever read; the rest is skipped
        return data

    def __iter__(self) -> Iterator[Member]:
        pax: dict[str, str] = {}
        long_name = long_link = None
        while True:
            self._skip_rest()
            block = self._source.read(BLOCK)
            if len(block) < BLOCK:
                if block:
                    raise TarFormatError("archive ends inside a header")
                return  # EOF on a header boundary: tolerated, as GNU tar and Go do
            if block == ZERO_BLOCK:
                self.ended_cleanly = True
                return
            if not _checksum_ok(block):
                raise TarFormatError("header checksum mismatch")
            kind = block[156:157]
            size = _number(block[124:136])
            if kind in HEADER_ONLY:
                size = 0
            if kind in EXTENSIONS:
                data = self._extension(size, kind)
                if kind == PAX_LOCAL:
                    pax.update(parse_pax(data))
                elif kind == PAX_GLOBAL:
                    self._globals.update(parse_pax(data))
                elif kind == GNU_LONGNAME:
                    long_name = _text(data)
                else:
                    long_link = _text(data)
                continue
            member = self._member(block, kind, size, {**self._globals, **pax} if pax or self._globals else pax)
            if long_name is not None:
                member.name = long_name
            if long_link is not None:
                member.linkname = long_link
            pax, long_name, long_link = {}, None, None
            yield member

    def _member(self, block: bytes, kind: bytes, size: int, pax: dict[str, str]) -> Member:
        name = block[:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        if block[345] and block[257:265] == POSIX_MAGIC:
            name = _text(block[345:500]) + "/" + name
        if kind == OLD_REGULAR and name.endswith("/"):
            kind = DIRECTORY  # pre-POSIX archives mark directories by the trailing slash only
        member = Member(
            name=name,
            type=kind,
            mode=_number(block[100:108]),
            size=size,
            linkname=_text(block[157:257]) if block[157] else "",
            devmajor=_number(block[329:337]) if kind in (CHAR_DEVICE, BLOCK_DEVICE) else 0,
            devminor=_number(block[337:345]) if kind in (CHAR_DEVICE, BLOCK_DEVICE) else 0,
        )
        stored = size
        if kind == GNU_SPARSE:
            member.sparse, member.size = True, _number(block[483:495])
            extended = block[482]
            for _ in range(MAX_SPARSE_BLOCKS):  # extended sparse maps follow the header, outside `size`
                if not extended:
                    break
                more = self._source.read(BLOCK)
                if len(more) < BLOCK:
                    raise TarFormatError("archive ends inside a sparse map")
                extended = more[504]
            else:
                raise TarFormatError("sparse map longer than the limit")
        if pax:
            member.name = pax.get("path", member.name)
            member.linkname = pax.get("linkpath", member.linkname)
            if "size" in pax and kind not in HEADER_ONLY:
                stored = member.size = _pax_int(pax, "size")
            if any(key.startswith("GNU.sparse.") for key in pax):
                # pax sparse formats 0.x and 1.0: the stored data is (or starts with) a map, not the content
                member.sparse = True
                member.name = pax.get("GNU.sparse.name", member.name)
                for key in ("GNU.sparse.realsize", "GNU.sparse.size"):
                    if key in pax:
                        member.size = _pax_int(pax, key)
                        break
        self._left, self._padding = stored, -stored % BLOCK
        self._readable = member.type in REGULAR_TYPES and not member.sparse
        return member

    def _extension(self, size: int, kind: bytes) -> bytes:
        if size > MAX_EXTENSION_BYTES:
            raise TarFormatError(f"{kind.decode()} extension header of {size} bytes, over the limit")
        data = self._source.read(size)
        if len(data) < size:
            raise TarFormatError("archive ends inside an extension header")
        self._source.skip(-size % BLOCK)
        return data

    def _skip_rest(self) -> None:
        count = self._left + self._padding
        self._left = self._padding = 0
        self._readable = False
        if count and self._source.skip(count) < count:  # every byte is still read (and hashed) from the source
            raise TarFormatError("archive ends inside a member's data")


def _pax_int(pax: dict[str, str], key: str) -> int:
    value = pax[key]
    if not value.isdigit():
        raise TarFormatError(f"pax {key} {value[:20]!r} is not a number")
    return int(value)
