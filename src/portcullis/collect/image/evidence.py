"""Which files of a layer are package evidence, decided as the layer streams past.

Database-like files (dpkg status, apk installed, rpmdb, Python metadata, npm lockfiles, gemspecs, os-release)
and dpkg's copyright files (the packages' licences, up to MAX_COPYRIGHT_BYTES) are kept whole for
`packages` to read across layers; Java archives and executables are parsed on the spot.
"""

from __future__ import annotations

from portcullis.collect.inventory import Inventory, Parser, parser_for
from portcullis.collect.inventory.go import parse_go_binary
from portcullis.collect.inventory.java import parse_jar
from portcullis.collect.inventory.rpm import parse_rpmdb_bdb, parse_rpmdb_sqlite
from portcullis.collect.inventory.ruby import is_gemspec_path, parse_gemspec
from portcullis.collect.inventory.rust import parse_rust_binary
from portcullis.model.vuln import OsRelease

OS_RELEASE_PATHS = ("etc/os-release", "usr/lib/os-release")
RPMDB_SQLITE_PATHS = ("var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite")
RPMDB_BDB_PATHS = ("var/lib/rpm/Packages",)
RPMDB_PATHS = RPMDB_SQLITE_PATHS + RPMDB_BDB_PATHS
ARCHIVE_SUFFIXES = (".jar", ".war", ".ear")
DPKG_INFO = "var/lib/dpkg/info/"
DPKG_DOC = "usr/share/doc/"
MAX_COPYRIGHT_BYTES = 256 * 1024  # Debian's largest copyright files are ~100 KiB; a bigger one is not read
ELF_MAGIC = b"\x7fELF"


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


def is_dpkg_copyright(path: str) -> bool:
    """usr/share/doc/PKG/copyright: the licences of dpkg package PKG."""
    return path.startswith(DPKG_DOC) and path.endswith("/copyright") and path.count("/") == 4


def copyright_package(path: str) -> str:
    return path[len(DPKG_DOC) : -len("/copyright")]


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
    "/copyright",
)


def is_evidence(path: str) -> bool:
    """Files kept whole, every version, to be parsed once all layers are known."""
    if not path.endswith(_EVIDENCE_ENDINGS) and not path.startswith("var/lib/dpkg/status.d/"):
        return False
    return (
        path in OS_RELEASE_PATHS
        or is_dpkg_file_list(path)
        or is_dpkg_copyright(path)
        or text_parser(path, None) is not None
    )


def within_bound(path: str, size: int) -> bool:
    """Evidence files are read whole up to the package-file limit; copyright files only up to their own bound."""
    return size <= MAX_COPYRIGHT_BYTES or not is_dpkg_copyright(path)


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
