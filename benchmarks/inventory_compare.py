"""Package inventory of the vulnlab images: portcullis beside syft and Trivy, every difference explained.

Each image is saved once with `docker save`; portcullis (`portcullis sbom docker-archive:TAR`), syft (syft-json) and
Trivy (CycloneDX, no scanners, so it runs offline) all read that same tar. Packages are normalised to
(ecosystem, name, version) with the layer index that introduced them, where the tool reports one. The image's own
view is the reference: `dpkg-query -W`, the Python metadata directories and the npm package.json files found inside
a container of the image.

Each difference is put in a category with a written explanation, and only when the evidence in the data
fits that category (e.g. syft's own supporting files sit in the layer portcullis names). Whatever fits none is listed
as unexplained, where it points at a tool (maybe portcullis) that is wrong.

Writes benchmarks/results/inventory-compare.json and benchmarks/results/inventory-compare.md. Needs the images from
scripts/build-vulnlab-image.sh and the peers in the tools venv (`make bench-programs`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
IMAGES = ("portcullis-test/vulnlab:bookworm", "portcullis-test/vulnlab:layered")
sys.path.insert(0, str(HERE.parent / "tests"))
from support.tools import TOOLS_VENV  # noqa: E402

PEERS = TOOLS_VENV / "bin"  # make bench-programs
WORK = Path("/var/tmp/portcullis-bench/vulnlab")
TOOLS = ("portcullis", "syft", "trivy")
ECOSYSTEMS = ("deb", "pypi", "npm")
DPKG_STATUS = "/var/lib/dpkg/status"


@dataclass
class Entry:
    """One package as one tool reported it."""

    ecosystem: str
    name: str
    version: str
    layer: int | None = None  # index into the image's layers; None when the tool does not say
    location: str = ""  # the file the tool names as its evidence
    source: str = ""  # dpkg source package (binary name when the same)
    supporting_layers: list[int] = field(default_factory=list)  # syft: layers of the package's other files
    purl: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.ecosystem, self.name, self.version)


def normal_name(ecosystem: str, name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower() if ecosystem == "pypi" else name


def run(argv: list[str], **env: str) -> tuple[str, float]:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **env}, timeout=900)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"inventory-compare: {argv[0]} failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return done.stdout, elapsed


def in_image(image: str, script: str) -> str:
    out, _ = run(
        ["docker", "run", "--rm", "--label", "portcullis.test=1", "--network", "none", image, "sh", "-c", script]
    )
    return out


# --- the three tools -----------------------------------------------------------------------------------------


def purl_ecosystem(purl: str) -> str:
    return purl.split(":", 1)[1].split("/", 1)[0]


def portcullis_inventory(tar: Path, out: Path) -> tuple[list[Entry], float]:
    argv = [sys.executable, "-m", "portcullis", "sbom", f"docker-archive:{tar}", "--no-vulns", "-o", str(out)]
    _, seconds = run(argv)
    entries = []
    for component in json.loads(out.read_text())["components"]:
        if "purl" not in component:
            continue  # the operating-system component
        props = {p["name"]: p["value"] for p in component.get("properties", [])}
        ecosystem = purl_ecosystem(component["purl"])
        layer = props.get("portcullis:layer:index")
        entries.append(
            Entry(
                ecosystem,
                normal_name(ecosystem, component["name"]),
                component["version"],
                None if layer is None else int(layer),
                "/" + props.get("portcullis:package:location", ""),
                props.get("portcullis:package:source_name") or component["name"],
                purl=component["purl"],
            )
        )
    return entries, seconds


def syft_inventory(tar: Path, out: Path, layers: list[str], scope: str = "squashed") -> tuple[list[Entry], float]:
    argv = [str(PEERS / "syft"), f"docker-archive:{tar}", "--scope", scope, "-q", "-o", f"syft-json={out}"]
    _, seconds = run(argv, SYFT_CHECK_FOR_APP_UPDATE="false")
    entries = []
    for artifact in json.loads(out.read_text())["artifacts"]:
        ecosystem = purl_ecosystem(artifact["purl"])
        primary = [loc for loc in artifact["locations"] if loc.get("annotations", {}).get("evidence") == "primary"]
        where = primary[0] if primary else artifact["locations"][0]
        others = {layers.index(loc["layerID"]) for loc in artifact["locations"] if loc is not where}
        entries.append(
            Entry(
                ecosystem,
                normal_name(ecosystem, artifact["name"]),
                artifact["version"],
                layers.index(where["layerID"]),
                where["path"],
                (artifact.get("metadata") or {}).get("source") or artifact["name"],
                sorted(others),
                artifact["purl"],
            )
        )
    return entries, seconds


def trivy_inventory(tar: Path, out: Path, layers: list[str]) -> tuple[list[Entry], float]:
    argv = [str(PEERS / "trivy"), "image", "--input", str(tar), "--format", "cyclonedx", "--scanners", ""]
    argv += ["--cache-backend", "memory", "--quiet", "--output", str(out)]
    _, seconds = run(argv)
    entries = []
    for component in json.loads(out.read_text())["components"]:
        if "purl" not in component:
            continue
        props = {p["name"]: p["value"] for p in component.get("properties", [])}
        ecosystem = purl_ecosystem(component["purl"])
        diff_id = props.get("aquasecurity:trivy:LayerDiffID")
        entries.append(
            Entry(
                ecosystem,
                normal_name(ecosystem, component["name"]),
                component["version"],
                layers.index(diff_id) if diff_id else None,
                "/" + props["aquasecurity:trivy:FilePath"] if "aquasecurity:trivy:FilePath" in props else DPKG_STATUS,
                props.get("aquasecurity:trivy:SrcName") or component["name"],
                purl=component["purl"],
            )
        )
    return entries, seconds


# --- the image's own view ------------------------------------------------------------------------------------


def ground_truth(image: str) -> dict[str, Any]:
    """What the image itself says: dpkg's database, Python metadata directories, npm package.json files."""
    deb = in_image(image, "dpkg-query -W -f '${Package}\\t${Version}\\n'").split()
    python = in_image(image, "find / -xdev \\( -name '*.dist-info' -o -name '*.egg-info' \\) -prune -print").split()
    npm = in_image(image, "find / -xdev -path '*/node_modules/*/package.json' -print").split()
    metadata_dirs = sorted(python)
    owned = dpkg_owners(image, metadata_dirs)
    return {
        "deb": sorted(f"{n} {v}" for n, v in zip(deb[::2], deb[1::2], strict=True)),
        "pypi": metadata_dirs,
        "npm": sorted(npm),
        "dpkg_owned_python": owned,
        "deb_files": in_image(image, "find / -xdev -name '*.deb' -print").split(),
    }


