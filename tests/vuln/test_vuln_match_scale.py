"""Matching many images in one process (`image --all`): the process keeps the open database and memoises verdicts
and findings across images, and must still give every image exactly the findings a fresh process gives it.

The fleet (tests/support/fleet.py) is realistic: families of images share the real vulnlab Debian bases and a layer of
application packages drawn from the real advisory data; the database is built from ../shared/vulndata. Added to it:
an image whose release is unknown (its OS packages cannot be matched), versions that do not parse, the same package
twice in one image, and shared packages that sit in another layer and file in another image.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from portcullis.model.facts import ImageContentFacts, ImageFacts
from portcullis.model.layers import LayerRef
from portcullis.model.vuln import Ecosystem, Package
from portcullis.pipelines.vulnerabilities import VulnOptions, check_database, vulnerability_findings
from portcullis.vuln.db import Advisory, AffectedRow, SourceInfo, now_iso, rebuild
from portcullis.vuln.scanner import forget_shared
from support.fleet import FleetImage, build_fleet

REFERENCE = Path(__file__).with_name("fleet_reference.py")


def _variant(image: FleetImage, name: str, content: ImageContentFacts) -> ImageFacts:
    return image.facts.model_copy(update={"repo_tags": [name], "content": content})


def _edge_images(fleet: list[FleetImage]) -> list[ImageFacts]:
    first = fleet[0].facts.content
    assert first is not None
    python = [p for p in first.packages if p.ecosystem is Ecosystem.PYPI]
    moved = LayerRef(index=7, diff_id="sha256:" + "7" * 64, created_by="COPY app /srv")
    elsewhere = [p.model_copy(update={"layer": moved, "location": "/srv/" + p.location}) for p in python]
    bad = [
        Package(ecosystem=Ecosystem.PYPI, name=p.name, version="not a version!", purl=f"pkg:pypi/{p.name}@bad")
        for p in python[:5]
    ]
    return [
        _variant(fleet[0], "edge/no-release:1", first.model_copy(update={"os_release": None})),
        _variant(fleet[0], "edge/moved:1", first.model_copy(update={"packages": [*first.packages[:50], *elsewhere]})),
        _variant(fleet[0], "edge/bad-versions:1", first.model_copy(update={"packages": [*bad, *python[:20], *bad]})),
        _variant(fleet[0], "edge/twice:1", first.model_copy(update={"packages": [*first.packages, *python]})),
    ]


def _dumps(image: ImageFacts, options: VulnOptions) -> list[dict[str, Any]]:
    return [f.model_dump(mode="json") for f in vulnerability_findings(image, options).findings]


@pytest.fixture(scope="module")
def images() -> list[ImageFacts]:
    fleet = build_fleet(images=8, per_image=300)
    return [image.facts for image in fleet] + _edge_images(fleet)


def test_every_image_gets_what_a_fresh_process_gives_it(
    images: list[ImageFacts], full_db_path: Path, tmp_path: Path
) -> None:
    facts = []
    for n, image in enumerate(images):
        facts.append(tmp_path / f"image-{n}.json")
        facts[-1].write_text(image.model_dump_json(by_alias=True), encoding="utf-8")
    child = subprocess.run(
        [sys.executable, str(REFERENCE), str(full_db_path), *map(str, facts)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    expected = json.loads(child.stdout)
    options = VulnOptions(db_path=full_db_path, max_age_days=0)
    check_database(options)
    forget_shared()
    try:
        forward = [_dumps(image, options) for image in images]  # each image after the ones before it
        backward = [_dumps(image, options) for image in reversed(images)][::-1]  # every package memoised already
    finally:
        forget_shared()
    assert forward == expected
    assert backward == expected
    # the fleet is worth the comparison: shared packages, real matches, and every kind of problem
    packages = [p for image in images for p in (image.content.packages if image.content else [])]
    assert len({(p.ecosystem, p.name, p.version) for p in packages}) < len(packages) / 2
    rules = {finding["rule_id"] for image in expected for finding in image}
    assert {"DKR-VULN", "DKR-VULN-UNDECIDED"} <= rules
    problems = [f["message"] for image in expected for f in image if f["rule_id"] == "DKR-VULN-UNDECIDED"]
    assert any("release is unknown" in p for p in problems) and any("does not parse" in p for p in problems)
    moved = [f for f in expected[-3] if f["evidence"]["layer"] and f["evidence"]["layer"]["index"] == 7]
    assert moved and all(f["location"]["path"].startswith("/srv/") for f in moved)


def _one_advisory_db(path: Path, ids: list[str]) -> None:
    ranges = [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}]
    with rebuild(path) as db:
        db.replace_source(
            SourceInfo("osv:PyPI", "test", now_iso()),
            [Advisory(i, affected=[AffectedRow("pypi", "", "demo", {"k": "osv", "ranges": ranges})]) for i in ids],
        )


def test_a_replaced_database_is_read_afresh(tmp_path: Path) -> None:
    """`db update` swaps a new file in at the same path: the next image is matched against it, not the memo."""
    db = tmp_path / "vuln.db"
    _one_advisory_db(db, ["PYSEC-1"])
    demo = Package(ecosystem=Ecosystem.PYPI, name="demo", version="1.0", purl="pkg:pypi/demo@1.0")
    content = ImageContentFacts(source="engine", packages=[demo])
    image = ImageFacts.model_validate({"Id": "sha256:" + "1" * 64, "RepoTags": ["demo:1"]})
    image = image.model_copy(update={"content": content})
    options = VulnOptions(db_path=db, max_age_days=0)
    try:
        assert [f["title"] for f in _dumps(image, options)] == ["PYSEC-1 in demo 1.0"]
        _one_advisory_db(db, ["PYSEC-1", "PYSEC-2"])
        assert [f["title"] for f in _dumps(image, options)] == ["PYSEC-1 in demo 1.0", "PYSEC-2 in demo 1.0"]
    finally:
        forget_shared()
