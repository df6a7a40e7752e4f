"""Layer cache benchmark: `portcullis image` with its layer cache against Trivy with its own default fs cache, side
by side in one run, on images read from this engine (issue 14 §2).

Three bars, each decided by medians:
1. a repeat scan of one ~235 MB image (vulnlab plus two app layers) takes no longer than Trivy's repeat scan;
2. 20 images that share two base images, first run (both caches empty): one `portcullis image REF…` process takes
   at most 0.5× the time of Trivy scanning them one by one (one `trivy image` process per image, in turn);
3. the same 20 images, repeat run (caches warm): at most 0.5× Trivy's repeat run.

Every round empties both caches (`portcullis cache clean`, a fresh TRIVY_CACHE_DIR), times one first run of each
tool, then REPEATS repeat runs of each; the tools alternate which goes first. The images are built here from the
local test images (`make test-images`), labelled portcullis.bench=cache, kept between runs when their recipe has
not changed, and removed at the end unless --keep-images.

    .venv/bin/python benchmarks/cache_bench.py                 # make bench-cache
    .venv/bin/python benchmarks/cache_bench.py --rounds 2 --repeats 2 --keep-images

Trivy comes from the tools venv (`make bench-programs`). Writes benchmarks/results/cache.{json,md}.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import portcullis

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WORK = Path(os.environ.get("PORTCULLIS_BENCH_DIR", "/var/tmp/portcullis-bench")) / "cache"
sys.path.insert(0, str(ROOT / "tests"))
from support.tools import tool as tools_venv_program  # noqa: E402

TRIVY = str(tools_venv_program("trivy"))
VULN_TESTDATA = ROOT / "tests" / "vuln" / "data"
SHARED_PYPI = Path("/work/shared/vulndata/pypi/pypa-advisory-database/vulns")
LABEL = "portcullis.bench"
FLEET_SIZE = 20
SITE = "usr/local/lib/python3.11/dist-packages"
BUILT_AT = 1_764_547_200  # one fixed time for every file and config: the same recipe gives the same image ID
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CREATED = datetime.fromtimestamp(BUILT_AT, UTC).isoformat().replace("+00:00", "Z")

# What Trivy does here. Its vulnerability DB cannot be downloaded (no internet), and `--scanners vuln` refuses to run
# without one, so of its default scanners (vuln, secret) only secret remains. OS and language packages are still
# analysed and cached per layer (they are what its vuln scanner would match); --list-all-pkgs puts them in the report.
TRIVY_COMMON = ["image", "--image-src", "docker", "--list-all-pkgs", "--skip-db-update", "--offline-scan"]
TRIVY_COMMON += ["--skip-version-check", "--disable-telemetry", "-f", "json", "-q"]
TRIVY_VARIANTS = {
    # the bars are decided against this one: Trivy's defaults less the vulnerability match it cannot do here
    "trivy": ["--scanners", "secret"],
    # for information: also its rules on the image config (the Dockerfile rebuilt from the history, its embedded
    # checks), the nearest thing Trivy has to portcullis's CIS 4 / DKR-IMG rules
    "trivy+config": ["--scanners", "secret", "--image-config-scanners", "misconfig,secret", "--skip-check-update"],
}

# --- the images -------------------------------------------------------------------------------------------------

# Python distributions and npm packages the app layers install, with versions that have advisories in the DB.
PYPI_POOL = {
    "Django": ["2.2.10", "3.2.5", "4.0.1"],
    "Flask": ["0.12.2", "1.0", "2.2.2"],
    "PyYAML": ["5.1", "5.3.1", "6.0"],
    "Jinja2": ["2.10", "2.11.2", "3.1.2"],
    "urllib3": ["1.24.1", "1.25.8", "1.26.4"],
    "requests": ["2.19.1", "2.25.1", "2.31.0"],
    "Pillow": ["8.1.0", "9.0.0"],
    "cryptography": ["3.2", "39.0.0"],
    "Werkzeug": ["0.15.3", "2.2.2"],
    "SQLAlchemy": ["1.2.0", "1.4.0"],
    "paramiko": ["2.4.0", "2.10.1"],
    "lxml": ["4.6.2", "4.9.1"],
}
NPM_POOL = {
    "lodash": ["4.17.15", "4.17.21"],
    "minimist": ["1.2.5", "1.2.8"],
    "express": ["4.17.1", "4.18.2"],
    "axios": ["0.21.1", "1.6.0"],
    "moment": ["2.29.1", "2.29.4"],
    "debug": ["2.6.8", "4.3.4"],
}


@dataclass
class Recipe:
    """One image: FROM `base`, then Dockerfile lines (ENV, COPY, WORKDIR, EXPOSE, USER, CMD) whose COPY sources
    are directories of `files` (context path → content)."""

    tag: str
    base: str
    body: str
    files: dict[str, str] = field(default_factory=dict)


def _dist_info(name: str, version: str) -> dict[str, str]:
    where = f"{SITE}/{name}-{version}.dist-info"
    return {
        f"{where}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {name}\n",
        f"{where}/INSTALLER": "pip\n",
        f"{where}/RECORD": f"{name.lower()}/__init__.py,,\n",
        f"{SITE}/{name.lower()}/__init__.py": f'__version__ = "{version}"\n',
    }


def _node_module(root: str, name: str, version: str) -> dict[str, str]:
    manifest = {"name": name, "version": version, "main": "index.js", "license": "MIT"}
    return {
        f"{root}/node_modules/{name}/package.json": json.dumps(manifest, indent=2) + "\n",
        f"{root}/node_modules/{name}/index.js": f"module.exports = {{ name: {name!r}, version: {version!r} }};\n",
    }


def _fake_aws_key(seed: str) -> str:
    """An AWS-shaped access key id made up from `seed` (both tools' secret rules match the shape)."""
    return "AKIA" + base64.b32encode(hashlib.sha256(seed.encode()).digest()).decode()[:16]


def _source_files(app: str, count: int) -> dict[str, str]:
    """`count` modules of plain code (about 2 KB each) that differ per app, so every app layer is its own."""
    files = {}
    for n in range(count):
        lines = [f'"""{app}: module {n}."""', ""]
        lines += [f"def handler_{n}_{k}(request):\n    return {{'app': {app!r}, 'route': {k}}}\n" for k in range(30)]
        files[f"app/{app}/module_{n:02d}.py"] = "\n".join(lines)
    return files


def _python_app(index: int) -> dict[str, str]:
    app = f"app{index:02d}"
    names = list(PYPI_POOL)
    picked = [names[(index + 5 * k) % len(names)] for k in range(5)]  # 5 and 12 coprime: 5 distinct names
    deps: dict[str, str] = {}
    requirements = []
    for k, name in enumerate(picked):
        versions = PYPI_POOL[name]
        version = versions[(index + k) % len(versions)]
        deps.update(_dist_info(name, version))
        requirements.append(f"{name}=={version}")
    files = {f"deps/{path}": text for path, text in deps.items()}
    files |= _source_files(app, 40)
    files[f"app/{app}/requirements.txt"] = "\n".join(requirements) + "\n"
    if index % 4 == 0:
        files[f"app/{app}/.env"] = f"AWS_ACCESS_KEY_ID={_fake_aws_key(app)}\nAWS_REGION=eu-west-1\n"
    return files


def _node_app(index: int) -> dict[str, str]:
    app = f"app{index:02d}"
    names = list(NPM_POOL)
    picked = [names[(index + k) % len(names)] for k in range(3)]
    deps: dict[str, str] = {}
    dependencies = {}
    for k, name in enumerate(picked):
        versions = NPM_POOL[name]
        version = versions[(index + k) % len(versions)]
        deps.update(_node_module(f"srv/{app}", name, version))
        dependencies[name] = version
    files = {f"deps/{path}": text for path, text in deps.items()}
    files |= {path.replace(".py", ".js"): text for path, text in _source_files(app, 40).items()}
    manifest = {"name": app, "version": "1.0.0", "private": True, "dependencies": dependencies}
    files[f"app/{app}/package.json"] = json.dumps(manifest, indent=2) + "\n"
    if index % 4 == 1:
        files[f"app/{app}/.env"] = f"AWS_ACCESS_KEY_ID={_fake_aws_key(app)}\n"
    return files


def _app_body(index: int, kind: str) -> str:
    app = f"app{index:02d}"
    lines = [f"ENV APP_NAME={app} PORT={8000 + index}", "COPY deps/ /", f"COPY app/{app}/ /srv/{app}/"]
    lines += [f"WORKDIR /srv/{app}", f"EXPOSE {8000 + index}"]
    if index % 3:
        lines.append(f"USER {1000 + index}")
    lines.append('CMD ["python3", "-m", "main"]' if kind == "python" else 'CMD ["node", "index.js"]')
    return "\n".join(lines) + "\n"


BASE_PYTHON = Recipe(
    "portcullis-bench/cache-base-python:1",
    "portcullis-test/python:bookworm",
    "COPY deps/ /\n",
    {
        f"deps/{p}": t
        for n, v in (("certifi", "2020.12.5"), ("idna", "2.10"), ("six", "1.16.0"))
        for p, t in _dist_info(n, v).items()
    },
)
BASE_NODE = Recipe(
    "portcullis-bench/cache-base-node:1",
    "portcullis-test/debian:bookworm",
    "COPY deps/ /\n",
    {
        f"deps/{p}": t
        for n, v in (("lodash", "4.17.15"), ("minimist", "1.2.5"))
        for p, t in _node_module("opt/node-base", n, v).items()
    },
)
BIG = Recipe(
    "portcullis-bench/cache-big:1", "portcullis-test/vulnlab:bookworm", _app_body(99, "python"), _python_app(99)
)
FLEET = [
    Recipe(f"portcullis-bench/cache-app{i:02d}:1", BASE_PYTHON.tag, _app_body(i, "python"), _python_app(i))
    if i % 10 < 7
    else Recipe(f"portcullis-bench/cache-app{i:02d}:1", BASE_NODE.tag, _app_body(i, "node"), _node_app(i))
    for i in range(FLEET_SIZE)
]
RECIPES = [BASE_PYTHON, BASE_NODE, BIG, *FLEET]  # bases before the images built on them


def sh(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def inspect(ref: str) -> dict[str, Any] | None:
    found = sh("docker", "image", "inspect", ref)
    if found.returncode:
        return None
    info: dict[str, Any] = json.loads(found.stdout)[0]
    return info


def _layer_tar(files: dict[str, str]) -> bytes:
    """A reproducible layer: the files and their parent directories, root-owned, one fixed mtime."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(parent) for path in files for parent in PurePosixPath(path).parents if str(parent) != "."})
        for name in dirs:
            entry = tarfile.TarInfo(name)
            entry.type, entry.mode, entry.mtime = tarfile.DIRTYPE, 0o755, BUILT_AT
            tar.addfile(entry)
        for name in sorted(files):
            data = files[name].encode()
            entry = tarfile.TarInfo(name)
            entry.size, entry.mode, entry.mtime = len(data), 0o644, BUILT_AT
            tar.addfile(entry, io.BytesIO(data))
    return buffer.getvalue()


def _base_history(ref: str, layers: int) -> list[dict[str, Any]]:
    """The base image's history entries, oldest first, as an image config holds them."""
    listed = sh("docker", "history", "--no-trunc", "--human=false", "--format", "{{json .}}", ref)
    entries = []
    for line in reversed(listed.stdout.splitlines()):
        row = json.loads(line)
        entry = {"created": row["CreatedAt"], "created_by": row["CreatedBy"], "comment": row["Comment"]}
        entries.append(entry | ({"empty_layer": True} if row["Size"] == "0" else {}))
    if sum(not e.get("empty_layer") for e in entries) != layers:
        sys.exit(f"cache-bench: the history of {ref} does not match its {layers} layers")
    return entries


def assemble(recipe: Recipe, base: dict[str, Any]) -> tuple[bytes, dict[str, bytes]]:
    """The image config of `recipe` on `base` (its `docker image inspect`) and its new layers by diff_id: what a
    classic `docker build` of the same lines would make, without a container per line (slow on vfs)."""
    config = dict(base["Config"]) | {"Image": "", "Labels": (base["Config"].get("Labels") or {}) | {LABEL: "cache"}}
    diff_ids = list(base["RootFS"]["Layers"])
    history = _base_history(recipe.base, len(diff_ids))
    layers: dict[str, bytes] = {}
    for line in recipe.body.splitlines():
        word, _, rest = line.partition(" ")
        entry: dict[str, Any] = {"created": CREATED, "created_by": f"/bin/sh -c #(nop) {line}"}
        if word == "COPY":
            source, target = rest.split()
            root = target.strip("/")
            files = {
                f"{root}/{path[len(source) :]}".lstrip("/"): text
                for path, text in recipe.files.items()
                if path.startswith(source)
            }
            blob = _layer_tar(files)
            diff_id = "sha256:" + hashlib.sha256(blob).hexdigest()
            layers[diff_id] = blob
            diff_ids.append(diff_id)
        else:
            entry["empty_layer"] = True
            if word == "ENV":
                names = {pair.split("=")[0] for pair in rest.split()}
                env = config.get("Env") or [DEFAULT_PATH]  # as the classic builder does for a base without one
                config["Env"] = [e for e in env if e.split("=")[0] not in names] + rest.split()
            elif word == "EXPOSE":
                config["ExposedPorts"] = (config.get("ExposedPorts") or {}) | {f"{rest}/tcp": {}}
            elif word == "CMD":
                config["Cmd"] = json.loads(rest)
            else:
                config[{"WORKDIR": "WorkingDir", "USER": "User"}[word]] = rest
        history.append(entry)
    image = {
        "architecture": base["Architecture"],
        "os": base["Os"],
        "created": CREATED,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }
    return json.dumps(image, sort_keys=True).encode(), layers


def build(recipe: Recipe) -> str:
    """Load `recipe` into the engine as a `docker save` archive holding its config and only its new layers (the
    engine has the base's): 'built', or 'kept' when the tag already names exactly this image."""
    base = inspect(recipe.base)
    if base is None:
        sys.exit(f"cache-bench: {recipe.base} is missing; run `make test-images`")
    config, layers = assemble(recipe, base)
    image_id = "sha256:" + hashlib.sha256(config).hexdigest()
    have = inspect(recipe.tag)
    if have is not None and have["Id"] == image_id:
        return "kept"
    if have is not None and (have["Config"].get("Labels") or {}).get(LABEL) == "cache":
        sh("docker", "image", "rm", recipe.tag)  # an older recipe of ours: replace it rather than leave it dangling
    diff_ids = json.loads(config)["rootfs"]["diff_ids"]
    manifest = [{"Config": "config.json", "RepoTags": [recipe.tag], "Layers": [f"{d[7:]}/layer.tar" for d in diff_ids]}]
    with tempfile.TemporaryDirectory(dir=WORK) as scratch:
        archive = Path(scratch, "image.tar")
        with tarfile.open(archive, "w") as tar:
            for name, data in [("manifest.json", json.dumps(manifest).encode()), ("config.json", config)] + [
                (f"{d[7:]}/layer.tar", blob) for d, blob in layers.items()
            ]:
                entry = tarfile.TarInfo(name)
                entry.size = len(data)
                tar.addfile(entry, io.BytesIO(data))
        loaded = sh("docker", "load", "-q", "-i", str(archive))
    if loaded.returncode or (inspect(recipe.tag) or {}).get("Id") != image_id:
        sys.exit(f"cache-bench: loading {recipe.tag} failed: {loaded.stderr.strip()[-500:]}")
    return "built"


def remove_images() -> list[str]:
    """Remove the images this benchmark builds (only those carrying its label), apps before their bases."""
    removed = []
    for recipe in reversed(RECIPES):
        have = inspect(recipe.tag)
        ours = have is not None and (have["Config"].get("Labels") or {}).get(LABEL) == "cache"
        if ours and sh("docker", "image", "rm", recipe.tag).returncode == 0:
            removed.append(recipe.tag)
    return removed


def image_facts() -> dict[str, Any]:
    """Sizes and layers of the measured images; how many distinct layers (and bytes) the fleet really has."""

    def facts(tag: str) -> dict[str, Any]:
        info = inspect(tag) or {}
        return {"tag": tag, "bytes": info.get("Size"), "layers": info.get("RootFS", {}).get("Layers", [])}

    big = facts(BIG.tag)
    fleet = [facts(r.tag) for r in FLEET]
    distinct = {layer for image in fleet for layer in image["layers"]}
    return {
        "big": {"tag": big["tag"], "bytes": big["bytes"], "layers": len(big["layers"])},
        "fleet": {
            "images": len(fleet),
            "bytes_summed_per_image": sum(image["bytes"] or 0 for image in fleet),
            "layers_summed_per_image": sum(len(image["layers"]) for image in fleet),
            "distinct_layers": len(distinct),
            "bases": {
                BASE_PYTHON.tag: sum(r.base == BASE_PYTHON.tag for r in FLEET),
                BASE_NODE.tag: sum(r.base == BASE_NODE.tag for r in FLEET),
            },
        },
    }


# --- the tools --------------------------------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    peak_rss_mib: float
    stderr: str


def timed(cmd: list[str], env: dict[str, str]) -> Run:
    """Wall time and peak RSS (GNU time) of one process; exits with its error when it fails."""
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 2):  # 2: portcullis found failures at or above --fail-on
        sys.exit(f"cache-bench: {' '.join(cmd[:4])} … failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    return Run(wall, int(rss.group(1)) / 1024 if rss else 0.0, done.stderr)


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


class Portcullis:
    """`portcullis image` as a user runs it, its layer cache in a directory of its own under WORK.

    A portcullis without the layer cache (no --cache-dir: older than issue 14 §2) takes one REF per process; it is
    then run once per image, as Trivy is, and measured as a baseline with no bar decided."""

    name = "portcullis"

    def __init__(self, db: Path) -> None:
        self.cache = WORK / "portcullis-cache"
        self.db = db
        self.env = {**os.environ, "PORTCULLIS_CACHE_DIR": str(self.cache)}
        self.layer_cache = "--cache-dir" in sh(*self.cli("image", "--help")).stdout

    def cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "portcullis", *args]

    def empty_cache(self) -> None:
        if not self.layer_cache:
            return
        done = subprocess.run(
            self.cli("cache", "clean", "--cache-dir", str(self.cache)), capture_output=True, text=True, check=False
        )
        if done.returncode:
            sys.exit(f"cache-bench: portcullis cache clean failed: {done.stderr.strip()}")
        if dir_bytes(self.cache):
            sys.exit(f"cache-bench: portcullis cache clean left {dir_bytes(self.cache)} bytes in {self.cache}")

    def scan(self, refs: list[str], out: Path) -> Run:
        """One process for all `refs`: each distinct layer is read once, then taken from the cache."""
        common = ["--db", str(self.db), "--no-store", "-f", "json"]
        if self.layer_cache:
            images = [f"engine:{ref}" for ref in refs]
            return timed(self.cli("image", *images, "--cache-dir", str(self.cache), *common, "-o", str(out)), self.env)
        runs = [
            timed(self.cli("image", f"engine:{ref}", *common, "-o", f"{out}.{n:02d}"), self.env)
            for n, ref in enumerate(refs)
        ]
        return Run(sum(r.seconds for r in runs), max(r.peak_rss_mib for r in runs), "".join(r.stderr for r in runs))


class Trivy:
    """`trivy image` reading from the engine, its default fs cache in a fresh TRIVY_CACHE_DIR under WORK."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cache = WORK / f"{name.replace('+', '-')}-cache"
        self.flags = TRIVY_VARIANTS[name]
        self.env = {**os.environ, "TRIVY_CACHE_DIR": str(self.cache), "TRIVY_NO_PROGRESS": "true"}

    def empty_cache(self) -> None:
        shutil.rmtree(self.cache, ignore_errors=True)

    def scan(self, refs: list[str], out: Path) -> Run:
        """One `trivy image` process per image, in turn, as a user scripts it."""
        runs = [
            timed([TRIVY, *TRIVY_COMMON, *self.flags, "-o", f"{out}.{n:02d}", ref], self.env)
            for n, ref in enumerate(refs)
        ]
        return Run(sum(r.seconds for r in runs), max(r.peak_rss_mib for r in runs), "")


Tool = Portcullis | Trivy


def verify_trivy(ref: str) -> dict[str, Any]:
    """Trivy really reads the daemon and really uses its fs cache: --debug names the docker source, the first run
    misses every layer and fills the cache, the second misses none and is faster."""
    probe = Trivy("trivy")
    probe.cache = WORK / "trivy-probe-cache"
    probe.env["TRIVY_CACHE_DIR"] = str(probe.cache)
    probe.empty_cache()
    loud = [flag for flag in TRIVY_COMMON if flag != "-q"]  # -q would silence the debug log
    debug = [TRIVY, *loud, *probe.flags, "--debug", "-o", "/dev/null", ref]
    first = timed(debug, probe.env)
    cache_bytes = dir_bytes(probe.cache)
    second = timed(debug, probe.env)
    facts = {
        "image": ref,
        "source_docker": 'source="docker"' in first.stderr,
        "first_run_missing_layers": first.stderr.count("Missing diff ID in cache"),
        "second_run_missing_layers": second.stderr.count("Missing diff ID in cache"),
        "cache_bytes_after_first_run": cache_bytes,
        "first_seconds": round(first.seconds, 3),
        "second_seconds": round(second.seconds, 3),
    }
    probe.empty_cache()
    ok = facts["source_docker"] and facts["first_run_missing_layers"] and not facts["second_run_missing_layers"]
    if not (ok and cache_bytes and second.seconds < first.seconds):
        sys.exit(f"cache-bench: Trivy does not read the daemon through its cache as expected: {facts}")
    return facts


def outputs(tool: Tool, out: Path, count: int, stderr: str) -> dict[str, int]:
    """What the last run reported: packages, secrets and (Trivy + config) misconfigurations for Trivy; packages
    (from its `read …: N packages` notes) and failed findings by rule for portcullis."""
    if isinstance(tool, Portcullis):
        reports = [out] if tool.layer_cache else [Path(f"{out}.{n:02d}") for n in range(count)]
        counts = {"packages": sum(int(n) for n in re.findall(r"(\d+) packages", stderr))}
        for report in reports:
            for finding in json.loads(report.read_text())["findings"]:
                if finding["status"] == "fail":
                    counts[f"failed {finding['rule_id']}"] = counts.get(f"failed {finding['rule_id']}", 0) + 1
        return counts
    totals = {"packages": 0, "secrets": 0, "misconfigurations": 0}
    for n in range(count):
        for result in json.loads(Path(f"{out}.{n:02d}").read_text()).get("Results", []):
            totals["packages"] += len(result.get("Packages") or [])
            totals["secrets"] += len(result.get("Secrets") or [])
            totals["misconfigurations"] += len(result.get("Misconfigurations") or [])
    return totals


def measure(tools: list[Tool], refs: list[str], rounds: int, repeats: int) -> dict[str, Any]:
    """Per round: empty every cache, one first run of each tool, then `repeats` repeat runs of each; the order of
    the tools rotates every round (and every repeat), so a slow spell of this shared VM falls on all alike."""
    first: dict[str, list[float]] = {t.name: [] for t in tools}
    repeat: dict[str, list[float]] = {t.name: [] for t in tools}
    rss: dict[str, float] = dict.fromkeys(first, 0.0)
    cache_bytes: dict[str, int] = {}
    stderr: dict[str, str] = {}
    cache_lines: dict[str, dict[str, str]] = {}
    out_dir = WORK / "out"
    shutil.rmtree(out_dir, ignore_errors=True)  # no report of an earlier run can be taken for this one's
    out_dir.mkdir(parents=True)

    def rotated(k: int) -> list[Tool]:
        return tools[k % len(tools) :] + tools[: k % len(tools)]

    for round_index in range(rounds):
        for tool in tools:
            tool.empty_cache()
        for step in range(repeats + 1):
            for tool in rotated(round_index + step):
                run = tool.scan(refs, out_dir / f"{tool.name}.json")
                (repeat if step else first)[tool.name].append(round(run.seconds, 3))
                rss[tool.name] = max(rss[tool.name], round(run.peak_rss_mib, 1))
                stderr[tool.name] = run.stderr
                told = re.search(r"layer cache: .*", run.stderr)  # portcullis's own count of hits and misses
                if told:
                    cache_lines.setdefault(tool.name, {})["repeat run" if step else "first run"] = told.group(0)
                if not step:
                    cache_bytes[tool.name] = dir_bytes(tool.cache)
        print(f"cache-bench: {len(refs)} image(s), round {round_index + 1}/{rounds} done", file=sys.stderr)
    return {
        name: {
            "first_median_seconds": round(statistics.median(first[name]), 3),
            "repeat_median_seconds": round(statistics.median(repeat[name]), 3),
            "first_seconds": first[name],
            "repeat_seconds": repeat[name],
            "peak_rss_mib": rss[name],
            "cache_bytes_after_first_run": cache_bytes[name],
            "cache_says": cache_lines.get(name, {}),
            "reported": outputs(
                next(t for t in tools if t.name == name), out_dir / f"{name}.json", len(refs), stderr[name]
            ),
        }
        for name in first
    }


def startup(runs: int) -> dict[str, float]:
    """Median wall time of each CLI doing nothing (`--version`), alternating: the floor under any repeat scan."""
    commands = {"portcullis": [sys.executable, "-m", "portcullis", "--version"], "trivy": [TRIVY, "--version"]}
    times: dict[str, list[float]] = {name: [] for name in commands}
    for n in range(runs):
        for name in sorted(commands, reverse=bool(n % 2)):
            times[name].append(timed(commands[name], dict(os.environ)).seconds)
    return {name: round(statistics.median(values), 3) for name, values in times.items()}


def build_db() -> Path:
    """The vulnerability DB portcullis matches against: the real advisory data the vuln tests use."""
    db = WORK / "vuln.db"
    db.unlink(missing_ok=True)
    for source in (VULN_TESTDATA / "debian-tracker-converted.json", SHARED_PYPI, VULN_TESTDATA / "osv-npm"):
        cmd = [sys.executable, "-m", "portcullis", "db", "import", "--db", str(db), str(source), "-q"]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode:
            sys.exit(f"cache-bench: importing {source} failed: {done.stderr.strip()}")
    return db


def version(cmd: list[str]) -> str:
    done = sh(*cmd)
    return (done.stdout or done.stderr).strip().splitlines()[0]


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text()
    total = re.search(r"MemTotal:\s+(\d+)", meminfo)
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(int(total.group(1)) / 2**20, 1) if total else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "docker": version(["docker", "version", "--format", "{{.Server.Version}} ({{.Server.Os}}/{{.Server.Arch}})"]),
        "storage_driver": version(["docker", "info", "--format", "{{.Driver}}"]),
    }


# --- the report ---------------------------------------------------------------------------------------------------

BARS: list[tuple[str, str, str, float]] = [
    # (bar, which measurement, which key, the most portcullis may take as a share of Trivy's time)
    ("repeat scan of one ~235 MB image", "big", "repeat_median_seconds", 1.0),
    (f"{FLEET_SIZE} images sharing bases, first run", "fleet", "first_median_seconds", 0.5),
    (f"{FLEET_SIZE} images sharing bases, repeat run", "fleet", "repeat_median_seconds", 0.5),
]


def bars(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for bar, where, key, most in BARS:
        ours = result[where]["portcullis"][key]
        theirs = result[where]["trivy"][key]
        ratio = round(ours / theirs, 3)
        row = {"bar": bar, "portcullis_seconds": ours, "trivy_seconds": theirs, "ratio": ratio, "at_most": most}
        # a portcullis without the layer cache is a baseline: it cannot meet or miss a bar about the cache
        row["met"] = ratio <= most if result["portcullis_layer_cache"] else None
        if "trivy+config" in result[where]:
            row["ratio_to_trivy_config"] = round(ours / result[where]["trivy+config"][key], 3)
        rows.append(row)
    return rows


MET = {True: "yes", False: "**no**", None: "not decided: this portcullis has no layer cache"}


def markdown(result: dict[str, Any]) -> str:
    images = result["images"]
    lines = [
        "# Layer cache: `portcullis image` vs Trivy, both with their caches",
        "",
        f"Measured {result['measured_at']} on {result['machine']['cpus']} CPUs ({result['machine']['platform']}, "
        f"Docker {result['machine']['docker']}, {result['machine']['storage_driver']}); load average "
        f"{result['load_average']['before']} before, {result['load_average']['after']} after. "
        f"{result['rounds']} rounds: every round empties both caches, times one first run of each tool, then "
        f"{result['repeats']} repeat runs of each; the tools alternate. Medians of wall time (CLI runs, start-up "
        "included).",
        "",
        "| bar | portcullis s | Trivy s | ratio | bar: at most | met | ratio to Trivy + config rules |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for row in result["bars"]:
        lines.append(
            f"| {row['bar']} | {row['portcullis_seconds']} | {row['trivy_seconds']} | {row['ratio']} | "
            f"{row['at_most']} | {MET[row['met']]} | {row.get('ratio_to_trivy_config', '')} |"
        )
    lines += [
        "",
        "| images | tool | first run s (median) | repeat s (median) | first runs | repeat runs | peak RSS MiB "
        "| cache bytes |",
    ]
    lines += ["|---|---|---:|---:|---|---|---:|---:|"]
    for where, label in (("big", f"1 × {images['big']['tag']}"), ("fleet", f"{images['fleet']['images']} apps")):
        for name, row in result[where].items():
            lines.append(
                f"| {label} | {name} | {row['first_median_seconds']} | {row['repeat_median_seconds']} | "
                f"{row['first_seconds']} | {row['repeat_seconds']} | {row['peak_rss_mib']} | "
                f"{row['cache_bytes_after_first_run']} |"
            )
    floor = result["startup_median_seconds"]
    lines += [
        "",
        f"Start-up alone (`--version`, median of 9): portcullis {floor['portcullis']} s, Trivy {floor['trivy']} s. "
        "A repeat scan cannot take less than its tool's start-up.",
    ]
    lines += ["", "What the last run of each reported:", ""]
    for where in ("big", "fleet"):
        for name, row in result[where].items():
            told = ", ".join(f"{key} {value}" for key, value in row["reported"].items())
            says = "; ".join(f"{when}: {line}" for when, line in row["cache_says"].items())
            told += f" ({says})" if says else ""
            lines.append(f"- {images[where].get('tag') or str(images[where]['images']) + ' apps'}, {name}: {told}")
    lines += [
        "",
        "The package counts differ by how they count, not by what is found: Trivy lists a package once per place it "
        "is installed (lodash in a node base and again in an app's node_modules) and counts each node app's own "
        "package.json; portcullis counts a name and version once per image and not the app's manifest.",
    ]
    fleet = images["fleet"]
    lines += [
        "",
        "## The images (built here from the local test images, labelled portcullis.bench=cache)",
        "",
        f"- `{images['big']['tag']}`: portcullis-test/vulnlab:bookworm (Debian 12 with 130 dpkg packages and Python "
        f"packages) plus a deps layer (5 dist-info packages) and an app layer: {images['big']['bytes']} bytes, "
        f"{images['big']['layers']} layers.",
        f"- {fleet['images']} apps `portcullis-bench/cache-appNN:1`, each FROM one of two shared bases "
        f"({', '.join(f'`{k}` ×{v}' for k, v in fleet['bases'].items())}); each base is a test image (python:bookworm "
        "161 MB, debian:bookworm 117 MB) plus a layer of shared packages; each app adds a deps layer (Python "
        "dist-info or node_modules packages, versions varying per app) and a code layer (40 modules, a manifest, a "
        f"made-up AWS key in every fourth app). {fleet['layers_summed_per_image']} layers over the images, "
        f"{fleet['distinct_layers']} distinct; {fleet['bytes_summed_per_image']} bytes summed per image.",
        "",
        "## What each tool did",
        "",
    ]
    lines += [f"- **{name}**: {what}" for name, what in result["what_each_tool_did"].items()]
    lines += ["", "Commands:", ""] + [f"- {name}: `{command}`" for name, command in result["commands"].items()]
    probe = result["trivy_verified"]
    lines += [
        "",
        f"Trivy's daemon source and cache, checked with `--debug` on {probe['image']}: source docker "
        f"{probe['source_docker']}, layers missing from the cache {probe['first_run_missing_layers']} on the first "
        f"run and {probe['second_run_missing_layers']} on the second, {probe['cache_bytes_after_first_run']} bytes "
        f"of cache after the first; {probe['first_seconds']} s then {probe['second_seconds']} s. On a repeat it "
        "inspects the image, finds every layer in its cache and does not export the image from the engine.",
        "",
        f"Versions: portcullis {result['versions']['portcullis']}, Trivy {result['versions']['trivy']}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="cold starts per measurement (both caches emptied)")
    parser.add_argument("--repeats", type=int, default=3, help="repeat runs per round")
    parser.add_argument("--keep-images", action="store_true", help="leave the benchmark's images on the engine")
    args = parser.parse_args()
    if not Path(TRIVY).exists():
        sys.exit(f"cache-bench: {TRIVY} not found; run `make bench-programs`")
    WORK.mkdir(parents=True, exist_ok=True)
    before = os.getloadavg()
    try:
        built = {recipe.tag: build(recipe) for recipe in RECIPES}
        print(f"cache-bench: images {sorted(set(built.values()))}", file=sys.stderr)
        db = build_db()
        verified = verify_trivy(BIG.tag)
        ours = Portcullis(db)

        def tools() -> list[Tool]:
            return [ours, *(Trivy(name) for name in TRIVY_VARIANTS)]

        result: dict[str, Any] = {
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "portcullis_layer_cache": ours.layer_cache,
            "rounds": args.rounds,
            "repeats": args.repeats,
            "images": image_facts(),
            "images_built": built,
            "trivy_verified": verified,
            "big": measure(tools(), [BIG.tag], args.rounds, args.repeats),
            "fleet": measure(tools(), [r.tag for r in FLEET], args.rounds, args.repeats),
            "startup_median_seconds": startup(9),
        }
    finally:
        if not args.keep_images:
            print(f"cache-bench: removed {len(remove_images())} images", file=sys.stderr)
    result["load_average"] = {"before": [round(x, 2) for x in before], "after": [round(x, 2) for x in os.getloadavg()]}
    result["versions"] = {
        "portcullis": f"{portcullis.__version__} ({Path(portcullis.__file__).parent})",
        "trivy": version([TRIVY, "--version"]).removeprefix("Version: "),
    }
    result["what_each_tool_did"] = WHAT_EACH_TOOL_DID
    result["commands"] = {
        "portcullis": "python -m portcullis image engine:REF [engine:REF …] --cache-dir DIR --db vuln.db --no-store "
        "-f json -o FILE",
        **{
            name: f"trivy {' '.join(TRIVY_COMMON + flags)} -o FILE REF   (one process per image)"
            for name, flags in TRIVY_VARIANTS.items()
        },
    }
    result["bars"] = bars(result)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cache.json").write_text(json.dumps(result, indent=1) + "\n")
    text = markdown(result)
    (RESULTS / "cache.md").write_text(text)
    print(text)


WHAT_EACH_TOOL_DID = {
    "portcullis": (
        "reads each image from the engine; per layer: the file entries its rules need, package evidence (dpkg, "
        "Python dist-info, npm), secret patterns; then the CIS 4 and DKR-IMG rules on config and files, and "
        "vulnerability matching of every package against a real advisory DB (Debian tracker records, the whole "
        "PyPA advisory database, npm OSV records from tests/vuln/data and ../shared/vulndata); one JSON report. "
        "Its layer cache in its own directory (--cache-dir), emptied with `portcullis cache clean`; --no-store "
        "keeps the runs out of the history store."
    ),
    "trivy": (
        "one `trivy image --image-src docker` process per image: inspects the image on the engine, exports it "
        "(docker save) when a layer is missing from its cache, analyses the missing layers (OS and language "
        "packages, secrets) into its default fs cache (TRIVY_CACHE_DIR, a fresh directory per round), lists every "
        "package (--list-all-pkgs) and the secrets in its JSON report. No vulnerability matching: its DB cannot be "
        "downloaded here and --scanners vuln refuses to run without it, so portcullis does more work (the match "
        "and its rules) than this Trivy does."
    ),
    "trivy+config": (
        "as trivy, plus --image-config-scanners misconfig,secret: its embedded Dockerfile checks on the "
        "Dockerfile rebuilt from the image history, and secrets in the config; for information only, the bars "
        "are decided against plain trivy."
    ),
}


if __name__ == "__main__":
    main()