def dpkg_owners(image: str, paths: list[str]) -> dict[str, str]:
    """Python metadata directories a Debian package installed: path -> owning dpkg package."""
    if not paths:
        return {}
    out = in_image(image, "dpkg -S " + " ".join(paths) + " 2>/dev/null || true")
    owners: dict[str, str] = {}
    for line in out.splitlines():
        package, _, path = line.partition(": ")
        if path in paths:
            owners[path] = package
    return owners


# --- comparison ----------------------------------------------------------------------------------------------

EXPLANATIONS = {
    "project-root-manifest": (
        "syft and Trivy list the application's own `package.json` (/opt/app, `vulnlab-app` 1.0.0) as an npm "
        "package. It is the project being built, not a dependency installed from the registry, and no advisory can "
        "name it; portcullis reads `node_modules/*/package.json` and the lockfiles' `node_modules/` entries only."
    ),
    "os-owned-python": (
        "These Python distributions live in /usr/lib/python3/dist-packages and their metadata directory belongs to a "
        "Debian package (`dpkg -S` in the image names it). Trivy drops language packages whose files an OS package "
        "owns, and so does portcullis (it reads the `var/lib/dpkg/info/*.list` files of the top layer), so both "
        "report them once, as the .deb; syft reports them twice (the .deb and the PyPI distribution). The PyPI "
        "copy carries Debian's patched code under the upstream version, so PyPI advisories matched against it "
        "would be false positives (PYSEC-2023-228 against this pip 23.0.1); the Debian tracker entry for the source "
        "package is the one that knows Debian's fixes."
    ),
    "syft-status-layer": (
        "syft takes the layer of its primary evidence, /var/lib/dpkg/status, for every dpkg package. `dpkg -i` in "
        "the top layer rewrote that file, so syft attributes the whole OS to the top layer. Its own supporting "
        "evidence for the same packages (`/var/lib/dpkg/info/<pkg>.list`, `.md5sums`, copyright files) sits in the "
        "layer portcullis names: portcullis gives each package the layer where its name+version first appeared in "
        "the status file. Trivy agrees with portcullis."
    ),
}


