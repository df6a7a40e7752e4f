"""Image reader benchmark: `portcullis image` vs syft and Trivy (inventory only) vs GNU tar and Python's tarfile
on the same ~230 MB `docker save` tarball of a Debian image, plus gzip decompression vs `zcat`, plus portcullis vs
Trivy on the same image with one and two more copies of /usr (how fixed cost and cost per byte add up).

Run: .venv/bin/python benchmarks/image_bench.py   (needs the engine and `make test-images`)
The peers come from the tools venv (`make bench-programs`). Writes benchmarks/results/image.{json,md}.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
WORK = Path(os.environ.get("PORTCULLIS_BENCH_DIR", "/var/tmp/portcullis-bench"))
# The peers come from scripts/programs.tsv, installed by `make bench-programs`.
sys.path.insert(0, str(ROOT / "tests"))
from support.tools import TOOLS_VENV as PEERS  # noqa: E402

IMAGE = "portcullis-bench/debian-fat:1"
TINY_IMAGE = "portcullis-test/busybox:1"
RUNS = 3
HEAD_TO_HEAD_RUNS = 9  # portcullis and Trivy, alternating: their medians decide the bar
SCALING_RUNS = 5
COPY_USR = "RUN cp -a /usr/lib /opt/lib-{tag} && cp -a /usr/share /opt/share-{tag} && cp -a /usr/bin /opt/bin-{tag}\n"
# The image the bar is about (~230 MB), then the same with one and two more copies of /usr: fixed cost against
# cost per byte.
IMAGES = {
    "debian-fat": ("portcullis-test/debian:bookworm", COPY_USR.format(tag="copy")),
    "debian-fat-2x": (IMAGE, COPY_USR.format(tag="copy2")),
    "debian-fat-3x": ("portcullis-bench/debian-fat-2x:1", COPY_USR.format(tag="copy3")),
}


def sh(*cmd: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)


def build_archive(name: str = "debian-fat") -> Path:
    """A `docker save` of one of IMAGES (built with the classic builder, offline), kept between runs."""
    archive = WORK / f"{name}.tar"
    if archive.exists():
        return archive
    base, run = IMAGES[name]
    if name != "debian-fat":
        build_archive(list(IMAGES)[list(IMAGES).index(name) - 1])  # the image it builds on
    WORK.mkdir(parents=True, exist_ok=True)
    tag = f"portcullis-bench/{name}:1"
    with tempfile.TemporaryDirectory() as context:
        Path(context, "Dockerfile").write_text(f"FROM {base}\n{run}")
        env = {**os.environ, "DOCKER_BUILDKIT": "0"}
        subprocess.run(["docker", "build", "-q", "-t", tag, context], check=True, env=env, capture_output=True)
    subprocess.run(["docker", "save", "-o", str(archive), tag], check=True)
    return archive


def tiny_archive() -> Path:
    archive = WORK / "busybox.tar"
    if not archive.exists():
        subprocess.run(["docker", "save", "-o", str(archive), TINY_IMAGE], check=True)
    return archive


def require_peers() -> None:
    for peer in ("syft", "trivy"):
        if not (PEERS / "bin" / peer).exists():
            sys.exit(f"image-bench: {PEERS / 'bin' / peer} not found; run `make bench-programs`")


def _run_once(cmd: list[str], env: dict[str, str] | None) -> tuple[float, float] | str:
    """(wall seconds, peak RSS MiB) of one run under GNU time, or the error it ended with."""
    start = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    if result.returncode not in (0, 2):
        return result.stderr.strip().splitlines()[-2][:200]
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))  # type: ignore[union-attr]
    return wall, rss / 1024


def timed_together(commands: dict[str, tuple[list[str], dict[str, str] | None]], runs: int) -> dict[str, Any]:
    """Each tool once per round, the order rotating every round, so that a slow spell of this shared VM falls on
    all of them alike. Per tool: best and median wall time, every time, and the largest peak RSS."""
    walls: dict[str, list[float]] = {name: [] for name in commands}
    rss: dict[str, float] = dict.fromkeys(commands, 0.0)
    errors: dict[str, str] = {}
    names = list(commands)
    for round_index in range(runs):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            if name in errors:
                continue
            outcome = _run_once(*commands[name])
            if isinstance(outcome, str):
                errors[name] = outcome
                continue
            walls[name].append(outcome[0])
            rss[name] = max(rss[name], outcome[1])
    results: dict[str, Any] = {}
    for name, (cmd, _) in commands.items():
        if name in errors:
            results[name] = {"error": errors[name], "cmd": " ".join(cmd)}
            continue
        ordered = sorted(walls[name])
        results[name] = {
            "seconds": round(ordered[0], 3),
            "median_seconds": round(ordered[len(ordered) // 2], 3),
            "all_seconds": [round(w, 3) for w in walls[name]],
            "peak_rss_mib": round(rss[name], 1),
            "cmd": " ".join(cmd),
        }
    return results


def timed(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Best and median wall time of RUNS runs and the peak RSS."""
    result: dict[str, Any] = timed_together({"tool": (cmd, env)}, RUNS)["tool"]
    return result


