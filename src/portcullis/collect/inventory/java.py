"""Java archives (.jar/.war/.ear): Maven coordinates from `META-INF/maven/<group>/<artifact>/pom.properties`, with the
manifest as the fallback, and the archives nested inside (Spring Boot `BOOT-INF/lib/*.jar`, `WEB-INF/lib/*.jar`).

Maven advisories name packages `groupId:artifactId`, which only `pom.properties` proves. A jar without one is listed
only when its manifest names a group (`Implementation-Vendor-Id`) and the artifact and version; otherwise it is
reported as skipped. Nesting depth and the bytes read from nested archives are bounded (zip bombs).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from packageurl import PackageURL

from portcullis.collect.inventory import Inventory
from portcullis.model.vuln import Ecosystem, Package

ARCHIVE_SUFFIXES = (".jar", ".war", ".ear", ".par", ".sar", ".jpi", ".hpi", ".kar")
MAX_DEPTH = 3  # an application archive, its libraries, and archives shaded into those
MAX_NESTED_BYTES = 256 * 1024 * 1024  # total uncompressed bytes of nested archives read for one outer archive
MAX_ENTRY_BYTES = 1024 * 1024  # a pom.properties or manifest bigger than this is not one


@dataclass
class _Budget:
    remaining: int = MAX_NESTED_BYTES


def parse_properties(text: str) -> dict[str, str]:
    """Java .properties: `key=value` or `key: value`, `#`/`!` comments. (Escapes do not occur in pom.properties.)"""
    values: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#!":
            continue
        cut = min((i for i in (stripped.find("="), stripped.find(":")) if i >= 0), default=-1)
        if cut > 0:
            values[stripped[:cut].strip()] = stripped[cut + 1 :].strip()
    return values


def parse_manifest(text: str) -> dict[str, str]:
    """The main section of META-INF/MANIFEST.MF; continuation lines start with one space."""
    values: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line:
            break  # the main section ends at the first blank line; per-entry sections follow
        if line.startswith(" ") and last:
            values[last] += line[1:]
            continue
        key, sep, value = line.partition(":")
        if sep:
            last = key.strip()
            values[last] = value.strip()
    return values


def _package(group: str, artifact: str, version: str, location: str) -> Package:
    purl = PackageURL(type="maven", namespace=group, name=artifact, version=version).to_string()
    return Package(ecosystem=Ecosystem.MAVEN, name=f"{group}:{artifact}", version=version, purl=purl, location=location)


def _read_small(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    if info.file_size > MAX_ENTRY_BYTES:
        raise ValueError(f"{info.filename} is {info.file_size} bytes")
    return archive.read(info).decode("utf-8", "replace")


def _scan(data: bytes, location: str, depth: int, budget: _Budget, inventory: Inventory) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        inventory.skipped.append(f"{location}: not a readable zip archive: {exc}")
        return
    found = False
    manifest: dict[str, str] = {}
    nested: list[zipfile.ZipInfo] = []
    with archive:
        for info in entries:
            name = info.filename
            try:
                if name.startswith("META-INF/maven/") and name.endswith("/pom.properties"):
                    props = parse_properties(_read_small(archive, info))
                    group, artifact, version = (props.get(k, "") for k in ("groupId", "artifactId", "version"))
                    if group and artifact and version:
                        inventory.packages.append(_package(group, artifact, version, location))
                        found = True
                    else:
                        inventory.skipped.append(f"{location}!/{name}: no groupId/artifactId/version")
                elif name == "META-INF/MANIFEST.MF":
                    manifest = parse_manifest(_read_small(archive, info))
                elif name.lower().endswith(ARCHIVE_SUFFIXES) and not info.is_dir():
                    nested.append(info)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:  # bad CRC, truncated, oversized
                inventory.skipped.append(f"{location}!/{name}: {exc}")
        if not found:
            _from_manifest(manifest, location, inventory)
        for info in nested:
            inner = f"{location}!/{info.filename}"
            if depth + 1 > MAX_DEPTH:
                inventory.skipped.append(f"{inner}: nested deeper than {MAX_DEPTH} archives; not read")
                continue
            if info.file_size > budget.remaining:
                inventory.skipped.append(f"{inner}: {info.file_size} bytes exceeds what is left of the nested budget")
                continue
            budget.remaining -= info.file_size
            try:
                inner_data = archive.read(info)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                inventory.skipped.append(f"{inner}: {exc}")
                continue
            _scan(inner_data, inner, depth + 1, budget, inventory)


def _from_manifest(manifest: dict[str, str], location: str, inventory: Inventory) -> None:
    group = manifest.get("Implementation-Vendor-Id", "")
    artifact = manifest.get("Implementation-Title", "")
    version = manifest.get("Implementation-Version", "") or manifest.get("Bundle-Version", "")
    if group and artifact and version and " " not in artifact:
        inventory.packages.append(_package(group, artifact, version, location))
    elif manifest:
        named = artifact or manifest.get("Bundle-SymbolicName", "") or "an unnamed artifact"
        inventory.skipped.append(f"{location}: no pom.properties and the manifest names no Maven group ({named})")
    else:
        inventory.skipped.append(f"{location}: neither pom.properties nor a manifest")


def parse_jar(data: bytes, location: str) -> Inventory:
    """Every Maven artifact a Java archive proves, nested archives included (location `outer.jar!/inner.jar`).

    The same coordinates found twice in one archive (a library and a shaded copy) are listed once, first location.
    """
    raw = Inventory()
    _scan(data, location, 0, _Budget(), raw)
    unique: dict[tuple[str, str], Package] = {}
    for package in raw.packages:
        unique.setdefault((package.name, package.version), package)
    return Inventory(list(unique.values()), raw.skipped)
