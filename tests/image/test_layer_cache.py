"""The layer cache: a layer read once is never read again, and nothing in the cache is trusted blindly.

Images are built in the test (image_builders); "never read again" is proved by deleting the layer blobs after the
first scan: a second scan that still opened them would fail.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from image_builders import Image, M, OciLayout, docker_archive, layer_tar

from portcullis.collect.image import ImageError, ImageOptions, Limits, analyse_image
from portcullis.collect.image.layer_cache import INDEX_DIR, MAGIC, CacheUnusable, LayerCache, clean, usage
from portcullis.model.facts import ImageFacts

DPKG_STATUS = b"""Package: openssl
Status: install ok installed
Version: 3.0.11-1~deb12u2
Architecture: amd64

"""
NOBODY = 65534


def _image() -> Image:
    base = layer_tar(
        M("etc/", kind="dir", mode=0o755),
        M("etc/os-release", b'ID=debian\nVERSION_ID="12"\n'),
        M("var/lib/dpkg/status", DPKG_STATUS),
        M("bin/", kind="dir", mode=0o755),
        M("bin/sh", b"#!shell", mode=0o755),
        M("usr/bin/su", b"su", mode=0o4755),
    )
    app = layer_tar(
        M("app/", kind="dir", mode=0o755),
        M("app/.env", b"TOKEN=x"),
        M("root/id_rsa", b"-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n"),
        M("app/link", kind="symlink", link="../etc/os-release"),
    )
    return Image(layers=[base, app], created_by=["ADD rootfs /", "COPY app /app"], config={"User": "0"})


def _layout(tmp_path: Path, image: Image) -> Path:
    layout = OciLayout()
    layout.add(image)
    return layout.write_dir(tmp_path / "layout")


def _drop_layer_blobs(root: Path, image: Image) -> None:
    index = json.loads((root / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((root / "blobs/sha256" / manifest_digest).read_text())
    for layer in manifest["layers"]:
        (root / "blobs/sha256" / layer["digest"].split(":")[1]).unlink()


def _read(reference: str, cache: LayerCache | None, limits: Limits | None = None) -> ImageFacts:
    return analyse_image(reference, ImageOptions(cache=cache, limits=limits or Limits()))


def _comparable(facts: ImageFacts) -> str:
    return facts.model_dump_json()


def _entries(cache_root: Path) -> list[Path]:
    return sorted((cache_root / INDEX_DIR / "layers").iterdir())


def test_second_scan_opens_no_layer_and_yields_the_same_facts(tmp_path: Path) -> None:
    image = _image()
    root = _layout(tmp_path, image)
    cache = LayerCache(tmp_path / "cache", Limits())
    first = _read(f"oci:{root}", cache)
    assert (cache.stats.hits, cache.stats.written) == (0, 2)
    _drop_layer_blobs(root, image)
    with pytest.raises(ImageError, match="missing"):
        _read(f"oci:{root}", None)  # without the cache the layers really are gone
    again = LayerCache(tmp_path / "cache", Limits())  # a new process: nothing remembered in memory
    second = _read(f"oci:{root}", again)
    assert again.stats.images == 1 and again.stats.written == 0  # the whole image, without looking at a layer
    assert _comparable(second) == _comparable(first)
    for kept in (tmp_path / "cache" / INDEX_DIR / "images").iterdir():
        kept.write_bytes(kept.read_bytes()[:-3] + b"xyz")  # corrupt: the image is put together from its layers
    rebuilt = LayerCache(tmp_path / "cache", Limits())
    third = _read(f"oci:{root}", rebuilt)
    assert (rebuilt.stats.images, rebuilt.stats.hits) == (0, 2)
    assert rebuilt.stats.rejected and "checksum mismatch" in rebuilt.stats.rejected[0]
    assert _comparable(third) == _comparable(first)
    assert first.content is not None and {s.detail for s in first.content.secrets} == {"dotenv-file", "private-key"}
    assert [p.name for p in first.content.packages] == ["openssl"]


def test_a_layer_shared_by_two_sources_is_read_once(tmp_path: Path) -> None:
    image = _image()
    other = Image(layers=[image.layers[0]], created_by=["ADD rootfs /"])
    cache = LayerCache(tmp_path / "cache", Limits())
    _read(f"docker-archive:{docker_archive(tmp_path / 'a.tar', image)}", cache)
    assert cache.stats.written == 2
    _read(f"oci:{_layout(tmp_path, other)}", cache)
    assert (cache.stats.hits, cache.stats.written) == (1, 2)


def test_corrupt_entry_is_ignored_and_rebuilt(tmp_path: Path) -> None:
    image = _image()
    archive = docker_archive(tmp_path / "img.tar", image)
    expected = _comparable(_read(f"docker-archive:{archive}", LayerCache(tmp_path / "cache", Limits())))
    for entry in _entries(tmp_path / "cache"):
        data = bytearray(entry.read_bytes())
        data[-5] ^= 0xFF
        entry.write_bytes(bytes(data))
    cache = LayerCache(tmp_path / "cache", Limits())
    assert _comparable(_read(f"docker-archive:{archive}", cache)) == expected
    assert cache.stats.hits == 0 and cache.stats.written == 2
    assert all("checksum mismatch" in why for why in cache.stats.rejected) and len(cache.stats.rejected) == 2
    healed = LayerCache(tmp_path / "cache", Limits())
    _read(f"docker-archive:{archive}", healed)
    assert healed.stats.hits == 2 and not healed.stats.rejected


def _forge(entry: Path, payload: dict[str, Any]) -> None:
    """Rewrite an entry with a valid checksum around `payload`, keeping its header's name and key."""
    data = entry.read_bytes()
    header = json.loads(data[len(MAGIC) :].split(b"\n", 1)[0])
    body = zlib.compress(json.dumps(payload).encode())
    header["sha256"] = hashlib.sha256(body).hexdigest()
    entry.write_bytes(MAGIC + json.dumps(header).encode() + b"\n" + body)


