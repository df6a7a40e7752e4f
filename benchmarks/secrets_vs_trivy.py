"""Secrets: portcullis vs `trivy image --scanners secret` on the same images, and image scan speed before/after.

1. The planted image (tests/support/planted_secrets.py: one secret per file and family, and decoys): for each tool,
   which planted files it reports (recall per family) and which decoys (false positives).
2. Real images (Debian, Python, PostgreSQL test images): every file either tool reports, side by side.
3. Speed: `portcullis image --no-cache --no-vulns` on the largest real image with the detector of main (a `git archive`
   of main's src) and of this tree, alternating, medians of RUNS.

Run: .venv/bin/python benchmarks/secrets_vs_trivy.py   (needs the engine, `make test-images`, Trivy in the tools venv)
Writes benchmarks/results/secrets.{json,md}. The planted image is removed at the end.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "tests"))
from support import planted_secrets  # noqa: E402
from support.tools import tool as tools_venv_program  # noqa: E402

TRIVY = str(tools_venv_program("trivy"))
TRIVY_FLAGS = ["image", "--image-src", "docker", "--scanners", "secret", "--skip-db-update", "--offline-scan"]
TRIVY_FLAGS += ["--skip-version-check", "--disable-telemetry", "-f", "json", "-q"]
REAL_IMAGES = [
    "portcullis-test/vulnlab:bookworm",
    "portcullis-test/python:bookworm",
    "portcullis-test/postgres:15",
    "portcullis-test/risky:1",
    "portcullis:local",
]
SPEED_IMAGE = "portcullis-test/vulnlab:bookworm"
# Why the tools differ, file by file (checked against Trivy 0.76: the strings its rules would need are not in its
# binary, or its rule asks for context the file does not have).
EXPLAINED = {
    "/srv/app/conf/gcp.js": "Trivy's secret rules have no Google API key rule (AIza… is only in its misconfig checks)",
    "/srv/app/conf/do.yaml": "Trivy has no DigitalOcean token rule (no dop_v1_ in its rules)",
    "/srv/app/ci/npmrc": "Trivy's npm rule wants the token between quotes; .npmrc lines have none",
    "/srv/app/ci/dockerhub.sh": "Trivy has no Docker Hub access token rule (no dckr_pat_ in its rules)",
    "/srv/app/chat/discord.cfg": "Trivy's Discord rules are for API tokens and client secrets, not webhook URLs",
    "/srv/app/chat/telegram.toml": "Trivy has no Telegram bot token rule",
    "/srv/app/pay/square.json": "Trivy has no Square token rule (sq0atp- is only in its misconfig checks)",
    "/srv/app/api/anthropic.sh": "Trivy has no Anthropic key rule (no sk-ant- in its rules)",
    "/srv/app/db/database.yml": "Trivy has no rule for a password in a connection URL",
    "/srv/app/db/mongo.properties": "Trivy has no rule for a password in a connection URL",
    "/srv/app/settings.py": "Trivy has no generic rule (a secret-named assignment judged by the value's entropy)",
    "/srv/app/config.yaml": "Trivy has no generic rule (a secret-named assignment judged by the value's entropy)",
    "/srv/app/docs/jwt.txt": "the jwt.io sample token: on portcullis's allow-list of documented examples, not Trivy's",
    "/srv/app/docs/stripe.txt": "the Stripe API reference's test key: on portcullis's allow-list, not Trivy's",
    "/srv/app/docs/gh.txt": "a placeholder (x repeated): portcullis skips values with a run of 8 identical characters",
    "/root/.ssh/id_ed25519": "deleted by a later layer: portcullis reads every layer (still extractable), Trivy the "
    "final filesystem",
}
RUNS = int(os.environ.get("SECRETS_BENCH_RUNS", "5"))


def portcullis_hits(ref: str, src: Path = ROOT / "src") -> dict[str, str]:
    """Layer files CIS-4.10 reports: path -> kind."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [
        sys.executable,
        "-m",
        "portcullis",
        "image",
        f"engine:{ref}",
        "--no-cache",
        "--no-vulns",
        "--no-store",
        "-f",
        "json",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode not in (0, 2):
        sys.exit(f"secrets-bench: portcullis failed on {ref}: {done.stderr.strip()[-500:]}")
    report = json.loads(done.stdout)
    hits: dict[str, str] = {}
    for finding in report["findings"]:
        if finding.get("rule_id", finding.get("id")) == "CIS-4.10":
            for hit in finding.get("evidence", {}).get("secrets", []):
                if str(hit["where"]).startswith("/"):
                    hits[hit["where"]] = hit["name"]
    return hits


