"""`portcullis image REF`: read an image from any source once and judge it with the image rules."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from portcullis.cli.cache import CacheDirOption, CacheMaxSizeOption
from portcullis.cli.common import (
    DEFAULT_IGNORE_FILE,
    EXIT_FINDINGS,
    BaselineOption,
    ExitCodeOption,
    FailOn,
    IgnoreFileOption,
    NoStoreOption,
    OutputFormat,
    SeverityOption,
    ShowAllOption,
    StoreOption,
    StrictOption,
    TLSCACertOption,
    TLSCertOption,
    TLSKeyOption,
    TLSVerifyOption,
    die,
    emit,
    history_options,
    listed,
    parse_severities,
    progress,
    say,
    use_engine_tls,
)
from portcullis.model.facts import EfficiencyLimits
from portcullis.pipelines.cache import DEFAULT_CACHE_MAX_BYTES
from portcullis.pipelines.errors import PipelineError
from portcullis.pipelines.image import ImageSource, engine_image_names, image_report, images_report
from portcullis.pipelines.trust import load_trust_policy
from portcullis.pipelines.vulnerabilities import DEFAULT_MAX_AGE_DAYS, VULN_FACT, VulnOptions

USERNAME_ENV = "PORTCULLIS_REGISTRY_USERNAME"
PASSWORD_ENV = "PORTCULLIS_REGISTRY_PASSWORD"


def registry_credentials(username: str | None, password_stdin: bool) -> tuple[str, str] | None:
    """User and password from the options, stdin or the environment; None when no user is named."""
    username = username or os.environ.get(USERNAME_ENV)
    if password_stdin:
        if not username:
            die("--password-stdin needs --username (or PORTCULLIS_REGISTRY_USERNAME)")
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = os.environ.get(PASSWORD_ENV, "")
    if username and not password:
        die(f"--username needs a password: pipe it to --password-stdin or set {PASSWORD_ENV}")
    return (username, password) if username else None


def deny_patterns(given: list[str] | None) -> list[str]:
    """--license-deny values, split on commas as other repeatable options are; an empty value is an error."""
    patterns = listed(given)
    if given and not patterns:
        die("--license-deny needs an SPDX licence id or pattern, e.g. GPL-3.0-only or 'AGPL-*'")
    return patterns


def image(
    references: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="REF...",
            help="engine:NAME, docker-archive:FILE, oci:DIR[:NAME], oci-archive:FILE[:NAME], dir:ROOT, "
            "registry:HOST/REPO[:TAG|@DIGEST], or a bare path or name (detected); several are scanned together",
            show_default=False,
        ),
    ] = None,
    all_images: Annotated[
        bool, typer.Option("--all", help="scan every image on the engine (--host), each shared layer read once")
    ] = False,
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f", help="report format")] = OutputFormat.text,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the report here, not stdout")] = None,
    show_all: ShowAllOption = False,
    fail_on: Annotated[
        FailOn | None, typer.Option("--fail-on", help="exit 2 when a failure at or above this severity exists")
    ] = None,
    platform: Annotated[
        str | None,
        typer.Option("--platform", help="os/arch or os/arch/variant in a multi-platform index (default: this host)"),
    ] = None,
    insecure_registry: Annotated[
        list[str] | None,
        typer.Option("--insecure-registry", help="HOST[:PORT] to reach over plain HTTP (repeatable)"),
    ] = None,
    username: Annotated[str | None, typer.Option("--username", "-u", help=f"registry user (or {USERNAME_ENV})")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help=f"read the registry password from stdin (or {PASSWORD_ENV})")
    ] = False,
    host: Annotated[str | None, typer.Option("--host", "-H", help="engine address for engine: images")] = None,
    tlsverify: TLSVerifyOption = False,
    tlscacert: TLSCACertOption = None,
    tlscert: TLSCertOption = None,
    tlskey: TLSKeyOption = None,
    select: Annotated[list[str] | None, typer.Option("--select", help="only these rule ids or prefixes")] = None,
    skip: Annotated[list[str] | None, typer.Option("--skip", help="leave out these rule ids or prefixes")] = None,
    max_bytes: Annotated[
        int | None, typer.Option("--max-bytes", min=1, help="refuse images larger than this uncompressed")
    ] = None,
    max_files: Annotated[int | None, typer.Option("--max-files", min=1, help="refuse images with more paths")] = None,
    no_vulns: Annotated[bool, typer.Option("--no-vulns", help="do not match packages against advisories")] = False,
    db: Annotated[Path | None, typer.Option("--db", help="vulnerability database (default: the user cache)")] = None,
    db_max_age: Annotated[
        float,
        typer.Option(
            "--db-max-age",
            min=0,
            help="days the database's oldest source may be old; older is an error under --fail-on (0: no limit)",
        ),
    ] = DEFAULT_MAX_AGE_DAYS,
    only_fixed: Annotated[
        bool,
        typer.Option(
            "--only-fixed", "--ignore-unfixed", help="only vulnerabilities with a fix (Trivy: --ignore-unfixed)"
        ),
    ] = False,
    severity: SeverityOption = None,
    vuln_ignore: Annotated[
        Path | None, typer.Option("--vuln-ignore", help="deprecated: its entries belong in the ignore file")
    ] = None,
    ignore_file: IgnoreFileOption = None,
    strict: StrictOption = False,
    vex: Annotated[
        list[str] | None, typer.Option("--vex", help="OpenVEX or CycloneDX VEX documents", metavar="FILE")
    ] = None,
    exit_code: ExitCodeOption = EXIT_FINDINGS,
    store: StoreOption = None,
    no_store: NoStoreOption = False,
    baseline: BaselineOption = None,
    cache_dir: CacheDirOption = None,
    cache_max_size: CacheMaxSizeOption = DEFAULT_CACHE_MAX_BYTES,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="read every layer, neither using nor filling the layer cache")
    ] = False,
    min_efficiency: Annotated[
        float,
        typer.Option(
            "--min-efficiency", min=0, max=1, help="DKR-IMG-010 fails under this efficiency (0-1, as dive's CI)"
        ),
    ] = EfficiencyLimits().min_efficiency,
    max_wasted: Annotated[
        int | None,
        typer.Option("--max-wasted", min=0, help="DKR-IMG-010 fails over this many wasted bytes (default: no limit)"),
    ] = None,
    license_deny: Annotated[
        list[str] | None,
        typer.Option(
            "--license-deny",
            metavar="EXPR",
            help="DKR-IMG-011 fails a package under this licence: an SPDX id or glob, e.g. 'GPL-3.0*' (repeatable)",
        ),
    ] = None,
    verify_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--verify-key",
            metavar="KEY.pub",
            help="CIS-4.12 verifies the image's cosign signatures with this public key (repeatable)",
        ),
    ] = None,
    trust_policy: Annotated[
        Path | None,
        typer.Option(
            "--trust-policy", metavar="FILE", help="YAML: repository patterns and the cosign keys trusted for them"
        ),
    ] = None,
) -> None:
    """Read an image once, layer by layer, and check it: CIS section 4 and the DKR-IMG rules.

    Examples: `portcullis image alpine:3.20`, `portcullis image docker-archive:app.tar -f json`,
    `portcullis image oci:./layout --platform linux/arm64`,
    `portcullis image registry:127.0.0.1:5000/app:1 --insecure-registry 127.0.0.1:5000 --fail-on high`,
    `portcullis image --all -f sarif -o images.sarif`,
    `portcullis image registry:reg.example/app:1 --verify-key cosign.pub --select CIS-4.12`.
    """
    names = list(references or [])  # as given: an empty one (an unset $IMAGE) is an error further down
    if all_images and names:
        die("--all scans every image on the engine: name no images with it")
    if not all_images and not names:
        die("name an image to scan (or --all for every image on the engine)")
    use_engine_tls(tlsverify, tlscacert, tlscert, tlskey)
    severities = parse_severities(severity)
    history = history_options(store, no_store, baseline)
    try:
        trust = load_trust_policy(trust_policy, verify_key or [])
    except PipelineError as exc:
        die(str(exc))
    source = ImageSource(
        names[0] if names else "",
        platform=platform,
        insecure_registries=listed(insecure_registry),
        credentials=registry_credentials(username, password_stdin),
        engine_host=host,
        max_bytes=max_bytes,
        max_files=max_files,
        cache=not no_cache,
        cache_dir=cache_dir,
        cache_max_bytes=cache_max_size,
        efficiency=EfficiencyLimits(min_efficiency=min_efficiency, max_wasted_bytes=max_wasted),
        license_deny=deny_patterns(license_deny),
        trust=trust,
    )
    vulns = VulnOptions(
        enabled=not no_vulns,
        db_path=db,
        only_fixed=only_fixed,
        severities=severities,
        vex_files=[Path(v) for v in listed(vex)],
        gated=fail_on not in (None, FailOn.none),
        max_age_days=db_max_age,
    )
    try:
        if all_images:
            progress("listing the engine's images…")
            names = engine_image_names(host)
            subject = f"every image on {host or 'the local engine'} ({len(names)})"
        else:
            subject = ", ".join(names)
        if len(names) == 1 and not all_images:
            progress(f"reading {names[0] or '(no reference)'} layer by layer…")
            report = image_report(source, listed(select), listed(skip), vulns, log=say)
        else:
            progress(f"reading {len(names)} images, each shared layer once…")
            report = images_report(source, names, subject, listed(select), listed(skip), vulns, log=say)
    except PipelineError as exc:
        die(str(exc))
    # Reached only without a gate (with one these were errors): the report is written, stderr says it is incomplete.
    for problem in report.problems:
        if problem.fact == VULN_FACT:
            say(f"portcullis: warning: {problem.reason}")
    if vuln_ignore is not None:
        say(f"portcullis: warning: --vuln-ignore is deprecated: move its entries to {DEFAULT_IGNORE_FILE}")
    raise typer.Exit(
        emit(
            report,
            output_format,
            output,
            fail_on,
            ignore_file=ignore_file,
            strict=strict,
            legacy_ignore_file=vuln_ignore,
            exit_code=exit_code,
            show_all=show_all,
            severities=severities,
            history=history,
        )
    )
