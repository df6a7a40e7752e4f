"""Rust binaries built with cargo-auditable: the dependency list it embeds in an ELF section named `.dep-v0`.

The section holds zlib-compressed JSON: `{"packages": [{"name", "version", "source", "kind", "dependencies",
"root"}]}` where `source` is `crates.io`, `git`, `local` or `registry` and `kind` is `runtime` or `build`. Only
runtime crates from crates.io are listed: build-time crates are not in the binary and other sources have no
crates.io advisories. The ELF section table is read directly (32/64-bit, either byte order).
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

from packageurl import PackageURL

from portcullis.collect.inventory import Inventory
from portcullis.model.vuln import Ecosystem, Package

SECTION = ".dep-v0"
ELF_MAGIC = b"\x7fELF"
MAX_JSON_BYTES = 8 * 1024 * 1024  # a dependency list of this size would hold ~100k crates


class ElfError(ValueError):
    """An ELF file whose headers do not hold together."""


def elf_section(data: bytes, wanted: str) -> bytes | None:
    """The contents of one named section of an ELF file; None when the file is not ELF or has no such section."""
    if not data.startswith(ELF_MAGIC) or len(data) < 0x34:
        return None
    is64 = data[4] == 2
    order = "<" if data[5] == 1 else ">"
    if is64:
        if len(data) < 0x40:
            raise ElfError("ELF header is truncated")
        (shoff,) = struct.unpack_from(order + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x3A)
        entry_format, name_at, offset_at, size_at = order + "IIQQQQIIQQ", 0, 4, 5
    else:
        (shoff,) = struct.unpack_from(order + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x2E)
        entry_format, name_at, offset_at, size_at = order + "IIIIIIIIII", 0, 4, 5
    if shoff == 0 or shnum == 0:
        return None  # stripped of its section table
    if shentsize < struct.calcsize(entry_format) or shoff + shnum * shentsize > len(data) or shstrndx >= shnum:
        raise ElfError("section header table lies outside the file")
    sections = [struct.unpack_from(entry_format, data, shoff + i * shentsize) for i in range(shnum)]

    def content(section: tuple[Any, ...]) -> bytes:
        offset, size = section[offset_at], section[size_at]
        if offset + size > len(data):
            raise ElfError("a section lies outside the file")
        return data[offset : offset + size]

    names = content(sections[shstrndx])
    for section in sections:
        start = section[name_at]
        end = names.find(b"\0", start)
        end = len(names) if end < 0 else end
        if start < len(names) and names[start:end].decode("ascii", "replace") == wanted:
            return content(section)
    return None


def parse_auditable_json(payload: dict[str, Any], location: str) -> Inventory:
    inventory = Inventory()
    crates = payload.get("packages")
    if not isinstance(crates, list):
        return Inventory(skipped=[f"{location}: {SECTION} has no 'packages' list"])
    for crate in crates:
        if not isinstance(crate, dict) or not crate.get("name") or not crate.get("version"):
            inventory.skipped.append(f"{location}: {SECTION}: a crate entry without name/version")
            continue
        name, version = str(crate["name"]), str(crate["version"])
        if crate.get("kind", "runtime") != "runtime":
            continue  # build scripts and proc-macros ran at build time; none of their code is in the binary
        if crate.get("source") != "crates.io":
            inventory.skipped.append(f"{location}: {name} {version} comes from {crate.get('source')!r}, not crates.io")
            continue
        purl = PackageURL(type="cargo", name=name, version=version).to_string()
        inventory.packages.append(
            Package(ecosystem=Ecosystem.CARGO, name=name, version=version, purl=purl, location=location)
        )
    return inventory


def parse_rust_binary(data: bytes, location: str) -> Inventory:
    """The crates compiled into a cargo-auditable binary; an empty inventory for any other file."""
    try:
        section = elf_section(data, SECTION)
    except (ElfError, struct.error) as exc:
        return Inventory(skipped=[f"{location}: ELF: {exc}"])
    if section is None:
        return Inventory()
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(section, MAX_JSON_BYTES)
        if inflater.unconsumed_tail:
            return Inventory(skipped=[f"{location}: {SECTION} inflates past {MAX_JSON_BYTES} bytes; not read"])
        payload = json.loads(raw)
    except (zlib.error, ValueError) as exc:
        return Inventory(skipped=[f"{location}: {SECTION} is not zlib-compressed JSON: {exc}"])
    if not isinstance(payload, dict):
        return Inventory(skipped=[f"{location}: {SECTION} is not a JSON object"])
    return parse_auditable_json(payload, location)