def trivy_hits(ref: str, cache: Path) -> dict[str, str]:
    """Files Trivy's secret scanner reports: path -> rule ids."""
    env = {**os.environ, "TRIVY_CACHE_DIR": str(cache), "TRIVY_NO_PROGRESS": "true"}
    done = subprocess.run([TRIVY, *TRIVY_FLAGS, ref], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        sys.exit(f"secrets-bench: trivy failed on {ref}: {done.stderr.strip()[-500:]}")
    hits: dict[str, str] = {}
    for result in json.loads(done.stdout).get("Results") or []:
        for secret in result.get("Secrets") or []:
            path = "/" + result["Target"].lstrip("/")
            hits[path] = ",".join(sorted({*hits.get(path, "").split(","), secret["RuleID"]} - {""}))
    return hits


def score_planted(ours: dict[str, str], theirs: dict[str, str]) -> dict[str, Any]:
    families: dict[str, dict[str, Any]] = {}
    for path, (family, _) in planted_secrets.PLANTED.items():
        row = families.setdefault(family, {"planted": 0, "portcullis": 0, "trivy": 0, "files": []})
        row["planted"] += 1
        row["portcullis"] += "/" + path in ours
        row["trivy"] += "/" + path in theirs
        row["files"].append({"path": "/" + path, "portcullis": ours.get("/" + path), "trivy": theirs.get("/" + path)})
    decoys = [
        {"path": "/" + path, "why": why, "portcullis": ours.get("/" + path), "trivy": theirs.get("/" + path)}
        for path, (why, _) in planted_secrets.DECOYS.items()
    ]
    return {"families": families, "decoys": decoys}


def speed(before_src: Path) -> dict[str, Any]:
    times: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(RUNS):
        for name, src in (("before", before_src), ("after", ROOT / "src")):
            start = time.perf_counter()
            portcullis_hits(SPEED_IMAGE, src)
            times[name].append(time.perf_counter() - start)
    before, after = statistics.median(times["before"]), statistics.median(times["after"])
    return {
        "image": SPEED_IMAGE,
        "runs": times,
        "median_before_s": before,
        "median_after_s": after,
        "change": after / before - 1,
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="secrets-bench-") as tmp:
        work = Path(tmp)
        ref = planted_secrets.build()
        try:
            planted = score_planted(portcullis_hits(ref), trivy_hits(ref, work / "trivy-cache"))
        finally:
            planted_secrets.remove()
        real = {}
        for image in REAL_IMAGES:
            real[image] = {"portcullis": portcullis_hits(image), "trivy": trivy_hits(image, work / "trivy-cache")}
        before_src = work / "main"
        before_src.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "main", "src"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(before_src)], input=archive.stdout, check=True)
        timing = speed(before_src / "src")
    result = {"planted": planted, "real_images": real, "speed": timing}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "secrets.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "secrets.md").write_text(render(result))
    print(render(result))


def render(result: dict[str, Any]) -> str:
    lines = [
        "# Secrets: portcullis vs Trivy (`trivy image --scanners secret`)",
        "",
        "## Planted image (one file per secret; recall = files reported / planted)",
        "",
        "| family | planted | portcullis | trivy |",
        "| --- | ---: | ---: | ---: |",
    ]
    for family, row in result["planted"]["families"].items():
        lines.append(f"| {family} | {row['planted']} | {row['portcullis']} | {row['trivy']} |")
    total = {k: sum(r[k] for r in result["planted"]["families"].values()) for k in ("planted", "portcullis", "trivy")}
    lines.append(f"| **all** | {total['planted']} | {total['portcullis']} | {total['trivy']} |")
    lines += ["", "Files only one tool reports:", ""]
    for row in result["planted"]["families"].values():
        for f in row["files"]:
            if bool(f["portcullis"]) != bool(f["trivy"]):
                why = EXPLAINED.get(f["path"], "not explained")
                lines.append(f"- `{f['path']}`: portcullis {f['portcullis'] or '-'}, trivy {f['trivy'] or '-'}: {why}")
    lines += [
        "",
        "## Decoys (false positives)",
        "",
        "| file | why it is not a secret | portcullis | trivy | why they differ |",
        "| --- | --- | --- | --- | --- |",
    ]
    for d in result["planted"]["decoys"]:
        differ = EXPLAINED.get(d["path"], "not explained") if bool(d["portcullis"]) != bool(d["trivy"]) else ""
        lines.append(f"| `{d['path']}` | {d['why']} | {d['portcullis'] or '-'} | {d['trivy'] or '-'} | {differ} |")
    lines += ["", "## Real images: every file either tool reports", ""]
    for image, hits in result["real_images"].items():
        paths = sorted(set(hits["portcullis"]) | set(hits["trivy"]))
        lines.append(f"- `{image}`: portcullis {len(hits['portcullis'])}, trivy {len(hits['trivy'])}")
        for p in paths:
            ours, theirs = hits["portcullis"].get(p), hits["trivy"].get(p)
            why = f": {EXPLAINED.get(p, 'not explained')}" if bool(ours) != bool(theirs) else ""
            lines.append(f"  - `{p}`: portcullis {ours or '-'}, trivy {theirs or '-'}{why}")
    s = result["speed"]
    lines += [
        "",
        "## Scan speed",
        "",
        f"`portcullis image {s['image']} --no-cache --no-vulns`, {len(s['runs']['before'])} alternating runs: "
        f"median {s['median_before_s']:.2f} s with main's detector, {s['median_after_s']:.2f} s with this one "
        f"({s['change']:+.1%}).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