def compare(results: dict[str, list[Entry]], truth: dict[str, Any]) -> dict[str, Any]:
    by_tool = {tool: {e.key: e for e in entries} for tool, entries in results.items()}
    keys = sorted(set().union(*by_tool.values()))
    differences: list[dict[str, Any]] = []
    owned = {Path(path).name: package for path, package in truth["dpkg_owned_python"].items()}

    for key in keys:
        present = [tool for tool in TOOLS if key in by_tool[tool]]
        if len(present) == len(TOOLS):
            continue
        entries = {tool: by_tool[tool][key] for tool in present}
        difference: dict[str, Any] = {
            "kind": "presence",
            "package": list(key),
            "present_in": present,
            "locations": {tool: e.location for tool, e in entries.items()},
        }
        ecosystem = key[0]
        if (
            ecosystem == "npm"
            and "portcullis" not in present
            and all(
                "/node_modules/" not in e.location and e.location.endswith("/package.json") for e in entries.values()
            )
        ):
            difference["explanation"] = "project-root-manifest"
        elif ecosystem == "pypi" and present == ["syft"]:
            directory = Path(entries["syft"].location).parent.name
            if directory in owned:
                difference["explanation"] = "os-owned-python"
                difference["dpkg_owner"] = owned[directory]
        differences.append(difference)

    layers: dict[str, dict[str, Any]] = {}
    for peer in ("syft", "trivy"):
        common = [k for k in keys if k in by_tool["portcullis"] and k in by_tool[peer]]
        compared = [k for k in common if by_tool[peer][k].layer is not None]
        disagree = [k for k in compared if by_tool[peer][k].layer != by_tool["portcullis"][k].layer]
        layers[peer] = {"compared": len(compared), "agree": len(compared) - len(disagree), "disagree": len(disagree)}
        for key in disagree:
            mine, theirs = by_tool["portcullis"][key], by_tool[peer][key]
            difference = {
                "kind": "layer",
                "package": list(key),
                "tool": peer,
                "portcullis_layer": mine.layer,
                "peer_layer": theirs.layer,
                "peer_location": theirs.location,
            }
            # syft's claim is explained only when its own other files for this package sit in portcullis's layer
            if peer == "syft" and theirs.location == DPKG_STATUS and theirs.supporting_layers[:1] == [mine.layer]:
                difference["explanation"] = "syft-status-layer"
            differences.append(difference)

    sources: dict[str, Any] = {}
    for peer in ("syft", "trivy"):
        common = [k for k in keys if k[0] == "deb" and k in by_tool["portcullis"] and k in by_tool[peer]]
        mismatched = [list(k) for k in common if by_tool[peer][k].source != by_tool["portcullis"][k].source]
        sources[peer] = {"compared": len(common), "mismatched": mismatched}
        differences += [{"kind": "source-name", "package": k, "tool": peer} for k in mismatched]

    counts = {tool: dict(Counter(e.ecosystem for e in entries)) for tool, entries in results.items()}
    counts["image"] = {"deb": len(truth["deb"]), "pypi": len(truth["pypi"]), "npm": len(truth["npm"])}
    truth_deb = set(truth["deb"])
    portcullis_deb = {f"{e.name} {e.version}" for e in results["portcullis"] if e.ecosystem == "deb"}
    return {
        "counts": counts,
        "layer_agreement": layers,
        "source_agreement": sources,
        "portcullis_vs_dpkg_query": {
            "missing": sorted(truth_deb - portcullis_deb),
            "extra": sorted(portcullis_deb - truth_deb),
        },
        "differences": differences,
    }


