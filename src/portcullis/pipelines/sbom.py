"""The SBOM flow: an image's package inventory as CycloneDX 1.6 (with its vulnerabilities) or SPDX 2.3."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from portcullis.model.facts import ImageFacts
from portcullis.pipelines.errors import SubjectError
from portcullis.pipelines.image import ImageSource, read_image
from portcullis.pipelines.vulnerabilities import VulnOptions, vulnerability_findings


class SbomFormat(StrEnum):
    cyclonedx = "cyclonedx"
    spdx = "spdx"


def sbom_subject(image: ImageFacts, reference: str) -> str:
    """What the document is about: the image's name and digest (`repo:tag@sha256:…`), not where it was read from.

    A registry digest (RepoDigests) names the manifest users pull; without one, the image id (the config's digest)
    still pins the content. Only an image with no name at all falls back to the reference as given.
    """
    repo_digest = image.repo_digests[0] if image.repo_digests else ""
    digest = repo_digest.partition("@")[2] or image.id
    if image.repo_tags:
        name = image.repo_tags[0]
    elif repo_digest:
        name = repo_digest.partition("@")[0]
    else:
        name = reference
    return f"{name}@{digest}" if digest else name


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
    subject = sbom_subject(image, source.reference)
    if sbom_format is SbomFormat.spdx:
        return render_spdx(content.packages, subject=subject, os_release=content.os_release).rstrip("\n")
    if not vulns:
        return render_cyclonedx(content.packages, [], subject=subject, os_release=content.os_release)
    result = vulnerability_findings(image, VulnOptions(db_path=db_path))
    for problem in result.problems:
        log(f"note: {problem.fact}: {problem.reason}")
    return render_cyclonedx(content.packages, result.findings, subject=subject, os_release=content.os_release)
