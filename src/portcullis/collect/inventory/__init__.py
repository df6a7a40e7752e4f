"""Package inventory parsers: pure functions over file contents, no I/O.

dpkg `status` and distroless `status.d/`, apk `installed`, Python dist-info/egg-info metadata, npm package-lock
(v1-v3) and `node_modules/*/package.json`. Each returns an `Inventory`: the packages (with purl and the file that
proved them) and what was skipped, so a damaged database still gives a partial, honest inventory.

Layer attribution (`attribute_layers`) takes every version of one file across the image's layers and gives each
package the layer where its name+version first appeared, so a dpkg status rewritten in the top layer does not
move every package there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from packageurl import PackageURL

from portcullis.model.layers import LayerRef
from portcullis.model.licences import UNKNOWN, combine, from_classifiers, to_spdx
from portcullis.model.vuln import Ecosystem, OsRelease, Package


@dataclass
class Inventory:
    packages: list[Package] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "<file>: <what and why>"

    def extend(self, other: Inventory) -> None:
        self.packages.extend(other.packages)
        self.skipped.extend(other.skipped)


Parser = Callable[[str, str], Inventory]  # (file content, its path) -> inventory

# --- OS release ---------------------------------------------------------------------------------------------


def parse_os_release(text: str) -> OsRelease | None:
    """/etc/os-release (or /usr/lib/os-release); None when it names no ID."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            values[key] = value.strip().strip("\"'")
    if not values.get("ID"):
        return None
    return OsRelease(
        id=values["ID"].lower(), version_id=values.get("VERSION_ID", ""), codename=values.get("VERSION_CODENAME", "")
    )


def _distro_qualifier(release: OsRelease | None) -> dict[str, str]:
    return {"distro": f"{release.id}-{release.version_id}"} if release and release.version_id else {}


# --- dpkg ---------------------------------------------------------------------------------------------------

_FIELD = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*):\s?(.*)$")
_SOURCE = re.compile(r"^(\S+)(?:\s+\((\S+)\))?$")


