"""Many engine images in one `portcullis image`: on a private dockerd holding three images that share a base layer,
and on the main engine. Each shared layer is read once, a repeat scan reads none, and every image is judged as
when it is scanned alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from image_builders import Image, M, docker_archive, layer_tar

from portcullis.harden.trial_daemon import TrialDaemon, missing_requirement

pytestmark = pytest.mark.engine

APPS = ("portcullis-test/cache-app-a:1", "portcullis-test/cache-app-b:1", "portcullis-test/cache-app-c:1")
BASE = layer_tar(
    M("etc/", kind="dir", mode=0o755),
    M("etc/os-release", b'ID=debian\nVERSION_ID="12"\n'),
    M("var/lib/dpkg/status", b"Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13.dfsg-1\n\n"),
    M("usr/bin/passwd", b"passwd", mode=0o4755),
)


def _app(index: int) -> Image:
    own = layer_tar(M("app/", kind="dir", mode=0o755), M(f"app/main{index}.py", f"print({index})".encode()))
    extra = [layer_tar(M("app/.env", b"SECRET=1"))] if index == 0 else []
    return Image(
        layers=[BASE, own, *extra],
        created_by=["ADD base /", f"COPY main{index}.py /app/", *(["COPY .env /app/"] if extra else [])],
        config={"User": "app" if index else ""},
    )


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrialDaemon]:
    missing = missing_requirement()
    if missing:
        pytest.skip(missing)
    running = TrialDaemon({})
    try:
        running.start()
        folder = tmp_path_factory.mktemp("apps")
        for index, tag in enumerate(APPS):
            archive = docker_archive(folder / f"{index}.tar", _app(index), tags=[tag])
            subprocess.run(["docker", "-H", running.host, "load", "-q", "-i", str(archive)], check=True, timeout=120)
        yield running
    finally:
        running.stop()


def _image(*args: str, cache: Path, host: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["PORTCULLIS_CACHE_DIR"] = str(cache)
    where = ["-H", host] if host else []
    return subprocess.run(
        [sys.executable, "-m", "portcullis", "image", *args, *where, "--no-vulns", "--no-store", "-f", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _verdicts(findings: list[dict[str, Any]], image: str | None = None) -> list[tuple[str, str, str]]:
    return sorted(
        (f["target"]["name"], f["rule_id"], f["status"])
        for f in findings
        if image is None or f["target"]["name"] == image
    )


def test_all_reads_each_shared_layer_once_and_judges_each_image_as_alone(engine: TrialDaemon, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _image("--all", cache=cache, host=engine.host)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["subject"] == f"every image on {engine.host} (3)"
    # 3 images, 5 distinct layers (the base is shared), 7 layer references: each distinct layer read and kept once
    assert "layer cache: 0 hit, 0 missed, 5 written" in first.stderr
    for tag in APPS:
        alone = _image(tag, "--no-cache", cache=cache, host=engine.host)
        assert alone.returncode == 0, alone.stderr
        assert _verdicts(report["findings"], tag) == _verdicts(json.loads(alone.stdout)["findings"], tag)
        assert _verdicts(report["findings"], tag)  # the image has findings of its own in the report
    secrets = {f["target"]["name"] for f in report["findings"] if f["rule_id"] == "CIS-4.10" and f["status"] == "fail"}
    assert secrets == {APPS[0]}

    again = _image("--all", cache=cache, host=engine.host)
    assert again.returncode == 0, again.stderr
    # no export, not even a layer looked up: each image's facts are kept whole under its id
    assert "layer cache: 0 hit, 0 missed, 0 written; 3 whole images from the cache" in again.stderr
    assert _verdicts(json.loads(again.stdout)["findings"]) == _verdicts(report["findings"])


def test_an_unreadable_image_is_one_error_and_the_rest_complete(engine: TrialDaemon, tmp_path: Path) -> None:
    missing = "engine:portcullis-test/not-there:1"
    result = _image(f"engine:{APPS[1]}", missing, cache=tmp_path / "cache", host=engine.host)
    assert result.returncode == 0, result.stderr
    findings = json.loads(result.stdout)["findings"]
    [error] = [f for f in findings if f["status"] == "error"]
    assert error["rule_id"] == "DKR-IMAGE-UNREADABLE" and error["target"]["name"] == missing
    assert "has no image 'portcullis-test/not-there:1'" in error["message"]
    assert {f["target"]["name"] for f in findings} == {f"engine:{APPS[1]}", missing}
    gated = _image(f"engine:{APPS[1]}", missing, "--fail-on", "critical", cache=tmp_path / "cache", host=engine.host)
    assert gated.returncode == 1  # a gate cannot pass an image it could not read


def test_all_takes_no_names(tmp_path: Path) -> None:
    result = _image("--all", "alpine", cache=tmp_path / "cache")
    assert result.returncode == 1
    assert result.stderr.strip() == "portcullis: error: --all scans every image on the engine: name no images with it"


def test_several_main_engine_images_twice(tmp_path: Path) -> None:
    names = ["portcullis-test/busybox:1", "portcullis-test/hardened:1"]
    cache = tmp_path / "cache"
    first = _image(*names, cache=cache)
    assert first.returncode == 0, first.stderr
    second = _image(*names, cache=cache)
    assert second.returncode == 0, second.stderr
    assert " 0 written; 2 whole images from the cache" in second.stderr
    assert _verdicts(json.loads(first.stdout)["findings"]) == _verdicts(json.loads(second.stdout)["findings"])
    assert {f["target"]["name"] for f in json.loads(first.stdout)["findings"]} == set(names)
