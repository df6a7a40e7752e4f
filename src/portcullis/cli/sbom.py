"""`portcullis sbom REF`: the image's package inventory as CycloneDX 1.6 (with vulnerabilities) or SPDX 2.3."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from portcullis.cli.cache import CacheDirOption, CacheMaxSizeOption
from portcullis.cli.common import (
    TLSCACertOption,
    TLSCertOption,
    TLSKeyOption,
    TLSVerifyOption,
    die,
    listed,
    refuse_format_as_output,
    say,
    use_engine_tls,
)
from portcullis.cli.image import registry_credentials
from portcullis.pipelines.cache import DEFAULT_CACHE_MAX_BYTES
from portcullis.pipelines.errors import PipelineError
from portcullis.pipelines.image import ImageSource
from portcullis.pipelines.sbom import SbomFormat, sbom_document


class SbomFormatName(StrEnum):
    """What -f accepts: ours and syft's/Trivy's names for the same documents (both are JSON)."""

    cyclonedx = "cyclonedx"
    cyclonedx_json = "cyclonedx-json"
    spdx = "spdx"
    spdx_json = "spdx-json"

    @property
    def document(self) -> SbomFormat:
        return SbomFormat(self.value.removesuffix("-json"))


def sbom(
    reference: Annotated[str, typer.Argument(metavar="REF", help="an image, as `portcullis image` takes it")],
    output_format: Annotated[
        SbomFormatName,
        typer.Option("--format", "-f", case_sensitive=False, help="SBOM format (JSON either way)"),
    ] = SbomFormatName.cyclonedx,
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
    tlsverify: TLSVerifyOption = False,
    tlscacert: TLSCACertOption = None,
    tlscert: TLSCertOption = None,
    tlskey: TLSKeyOption = None,
    cache_dir: CacheDirOption = None,
    cache_max_size: CacheMaxSizeOption = DEFAULT_CACHE_MAX_BYTES,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="read every layer, neither using nor filling the layer cache")
    ] = False,
) -> None:
    """Write a software bill of materials: every package, its purl and the layer that introduced it.

    Examples: `portcullis sbom app:1 -o app.cdx.json`, `portcullis sbom docker-archive:app.tar -f spdx-json`.
    """
    use_engine_tls(tlsverify, tlscacert, tlscert, tlskey)
    refuse_format_as_output(output)  # before reading the image: `-o cyclonedx-json` is syft's spelling of -f
    source = ImageSource(
        reference,
        platform=platform,
        insecure_registries=listed(insecure_registry),
        credentials=registry_credentials(username, password_stdin),
        engine_host=host,
        cache=not no_cache,
        cache_dir=cache_dir,
        cache_max_bytes=cache_max_size,
    )
    try:
        text = sbom_document(source, output_format.document, vulns=vulns, db_path=db, log=say)
    except PipelineError as exc:
        die(str(exc))
    if output is None:
        typer.echo(text)
        return
    try:
        output.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        die(f"cannot write {output}: {exc.strerror}")
    say(f"SBOM written to {output}")