# --- report --------------------------------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Package inventory: portcullis, syft and Trivy on the vulnlab images",
        "",
        f"Generated {report['generated_at']} by `benchmarks/inventory_compare.py`. Versions: "
        + ", ".join(f"{tool} {version}" for tool, version in report["versions"].items())
        + ". All three tools read the same `docker save` tar of each image; packages are compared as "
        "(ecosystem, name, version), Python names PEP 503-normalised. Layer indexes count from 0 (the "
        "debootstrap root). The `image` column is the image's own view (`dpkg-query -W`, Python metadata "
        "directories, `node_modules/*/package.json`).",
        "",
    ]
    for image in report["images"]:
        result = image["comparison"]
        counts = result["counts"]
        lines += [f"## `{image['image']}` ({len(image['layers'])} layers)", ""]
        lines += ["| layer | created by |", "|---:|---|"]
        lines += [f"| {i} | `{(c or 'docker import')[:90]}` |" for i, c in enumerate(image["created_by"])]
        lines += ["", "| ecosystem | image | portcullis | syft | Trivy |", "|---|---:|---:|---:|---:|"]
        for ecosystem in ECOSYSTEMS:
            row = [str(counts[t].get(ecosystem, 0)) for t in ("image", *TOOLS)]
            lines.append(f"| {ecosystem} | " + " | ".join(row) + " |")
        lines += ["", "| tool | seconds (wall, one run) |", "|---|---:|"]
        lines += [f"| {tool} | {image['seconds'][tool]:.2f} |" for tool in TOOLS]
        lines += ["", "Layer attribution, packages both tools report:", ""]
        for peer, agreement in result["layer_agreement"].items():
            lines.append(
                f"- portcullis vs {peer}: {agreement['agree']} of {agreement['compared']} agree, "
                f"{agreement['disagree']} differ"
            )
        for peer, agreement in result["source_agreement"].items():
            same = agreement["compared"] - len(agreement["mismatched"])
            lines.append(f"- dpkg source package names, portcullis vs {peer}: {same} of {agreement['compared']} agree")
        versus = result["portcullis_vs_dpkg_query"]
        lines.append(
            f"- portcullis vs `dpkg-query -W`: {len(versus['missing'])} missing, {len(versus['extra'])} extra"
            + (f" ({', '.join(versus['missing'] + versus['extra'])})" if versus["missing"] or versus["extra"] else "")
        )
        lines += ["", "### Differences", ""]
        groups: dict[str, list[dict[str, Any]]] = {}
        for difference in result["differences"]:
            groups.setdefault(difference.get("explanation", "unexplained"), []).append(difference)
        if not groups:
            lines += ["None: the three inventories are identical, layers included.", ""]
        for name, members in groups.items():
            shown = ", ".join(_short(d) for d in members[:12]) + (
                f", … ({len(members)} in all)" if len(members) > 12 else ""
            )
            text = EXPLANATIONS.get(name, "**Unexplained: one of the tools is wrong here; see the JSON for detail.**")
            lines += [f"**{name}** ({len(members)}): {shown}", "", text, ""]
    lines += ["## Notes that apply to every image", ""] + [f"- {note}" for note in report["notes"]] + [""]
    return "\n".join(lines)