def _invented_secret(entry: Path) -> dict[str, Any]:
    body = entry.read_bytes()[len(MAGIC) :].split(b"\n", 1)[1]
    payload: dict[str, Any] = json.loads(zlib.decompress(body))
    payload["entries"] = [*payload["entries"], ["planted/.env", "file", 0o644, 7, "", "dotenv-file"]]
    return payload


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_entry_written_by_another_user_is_not_read(tmp_path: Path) -> None:
    image = _image()
    archive = docker_archive(tmp_path / "img.tar", image)
    _read(f"docker-archive:{archive}", LayerCache(tmp_path / "cache", Limits()))
    for entry in _entries(tmp_path / "cache"):
        _forge(entry, _invented_secret(entry))  # intact by its checksum, but not ours
        os.chown(entry, NOBODY, NOBODY)
    cache = LayerCache(tmp_path / "cache", Limits())
    facts = _read(f"docker-archive:{archive}", cache)
    assert facts.content is not None and all(s.path != "/planted/.env" for s in facts.content.secrets)
    assert cache.stats.hits == 0 and all(f"uid {NOBODY}" in why for why in cache.stats.rejected)
    assert all(entry.stat().st_uid == os.geteuid() for entry in _entries(tmp_path / "cache"))  # replaced


def test_entry_with_the_wrong_shape_is_ignored(tmp_path: Path) -> None:
    archive = docker_archive(tmp_path / "img.tar", _image())
    expected = _comparable(_read(f"docker-archive:{archive}", LayerCache(tmp_path / "cache", Limits())))
    for entry in _entries(tmp_path / "cache"):
        _forge(entry, {"entries": [["too", "short"]], "whiteouts": 5})
    cache = LayerCache(tmp_path / "cache", Limits())
    assert _comparable(_read(f"docker-archive:{archive}", cache)) == expected
    assert len(cache.stats.rejected) == 2 and all("malformed payload" in why for why in cache.stats.rejected)


def test_entry_for_other_content_limits_is_not_reused(tmp_path: Path) -> None:
    archive = docker_archive(tmp_path / "img.tar", _image())
    _read(f"docker-archive:{archive}", LayerCache(tmp_path / "cache", Limits()))
    smaller = Limits(content_read_bytes=16)  # reads less of each file: a different scan
    cache = LayerCache(tmp_path / "cache", smaller)
    _read(f"docker-archive:{archive}", cache, smaller)
    assert cache.stats.hits == 0 and cache.stats.written == 2 and not cache.stats.rejected


def test_cached_layers_still_meet_the_limits(tmp_path: Path) -> None:
    archive = docker_archive(tmp_path / "img.tar", _image())
    _read(f"docker-archive:{archive}", LayerCache(tmp_path / "cache", Limits()))
    tight = Limits(max_entries=3)
    with pytest.raises(ImageError, match="more than 3 entries"):
        _read(f"docker-archive:{archive}", LayerCache(tmp_path / "cache", tight), tight)


