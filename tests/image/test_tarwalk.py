"""The layer tar walker against the formats real tools write, checked member by member against Python's tarfile
(and GNU tar for sparse files), plus the malformed headers it must refuse."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from portcullis.collect.image.tarwalk import MAX_EXTENSION_BYTES, TarFormatError, TarWalker

LONG = "deep/" * 40 + "name-longer-than-the-hundred-byte-ustar-field.txt"
UNICODE = "usr/share/doc/päckage/ünïcødé-名前.txt"


def build(fmt: int, members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def info(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, link: str = "") -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type, member.mode, member.linkname = kind, mode, link
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        member.devmajor, member.devminor = 1, 3
    return member


def sample(fmt: int) -> list[tuple[tarfile.TarInfo, bytes]]:
    members = [
        (info("etc", tarfile.DIRTYPE, 0o755), b""),
        (info("etc/passwd"), b"root:x:0:0:root:/root:/bin/sh\n"),
        (info("usr/bin/su", mode=0o4755), b"\x7fELF" + bytes(3000)),
        (info("bin", tarfile.SYMTYPE, 0o777, "usr/bin"), b""),
        (info("usr/bin/su-again", tarfile.LNKTYPE, link="usr/bin/su"), b""),
        (info("dev/null", tarfile.CHRTYPE, 0o666), b""),
        (info("run/fifo", tarfile.FIFOTYPE), b""),
        (info("empty"), b""),
        (info("exactly-one-block"), b"x" * 512),
    ]
    if fmt != tarfile.USTAR_FORMAT:  # ustar cannot hold these; GNU uses L/K records, pax uses extended headers
        members += [
            (info(LONG), b"long name"),
            (info("link-with-long-target", tarfile.SYMTYPE, link=LONG), b""),
            (info(UNICODE), "ünïcødé".encode()),
        ]
    return members


def walk(data: bytes, heads: int = 64) -> list[tuple[str, bytes, int, int, str, bytes]]:
    walker = TarWalker(io.BufferedReader(io.BytesIO(data)))  # type: ignore[arg-type]
    return [(m.name, m.type, m.mode, m.size, m.linkname, walker.read(heads)) for m in walker]


def reference(data: bytes, heads: int = 64) -> list[tuple[str, bytes, int, int, str, bytes]]:
    rows = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar:
            handle = tar.extractfile(m) if m.isreg() else None
            name = m.name + ("/" if m.isdir() and not m.name.endswith("/") else "")
            rows.append((name.rstrip("/"), m.type, m.mode, m.size, m.linkname, handle.read(heads) if handle else b""))
    return rows


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_members_match_tarfile(fmt: int) -> None:
    data = build(fmt, sample(fmt))
    ours = [(name.rstrip("/"), *rest) for name, *rest in walk(data)]
    assert ours == reference(data)
    assert len(ours) == len(sample(fmt))


def test_ustar_prefix_field_joins_the_name() -> None:
    name = "a" * 120 + "/file"  # over 100 bytes: ustar splits it into prefix and name
    data = build(tarfile.USTAR_FORMAT, [(info(name), b"hi")])
    assert walk(data) == [(name, tarfile.REGTYPE, 0o644, 2, "", b"hi")]


def test_pax_global_header_applies_to_later_members() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "x"}) as tar:
        tar.addfile(info("a"), io.BytesIO(b""))
    assert [m[0] for m in walk(out.getvalue())] == ["a"]


def test_header_only_types_ignore_a_size_field() -> None:
    """A symlink header claiming 1024 data bytes: like Go's archive/tar and tarfile, no data is skipped."""
    link = info("l", tarfile.SYMTYPE, link="target")
    raw = bytearray(link.tobuf(tarfile.USTAR_FORMAT))
    raw[124:136] = b"%011o\0" % 1024
    raw[148:156] = b"        "
    raw[148:156] = b"%06o\0 " % sum(raw)
    data = bytes(raw) + build(tarfile.USTAR_FORMAT, [(info("after"), b"ok")])
    assert [(m[0], m[5]) for m in walk(data)] == [("l", b""), ("after", b"ok")]


def test_base256_size_field() -> None:
    member = info("big")
    raw = bytearray(member.tobuf(tarfile.GNU_FORMAT))
    raw[124:136] = b"\x80" + (5).to_bytes(11, "big")  # GNU base-256 encoding of 5
    raw[148:156] = b"        "
    raw[148:156] = b"%06o\0 " % sum(raw)
    data = bytes(raw) + b"hello".ljust(512, b"\0") + bytes(1024)
    assert walk(data) == [("big", tarfile.REGTYPE, 0o644, 5, "", b"hello")]