def _short(difference: dict[str, Any]) -> str:
    ecosystem, name, version = difference["package"]
    if difference["kind"] == "layer":
        theirs = f"{difference['tool']} {difference['peer_layer']}"
        return f"{name} {version} (portcullis {difference['portcullis_layer']}, {theirs})"
    if difference["kind"] == "presence":
        owner = f", dpkg: {difference['dpkg_owner']}" if "dpkg_owner" in difference else ""
        return f"{ecosystem}:{name} {version} (in {'+'.join(difference['present_in'])}{owner})"
    return f"{name} {version} ({difference['kind']}, {difference['tool']})"


def notes(images: list[dict[str, Any]]) -> list[str]:
    """Observations beside the differences, each taken from the data of this run."""
    last = images[-1]
    epoch_purls = {
        tool: next((e["purl"] for e in last["packages"][tool] if e["ecosystem"] == "deb" and ":" in e["version"]), "")
        for tool in TOOLS
    }
    deb_files = sorted({f for image in images for f in image["ground_truth"]["deb_files"]})
    all_layers = last["syft_all_layers"]
    return [
        "Binary vs source names: all three tools list dpkg *binary* packages (e.g. `libc6`, `zlib1g`) and carry the "
        "source package beside it (portcullis: purl `upstream=` qualifier and `portcullis:package:source_name`; syft: "
        "`metadata.source`; Trivy: `aquasecurity:trivy:SrcName`); the source names agree for every package (above). "
        "Advisory matching uses the source name.",
        "Purls differ in form, not in substance (a package with an epoch): "
        + "; ".join(f"{tool} `{purl}`" for tool, purl in epoch_purls.items())
        + ". Trivy moves the epoch to an `epoch=` qualifier and puts the point release in `distro=`; syft appends the "
        "source version to `upstream=` when it differs from the binary's. The (ecosystem, name, version) triples, "
        "epoch included, are identical.",
        "npm evidence files: portcullis proves lodash/minimist from npm's hidden lockfile "
        "`/opt/app/node_modules/.package-lock.json` (the first evidence file in path order; the top-level "
        "`package-lock.json` and each `node_modules/*/package.json` prove the same purls and are listed once); syft "
        "and Trivy cite `node_modules/<name>/package.json`. Same packages, same layer.",
        "Python evidence files: all three read `*.dist-info/METADATA` or `*.egg-info/PKG-INFO`; syft adds RECORD and "
        "top_level.txt as supporting evidence.",
        "Whiteout-removed .debs: the layered image copies expat and sqlite3 .debs into /tmp/debs (layer 2) and "
        f"deletes them in layer 3; `.deb` files left in the final filesystem: {deb_files or 'none'}. portcullis "
        "applies the whiteouts and does not catalogue .deb archives; the squashed views of syft and Trivy cannot see "
        f"the deleted files. syft with `--scope all-layers` (which does see them) reports {all_layers['packages']} "
        f"packages, {all_layers['deb_archives']} of them from a .deb file: the deleted archives never become packages. "
        "Their contents appear once, as the dpkg packages `expat` and `sqlite3` that `dpkg -i` installed.",
        f"syft `--scope all-layers` does not fix its dpkg attribution: layer agreement with portcullis is "
        f"{all_layers['agree']} of {all_layers['compared']} (its primary evidence is still the top layer's "
        "/var/lib/dpkg/status; both copies of the file are listed as locations).",
    ]


def image_layers(image: str) -> tuple[str, list[str], list[str]]:
    out, _ = run(["docker", "image", "inspect", image, "--format", "{{json .}}"])
    inspect = json.loads(out)
    history, _ = run(["docker", "history", "--no-trunc", "--format", "{{json .}}", image])
    steps = [json.loads(line) for line in history.splitlines()][::-1]  # oldest first
    created = [s["CreatedBy"] for s in steps if s["Size"] not in ("0B", "0")]  # the steps that made a layer
    layers = inspect["RootFS"]["Layers"]
    return inspect["Id"], layers, created if len(created) == len(layers) else [""] * len(layers)


