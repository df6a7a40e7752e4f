"""Crafted archives, generated here at run time: each must end in a clear one-line error (exit 1) or a safe
skip reported as a finding — never a write outside the temp dir, a read of a host file, or a traceback."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest
from image_builders import Image, M, OciLayout, add_bytes, docker_archive, layer_tar

from portcullis.collect.image import ImageError, ImageOptions, Limits, analyse_image
from portcullis.collect.image.errors import MIB

KEY = b"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIFAKE\n-----END EC PRIVATE KEY-----\n"
PORTCULLIS = [sys.executable, "-m", "portcullis"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PORTCULLIS, "image", *args], capture_output=True, text=True, timeout=300)


def assert_clean_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("portcullis: error: "), result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


class Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def test_dotdot_and_absolute_names_are_skipped_and_reported(tmp_path: Path) -> None:
    victim = tmp_path.parent / f"pwned-{uuid.uuid4().hex}"
    depth = "../" * (len(tmp_path.parts) + 2)
    layer = layer_tar(
        M("ok.txt", b"fine"),
        M(f"{depth}{str(victim).lstrip('/')}", b"escaped"),
        M(f"a/../../{victim.name}", b"escaped"),
        M(str(victim), b"absolute"),
    )
    archive = docker_archive(tmp_path / "img.tar", Image(layers=[layer]))
    facts = analyse_image(f"docker-archive:{archive}")
    assert facts.content is not None and facts.content.file_count == 1
    assert [e.detail for e in facts.content.unsafe_entries] == ["absolute or '..' member name"] * 3
    assert not victim.exists()
    result = run_cli(f"docker-archive:{archive}", "--select", "DKR-IMG-008", "-f", "json")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    [finding] = json.loads(result.stdout)["findings"]
    assert finding["status"] == "fail" and len(finding["evidence"]["paths"]) == 3
    assert finding["evidence"]["paths"][0]["layer"]["index"] == 0


def test_symlink_escapes_never_reach_host_files(tmp_path: Path) -> None:
    host_secret = tmp_path / "host-key.pem"
    host_secret.write_bytes(KEY)  # if anything followed a link to the host, this key would be reported
    layer = layer_tar(
        M("etc", kind="dir", mode=0o755),
        M("up", kind="symlink", link="../../../../../../" + str(tmp_path).lstrip("/")),
        M("abs", kind="symlink", link=str(host_secret)),
        M("up/host-key.pem.copy", b"written through the link"),
        M("root/.ssh/id_rsa", kind="symlink", link=str(host_secret)),
    )
    archive = docker_archive(tmp_path / "img.tar", Image(layers=[layer]))
    facts = analyse_image(f"docker-archive:{archive}")
    assert facts.content is not None
    assert facts.content.secrets == []
    assert not (tmp_path / "host-key.pem.copy").exists()
    # the write through 'up' lands inside the image tree, where 'up' points when resolved from the root
    assert [e.detail.split(" (")[0] for e in facts.content.unsafe_entries] == [
        "symlink to '../../../../../../" + str(tmp_path).lstrip("/") + "' climbs above the root"
    ]


def test_rootfs_dir_never_follows_symlinks_to_the_host(tmp_path: Path) -> None:
    host_secret = tmp_path / "host-key.pem"
    host_secret.write_bytes(KEY)
    root = tmp_path / "root"
    (root / "root" / ".ssh").mkdir(parents=True)
    (root / "root" / ".ssh" / "id_rsa").symlink_to(host_secret)
    (root / "hostdir").symlink_to(tmp_path)
    facts = analyse_image(f"dir:{root}")
    assert facts.content is not None and facts.content.secrets == []
    assert facts.content.file_count == 4  # root, root/.ssh, the two symlinks; nothing behind them


def test_hardlink_escape_and_device_nodes_are_skipped(tmp_path: Path) -> None:
    layer = layer_tar(
        M("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
        M("stolen", kind="hardlink", link="../../../etc/shadow"),
        M("dangling", kind="hardlink", link="not/there"),
        M("dev/sda", kind="blk"),
        M("dev/mem", kind="chr"),
        M("pipe", kind="fifo"),
    )
    archive = docker_archive(tmp_path / "img.tar", Image(layers=[layer]))
    facts = analyse_image(f"docker-archive:{archive}")
    assert facts.content is not None
    reasons = {e.path: e.detail for e in facts.content.unsafe_entries}
    assert reasons["/stolen"].startswith("hardlink to '../../../etc/shadow' leaves the image")
    assert reasons["/dangling"].startswith("hardlink to 'not/there', which is not a file")
    assert reasons["/dev/sda"].startswith("device node") and reasons["/dev/mem"].startswith("device node")
    assert facts.content.file_count == 2  # etc/passwd and the fifo; parents that are not members are implied
    assert not Path("stolen").exists()


def _bomb_archive(tmp_path: Path, uncompressed: int) -> Path:
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        info = tarfile.TarInfo("zeros")
        info.size = uncompressed
        tar.addfile(info, io.BufferedReader(Zeros(uncompressed)))
    layout = OciLayout()
    image = Image(layers=[b"not used"])
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}
    image.raw_config = json.dumps(config).encode()
    manifest = {
        "schemaVersion": 2,
        "config": layout.blob(image.raw_config),
        "layers": [layout.blob(raw.getvalue())],
    }
    layout.index["manifests"].append(layout.blob(json.dumps(manifest).encode()))
    return layout.write_dir(tmp_path / "bomb")


def test_decompression_bomb_stops_at_the_limit(tmp_path: Path) -> None:
    layout = _bomb_archive(tmp_path, 256 * MIB)
    assert sum(f.stat().st_size for f in layout.rglob("*") if f.is_file()) < 2 * MIB
    with pytest.raises(ImageError, match="expands beyond the limit of 33554432 bytes"):
        analyse_image(f"oci:{layout}", ImageOptions(limits=Limits(max_total_bytes=32 * MIB)))
    assert_clean_error(run_cli(f"oci:{layout}", "--max-bytes", str(32 * MIB)), "decompression bomb")


def test_sparse_huge_file_is_bounded(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    with open(source / "huge", "wb") as handle:
        handle.truncate(64 * 1024**3)  # 64 GiB of holes
    layer = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "-C", str(source), "-cf", str(layer), "huge"], check=True)
    assert layer.stat().st_size < MIB
    archive = docker_archive(tmp_path / "img.tar", Image(layers=[layer.read_bytes()]))
    facts = analyse_image(f"docker-archive:{archive}")
    assert facts.content is not None
    assert [(e.path, e.detail) for e in facts.content.unsafe_entries] == [
        ("/huge", f"declares {64 * 1024**3} bytes, over the per-file limit")
    ]


def test_200k_tiny_files_stay_fast_and_bounded(tmp_path: Path) -> None:
    count = 200_000
    layer_path = tmp_path / "tiny.tar.gz"
    with (
        gzip.open(layer_path, "wb", compresslevel=1) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        for index in range(count):
            info = tarfile.TarInfo(f"d{index % 100:02d}/f{index}")
            tar.addfile(info)
    data = layer_path.read_bytes()
    layout = OciLayout()
    uncompressed = gzip.decompress(data)
    image = Image(layers=[uncompressed])
    manifest = {"schemaVersion": 2, "config": layout.blob(image.config_json()), "layers": [layout.blob(data)]}
    layout.index["manifests"].append(layout.blob(json.dumps(manifest).encode()))
    root = layout.write_dir(tmp_path / "tiny")
    del uncompressed, data
    probe = (
        "import resource, time, sys\n"
        "from portcullis.collect.image import analyse_image\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "start = time.perf_counter()\n"
        f"facts = analyse_image('oci:{root}')\n"
        "took = time.perf_counter() - start\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(facts.content.file_count, took, (peak - base) // 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True)
    files, took, growth_mib = out.stdout.split()
    assert int(files) == count  # the 100 parent directories are implied, not members
    assert float(took) < 30, f"took {took} s"
    assert int(growth_mib) < 200, f"RSS grew by {growth_mib} MiB"


def test_truncated_gzip_is_a_clear_error(tmp_path: Path) -> None:
    layout = OciLayout()
    layout.add(Image(layers=[layer_tar(*(M(f"f{i}", os.urandom(2048)) for i in range(50)))]), "gzip")
    root = layout.write_dir(tmp_path / "layout")
    [layer_blob] = [p for p in (root / "blobs" / "sha256").iterdir() if p.stat().st_size > 50_000]
    layer_blob.write_bytes(layer_blob.read_bytes()[: layer_blob.stat().st_size // 2])
    with pytest.raises(ImageError, match="truncated or corrupt"):
        analyse_image(f"oci:{root}")
    assert_clean_error(run_cli(f"oci:{root}"), "truncated or corrupt")


def test_invalid_manifest_json(tmp_path: Path) -> None:
    archive = docker_archive(tmp_path / "img.tar", Image(layers=[layer_tar(M("a"))]), manifest=b"[{not json")
    assert_clean_error(run_cli(f"docker-archive:{archive}"), "manifest.json is not valid JSON")
    layout = tmp_path / "layout"
    layout.mkdir()
    (layout / "oci-layout").write_text("{}")
    (layout / "index.json").write_text("{]")
    assert_clean_error(run_cli(str(layout)), "index.json is not valid JSON")


@pytest.mark.parametrize("where", ["../../../../etc/passwd", "/etc/passwd", "layer-that-is-not-there.tar"])
def test_manifest_pointing_outside_the_archive(tmp_path: Path, where: str) -> None:
    image = Image(layers=[layer_tar(M("a"))])
    config = image.config_json()
    archive = tmp_path / "img.tar"
    with tarfile.open(archive, "w") as tar:
        add_bytes(tar, "config.json", config)
        add_bytes(tar, "manifest.json", json.dumps([{"Config": "config.json", "Layers": [where]}]).encode())
    result = run_cli(f"docker-archive:{archive}")
    assert_clean_error(result, "manifest.json: layer")
    config_escape = tmp_path / "img2.tar"
    with tarfile.open(config_escape, "w") as tar:
        add_bytes(tar, "manifest.json", json.dumps([{"Config": where, "Layers": []}]).encode())
    assert_clean_error(run_cli(f"docker-archive:{config_escape}"), "manifest.json: Config")


def test_layer_digest_mismatch(tmp_path: Path) -> None:
    image = Image(layers=[layer_tar(M("a", b"original"))])
    tampered = Image(layers=[layer_tar(M("a", b"tampered"))], raw_config=image.config_json())
    archive = docker_archive(tmp_path / "img.tar", tampered)
    assert_clean_error(run_cli(f"docker-archive:{archive}"), "does not match the config's")
    layout = OciLayout()
    layout.add(image, "gzip")
    root = layout.write_dir(tmp_path / "layout")
    blob = max(
        (root / "blobs" / "sha256").iterdir(),
        key=lambda p: p.stat().st_size if p.read_bytes()[:2] == b"\x1f\x8b" else -1,
    )
    blob.write_bytes(gzip.compress(layer_tar(M("a", b"tampered"))))
    assert_clean_error(run_cli(f"oci:{root}"), "does not match the manifest's")


def test_garbage_and_missing_inputs(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(os.urandom(4096))
    assert_clean_error(run_cli(str(junk)), "neither a directory nor a readable tar archive")
    assert_clean_error(run_cli(f"docker-archive:{tmp_path / 'missing.tar'}"), "cannot open")
    assert_clean_error(run_cli(f"oci:{tmp_path}"), "index.json")
