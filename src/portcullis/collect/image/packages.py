"""Package evidence across layers: which files prove installed packages, and every version of each.

The layer reader keeps the whole content of evidence files (dpkg status, apk installed, Python
metadata, npm lockfiles, os-release) as it streams each layer once; this module turns those
per-layer versions into the image's inventory, each package attributed to the layer where its
name+version first appeared (not to the layer that last rewrote the database file).
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from typing import TYPE_CHECKING

from portcullis.model.layers import LayerRef
from portcullis.model.vuln import OsRelease
from portcullis.vuln.inventory import Inventory, inventory_from_layers, parse_os_release, parser_for

if TYPE_CHECKING:  # the layer reader imports this module to decide what to keep
    from portcullis.collect.image.layer import LayerScan

OS_RELEASE_PATHS = ("etc/os-release", "usr/lib/os-release")


def is_evidence(path: str) -> bool:
    return path in OS_RELEASE_PATHS or parser_for(path) is not None


def _deleted(path: str, scan: LayerScan) -> bool:
    """Whether this layer's whiteouts or opaque directories remove `path` written by a lower layer."""
    if path in scan.package_files:
        return False
    for gone in scan.whiteouts:
        if path == gone or path.startswith(gone + "/"):
            return True
    return any(path.startswith(directory + "/") for directory in scan.opaque_dirs)


def file_history(scans: Sequence[LayerScan], refs: Sequence[LayerRef]) -> dict[str, list[tuple[LayerRef, str | None]]]:
    """path -> [(layer, content or None when deleted)], oldest first, for every evidence file."""
    history: dict[str, list[tuple[LayerRef, str | None]]] = {}
    for scan, ref in zip(scans, refs, strict=True):
        for path in list(history):
            if history[path][-1][1] is not None and _deleted(path, scan):
                history[path].append((ref, None))
        for path, content in scan.package_files.items():
            history.setdefault(path, []).append((ref, content.decode("utf-8", "replace")))
    return history


def os_release(history: dict[str, list[tuple[LayerRef, str | None]]]) -> OsRelease | None:
    for path in OS_RELEASE_PATHS:
        versions = history.get(path)
        if versions and versions[-1][1] is not None:
            return parse_os_release(versions[-1][1] or "")
    return None


def inventory(scans: Sequence[LayerScan], refs: Sequence[LayerRef]) -> tuple[Inventory, OsRelease | None]:
    history = file_history(scans, refs)
    release = os_release(history)
    packages = {path: versions for path, versions in history.items() if posixpath.basename(path) != "os-release"}
    return inventory_from_layers(packages, release), release
