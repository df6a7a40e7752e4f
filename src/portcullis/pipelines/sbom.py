"""The SBOM flow: an image's package inventory as CycloneDX 1.6 (with its vulnerabilities) or SPDX 2.3."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from portcullis.pipelines.errors import SubjectError
from portcullis.pipelines.image import ImageSource, read_image
from portcullis.pipelines.vulnerabilities import VulnOptions, vulnerability_findings


class SbomFormat(StrEnum):
    cyclonedx = "cyclonedx"
    spdx = "spdx"


def sbom_document(
    source: ImageSource,
    sbom_format: SbomFormat,
    *,
    vulns: bool,
    db_path: Path | None,
    log: Callable[[str], None],
) -> str:
    """The SBOM text, without a final newline; `log` hears the read line and a note per unjudged fact."""
    from portcullis.report.cyclonedx import render_cyclonedx
    from portcullis.report.spdx import render_spdx

    image = read_image(source, log)
    content = image.content
    if content is None:
        raise SubjectError(f"{source.reference}: the image content could not be read")
    if sbom_format is SbomFormat.spdx:
        return render_spdx(content.packages, subject=source.reference, os_release=content.os_release).rstrip("\n")
    if not vulns:
        return render_cyclonedx(content.packages, [], subject=source.reference, os_release=content.os_release)
    result = vulnerability_findings(image, VulnOptions(db_path=db_path))
    for problem in result.problems:
        log(f"note: {problem.fact}: {problem.reason}")
    return render_cyclonedx(content.packages, result.findings, subject=source.reference, os_release=content.os_release)