def _medians(timings: dict[str, Any]) -> dict[str, float | None]:
    return {name: timings[name].get("median_seconds") for name in ("portcullis", "trivy")}


def version(cmd: list[str]) -> str:
    out = sh(*cmd)
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"


def _decompress_seconds(blob: Path) -> float:
    from portcullis.collect.image.streams import ForwardReader, HashingReader, decompressed, gzip_implementation

    assert gzip_implementation().startswith("isal"), gzip_implementation()
    start = time.perf_counter()
    with blob.open("rb") as handle:
        stream, kind = decompressed(ForwardReader(HashingReader(handle, hashing=False)))
        assert kind == "gzip"
        while stream.read(1 << 20):
            pass
    return round(time.perf_counter() - start, 3)


def gzip_bench(archive: Path) -> dict[str, Any]:
    """The biggest layer gzip-compressed as in an OCI layout: our reader's decompression vs zcat."""
    with tarfile.open(archive) as tar:
        biggest = max((m for m in tar.getmembers() if m.name.endswith("layer.tar")), key=lambda m: m.size)
        data = tar.extractfile(biggest).read()  # type: ignore[union-attr]
    blob = WORK / "layer.tar.gz"
    if not blob.exists():
        with gzip.open(blob, "wb", compresslevel=6) as out:
            out.write(data)
    zcat = timed(["sh", "-c", f"zcat {blob} > /dev/null"])
    ours = {"seconds": min(_decompress_seconds(blob) for _ in range(RUNS)), "how": "in-process, the reader's code path"}
    return {
        "layer_uncompressed_bytes": len(data),
        "gzip_bytes": blob.stat().st_size,
        "zcat": zcat,
        "portcullis": ours,
        "speedup": round(zcat["seconds"] / ours["seconds"], 2),
    }


