"""Package evidence across layers: every version of each evidence file, and the image's inventory from them.

The layer reader keeps the whole content of database-like evidence files (dpkg status, apk installed,
rpmdb.sqlite, Python metadata, npm lockfiles, gemspecs, os-release, dpkg copyright files; see `evidence`) as it
streams each layer once; this module turns those per-layer versions into the image's inventory, each package
attributed to the layer where its name+version first appeared (not to the layer that last rewrote
the database file). Binaries and Java archives are parsed as they stream past instead (Go build
info, cargo-auditable, jar manifests and pom.properties), so only their packages are kept.
"""

from __future__ import annotations

from collections.abc import Sequence

from portcullis.collect.image.evidence import (
    DPKG_DOC,
    OS_RELEASE_PATHS,
    RPMDB_PATHS,
    copyright_package,
    is_dpkg_copyright,
    is_dpkg_file_list,
    text_parser,
)
from portcullis.collect.image.layer import SYMLINK, LayerScan
from portcullis.collect.inventory import Inventory, inventory_from_layers, parse_dpkg_copyright, parse_os_release
from portcullis.model.layers import LayerRef
from portcullis.model.licences import UNKNOWN
from portcullis.model.vuln import Ecosystem, OsRelease, Package

OS_ECOSYSTEMS = {Ecosystem.DEBIAN, Ecosystem.UBUNTU, Ecosystem.ALPINE, Ecosystem.RPM}
History = dict[str, list[tuple[LayerRef, bytes | None]]]


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


def _doc_links(scans: Sequence[LayerScan]) -> dict[str, str]:
    """usr/share/doc/PKG symlinks to a sibling directory (libgcc-s1 -> gcc-12-base): PKG -> the sibling's name."""
    links: dict[str, str] = {}
    for scan in scans:
        for gone in scan.whiteouts:
            if gone.startswith(DPKG_DOC):
                links.pop(gone[len(DPKG_DOC) :], None)
        for entry in scan.entries:
            if entry.path.startswith(DPKG_DOC) and entry.path.count("/") == 3:
                target = entry.link.rstrip("/")
                if entry.kind == SYMLINK and target and "/" not in target.removeprefix("../doc/"):
                    links[entry.path[len(DPKG_DOC) :]] = target.removeprefix("../doc/")
                else:
                    links.pop(entry.path[len(DPKG_DOC) :], None)
    return links


def dpkg_licences(history: History, scans: Sequence[LayerScan]) -> dict[str, str]:
    """dpkg package name -> SPDX expression, from each usr/share/doc/PKG/copyright as the top layer has it; a
    package whose doc directory is a symlink to another package's shares that package's file."""
    found: dict[str, str] = {}
    for path, versions in history.items():
        content = versions[-1][1]
        if is_dpkg_copyright(path) and content is not None:
            expression = parse_dpkg_copyright(content.decode("utf-8", "replace"))
            if expression:
                found[copyright_package(path)] = expression
    for name, target in _doc_links(scans).items():
        if target in found:
            found.setdefault(name, found[target])
    return found


def _with_dpkg_licence(package: Package, licences: dict[str, str]) -> Package:
    if package.ecosystem not in (Ecosystem.DEBIAN, Ecosystem.UBUNTU) or package.license != UNKNOWN:
        return package
    expression = licences.get(package.name)
    return package.model_copy(update={"license": expression}) if expression else package


def inventory(scans: Sequence[LayerScan], refs: Sequence[LayerRef]) -> tuple[Inventory, OsRelease | None]:
    history = file_history(scans, refs)
    release = os_release(history)
    owned = dpkg_owned_paths(history)
    texts = {
        path: [(ref, None if content is None else _decode(path, content)) for ref, content in versions]
        for path, versions in history.items()
        if path not in OS_RELEASE_PATHS and not is_dpkg_file_list(path) and not is_dpkg_copyright(path)
    }
    found = inventory_from_layers(texts, release, text_parser)
    binaries = _binary_packages(scans, refs)
    seen = {package.purl for package in found.packages}
    found.packages += [p for p in binaries.packages if p.purl not in seen]
    found.skipped += binaries.skipped
    # A Python, npm, Ruby or Java package that a Debian package installed is that OS package (matched, and fixed,
    # through its dpkg name); listing it again under its language would duplicate or misjudge it.
    found.packages = [p for p in found.packages if p.ecosystem in OS_ECOSYSTEMS or p.location not in owned]
    licences = dpkg_licences(history, scans)
    found.packages = [_with_dpkg_licence(p, licences) for p in found.packages]
    return found, release