def test_the_directory_is_made_private_and_a_foreign_one_refused(tmp_path: Path) -> None:
    root = tmp_path / "open"
    root.mkdir(mode=0o755)
    root.chmod(0o777)
    LayerCache(root, Limits())
    for directory in (root, root / INDEX_DIR, root / INDEX_DIR / "layers", root / INDEX_DIR / "configs"):
        assert directory.stat().st_mode & 0o777 == 0o700
    link = tmp_path / "link"
    link.symlink_to(root)
    with pytest.raises(CacheUnusable, match="not a directory"):
        LayerCache(link, Limits())
    if os.geteuid() == 0:
        foreign = tmp_path / "foreign"
        foreign.mkdir(mode=0o700)
        os.chown(foreign, NOBODY, NOBODY)
        with pytest.raises(CacheUnusable, match=f"uid {NOBODY}"):
            LayerCache(foreign, Limits())


def test_clean_removes_the_index_and_leaves_the_database(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    _read(f"docker-archive:{docker_archive(tmp_path / 'img.tar', _image())}", LayerCache(root, Limits()))
    (root / "vuln.db").write_bytes(b"database")
    assert usage(root)[1:4] == (2, 1, 1)
    files, size = clean(root)
    assert files == 4 and size > 0
    assert not (root / INDEX_DIR).exists() and (root / "vuln.db").read_bytes() == b"database"
    assert clean(root) == (0, 0)


def _cli(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PORTCULLIS_CACHE_DIR": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "portcullis", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_no_cache_and_cache_commands(tmp_path: Path) -> None:
    archive = docker_archive(tmp_path / "img.tar", _image())
    cache = tmp_path / "cache"
    scan = ["image", f"docker-archive:{archive}", "--no-vulns", "--no-store", "-f", "json"]
    off = _cli(*scan, "--no-cache", cache=cache)
    assert off.returncode == 0, off.stderr
    assert not (cache / INDEX_DIR).exists()
    first = _cli(*scan, cache=cache)
    second = _cli(*scan, cache=cache)
    assert "layer cache: 0 hit, 2 missed, 2 written" in first.stderr
    assert "layer cache: 2 hit, 0 missed, 0 written" in second.stderr
    assert json.loads(first.stdout)["findings"] == json.loads(second.stdout)["findings"]
    assert json.loads(off.stdout)["findings"] == json.loads(first.stdout)["findings"]
    info = _cli("cache", "info", cache=cache)
    assert info.returncode == 0 and "2 layers, 1 image configs, 1 whole images" in info.stdout
    cleaned = _cli("cache", "clean", cache=cache)
    assert cleaned.returncode == 0 and "removed 4 cache entries" in cleaned.stderr
    assert not (cache / INDEX_DIR).exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_cli_scans_on_without_a_usable_cache(tmp_path: Path) -> None:
    archive = docker_archive(tmp_path / "img.tar", _image())
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    os.chown(foreign, NOBODY, NOBODY)
    result = _cli("image", f"docker-archive:{archive}", "--no-vulns", "--no-store", "-f", "json", cache=foreign)
    assert result.returncode == 0, result.stderr
    assert f"the layer cache is not used: {foreign} belongs to uid {NOBODY}" in result.stderr
    assert json.loads(result.stdout)["findings"]
    shutil.rmtree(foreign)


def test_a_file_named_as_the_cache_is_one_clear_line(tmp_path: Path) -> None:
    file = tmp_path / "not-a-dir"
    file.write_text("x")
    for command, said in (("clean", "cannot clean"), ("info", "cannot read")):
        result = _cli("cache", command, "--cache-dir", str(file), cache=tmp_path / "unused")
        assert result.returncode == 1
        assert result.stderr.splitlines() == [f"portcullis: error: {said} the layer cache: {file} is not a directory"]
    archive = docker_archive(tmp_path / "img.tar", _image())
    scan = _cli("image", f"docker-archive:{archive}", "--no-vulns", "--no-store", "-f", "json", cache=file)
    assert scan.returncode == 0 and json.loads(scan.stdout)["findings"]
    assert f"the layer cache is not used: {file} is not a directory" in scan.stderr
