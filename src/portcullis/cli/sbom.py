"""`portcullis sbom REF`: the image's package inventory as CycloneDX 1.6 (with vulnerabilities) or SPDX 2.3."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from portcullis.cli.common import die, say
from portcullis.cli.image import VulnOptions, load_image, vulnerability_findings
from portcullis.model.findings import CollectionProblem


class SbomFormat(StrEnum):
    cyclonedx = "cyclonedx"
    spdx = "spdx"


def sbom(
    reference: Annotated[str, typer.Argument(metavar="REF", help="an image, as `portcullis image` takes it")],
    output_format: Annotated[SbomFormat, typer.Option("--format", "-f", help="SBOM format")] = SbomFormat.cyclonedx,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the SBOM here, not stdout")] = None,
    vulns: Annotated[
        bool, typer.Option("--vulns/--no-vulns", help="CycloneDX: add the vulnerabilities found (needs a database)")
    ] = True,
    db: Annotated[Path | None, typer.Option("--db", help="vulnerability database (default: the user cache)")] = None,
    platform: Annotated[str | None, typer.Option("--platform", help="os/arch in a multi-platform index")] = None,
    insecure_registry: Annotated[
        list[str] | None, typer.Option("--insecure-registry", help="HOST[:PORT] reached over plain HTTP")
    ] = None,
    username: Annotated[str | None, typer.Option("--username", "-u", help="registry user")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the registry password")] = False,
    host: Annotated[str | None, typer.Option("--host", "-H", help="engine address for engine: images")] = None,
) -> None:
    """Write a software bill of materials: every package, its purl and the layer that introduced it.

    Examples: `portcullis sbom app:1 -o app.cdx.json`, `portcullis sbom docker-archive:app.tar -f spdx`.
    """
    from portcullis.report.cyclonedx import render_cyclonedx
    from portcullis.report.spdx import render_spdx

    image = load_image(reference, platform, insecure_registry, username, password_stdin, host)
    content = image.content
    if content is None:
        die(f"{reference}: the image content could not be read")
    if output_format is SbomFormat.spdx:
        text = render_spdx(content.packages, subject=reference, os_release=content.os_release).rstrip("\n")
    else:
        problems: list[CollectionProblem] = []
        findings = vulnerability_findings(image, VulnOptions(db_path=db), problems) if vulns else []
        for problem in problems:
            say(f"note: {problem.fact}: {problem.reason}")
        text = render_cyclonedx(content.packages, findings, subject=reference, os_release=content.os_release)
    if output is None:
        typer.echo(text)
        return
    try:
        output.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        die(f"cannot write {output}: {exc.strerror}")
    say(f"SBOM written to {output}")
