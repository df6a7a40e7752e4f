"""Java archives (.jar/.war/.ear): Maven coordinates from `META-INF/maven/<group>/<artifact>/pom.properties`, with the
manifest as the fallback, and the archives nested inside (Spring Boot `BOOT-INF/lib/*.jar`, `WEB-INF/lib/*.jar`).

Maven advisories name packages `groupId:artifactId`, which only `pom.properties` proves. A jar without one is listed
only when its manifest names a group (`Implementation-Vendor-Id`) and the artifact and version; otherwise it is
reported as skipped. Nesting depth and the bytes read from nested archives are bounded (zip bombs).

The declared licence comes from the `<licenses>` of the `pom.xml` beside `pom.properties`, else from the manifest's
OSGi `Bundle-License` header. A pom that inherits its licences from a parent pom (not in the jar) declares none here.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError
from xml.etree.ElementTree import fromstring as parse_xml

from packageurl import PackageURL

from portcullis.collect.inventory import Inventory
from portcullis.model.licences import UNKNOWN, combine, to_spdx
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


# Licence URLs that poms and Bundle-License headers give instead of a name (scheme, `www.` and `.txt`/`.html` dropped)
_LICENCE_URLS = {
    "apache.org/licenses/license-2.0": "Apache-2.0",
    "opensource.org/licenses/mit": "MIT",
    "opensource.org/licenses/mit-license.php": "MIT",
    "opensource.org/licenses/apache-2.0": "Apache-2.0",
    "opensource.org/licenses/bsd-3-clause": "BSD-3-Clause",
    "opensource.org/licenses/bsd-2-clause": "BSD-2-Clause",
    "eclipse.org/legal/epl-v10": "EPL-1.0",
    "eclipse.org/legal/epl-2.0": "EPL-2.0",
    "eclipse.org/org/documents/edl-v10": "BSD-3-Clause",
    "gnu.org/licenses/lgpl-2.1": "LGPL-2.1-only",
    "gnu.org/licenses/gpl-2.0": "GPL-2.0-only",
    "mozilla.org/mpl/2.0": "MPL-2.0",
}
_URL_PREFIX = re.compile(r"^https?://(www\.)?", re.IGNORECASE)
_URL_SUFFIX = re.compile(r"(/|\.txt|\.html?)$", re.IGNORECASE)


def licence_from_url(url: str) -> str:
    """The SPDX id of a well-known licence URL; '' for any other URL."""
    key = _URL_SUFFIX.sub("", _URL_PREFIX.sub("", url.strip())).lower()
    return _LICENCE_URLS.get(key, "")


def _declared(name: str, url: str) -> str:
    return licence_from_url(url) or (to_spdx(name) if name else "")


def pom_licence(text: str) -> str:
    """The SPDX expression of a pom's `<licenses>` (several licences all apply: Maven has no OR); '' for none."""
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        return ""  # poms need no document type; entities are how hostile XML expands or reaches out
    try:
        project: Element = parse_xml(text)
    except (ParseError, ValueError):
        return ""  # a damaged pom declares nothing; the coordinates still come from pom.properties
    found = []
    for element in project.iter():
        if element.tag.rsplit("}", 1)[-1] != "license":
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "").strip() for child in element}
        found.append(_declared(fields.get("name", ""), fields.get("url", "")))
    return combine(found)


def bundle_licence(header: str) -> str:
    """OSGi `Bundle-License`: licences separated by commas, each a name or URL with `;key=value` attributes."""
    found = []
    for clause in re.split(r',(?=(?:[^"]*"[^"]*")*[^"]*$)', header):
        name = clause.split(";", 1)[0].strip().strip('"')
        if name:
            found.append(licence_from_url(name) if "://" in name else to_spdx(name))
    return combine(found)


def _package(group: str, artifact: str, version: str, location: str, licence: str = "") -> Package:
    purl = PackageURL(type="maven", namespace=group, name=artifact, version=version).to_string()
    return Package(
        ecosystem=Ecosystem.MAVEN,
        name=f"{group}:{artifact}",
        version=version,
        purl=purl,
        location=location,
        license=licence or UNKNOWN,
    )


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
    manifest: dict[str, str] = {}
    coordinates: list[tuple[str, tuple[str, str, str]]] = []  # (the pom.properties folder, group/artifact/version)
    poms: dict[str, zipfile.ZipInfo] = {}
    nested: list[zipfile.ZipInfo] = []
    with archive:
        for info in entries:
            name = info.filename
            try:
                if name.startswith("META-INF/maven/") and name.endswith("/pom.properties"):
                    props = parse_properties(_read_small(archive, info))
                    group, artifact, version = (props.get(k, "") for k in ("groupId", "artifactId", "version"))
                    if group and artifact and version:
                        coordinates.append((name.rsplit("/", 1)[0], (group, artifact, version)))
                    else:
                        inventory.skipped.append(f"{location}!/{name}: no groupId/artifactId/version")
                elif name.startswith("META-INF/maven/") and name.endswith("/pom.xml"):
                    poms[name.rsplit("/", 1)[0]] = info
                elif name == "META-INF/MANIFEST.MF":
                    manifest = parse_manifest(_read_small(archive, info))
                elif name.lower().endswith(ARCHIVE_SUFFIXES) and not info.is_dir():
                    nested.append(info)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:  # bad CRC, truncated, oversized
                inventory.skipped.append(f"{location}!/{name}: {exc}")
        # the manifest describes the archive itself: its licence applies only when one artifact is there
        bundle = bundle_licence(manifest.get("Bundle-License", "")) if len(coordinates) <= 1 else ""
        for folder, (group, artifact, version) in coordinates:
            licence = _pom_licence_of(archive, poms.get(folder), location, inventory) or bundle
            inventory.packages.append(_package(group, artifact, version, location, licence))
        if not coordinates:
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


def _pom_licence_of(archive: zipfile.ZipFile, pom: zipfile.ZipInfo | None, location: str, inventory: Inventory) -> str:
    if pom is None:
        return ""
    try:
        return pom_licence(_read_small(archive, pom))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        inventory.skipped.append(f"{location}!/{pom.filename}: {exc}")
        return ""


def _from_manifest(manifest: dict[str, str], location: str, inventory: Inventory) -> None:
    group = manifest.get("Implementation-Vendor-Id", "")
    artifact = manifest.get("Implementation-Title", "")
    version = manifest.get("Implementation-Version", "") or manifest.get("Bundle-Version", "")
    if group and artifact and version and " " not in artifact:
        licence = bundle_licence(manifest.get("Bundle-License", ""))
        inventory.packages.append(_package(group, artifact, version, location, licence))
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
