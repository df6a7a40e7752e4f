"""A realistic fleet of image inventories for matching at scale: images that share base layers share their packages.

The Debian base packages are the real dpkg databases of the vulnlab test images (../shared/vulndata/image-inventory)
or, when given, the inventories read from real images; the Alpine base and the application packages (PyPI, npm)
carry real names and real versions taken from the advisory data itself (the PyPA database's listed and fixed
versions, the npm records, the secdb fixed versions), so many of them really match. Packages without advisories
(the bulk of any real application) are named `acme-*` and never match. Seeded: the same arguments give the same fleet.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from portcullis.model.facts import ImageContentFacts, ImageFacts
from portcullis.model.layers import LayerRef
from portcullis.model.vuln import Ecosystem, OsRelease, Package

SHARED = Path(__file__).resolve().parents[3] / "shared" / "vulndata"
if not SHARED.is_dir():  # the work tree may sit elsewhere; the shared data has one home on this machine
    SHARED = Path("/work/shared/vulndata")
INVENTORY = SHARED / "image-inventory"
PYPA = SHARED / "pypi" / "pypa-advisory-database" / "vulns"
SECDB = SHARED / "alpine" / "alpine-secdb" / "v3.11" / "main.yaml"
NPM_RECORDS = Path(__file__).resolve().parents[1] / "vuln" / "data" / "osv-npm"
BOOKWORM = OsRelease(id="debian", version_id="12", codename="bookworm")
ALPINE = OsRelease(id="alpine", version_id="3.11.6", codename="")


def _layer(index: int, name: str) -> LayerRef:
    return LayerRef(index=index, diff_id="sha256:" + hashlib.sha256(name.encode()).hexdigest(), created_by=name)


def dpkg_base(tsv: Path) -> list[Package]:
    """The Debian packages of an image-inventory *.dpkg.tsv, in its first layer."""
    layer = _layer(0, f"debootstrap {tsv.name}")
    packages = []
    for line in tsv.read_text(encoding="utf-8").splitlines()[1:]:
        name, version, source, source_version, arch = line.split("\t")
        packages.append(
            Package(
                ecosystem=Ecosystem.DEBIAN,
                name=name,
                version=version,
                purl=f"pkg:deb/debian/{name}@{version}?arch={arch}&distro=debian-12",
                arch=arch,
                source_name="" if source == name else source,
                source_version="" if source_version == version else source_version,
                location="/var/lib/dpkg/status",
                layer=layer,
            )
        )
    return packages


def _pypa_versions() -> dict[str, list[str]]:
    """PyPI package -> the real versions its advisories name (listed affected versions and fixed versions)."""
    found: dict[str, set[str]] = {}
    for record in sorted(PYPA.glob("*/*.yaml")):
        doc = yaml.load(record.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        for affected in doc.get("affected", []):
            name = affected["package"]["name"]
            versions = found.setdefault(name, set())
            versions.update(str(v) for v in affected.get("versions", []))
            for rng in affected.get("ranges", []):
                if rng.get("type") == "ECOSYSTEM":
                    versions.update(str(e["fixed"]) for e in rng.get("events", []) if "fixed" in e)
    return {name: sorted(versions) for name, versions in sorted(found.items()) if versions}


def _npm_versions() -> dict[str, list[str]]:
    found: dict[str, set[str]] = {}
    for record in sorted(NPM_RECORDS.glob("*.json")):
        for affected in json.loads(record.read_text(encoding="utf-8")).get("affected", []):
            versions = found.setdefault(affected["package"]["name"], set())
            for rng in affected.get("ranges", []):
                versions.update(str(v) for e in rng.get("events", []) for k, v in e.items() if k != "introduced")
    return {name: sorted(versions) for name, versions in found.items()}


def _secdb_versions() -> dict[str, list[str]]:
    doc = yaml.load(SECDB.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    return {p["pkg"]["name"]: sorted(str(v) for v in p["pkg"]["secfixes"]) for p in doc["packages"]}


def _language(ecosystem: Ecosystem, name: str, version: str, layer: LayerRef, root: str) -> Package:
    kind = "pypi" if ecosystem is Ecosystem.PYPI else "npm"
    where = f"{root}/{name}-{version}.dist-info/METADATA" if kind == "pypi" else f"{root}/{name}/package.json"
    return Package(
        ecosystem=ecosystem,
        name=name,
        version=version,
        purl=f"pkg:{kind}/{name}@{version}",
        location=where,
        layer=layer,
    )


@dataclass(frozen=True)
class FleetImage:
    name: str
    facts: ImageFacts


class _Picker:
    """Draws application packages: real advisory names at real versions, and `acme-*` names without advisories."""

    def __init__(self, rng: random.Random, distinct: bool) -> None:
        self.rng = rng
        self.pypi = _pypa_versions()
        self.pypi_names = list(self.pypi)
        self.npm = _npm_versions()
        self.plain = 0
        self.distinct = distinct
        self.drawn: set[tuple[str, str]] = set()  # (name, version) already handed out, when `distinct`

    def _draw(self, versions: dict[str, list[str]], names: list[str], chosen: set[str]) -> tuple[str, str] | None:
        name = self.rng.choice(names)
        version = self.rng.choice(versions[name])
        if name in chosen or (name, version) in self.drawn:
            return None
        if self.distinct:
            self.drawn.add((name, version))
        return name, version

    def packages(self, count: int, layer: LayerRef, advised_share: float = 0.4) -> list[Package]:
        rng = self.rng
        chosen: set[str] = set()
        out: list[Package] = []
        while len(out) < count:
            roll = rng.random()
            if roll < advised_share:
                drawn = self._draw(self.pypi, self.pypi_names, chosen)
                if drawn is None:
                    continue
                name = drawn[0]
                pkg = _language(Ecosystem.PYPI, *drawn, layer, "/usr/local/lib/python3.11")
            elif roll < advised_share + 0.01:
                drawn = self._draw(self.npm, sorted(self.npm), chosen)
                if drawn is None:
                    continue
                name = drawn[0]
                pkg = _language(Ecosystem.NPM, *drawn, layer, "/opt/app/node_modules")
            else:
                self.plain += 1
                name = f"acme-{'py' if roll < 0.8 else 'js'}-{self.plain}"
                eco = Ecosystem.PYPI if roll < 0.8 else Ecosystem.NPM
                version = f"{rng.randrange(0, 5)}.{rng.randrange(0, 20)}.{rng.randrange(0, 10)}"
                root = "/usr/local/lib/python3.11" if eco is Ecosystem.PYPI else "/opt/app/node_modules"
                pkg = _language(eco, name, version, layer, root)
            chosen.add(name)
            out.append(pkg)
        return out


def _alpine_base(rng: random.Random, count: int) -> list[Package]:
    secdb = _secdb_versions()
    layer = _layer(0, "alpine 3.11 base")
    names = rng.sample(sorted(secdb), count)
    return [
        Package(
            ecosystem=Ecosystem.ALPINE,
            name=name,
            version=(version := rng.choice(secdb[name])),
            purl=f"pkg:apk/alpine/{name}@{version}?distro=alpine-3.11",
            location="/lib/apk/db/installed",
            layer=layer,
        )
        for name in names
    ]


def _image(name: str, release: OsRelease, packages: Sequence[Package]) -> FleetImage:
    digest = hashlib.sha256(name.encode()).hexdigest()
    content = ImageContentFacts(source="engine", reference=name, os_release=release, packages=list(packages))
    facts = ImageFacts.model_validate({"Id": f"sha256:{digest}", "RepoTags": [name]})
    return FleetImage(name, facts.model_copy(update={"content": content}))


def build_fleet(
    images: int = 20,
    per_image: int = 500,
    debian_bases: Sequence[Sequence[Package]] | None = None,
    seed: int = 20261124,
) -> list[FleetImage]:
    """`images` inventories of about `per_image` packages each, in families that share a base (Debian bookworm,
    the last sixth Alpine 3.11) and a family layer of application packages; each image adds its own packages.
    `debian_bases` (whole inventories of real bookworm images) defaults to the vulnlab dpkg databases in the shared
    data."""
    rng = random.Random(seed)
    bases = _bases(debian_bases)
    picker = _Picker(rng, distinct=False)
    n_alpine = max(1, images // 6)
    families: list[tuple[OsRelease, list[Package]]] = [(BOOKWORM, base) for base in bases]
    families.append((ALPINE, _alpine_base(rng, min(120, per_image // 4))))
    family_apps = [picker.packages(per_image // 3, _layer(1, f"family {i} platform")) for i in range(len(families))]
    fleet = []
    for n in range(images):
        family = len(families) - 1 if n >= images - n_alpine else n % (len(families) - 1)
        release, base = families[family]
        shared = family_apps[family]
        own = picker.packages(max(0, per_image - len(base) - len(shared)), _layer(2, f"image {n} app"))
        fleet.append(_image(f"fleet/app-{n:02d}:1", release, [*base, *shared, *own]))
    return fleet


def distinct_fleet(
    images: int = 20,
    per_image: int = 500,
    debian_bases: Sequence[Sequence[Package]] | None = None,
    seed: int = 20261124,
) -> list[FleetImage]:
    """The same kinds of packages with nothing shared: no (name, version) appears twice in the fleet. The first
    image carries the packages of every base (each distinct name+version once), the rest application packages
    only."""
    rng = random.Random(seed)
    debian = list({(p.name, p.version): p for base in _bases(debian_bases) for p in base}.values())
    picker = _Picker(rng, distinct=True)
    picker.drawn.update((p.name, p.version) for p in debian)
    fleet = []
    for n in range(images):
        base = debian if n == 0 else []
        own = picker.packages(max(0, per_image - len(base)), _layer(1, f"image {n} app"))
        fleet.append(_image(f"distinct/app-{n:02d}:1", BOOKWORM, [*base, *own]))
    return fleet


def _bases(debian_bases: Sequence[Sequence[Package]] | None) -> list[list[Package]]:
    if debian_bases:
        return [list(b) for b in debian_bases]
    return [dpkg_base(t) for t in sorted(INVENTORY.glob("*.tsv"))]