def _stanzas(text: str, location: str, skipped: list[str]) -> list[dict[str, str]]:
    """RFC 822-style paragraphs; a line that is neither a field nor a continuation is reported and dropped."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if current:
                stanzas.append(current)
            current, last = {}, ""
            continue
        if line[0] in " \t":
            if last:
                current[last] += "\n" + line.strip()
            continue
        found = _FIELD.match(line)
        if found is None:
            skipped.append(f"{location}:{number}: not a field line: {line[:60]!r}")
            continue
        last = found.group(1).lower()
        current[last] = found.group(2)
    if current:
        stanzas.append(current)
    return stanzas


def _dpkg_packages(text: str, location: str, release: OsRelease | None, require_installed: bool) -> Inventory:
    inventory = Inventory()
    namespace = release.id if release and release.id in ("debian", "ubuntu") else "debian"
    ecosystem = Ecosystem.UBUNTU if namespace == "ubuntu" else Ecosystem.DEBIAN
    for stanza in _stanzas(text, location, inventory.skipped):
        name, version = stanza.get("package", ""), stanza.get("version", "")
        if not name or not version:
            inventory.skipped.append(f"{location}: a stanza without Package/Version ({name or 'unnamed'})")
            continue
        status = stanza.get("status", "")
        if (status or require_installed) and status.split()[-1:] != ["installed"]:
            continue  # removed, half-installed or config-files only: not on disk as a package
        source_name, source_version = name, version
        if stanza.get("source"):
            found = _SOURCE.match(stanza["source"].strip())
            if found:
                source_name = found.group(1)
                source_version = found.group(2) or version
        arch = stanza.get("architecture", "")
        qualifiers = {"arch": arch} if arch else {}
        qualifiers.update(_distro_qualifier(release))
        if source_name != name:
            qualifiers["upstream"] = source_name
        purl = PackageURL(type="deb", namespace=namespace, name=name, version=version, qualifiers=qualifiers)
        inventory.packages.append(
            Package(
                ecosystem=ecosystem,
                name=name,
                version=version,
                purl=purl.to_string(),
                arch=arch,
                source_name=source_name if source_name != name else "",
                source_version=source_version if source_version != version else "",
                location=location,
            )
        )
    return inventory


_COMMON_LICENSE = re.compile(r"/usr/share/common-licenses/([A-Za-z0-9][A-Za-z0-9.+-]*[A-Za-z0-9+])")


def parse_dpkg_copyright(text: str) -> str:
    """/usr/share/doc/PKG/copyright: every `License:` short name of a machine-readable (DEP-5) file, ANDed (each
    covers some of the package's files). A free-form file gives the /usr/share/common-licenses/ names it cites and
    its `License: NAME` lines whose value is one name (a sentence there is prose, not a declaration)."""
    machine_readable = text.startswith("Format:") or "\nFormat:" in text[:400]
    names = []
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        value = value.strip()
        if sep and key.lower() == "license" and value and (machine_readable or len(value.split()) == 1):
            names.append(to_spdx(value))
    if not machine_readable:
        names += [to_spdx(name) for name in _COMMON_LICENSE.findall(text)]
    return combine(names)


def parse_dpkg_status(text: str, location: str = "var/lib/dpkg/status", release: OsRelease | None = None) -> Inventory:
    """/var/lib/dpkg/status: only packages whose Status ends in `installed` count."""
    return _dpkg_packages(text, location, release, require_installed=True)


def parse_dpkg_status_d(text: str, location: str, release: OsRelease | None = None) -> Inventory:
    """One file of distroless /var/lib/dpkg/status.d/: stanzas usually without a Status field."""
    return _dpkg_packages(text, location, release, require_installed=False)


# --- apk ----------------------------------------------------------------------------------------------------


def parse_apk_installed(
    text: str, location: str = "lib/apk/db/installed", release: OsRelease | None = None
) -> Inventory:
    """/lib/apk/db/installed: `P:` name, `V:` version, `A:` arch, `o:` origin (the source package)."""
    inventory = Inventory()
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if current:
                records.append(current)
            current = {}
            continue
        if len(line) < 2 or line[1] != ":":
            inventory.skipped.append(f"{location}:{number}: not an apk field line: {line[:60]!r}")
            continue
        current.setdefault(line[0], line[2:])  # F:/R: repeat per file; only the single-valued fields matter
    if current:
        records.append(current)
    for record in records:
        name, version = record.get("P", ""), record.get("V", "")
        if not name or not version:
            inventory.skipped.append(f"{location}: a record without P:/V: ({name or 'unnamed'})")
            continue
        arch, origin = record.get("A", ""), record.get("o", "")
        qualifiers = {"arch": arch} if arch else {}
        qualifiers.update(_distro_qualifier(release))
        if origin and origin != name:
            qualifiers["upstream"] = origin
        purl = PackageURL(type="apk", namespace="alpine", name=name, version=version, qualifiers=qualifiers)
        inventory.packages.append(
            Package(
                ecosystem=Ecosystem.ALPINE,
                name=name,
                version=version,
                purl=purl.to_string(),
                arch=arch,
                source_name=origin if origin and origin != name else "",
                location=location,
                license=to_spdx(record.get("L", "")) or UNKNOWN,
            )
        )
    return inventory


# --- Python -------------------------------------------------------------------------------------------------


def parse_python_metadata(text: str, location: str) -> Inventory:
    """A dist-info METADATA or egg-info PKG-INFO file: the `Name:` and `Version:` headers."""
    headers: dict[str, str] = {}
    classifiers: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            break  # the headers end at the first blank line; the long description follows
        key, sep, value = line.partition(":")
        if sep and key and not key[0].isspace():
            headers.setdefault(key.strip().lower(), value.strip())
            if key.strip().lower() == "classifier":
                classifiers.append(value.strip())
    name, version = headers.get("name", ""), headers.get("version", "")
    if not name or not version:
        return Inventory(skipped=[f"{location}: no Name/Version header"])
    normalised = re.sub(r"[-_.]+", "-", name).lower()
    purl = PackageURL(type="pypi", name=normalised, version=version).to_string()
    # Core metadata 2.4's License-Expression is SPDX already; else the License field when it is a name, not a text
    declared = (
        to_spdx(headers.get("license-expression", ""))
        or to_spdx(headers.get("license", ""))
        or from_classifiers(classifiers)
    )
    return Inventory(
        [
            Package(
                ecosystem=Ecosystem.PYPI,
                name=name,
                version=version,
                purl=purl,
                location=location,
                license=declared or UNKNOWN,
            )
        ]
    )


# --- npm ----------------------------------------------------------------------------------------------------


def npm_license(manifest: Mapping[str, Any]) -> str:
    """`license` (an SPDX expression, or the old `{"type": ...}` object) or the older `licenses` list."""
    declared = manifest.get("license")
    if isinstance(declared, dict):
        declared = declared.get("type")
    if isinstance(declared, str):
        return to_spdx(declared)
    listed = manifest.get("licenses")
    if isinstance(listed, list):
        names = [item.get("type") if isinstance(item, dict) else item for item in listed]
        return " OR ".join(e for e in (to_spdx(n) for n in names if isinstance(n, str)) if e)
    return ""


def _npm_package(name: str, version: str, location: str, license_expression: str = "") -> Package:
    namespace, _, short = name.rpartition("/")
    purl = PackageURL(type="npm", namespace=namespace or None, name=short, version=version).to_string()
    return Package(
        ecosystem=Ecosystem.NPM,
        name=name,
        version=version,
        purl=purl,
        location=location,
        license=license_expression or UNKNOWN,
    )


_NPM_VERSION = re.compile(r"^\d+\.\d+\.\d+")


def parse_npm_lock(text: str, location: str) -> Inventory:
    """package-lock.json v1 (nested `dependencies`), v2 and v3 (flat `packages` keyed by node_modules path)."""
    inventory = Inventory()
    try:
        lock = json.loads(text)
    except json.JSONDecodeError as exc:
        return Inventory(skipped=[f"{location}: not valid JSON: {exc.msg} at line {exc.lineno}"])
    if not isinstance(lock, dict):
        return Inventory(skipped=[f"{location}: not a package-lock object"])
    seen: set[tuple[str, str]] = set()

    def add(name: str, version: Any, where: str, entry: Mapping[str, Any]) -> None:
        if not isinstance(version, str) or not _NPM_VERSION.match(version):
            inventory.skipped.append(f"{location}: {where}: version {version!r} is not a registry version")
            return
        if (name, version) not in seen:
            seen.add((name, version))
            inventory.packages.append(_npm_package(name, version, location, npm_license(entry)))

    packages = lock.get("packages")
    if isinstance(packages, dict):  # v2 and v3
        for key, entry in packages.items():
            if "node_modules/" not in key or not isinstance(entry, dict) or entry.get("link"):
                continue  # the root project, workspaces and symlinks are not installed registry packages
            name = entry.get("name") or key.rsplit("node_modules/", 1)[1]
            add(name, entry.get("version"), key, entry)
        return inventory

    def walk(dependencies: Any, trail: str) -> None:
        if not isinstance(dependencies, dict):
            return
        for name, entry in dependencies.items():
            if not isinstance(entry, dict):
                inventory.skipped.append(f"{location}: {trail}{name}: not an object")
                continue
            add(name, entry.get("version"), f"{trail}{name}", entry)
            walk(entry.get("dependencies"), f"{trail}{name}>")

    if "dependencies" not in lock:
        inventory.skipped.append(f"{location}: neither 'packages' nor 'dependencies' (not a package-lock)")
    walk(lock.get("dependencies"), "")
    return inventory


def parse_package_json(text: str, location: str) -> Inventory:
    """node_modules/<name>/package.json of an installed package."""
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        return Inventory(skipped=[f"{location}: not valid JSON: {exc.msg} at line {exc.lineno}"])
    if not isinstance(manifest, dict) or not manifest.get("name") or not manifest.get("version"):
        return Inventory(skipped=[f"{location}: no name/version"])
    return Inventory([_npm_package(str(manifest["name"]), str(manifest["version"]), location, npm_license(manifest))])


# --- dispatch and layers ------------------------------------------------------------------------------------


_PYTHON_METADATA = re.compile(r"[^/]+\.dist-info/METADATA$|[^/]+\.egg-info/PKG-INFO$")
_NODE_PACKAGE_JSON = re.compile(r"(^|/)node_modules/(@[^/]+/)?[^/@.][^/]*/package\.json$")


def parser_for(path: str, release: OsRelease | None = None) -> Parser | None:
    """The parser for a path inside an image (no leading slash needed), or None if it is not package evidence."""
    p = path.lstrip("/")
    if p == "var/lib/dpkg/status":
        return lambda text, loc: parse_dpkg_status(text, loc, release)
    if p.startswith("var/lib/dpkg/status.d/") and not p.endswith((".md5sums", "/")):
        return lambda text, loc: parse_dpkg_status_d(text, loc, release)
    if p == "lib/apk/db/installed":
        return lambda text, loc: parse_apk_installed(text, loc, release)
    if p.endswith(("/METADATA", "/PKG-INFO")) and _PYTHON_METADATA.search(p):
        return parse_python_metadata
    if p.endswith("package-lock.json") and (
        "/node_modules/" not in f"/{p}" or p.endswith("node_modules/.package-lock.json")
    ):
        return parse_npm_lock
    if p.endswith("/package.json") and _NODE_PACKAGE_JSON.search(p):
        return parse_package_json
    return None


def attribute_layers(history: Sequence[tuple[LayerRef, str | None]], parser: Parser, location: str) -> Inventory:
    """The final inventory of one file, each package tagged with the layer where its name+version first appeared.

    `history` lists, oldest first, every layer that wrote the file (its content) or deleted it (None, a whiteout).
    A package keeps its layer while later rewrites of the file carry it unchanged; removing it resets that.
    """
    current: dict[tuple[str, str, str], tuple[Package, LayerRef]] = {}
    last = Inventory()
    for layer, content in history:
        if content is None:
            current, last = {}, Inventory()
            continue
        last = parser(content, location)
        carried: dict[tuple[str, str, str], tuple[Package, LayerRef]] = {}
        for package in last.packages:
            key = (package.name, package.arch, package.version)
            carried[key] = (package, current[key][1] if key in current else layer)
        current = carried
    return Inventory(
        [package.model_copy(update={"layer": layer}) for package, layer in current.values()], list(last.skipped)
    )


def inventory_from_layers(
    files: Mapping[str, Sequence[tuple[LayerRef, str | None]]],
    release: OsRelease | None,
    parser_lookup: Callable[[str, OsRelease | None], Parser | None] = parser_for,
) -> Inventory:
    """The image's whole inventory from every version of every package-evidence file (see `parser_for`).

    A package proved by two files (an npm lockfile and the package's own package.json) is listed once, from the
    first file in path order.
    """
    inventory = Inventory()
    seen: set[str] = set()
    for path in sorted(files):
        parser = parser_lookup(path, release)
        if parser is None:
            continue
        found = attribute_layers(files[path], parser, path)
        inventory.skipped.extend(found.skipped)
        for package in found.packages:
            if package.purl not in seen:
                seen.add(package.purl)
                inventory.packages.append(package)
    return inventory
