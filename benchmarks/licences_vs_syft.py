"""Declared licences of the vulnlab, python and debian test images: portcullis beside syft, every difference sorted.

Each image is saved once with `docker save`; `portcullis sbom docker-archive:TAR` (CycloneDX) and syft (syft-json)
read that same tar. A package is keyed by (ecosystem, name, version); its licences are compared as sets of licence
ids: the ids in portcullis's SPDX expression, and for syft each licence's `spdxExpression` ids or, when syft found
no SPDX id, its raw value as `LicenseRef-<value>` (the form portcullis gives a name the SPDX list lacks).

Every package lands in exactly one category, decided from the data, never assumed:
- agree: the same ids;
- spelling: syft's raw values, normalised the way portcullis normalises (`model.licences.to_spdx`), give the same
  ids: the tools read the same declaration and differ only in naming it (`Apache 2.0`, `LGPL`, `public-domain`);
- common-licenses pointers (dpkg): syft's extra ids are exactly the /usr/share/common-licenses/NAME files the
  copyright file points to for a licence's full text (e.g. `GPL-3` behind `License: GPL-3+`); portcullis counts the
  declared `License:` names of a machine-readable file only;
- only one tool has a licence, or something else: listed package by package as unexplained.

Writes benchmarks/results/licences.json and licences.md. Needs the test images and syft in the tools venv
(`make bench-programs`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from license_expression import get_spdx_licensing

from portcullis.collect.inventory import parse_dpkg_copyright
from portcullis.model.licences import UNKNOWN, to_spdx

HERE = Path(__file__).parent
IMAGES = ("portcullis-test/vulnlab:layered", "portcullis-test/python:bookworm", "portcullis-test/debian:bookworm")
sys.path.insert(0, str(HERE.parent / "tests"))
from support.tools import TOOLS_VENV  # noqa: E402

SYFT = TOOLS_VENV / "bin" / "syft"
WORK = Path("/var/tmp/portcullis-bench/licences")
FIRST_WORD = re.compile(r"^License: (\S+)", re.MULTILINE)
COMMON = re.compile(r"/usr/share/common-licenses/([A-Za-z0-9][A-Za-z0-9.+-]*[A-Za-z0-9+])")
Key = tuple[str, str, str]
FIXED = ("agree", "both unknown", "only portcullis", "only syft", "unexplained")


def run(argv: list[str], **env: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **env}, timeout=900)
    if done.returncode != 0:
        sys.exit(f"licences-vs-syft: {argv[0]} failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return time.perf_counter() - start


def ids(expression: str) -> set[str]:
    if not expression or expression == UNKNOWN:
        return set()
    return {str(key) for key in get_spdx_licensing().license_keys(expression, unique=True)}


def _key(purl: str, name: str, version: str) -> Key:
    ecosystem = purl.split(":", 1)[1].split("/", 1)[0]
    return ecosystem, re.sub(r"[-_.]+", "-", name).lower() if ecosystem == "pypi" else name, version


def portcullis_licences(tar: Path, out: Path) -> tuple[dict[Key, set[str]], float]:
    seconds = run([sys.executable, "-m", "portcullis", "sbom", f"docker-archive:{tar}", "--no-vulns", "-o", str(out)])
    found = {}
    for component in json.loads(out.read_text())["components"]:
        if "purl" in component:
            expressions = [entry["expression"] for entry in component.get("licenses", [])]
            found[_key(component["purl"], component["name"], component["version"])] = ids(" AND ".join(expressions))
    return found, seconds


def _syft_id(value: str) -> str:
    return "LicenseRef-" + (re.sub(r"[^A-Za-z0-9.-]+", "-", value).strip("-") or "unnamed")


def syft_licences(tar: Path, out: Path) -> tuple[dict[Key, tuple[set[str], list[str]]], float]:
    """key -> (licence ids, syft's raw values)"""
    seconds = run(
        [str(SYFT), f"docker-archive:{tar}", "-q", "-o", f"syft-json={out}"], SYFT_CHECK_FOR_APP_UPDATE="false"
    )
    found = {}
    for artifact in json.loads(out.read_text())["artifacts"]:
        if not artifact.get("purl"):
            continue
        licences = artifact.get("licenses") or []
        names: set[str] = set()
        for entry in licences:
            names |= ids(entry["spdxExpression"]) if entry.get("spdxExpression") else {_syft_id(entry["value"])}
        found[_key(artifact["purl"], artifact["name"], artifact["version"])] = (
            names,
            [entry["value"] for entry in licences],
        )
    return found, seconds


def copyright_files(tar: Path) -> dict[str, str]:
    """usr/share/doc/PKG/copyright as the image's top layer has it (whiteouts ignored: they do not touch these), a
    doc directory that is a symlink to a sibling (libgcc-s1 -> gcc-12-base) giving the sibling's file."""
    found: dict[str, str] = {}
    links: dict[str, str] = {}
    with tarfile.open(tar) as image:
        manifest = json.load(image.extractfile("manifest.json"))  # type: ignore[arg-type]
        for layer in manifest[0]["Layers"]:
            blob = image.extractfile(layer)
            if blob is None:
                continue
            with tarfile.open(fileobj=blob, mode="r|*") as files:
                for member in files:
                    parts = member.name.lstrip("./").split("/")
                    if member.issym() and len(parts) == 4 and parts[:3] == ["usr", "share", "doc"]:
                        links[parts[3]] = member.linkname.removeprefix("../doc/")
                    if (
                        member.isfile()
                        and len(parts) == 5
                        and parts[:3] + parts[4:] == ["usr", "share", "doc", "copyright"]
                    ):
                        data = files.extractfile(member)
                        found[parts[3]] = data.read().decode("utf-8", "replace") if data else ""
    for name, target in links.items():
        if target in found:
            found.setdefault(name, found[target])
    return found


def classify(key: Key, mine: set[str], theirs: set[str], raw: list[str], copyrights: dict[str, str]) -> str:
    """The category of one package; a difference several known causes account for names them all (joined by +)."""
    if mine == theirs:
        return "agree" if mine else "both unknown"
    if not theirs:
        return "only portcullis"
    if not mine:
        return "only syft"
    reasons = []
    spelled = set().union(*(ids(to_spdx(value)) for value in raw)) if raw else set()
    if spelled != theirs:
        reasons.append("spelling")
    ours = set(mine)
    exceptions = {i for i in ours if i.lower().endswith("-exception") and i not in spelled}
    if exceptions:
        ours -= exceptions
        reasons.append("exceptions")
    text = copyrights.get(key[1], "") if key[0] == "deb" else ""
    pointers = set().union(*(ids(to_spdx(n)) for n in COMMON.findall(text))) if text else set()
    if spelled - ours and (spelled - ours) <= pointers:
        spelled -= pointers - ours
        reasons.append("common-licenses pointers")
    prose = {
        i
        for value in raw
        if re.search(rf"^License:\s*{re.escape(value)}\s+\S", text, re.MULTILINE)
        for i in ids(to_spdx(value))
    }
    if prose & (spelled - ours):
        spelled -= prose
        reasons.append("prose")
    # syft reads `License: NAME` with one space and keeps its first word: it drops `or X`, `with Y exception` and
    # indented values, which portcullis reads
    first_words = {i for word in FIRST_WORD.findall(text) for i in ids(to_spdx(word))}
    beyond = ids(parse_dpkg_copyright(text)) - first_words if text else set()
    if ours - spelled and (ours - spelled) <= beyond:
        ours -= beyond - spelled
        reasons.append("first word only")
    return " + ".join(reasons) if spelled == ours and reasons else "unexplained"


EXPLAINED = {
    "agree": "the same licence ids",
    "both unknown": "neither tool found a declared licence",
    "spelling": "same declarations; syft keeps a name the SPDX list lacks as written (LicenseRef-GPL, LicenseRef-Expat,"
    " Apache 2.0), portcullis maps it (GPL -> GPL-1.0-or-later, Expat -> MIT, Apache 2.0 -> Apache-2.0)",
    "exceptions": "portcullis keeps an exception SPDX does not list (`GPL-3+ with Bison exception`) as its own "
    "LicenseRef-...-exception; syft drops it",
    "common-licenses pointers": "syft also counts the /usr/share/common-licenses/NAME files the copyright file "
    "points to for the full text of a declared licence (GPL-3 behind GPL-3+); they name no further licence",
    "first word only": "syft keeps only the first word of a `License: NAME` line written with one space: it drops "
    "the alternatives and exceptions (`GPL or MIT-US-export`, `MPL-1.1 or GPL-2+ or LGPL-2.1+`) and skips indented "
    "values (`License:   BSD-2-Clause`) that portcullis reads",
    "prose": "in a free-form (not DEP-5) copyright file syft takes the first word of a `License: <sentence>` line "
    "(LicenseRef-This, LicenseRef-By); portcullis reads only a one-name value there",
}


def compare(image: str, work: Path) -> dict[str, Any]:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", image).strip("-")
    tar = work / f"{slug}.tar"
    run(["docker", "save", "-o", str(tar), image])
    mine, mine_seconds = portcullis_licences(tar, work / f"{slug}.cdx.json")
    theirs, syft_seconds = syft_licences(tar, work / f"{slug}.syft.json")
    copyrights = copyright_files(tar)
    tar.unlink()
    rows: list[dict[str, Any]] = []
    for key in sorted(set(mine) & set(theirs)):
        ours, (syfts, raw) = mine[key], theirs[key]
        category = classify(key, ours, syfts, raw, copyrights)
        rows.append({"package": "/".join(key), "category": category, "portcullis": sorted(ours), "syft": sorted(syfts)})
    counts = Counter(row["category"] if row["category"] in FIXED else "explained" for row in rows)
    reasons = Counter(r for row in rows if row["category"] not in FIXED for r in row["category"].split(" + "))
    return {
        "image": image,
        "packages": {"portcullis": len(mine), "syft": len(theirs), "both": len(rows)},
        "with_licence": {
            "portcullis": sum(1 for v in mine.values() if v),
            "syft": sum(1 for v, _ in theirs.values() if v),
        },
        "categories": dict(sorted(counts.items())),
        "explained_by": dict(sorted(reasons.items())),
        "seconds": {"portcullis": round(mine_seconds, 2), "syft": round(syft_seconds, 2)},
        "differences": [row for row in rows if row["category"] not in ("agree", "both unknown")],
    }


# What reading the copyright files by hand found for the packages no single category above accounts for; printed
# only beside a package the data leaves unexplained, so a stale note cannot hide a new difference.
NOTES = {
    "libgnutls30": "free-form copyright file (no Format: line) mixing prose and names: syft takes the first word of "
    "every `License:` line (LicenseRef-The, LicenseRef-GPLv3, LicenseRef-LGPL, LicenseRef-CC0 from `CC0 license`); "
    "portcullis takes the one-name values (Expat, Apache-2.0, LGPLv2.1+, LGPLv3+_or_GPLv2+ as LGPL-3.0-or-later OR "
    "GPL-2.0-or-later) and the common-licenses files the text cites (GPL, GPL-2, GPL-3, LGPL-2.1, LGPL-3, GFDL-1.3). "
    "Several causes at once; the licences named are the same family, the spellings differ",
}


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Declared licences: portcullis beside syft",
        "",
        f"Generated {report['generated']} by `benchmarks/licences_vs_syft.py` (syft {report['syft']}).",
        "Packages both tools list, compared as sets of licence ids. Categories (see the script's docstring):",
        "",
        *(f"- **{name}**: {text}" for name, text in EXPLAINED.items()),
        "- **only portcullis / only syft / unexplained**: listed below, one line each.",
        "",
        "A package counted as explained may have several causes at once; each cause is counted once per package.",
        "Packages only one tool lists are inventory differences, explained in inventory-compare.md; they are not",
        "compared here.",
        "",
        "| image | packages (portcullis / syft / both) | with a licence (portcullis / syft) | "
        + "agree | explained (by cause) | both unknown | only portcullis | only syft | unexplained |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for image in report["images"]:
        p, w, c = image["packages"], image["with_licence"], image["categories"]
        lines.append(
            f"| {image['image']} | {p['portcullis']} / {p['syft']} / {p['both']} | {w['portcullis']} / {w['syft']} | "
            + f"{c.get('agree', 0)} | {c.get('explained', 0)} ("
            + ", ".join(f"{name} {n}" for name, n in image["explained_by"].items())
            + ") | "
            + " | ".join(str(c.get(name, 0)) for name in FIXED[1:])
            + " |"
        )
    lines += ["", "## Differences not explained by a category above", ""]
    for image in report["images"]:
        for row in image["differences"]:
            if row["category"] in ("only portcullis", "only syft", "unexplained"):
                note = NOTES.get(row["package"].split("/")[1])
                lines.append(
                    f"- {image['image']} `{row['package']}` ({row['category']}): portcullis "
                    f"{', '.join(row['portcullis']) or '-'}; syft {', '.join(row['syft']) or '-'}"
                    + (f". **Read by hand:** {note}." if note else ". **Not yet explained.**")
                )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--images", nargs="+", default=list(IMAGES))
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    if not SYFT.is_file():
        sys.exit(f"licences-vs-syft: {SYFT} not found (run `make bench-programs`)")
    args.work.mkdir(parents=True, exist_ok=True)
    version = subprocess.run([str(SYFT), "version"], capture_output=True, text=True, check=False).stdout
    found = re.search(r"Version:\s+(\S+)", version)
    report = {
        "generated": datetime.now(UTC).strftime("%Y-%m-%d"),
        "syft": found.group(1) if found else "?",
        "images": [compare(image, args.work) for image in args.images],
    }
    (args.out / "licences.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "licences.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
