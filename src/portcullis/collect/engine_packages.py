"""Which distribution package each engine binary and the running kernel come from, read from the dpkg database.

Read-only: /var/lib/dpkg/status gives versions and source packages, /var/lib/dpkg/info/*.list which package owns
which file. A binary no list names (a static build, a tarball install) keeps only the version the engine reports.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from portcullis.collect.inventory import parse_dpkg_status
from portcullis.model.facts import EngineComponent, KernelBuild
from portcullis.model.vuln import Package

DPKG_STATUS = Path("/var/lib/dpkg/status")
DPKG_INFO = Path("/var/lib/dpkg/info")
# the names /version gives the components, for the binaries that carry them
_VERSION_NAMES = {"dockerd": "Engine", "containerd": "containerd", "runc": "runc"}


def _owners(info_dir: Path, paths: set[str]) -> dict[str, str]:
    """path -> the dpkg package whose file list holds it (under either its own name or its /usr-merged twin)."""
    wanted: dict[str, str] = {}
    for path in paths:
        wanted[path] = path
        for prefix in ("/usr/bin/", "/usr/sbin/", "/usr/lib/"):
            if path.startswith(prefix):
                wanted[path[len("/usr") :]] = path  # a list written before the /usr merge names /bin, /sbin, /lib
    owners: dict[str, str] = {}
    try:
        lists = sorted(info_dir.glob("*.list"))
    except OSError:
        return owners
    for listing in lists:
        try:
            lines = listing.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        package = listing.name.removesuffix(".list").split(":")[0]  # libfoo:amd64.list names a multi-arch package
        for line in lines:
            target = wanted.get(line)
            if target is not None:
                owners.setdefault(target, package)
    return owners


def _installed(status_path: Path) -> dict[str, Package]:
    try:
        text = status_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    return {p.name: p for p in parse_dpkg_status(text, str(status_path)).packages}


def _component_versions(components: list[dict[str, Any]]) -> dict[str, str]:
    return {str(c.get("Name", "")): str(c.get("Version", "")) for c in components if c.get("Version")}


def engine_components(
    binaries: Mapping[str, str | None],
    api_components: list[dict[str, Any]],
    status_path: Path = DPKG_STATUS,
    info_dir: Path = DPKG_INFO,
) -> list[EngineComponent]:
    """Each engine binary with the package that installed it (if any) and the version the engine reports."""
    paths = {p for p in binaries.values() if p}
    owners = _owners(info_dir, paths) if paths else {}
    installed = _installed(status_path) if owners else {}
    return _components(binaries, api_components, owners, installed)


def kernel_build(
    release: str | None = None,
    proc_version: Path = Path("/proc/version"),
    status_path: Path = DPKG_STATUS,
    info_dir: Path = DPKG_INFO,
) -> KernelBuild:
    """The running kernel, and the package that installed its image when one did (/boot/vmlinuz-<release>)."""
    release = release or os.uname().release
    image = f"/boot/vmlinuz-{release}"
    owners = _owners(info_dir, {image})
    return _kernel(release, proc_version, owners, _installed(status_path) if owners else {})


def engine_exposure(
    binaries: Mapping[str, str | None], api_components: list[dict[str, Any]]
) -> tuple[list[EngineComponent], KernelBuild]:
    """Both, from one pass over dpkg's file lists (reading them all is most of the cost)."""
    release = os.uname().release
    paths = {p for p in binaries.values() if p} | {f"/boot/vmlinuz-{release}"}
    owners = _owners(DPKG_INFO, paths)
    installed = _installed(DPKG_STATUS) if owners else {}
    return (
        _components(binaries, api_components, owners, installed),
        _kernel(release, Path("/proc/version"), owners, installed),
    )


def _components(
    binaries: Mapping[str, str | None],
    api_components: list[dict[str, Any]],
    owners: dict[str, str],
    installed: dict[str, Package],
) -> list[EngineComponent]:
    reported = _component_versions(api_components)
    found: list[EngineComponent] = []
    for name, path in sorted(binaries.items()):
        component = EngineComponent(name=name, path=path, upstream_version=reported.get(_VERSION_NAMES.get(name, "")))
        package = installed.get(owners.get(path or "", ""))
        if package is not None:
            component.package, component.package_version = package.name, package.version
            component.source, component.source_version = package.match_name, package.match_version
        found.append(component)
    return found


def _kernel(release: str, proc_version: Path, owners: dict[str, str], installed: dict[str, Package]) -> KernelBuild:
    try:
        build = proc_version.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        build = ""
    kernel = KernelBuild(release=release, build=build)
    package = installed.get(owners.get(f"/boot/vmlinuz-{release}", ""))
    if package is not None:
        kernel.package, kernel.package_version = package.name, package.version
        kernel.source, kernel.source_version = package.match_name, package.match_version
    return kernel
