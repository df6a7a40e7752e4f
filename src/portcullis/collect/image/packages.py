"""Package evidence across layers: which files prove installed packages, and every version of each.

The layer reader keeps the whole content of database-like evidence files (dpkg status, apk
installed, rpmdb.sqlite, Python metadata, npm lockfiles, gemspecs, os-release) as it streams each
layer once; this module turns those per-layer versions into the image's inventory, each package
attributed to the layer where its name+version first appeared (not to the layer that last rewrote
the database file). Binaries and Java archives are parsed as they stream past instead (Go build
info, cargo-auditable, jar manifests and pom.properties), so only their packages are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from portcullis.collect.inventory import Inventory, Parser, inventory_from_layers, parse_os_release, parser_for
from portcullis.collect.inventory.go import parse_go_binary
from portcullis.collect.inventory.java import parse_jar
from portcullis.collect.inventory.rpm import parse_rpmdb_bdb, parse_rpmdb_sqlite
from portcullis.collect.inventory.ruby import is_gemspec_path, parse_gemspec
from portcullis.collect.inventory.rust import parse_rust_binary
from portcullis.model.layers import LayerRef
from portcullis.model.vuln import Ecosystem, OsRelease

if TYPE_CHECKING:  # the layer reader imports this module to decide what to keep
    from portcullis.collect.image.layer import LayerScan

OS_RELEASE_PATHS = ("etc/os-release", "usr/lib/os-release")
RPMDB_SQLITE_PATHS = ("var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite")
RPMDB_BDB_PATHS = ("var/lib/rpm/Packages",)
RPMDB_PATHS = RPMDB_SQLITE_PATHS + RPMDB_BDB_PATHS
ARCHIVE_SUFFIXES = (".jar", ".war", ".ear")
DPKG_INFO = "var/lib/dpkg/info/"
ELF_MAGIC = b"\x7fELF"

OS_ECOSYSTEMS = {Ecosystem.DEBIAN, Ecosystem.UBUNTU, Ecosystem.ALPINE, Ecosystem.RPM}
History = dict[str, list[tuple[LayerRef, bytes | None]]]


def text_parser(path: str, release: OsRelease | None) -> Parser | None:
    # attribute_layers hands parsers text; latin-1 carries the databases' bytes through unchanged
    if path in RPMDB_SQLITE_PATHS:
        return lambda text, location: parse_rpmdb_sqlite(text.encode("latin-1"), location, release)
    if path in RPMDB_BDB_PATHS:
        return lambda text, location: parse_rpmdb_bdb(text.encode("latin-1"), location, release)
    if is_gemspec_path(path):
        return parse_gemspec
    return parser_for(path, release)


def is_dpkg_file_list(path: str) -> bool:
    return path.startswith(DPKG_INFO) and path.endswith(".list") and "/" not in path[len(DPKG_INFO) :]


# Every evidence path ends with one of these or lies under dpkg's status.d (checked first: most files are not evidence)
_EVIDENCE_ENDINGS = (
    "os-release",
    ".list",
    "/status",
    "/installed",
    "/METADATA",
    "/PKG-INFO",
    "package-lock.json",
    "/package.json",
    ".gemspec",
    "/rpmdb.sqlite",
    "/Packages",
)


def is_evidence(path: str) -> bool:
    """Files kept whole, every version, to be parsed once all layers are known."""
    if not path.endswith(_EVIDENCE_ENDINGS) and not path.startswith("var/lib/dpkg/status.d/"):
        return False
    return path in OS_RELEASE_PATHS or is_dpkg_file_list(path) or text_parser(path, None) is not None


def wants_binary(path: str, mode: int) -> bool:
    """Files parsed as they stream past: Java archives and executables (Go and Rust build information)."""
    return path.endswith(ARCHIVE_SUFFIXES) or bool(mode & 0o111)


def binary_inventory(path: str, data: bytes) -> Inventory | None:
    """The packages a Java archive or an executable proves; None when it proves nothing."""
    if path.endswith(ARCHIVE_SUFFIXES):
        found = parse_jar(data, path)
    elif data.startswith(ELF_MAGIC):
        found = parse_go_binary(data, path)
        rust = parse_rust_binary(data, path)
        found = Inventory(found.packages + rust.packages, found.skipped + rust.skipped)
    else:
        return None
    return found if found.packages or found.skipped else None


def _deleted(path: str, scan: LayerScan) -> bool:
    """Whether this layer's whiteouts or opaque directories remove `path` written by a lower layer."""
    if path in scan.package_files:
        return False
    for gone in scan.whiteouts:
        if path == gone or path.startswith(gone + "/"):
            return True
    return any(path.startswith(directory + "/") for directory in scan.opaque_dirs)


