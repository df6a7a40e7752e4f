"""The layer cache stays bounded: a hit marks its entry used, the least recently used entries go past the size cap,
`cache clean --older-than` removes what no scan used for that long, and two scans trimming at once both finish."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from image_builders import Image, M, docker_archive, layer_tar

from portcullis.collect.image import ImageOptions, Limits, analyse_image
from portcullis.collect.image.layer_cache import INDEX_DIR, LayerCache, entries, evict, remove_entries, usage

DAY = 86400.0


def _image(tag: str) -> Image:
    base = layer_tar(M("etc/", kind="dir", mode=0o755), M("etc/os-release", f"ID={tag}\n".encode() * 200))
    app = layer_tar(M("app/", kind="dir", mode=0o755), M("app/data", tag.encode() * 5000))
    return Image(layers=[base, app], created_by=["ADD rootfs /", "COPY app /app"], config={"User": tag})


def _scan(archive: Path, root: Path) -> LayerCache:
    cache = LayerCache(root, Limits())
    analyse_image(f"docker-archive:{archive}", ImageOptions(cache=cache, limits=Limits()))
    return cache


def _age(paths: list[Path], seconds_ago: float) -> None:
    moment = time.time() - seconds_ago
    for path in paths:
        os.utime(path, (moment, moment))


def _listed(root: Path) -> dict[Path, float]:
    return {kept.path: kept.used for kept in entries(root / INDEX_DIR)}


def test_a_hit_marks_its_entry_used_and_the_least_recently_used_go_first(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    first, second = docker_archive(tmp_path / "a.tar", _image("a")), docker_archive(tmp_path / "b.tar", _image("b"))
    _scan(first, root)
    of_first = list(_listed(root))
    _scan(second, root)
    of_second = [path for path in _listed(root) if path not in of_first]
    assert len(of_first) == len(of_second) == 4  # two layers, the config, the whole image
    _age(of_first, 3 * DAY)
    _age(of_second, 2 * DAY)

    again = _scan(first, root)  # both layers from the cache (their entries touched), its config and facts kept again
    assert (again.stats.hits, again.stats.written) == (2, 0)
    now = time.time()
    used = [path for path, when in _listed(root).items() if now - when < 60]
    assert sorted(used) == sorted(of_first)

    sizes = {kept.path: kept.size for kept in entries(root / INDEX_DIR)}
    cap = sum(sizes[path] for path in used)
    files, size = evict(root, max_bytes=cap)
    assert (files, size) == (4, sum(sizes.values()) - cap)
    assert sorted(_listed(root)) == sorted(used)  # the second image's entries were older than the first's reused
    assert usage(root)[4] == cap


def test_older_than_removes_only_what_no_scan_used_for_that_long(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    _scan(docker_archive(tmp_path / "a.tar", _image("a")), root)
    _scan(docker_archive(tmp_path / "b.tar", _image("b")), root)
    listed = sorted(_listed(root))
    old = listed[:3]
    _age(old, 10 * DAY)
    sizes = {kept.path: kept.size for kept in entries(root / INDEX_DIR)}
    assert evict(root, older_than=7 * DAY) == (3, sum(sizes[path] for path in old))
    assert sorted(_listed(root)) == listed[3:]
    assert evict(root, older_than=7 * DAY) == (0, 0)


def test_an_entry_gone_between_listing_and_reading_is_a_miss(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    _scan(docker_archive(tmp_path / "a.tar", _image("a")), root)
    kept = entries(root / INDEX_DIR)
    layers = [item for item in kept if item.path.parent.name == "layers"]
    for item in layers:
        item.path.unlink()  # another scan's eviction got here first
    rest = [item for item in kept if item not in layers]
    assert remove_entries(kept) == (len(rest), sum(item.size for item in rest))
    cache = LayerCache(root, Limits())
    assert cache.layer("sha256:" + layers[0].path.name) is None
    assert (cache.stats.misses, cache.stats.rejected) == (1, [])


def _cli(*args: str, cache: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PORTCULLIS_CACHE_DIR": str(cache)}
    return subprocess.Popen(
        [sys.executable, "-m", "portcullis", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_scans_under_a_tiny_cap_both_finish_and_info_shows_the_cap(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    archives = [docker_archive(tmp_path / f"{tag}.tar", _image(tag)) for tag in ("a", "b")]
    scans = [
        _cli(
            "image",
            f"docker-archive:{a}",
            "--no-vulns",
            "--no-store",
            "-f",
            "json",
            "--cache-max-size",
            "3k",
            cache=cache,
        )
        for a in archives
    ]
    said = []
    for scan in scans:
        out, err = scan.communicate(timeout=120)
        assert scan.returncode == 0, err
        assert "Traceback" not in err and json.loads(out)["subject"]
        said.append(err)
    assert any("least recently used entries" in err for err in said)  # each image's entries alone are ~2.5 KiB
    assert usage(cache)[4] <= 3 * 1024

    env = {**os.environ, "PORTCULLIS_CACHE_DIR": str(cache), "PORTCULLIS_CACHE_MAX_SIZE": "1GiB"}
    info = subprocess.run(
        [sys.executable, "-m", "portcullis", "cache", "info"], env=env, capture_output=True, text=True, timeout=60
    )
    _, layers, configs, images, size = usage(cache)
    assert info.stdout.strip() == (
        f"{cache}: {layers + configs + images} entries ({layers} layers, {configs} image configs, {images} whole "
        f"images), {size / 1e6:.1f} MB, cap 1 GiB"
    )