def _find(entries: list[Entry], key: tuple[str, str, str]) -> Entry | None:
    return next((e for e in entries if e.key == key), None)


def tool_versions() -> dict[str, str]:
    portcullis, _ = run([sys.executable, "-m", "portcullis", "--version"])
    syft, _ = run([str(PEERS / "syft"), "version"], SYFT_CHECK_FOR_APP_UPDATE="false")
    trivy, _ = run([str(PEERS / "trivy"), "--version"])
    pick = re.compile(r"(\d+\.\d+\.\d+)")
    return {
        "portcullis": (pick.search(portcullis) or pick.search("0.0.0")).group(1),  # type: ignore[union-attr]
        "syft": (re.search(r"Version:\s+(\S+)", syft) or pick.search(syft)).group(1),  # type: ignore[union-attr]
        "trivy": (pick.search(trivy) or pick.search("0.0.0")).group(1),  # type: ignore[union-attr]
    }


def main() -> int:
    global PEERS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--images", nargs="+", default=list(IMAGES))
    parser.add_argument("--peers", type=Path, default=PEERS, help="directory holding the syft and trivy executables")
    parser.add_argument("--work", type=Path, default=WORK, help="where the saved tars and raw tool outputs go")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    PEERS = args.peers
    for peer in ("syft", "trivy"):
        if not (PEERS / peer).is_file():
            sys.exit(f"inventory-compare: {PEERS / peer} not found (run `make bench-programs`)")
    args.work.mkdir(parents=True, exist_ok=True)
    images = []
    for image in args.images:
        image_id, layers, created = image_layers(image)
        slug = re.sub(r"[^A-Za-z0-9]+", "-", image).strip("-")
        tar = args.work / f"{slug}.tar"
        run(["docker", "save", "-o", str(tar), image])
        results, seconds = {}, {}
        results["portcullis"], seconds["portcullis"] = portcullis_inventory(tar, args.work / f"{slug}.portcullis.json")
        results["syft"], seconds["syft"] = syft_inventory(tar, args.work / f"{slug}.syft.json", layers)
        results["trivy"], seconds["trivy"] = trivy_inventory(tar, args.work / f"{slug}.trivy.json", layers)
        truth = ground_truth(image)
        wide, _ = syft_inventory(tar, args.work / f"{slug}.syft-all-layers.json", layers, scope="all-layers")
        tar.unlink()  # ~240 MB each; `docker save` makes it again on the next run
        agree = [e for e in wide if (found := _find(results["portcullis"], e.key)) and found.layer == e.layer]
        syft_all_layers = {
            "packages": len(wide),
            "deb_archives": sum(e.location.endswith(".deb") for e in wide),
            "compared": sum(_find(results["portcullis"], e.key) is not None for e in wide),
            "agree": len(agree),
        }
        images.append(
            {
                "image": image,
                "image_id": image_id,
                "layers": layers,
                "created_by": created,
                "seconds": {tool: round(s, 2) for tool, s in seconds.items()},
                "ground_truth": truth,
                "comparison": compare(results, truth),
                "syft_all_layers": syft_all_layers,
                "packages": {tool: [asdict(e) for e in entries] for tool, entries in results.items()},
            }
        )
        print(f"inventory-compare: {image}: {images[-1]['comparison']['counts']}", file=sys.stderr)
    report = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": tool_versions(),
        "images": images,
    }
    report["notes"] = notes(images)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "inventory-compare.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "inventory-compare.md").write_text(markdown(report))
    unexplained = sum(1 for image in images for d in image["comparison"]["differences"] if "explanation" not in d)
    print(f"inventory-compare: wrote {args.out}/inventory-compare.{{json,md}}; unexplained differences: {unexplained}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