def file_history(scans: Sequence[LayerScan], refs: Sequence[LayerRef]) -> History:
    """path -> [(layer, content or None when deleted)], oldest first, for every evidence file."""
    history: History = {}
    for scan, ref in zip(scans, refs, strict=True):
        for path in list(history):
            if history[path][-1][1] is not None and _deleted(path, scan):
                history[path].append((ref, None))
        for path, content in scan.package_files.items():
            history.setdefault(path, []).append((ref, content))
    return history


def os_release(history: History) -> OsRelease | None:
    for path in OS_RELEASE_PATHS:
        versions = history.get(path)
        if versions and versions[-1][1] is not None:
            return parse_os_release((versions[-1][1] or b"").decode("utf-8", "replace"))
    return None


def _decode(path: str, content: bytes) -> str:
    return content.decode("latin-1") if path in RPMDB_PATHS else content.decode("utf-8", "replace")


def _binary_packages(scans: Sequence[LayerScan], refs: Sequence[LayerRef]) -> Inventory:
    """Packages from binaries and archives still present at the top: the last layer that wrote each path."""
    latest: dict[str, tuple[LayerRef, Inventory]] = {}
    for scan, ref in zip(scans, refs, strict=True):
        for path in [p for p in latest if _deleted(p, scan) and p not in scan.binary_inventories]:
            del latest[path]
        for path, found in scan.binary_inventories.items():
            latest[path] = (ref, found)
    result = Inventory()
    for ref, found in latest.values():
        result.packages.extend(p.model_copy(update={"layer": ref}) for p in found.packages)
        result.skipped.extend(found.skipped)
    return result


def dpkg_owned_paths(history: History) -> set[str]:
    """Every path the installed dpkg packages own (their info/*.list files, as the top layer has them)."""
    owned: set[str] = set()
    for path, versions in history.items():
        content = versions[-1][1]
        if is_dpkg_file_list(path) and content is not None:
            owned.update(line.strip().lstrip("/") for line in content.decode("utf-8", "replace").splitlines())
    return owned


def inventory(scans: Sequence[LayerScan], refs: Sequence[LayerRef]) -> tuple[Inventory, OsRelease | None]:
    history = file_history(scans, refs)
    release = os_release(history)
    owned = dpkg_owned_paths(history)
    texts = {
        path: [(ref, None if content is None else _decode(path, content)) for ref, content in versions]
        for path, versions in history.items()
        if path not in OS_RELEASE_PATHS and not is_dpkg_file_list(path)
    }
    found = inventory_from_layers(texts, release, text_parser)
    binaries = _binary_packages(scans, refs)
    seen = {package.purl for package in found.packages}
    found.packages += [p for p in binaries.packages if p.purl not in seen]
    found.skipped += binaries.skipped
    # A Python, npm, Ruby or Java package that a Debian package installed is that OS package (matched, and fixed,
    # through its dpkg name); listing it again under its language would duplicate or misjudge it.
    found.packages = [p for p in found.packages if p.ecosystem in OS_ECOSYSTEMS or p.location not in owned]
    return found, release
