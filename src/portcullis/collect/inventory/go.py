"""Go binaries: the module build information the Go toolchain embeds in every executable it links.

The linker writes a 32-byte header starting with the magic `\\xff Go buildinf:` (then pointer size and flags). Since
Go 1.18 (flag bit 2) the Go version and the module information follow the header inline, each as a varint length and
the bytes. The module information is text framed by 16 sentinel bytes on each side: `path`, `mod` (main module),
`dep` (each dependency), `=>` (a replacement of the line before: another module, or a local directory whose version
is `(devel)`) and `build` lines, fields separated by tabs.
Binaries from Go before 1.18 keep pointers into the data segment instead; they are reported as skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from packageurl import PackageURL

from portcullis.collect.inventory import Inventory
from portcullis.model.vuln import Ecosystem, Package

BUILDINFO_MAGIC = b"\xff Go buildinf:"
_HEADER_SIZE = 32
_FLAG_INLINE_STRINGS = 0x2
_SENTINEL_SIZE = 16
STDLIB = "stdlib"  # the name OSV's Go ecosystem gives the standard library


class GoBuildInfoError(ValueError):
    """Build information that is present but does not follow the format."""


@dataclass
class GoModule:
    path: str
    version: str
    checksum: str = ""


@dataclass
class GoBuildInfo:
    go_version: str  # "go1.19.8"
    path: str = ""  # the main package's import path
    main: GoModule | None = None
    deps: list[GoModule] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while pos < len(data) and shift <= 63:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise GoBuildInfoError("truncated or overlong varint")


def _inline_string(data: bytes, pos: int) -> tuple[bytes, int]:
    length, pos = _uvarint(data, pos)
    if pos + length > len(data):
        raise GoBuildInfoError(f"string of {length} bytes runs past the end of the file")
    return data[pos : pos + length], pos + length


def _module(fields: list[str]) -> GoModule:
    if len(fields) < 2:
        raise GoBuildInfoError(f"module line with {len(fields)} fields")
    return GoModule(fields[0], fields[1], fields[2] if len(fields) > 2 else "")


def parse_modinfo(text: str, go_version: str) -> GoBuildInfo:
    """The module information text (without its sentinels), as `go version -m` shows it."""
    info = GoBuildInfo(go_version=go_version)
    last: GoModule | None = None
    for line in text.splitlines():
        kind, _, rest = line.partition("\t")
        fields = rest.split("\t")
        if kind == "path":
            info.path = rest
        elif kind == "mod":
            info.main = last = _module(fields)
        elif kind == "dep":
            last = _module(fields)
            info.deps.append(last)
        elif kind == "=>":
            if last is None:
                raise GoBuildInfoError("replacement line without a module before it")
            replacement = _module(fields)
            if not replacement.path.startswith((".", "/")):
                last.path = replacement.path  # another module's code is linked in: it is what advisories concern
            # a local directory is not a module: keep the name the program asked for, at the directory's version
            last.version, last.checksum = replacement.version, replacement.checksum
        elif kind == "build":
            key, _, value = rest.partition("=")
            info.settings[key] = value
    return info


def read_build_info(data: bytes) -> GoBuildInfo | None:
    """The build information of a Go executable; None when the file carries none."""
    pos = data.find(BUILDINFO_MAGIC)
    while pos >= 0 and pos % 16:  # the linker aligns the header to 16 bytes; other hits are data that looks alike
        pos = data.find(BUILDINFO_MAGIC, pos + 1)
    if pos < 0:
        return None
    if pos + _HEADER_SIZE > len(data):
        raise GoBuildInfoError("build information header is truncated")
    flags = data[pos + 15]
    if not flags & _FLAG_INLINE_STRINGS:
        raise GoBuildInfoError("built by Go before 1.18 (build information held as pointers); not read")
    version, after = _inline_string(data, pos + _HEADER_SIZE)
    modinfo, _ = _inline_string(data, after)
    if len(modinfo) >= 2 * _SENTINEL_SIZE + 1 and modinfo[-_SENTINEL_SIZE - 1] == ord("\n"):
        modinfo = modinfo[_SENTINEL_SIZE:-_SENTINEL_SIZE]
    elif modinfo:
        raise GoBuildInfoError("module information is not framed by its sentinels")
    return parse_modinfo(modinfo.decode("utf-8", "replace"), version.decode("utf-8", "replace"))


def _package(module_path: str, version: str, location: str) -> Package:
    namespace, _, name = module_path.rpartition("/")
    purl = PackageURL(type="golang", namespace=namespace or None, name=name, version=version).to_string()
    return Package(ecosystem=Ecosystem.GO, name=module_path, version=version, purl=purl, location=location)


def parse_go_binary(data: bytes, location: str) -> Inventory:
    """The modules linked into a Go executable: the standard library (as `stdlib` at the Go version), the main module
    and every dependency. Not a Go binary: an empty inventory. A main module built from a work tree has the
    version `(devel)`, which is kept as the toolchain wrote it."""
    try:
        info = read_build_info(data)
    except GoBuildInfoError as exc:
        return Inventory(skipped=[f"{location}: Go build information: {exc}"])
    if info is None:
        return Inventory()
    inventory = Inventory()
    if info.go_version.startswith("go"):
        # "go1.21.3 X:boringcrypto" style suffixes name experiments, not a different release
        version = info.go_version.split()[0].removeprefix("go")
        inventory.packages.append(_package(STDLIB, f"v{version}", location))
    else:
        inventory.skipped.append(f"{location}: Go version {info.go_version!r} is not a release version")
    for module in [info.main, *info.deps] if info.main else info.deps:
        if module.path and module.version:
            inventory.packages.append(_package(module.path, module.version, location))
        else:
            inventory.skipped.append(f"{location}: module line without path/version ({module.path or 'unnamed'})")
    return inventory
