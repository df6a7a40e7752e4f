"""Layers scanned two at a time (a forked child takes a share) give exactly what one process gives, report a
child's failure as one clear error, respect the total byte budget, and never leave a child process behind."""

from __future__ import annotations

import io
import os
from functools import partial
from pathlib import Path

import pytest
from image_builders import Image, M, OciLayout, docker_archive, layer_tar

from portcullis.collect.image import analyse_image
from portcullis.collect.image.errors import ImageError, Limits
from portcullis.collect.image.layer import LayerScan
from portcullis.collect.image.layer_pool import LayerJob, scan_layers, split_shares

LAYERS = [
    layer_tar(M("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"), M("usr/bin/su", b"\x7fELF", mode=0o4755)),
    layer_tar(M("root/.ssh/id_rsa", b"-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n"), M("tmp", kind="dir", mode=0o777)),
    layer_tar(*(M(f"data/f{i}", os.urandom(256)) for i in range(300))),
    layer_tar(M("app/.env", b"TOKEN=1")),
]


def no_children_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def jobs_for(blobs: list[bytes]) -> list[LayerJob]:
    return [LayerJob(partial(io.BytesIO, blob), len(blob), f"layer {i}") for i, blob in enumerate(blobs)]


def comparable(scans: list[LayerScan]) -> list[tuple[object, ...]]:
    return [(s.diff_id, s.digest, s.size, [(e.path, e.kind, e.mode, e.secret) for e in s.entries]) for s in scans]


def test_forked_scan_equals_the_single_process_scan() -> None:
    together = scan_layers(jobs_for(LAYERS), Limits(), min_parallel_bytes=0)
    alone = scan_layers(jobs_for(LAYERS), Limits(), min_parallel_bytes=1 << 60)
    assert comparable(together) == comparable(alone)
    assert [s.size for s in together] == [len(b) for b in LAYERS]
    assert no_children_left()


@pytest.mark.parametrize("share", ["child", "parent"])
def test_a_broken_layer_in_either_share_is_one_clear_error(share: str) -> None:
    theirs, ours = split_shares(jobs_for(LAYERS))
    broken = (theirs if share == "child" else ours)[0]
    blobs = list(LAYERS)
    blobs[broken] = b"\x01" * len(blobs[broken])  # not a tar (bad header checksum); same size, same split
    with pytest.raises(ImageError, match=f"layer {broken} is not a readable tar archive"):
        scan_layers(jobs_for(blobs), Limits(), min_parallel_bytes=0)
    assert no_children_left()


def test_total_budget_counts_both_shares() -> None:
    budget = sum(len(b) for b in LAYERS) - 1  # every layer fits alone; together they are one byte over
    with pytest.raises(ImageError, match=f"expands beyond the limit of {budget} bytes"):
        scan_layers(jobs_for(LAYERS), Limits(max_total_bytes=budget), min_parallel_bytes=0)
    assert no_children_left()


def test_real_sources_use_the_pool_and_agree(tmp_path: Path) -> None:
    """A docker-save file and an OCI layout of the same image, above the fork threshold, read the same."""
    big = [layer_tar(*(M(f"{top}/{i}", os.urandom(1 << 20)) for i in range(20))) for top in ("blob", "more")]
    image = Image(layers=[*LAYERS, *big])  # 40 MiB in all: over the 32 MiB threshold
    archive = docker_archive(tmp_path / "img.tar", image)
    layout = OciLayout()
    layout.add(image, "none")
    root = layout.write_dir(tmp_path / "layout")
    from_archive = analyse_image(f"docker-archive:{archive}")
    from_layout = analyse_image(f"oci:{root}")
    assert from_archive.content is not None and from_layout.content is not None
    assert [layer.diff_id for layer in from_archive.content.layers] == [
        layer.diff_id for layer in from_layout.content.layers
    ]
    assert from_archive.content.file_count == from_layout.content.file_count == 2 + 2 + 300 + 1 + 20 + 20
    assert [e.path for e in from_archive.content.secrets] == ["/app/.env", "/root/.ssh/id_rsa"]
    assert no_children_left()
