"""A many-engine audit's report: every format names each finding's engine, and SARIF keeps the engines' objects
apart (URIs and fingerprints), while a one-engine report renders as it always did."""

from __future__ import annotations

import hashlib
import json

from report_samples import WEB, finding, make_report

from portcullis.model.findings import Finding, Severity, Status
from portcullis.report import html, junit, sarif, text


def _on(engine: str | None) -> Finding:
    return finding("CIS-5.5", Status.FAIL, Severity.CRITICAL, WEB, "the container is privileged", engine=engine)


def test_every_format_names_the_engine() -> None:
    report = make_report([_on("prod-1"), _on("tcp://10.0.0.12:2376")])
    rendered = [text.render(report, 120, show_all=True, colour=False), junit.render(report), html.render(report)]
    for output in rendered:
        assert "prod-1" in output and "tcp://10.0.0.12:2376" in output
    results = json.loads(sarif.render(report))["runs"][0]["results"]
    assert [r["properties"]["engine"] for r in results] == ["prod-1", "tcp://10.0.0.12:2376"]
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results]
    assert uris == ["docker://prod-1/containers/web", "docker://10.0.0.12:2376/containers/web"]
    assert len({r["partialFingerprints"][sarif.FINGERPRINT_KEY] for r in results}) == 2


def test_one_engine_renders_as_before() -> None:
    report = make_report([_on(None)])
    assert "engine" not in text.render(report, 120, show_all=True, colour=False)
    result = json.loads(sarif.render(report))["runs"][0]["results"][0]
    assert "engine" not in result["properties"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "docker://localhost/containers/web"
    before = "\x1f".join([sarif.sarif_rule_id(_on(None)), "container", "web"])  # the fingerprint's parts until now
    assert result["partialFingerprints"][sarif.FINGERPRINT_KEY] == hashlib.sha256(before.encode()).hexdigest()
    assert "engine" not in junit.render(report)