def main() -> None:
    archive = build_archive()
    tiny = tiny_archive()
    require_peers()
    with tarfile.open(archive) as tar:
        layer_members = [m for m in tar.getmembers() if m.name.endswith("layer.tar")]
        files = 0
        for member in layer_members:
            with tarfile.open(fileobj=tar.extractfile(member)) as layer:
                files += sum(1 for _ in layer)
    peer_env = {
        **os.environ,
        "SYFT_CHECK_FOR_APP_UPDATE": "false",
        "TRIVY_NO_PROGRESS": "true",
        "TRIVY_CACHE_DIR": str(WORK / "trivy-cache"),
    }
    portcullis = str(ROOT / ".venv" / "bin" / "portcullis")
    walk = (  # every member of the archive and of each layer inside it, as the reference figure does
        f"import tarfile\nt = tarfile.open('{archive}')\nfor m in t.getmembers():\n"
        "    if m.name.endswith('layer.tar'):\n        tarfile.open(fileobj=t.extractfile(m)).getmembers()\n"
    )

    def pair(tar: Path) -> dict[str, tuple[list[str], dict[str, str] | None]]:
        """`portcullis image` and Trivy's inventory-only scan of the same archive."""
        trivy_cmd = [str(PEERS / "bin" / "trivy"), "image", "--input", str(tar), "--scanners", "", "--list-all-pkgs"]
        trivy_cmd += ["--format", "json", "--skip-db-update", "--offline-scan", "--cache-backend", "memory", "-q"]
        ours_cmd = [portcullis, "image", f"docker-archive:{tar}", "-f", "json", "-o", "/dev/null"]
        return {"portcullis": (ours_cmd, None), "trivy": (trivy_cmd, peer_env)}

    # The bar compares these two, run in alternation, by their medians over HEAD_TO_HEAD_RUNS rounds.
    head_to_head = timed_together(pair(archive), HEAD_TO_HEAD_RUNS)
    scaling: list[dict[str, Any]] = [{"image": "debian-fat", "bytes": archive.stat().st_size, **_medians(head_to_head)}]
    for name in list(IMAGES)[1:]:
        bigger = build_archive(name)
        scaling.append(
            {"image": name, "bytes": bigger.stat().st_size, **_medians(timed_together(pair(bigger), SCALING_RUNS))}
        )
    results: dict[str, Any] = {
        "archive": {"bytes": archive.stat().st_size, "layer_entries": files, "layers": len(layer_members)},
        "tools": {
            "portcullis": head_to_head["portcullis"],
            "syft": timed(
                [str(PEERS / "bin" / "syft"), "scan", f"docker-archive:{archive}", "-o", "json", "-q"], peer_env
            ),
            "trivy": head_to_head["trivy"],
            # the CLI's fixed cost: interpreter, imports, rules and report, on a one-layer busybox image (~1 MB)
            "portcullis_tiny_image": timed(
                [portcullis, "image", f"docker-archive:{tiny}", "-f", "json", "-o", "/dev/null"]
            ),
            "trivy_tiny_image": timed(pair(tiny)["trivy"][0], peer_env),
            "gnu_tar_list": timed(["tar", "-tf", str(archive)]),
            "python_tarfile_walk": timed([sys.executable, "-c", walk]),
        },
        "versions": {
            "syft": version([str(PEERS / "bin" / "syft"), "version"]),
            "trivy": version([str(PEERS / "bin" / "trivy"), "--version"]),
        },
        "gzip_decompression": gzip_bench(archive),
        "scaling": scaling,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    tools = results["tools"]
    trivy = tools["trivy"]
    ours = tools["portcullis"]
    trivy_ok = "seconds" in trivy
    results["bars"] = {
        "median_time_vs_trivy": round(ours["median_seconds"] / trivy["median_seconds"], 2) if trivy_ok else None,
        "best_time_vs_trivy": round(ours["seconds"] / trivy["seconds"], 2) if trivy_ok else None,
        "rss_under_100_mib": ours.get("peak_rss_mib", 1e9) <= 100,
        "gzip_2x_zcat": results["gzip_decompression"]["speedup"] >= 2,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "image.json").write_text(json.dumps(results, indent=1) + "\n")
    rows = [
        "| tool | runs | wall s, median | wall s, best | peak RSS MiB | median ratio to portcullis |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in tools.items():
        if "seconds" in row:
            ratio = round(row["median_seconds"] / ours["median_seconds"], 2)
            rows.append(
                f"| {name} | {len(row['all_seconds'])} | {row['median_seconds']} | {row['seconds']} | "
                f"{row['peak_rss_mib']} | {ratio} |"
            )
        else:
            rows.append(f"| {name} | error: {row.get('error')} | | | | |")
    gz = results["gzip_decompression"]
    rows.append("")
    rows.append(
        f"gzip layer ({gz['gzip_bytes']} bytes → {gz['layer_uncompressed_bytes']}): zcat {gz['zcat']['seconds']} s, "
        f"portcullis {gz['portcullis']['seconds']} s, speed-up {gz['speedup']}×"
    )
    rows.append(f"archive {results['archive']}, load average {results['load_average']}")
    rows += ["", "| image | MB | portcullis median s | Trivy median s | ratio |", "|---|---|---|---|---|"]
    for point in scaling:
        ratio = round(point["portcullis"] / point["trivy"], 2) if point["portcullis"] and point["trivy"] else None
        megabytes = round(point["bytes"] / 1e6)
        rows.append(f"| {point['image']} | {megabytes} | {point['portcullis']} | {point['trivy']} | {ratio} |")
    (RESULTS / "image.md").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))
    shutil.rmtree(WORK / "trivy-cache", ignore_errors=True)


if __name__ == "__main__":
    main()