def test_gnu_sparse_file_reports_its_real_size_and_no_content(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    with open(source / "holes", "wb") as handle:
        handle.seek(10 * 1024 * 1024)
        handle.write(b"end")
    (source / "after").write_bytes(b"after")
    archive = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "-C", str(source), "-cf", str(archive), "holes", "after"], check=True)
    walker = TarWalker(io.BufferedReader(io.BytesIO(archive.read_bytes())))  # type: ignore[arg-type]
    seen = [(m.name, m.sparse, m.size, walker.read(16)) for m in walker]
    assert seen == [("holes", True, 10 * 1024 * 1024 + 3, b""), ("after", False, 5, b"after")]


def test_end_of_archive_and_bare_eof() -> None:
    data = build(tarfile.USTAR_FORMAT, [(info("a"), b"1")])
    walker = TarWalker(io.BufferedReader(io.BytesIO(data)))  # type: ignore[arg-type]
    assert [m.name for m in walker] == ["a"] and walker.ended_cleanly
    bare = data[:1024]  # header and data, no end-of-archive blocks: accepted as GNU tar and Go do
    walker = TarWalker(io.BufferedReader(io.BytesIO(bare)))  # type: ignore[arg-type]
    assert [m.name for m in walker] == ["a"] and not walker.ended_cleanly


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d[:300], "ends inside a header"),
        (lambda d: d[:600], "ends inside a member's data"),
        (lambda d: d[:153] + (b"1" if d[153:154] != b"1" else b"2") + d[154:], "checksum"),
        (lambda d: b"\x01" + d[1:], "checksum"),
    ],
    ids=["short-header", "short-data", "bad-checksum-digit", "flipped-name-byte"],
)
def test_malformed_archives_are_refused(damage: object, message: str) -> None:
    data = build(tarfile.USTAR_FORMAT, [(info("a"), b"x" * 2000)])
    with pytest.raises(TarFormatError, match=message):
        walk(damage(data))  # type: ignore[operator]


def test_oversized_extension_header_is_refused() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        member = info("a")
        member.pax_headers = {"comment": "x" * (MAX_EXTENSION_BYTES + 1)}
        tar.addfile(member, io.BytesIO(b""))
    with pytest.raises(TarFormatError, match="over the limit"):
        walk(out.getvalue())


def test_malformed_pax_record_is_refused() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        member = info("a")
        member.pax_headers = {"comment": "x"}
        tar.addfile(member, io.BytesIO(b""))
    record = b"13 comment=x\n"  # the length counts the whole record, itself included
    assert record in out.getvalue()
    data = out.getvalue().replace(record, b"99 comment=x\n")
    with pytest.raises(TarFormatError, match="pax"):
        walk(data)


def _with_checksum(header: bytes, value: int) -> bytes:
    return header[:148] + b"%06o\0 " % value + header[156:]


def test_checksum_is_the_exact_byte_sum_even_past_adlers_modulus() -> None:
    # 0xFF bytes in the name, link target, user and group push the header's sum past the 65521 modulus that the
    # fast byte sum works around.
    header = build(tarfile.USTAR_FORMAT, [(info("a", tarfile.SYMTYPE, link="b"), b"")])[:512]
    high = b"\xff" * 99
    header = high + header[99:157] + high + header[256:265] + b"\xff" * 64 + header[329:]
    exact = sum(header[:148]) + 8 * 32 + sum(header[156:])
    assert exact > 65521
    [member] = TarWalker(io.BytesIO(_with_checksum(header, exact)))
    assert member.name == member.linkname == "\udcff" * 99
    for wrong in (exact + 65521, exact - 65521, exact + 1):
        with pytest.raises(TarFormatError, match="checksum"):
            list(TarWalker(io.BytesIO(_with_checksum(header, wrong))))


@pytest.mark.parametrize("size_field", [b"-0000000001\0", b"0_000000001\0", b"0o000000001\0", b"00000000009\0"])
def test_size_fields_take_octal_digits_only(size_field: bytes) -> None:
    header = build(tarfile.USTAR_FORMAT, [(info("a"), b"")])[:512]
    header = header[:124] + size_field + header[136:]
    damaged = _with_checksum(header, sum(header[:148]) + 8 * 32 + sum(header[156:]))
    with pytest.raises(TarFormatError, match="invalid number"):
        list(TarWalker(io.BytesIO(damaged)))
