"""`portcullis image REF`: read an image from any source once and judge it with the image rules."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from portcullis import CIS_BENCHMARK_VERSION, __version__
from portcullis.checks.registry import IMAGE_RULE_MODULES, all_rules, select_rules
from portcullis.checks.runner import image_target, run_rules
from portcullis.cli.common import FailOn, OutputFormat, die, emit, say
from portcullis.collect import CollectionError
from portcullis.model.facts import EngineFacts, EngineInfo, EngineVersion, Facts, ImageFacts
from portcullis.model.findings import CollectionProblem, Finding, Report, Severity, Summary, TargetKind, ToolInfo

USERNAME_ENV = "PORTCULLIS_REGISTRY_USERNAME"
PASSWORD_ENV = "PORTCULLIS_REGISTRY_PASSWORD"


@dataclass
class VulnOptions:
    """How (and whether) the image's packages are matched against the vulnerability database."""

    enabled: bool = True
    db_path: Path | None = None
    only_fixed: bool = False
    severities: list[Severity] = field(default_factory=list)
    ignore_file: Path | None = None
    vex_files: list[Path] = field(default_factory=list)


def image_report(
    reference: str, image: ImageFacts, select: list[str], skip: list[str], vulns: VulnOptions | None = None
) -> Report:
    facts = Facts(
        collected_at=datetime.now(UTC).isoformat(timespec="seconds"),
        engine=EngineFacts(endpoint=reference, local=False, info=EngineInfo(), version=EngineVersion()),
        images=[image],
    )
    rules = [r for r in select_rules(all_rules(IMAGE_RULE_MODULES), select, skip) if r.scope is TargetKind.IMAGE]
    findings = run_rules(rules, facts)
    problems: list[CollectionProblem] = []
    if vulns is not None and vulns.enabled:
        findings += vulnerability_findings(image, vulns, problems)
    return Report(
        command="image",
        tool=ToolInfo(version=__version__, benchmark=f"CIS Docker Benchmark {CIS_BENCHMARK_VERSION}"),
        subject=reference,
        findings=findings,
        summary=Summary.of(findings),
        problems=problems,
    )


def vulnerability_findings(image: ImageFacts, options: VulnOptions, problems: list[CollectionProblem]) -> list[Finding]:
    """DKR-VULN findings for the image's packages; without a database, a note instead (never a silent pass)."""
    from portcullis.vuln.location import default_path

    content = image.content
    if content is None:
        return []
    for skipped in content.inventory_skipped:
        problems.append(CollectionProblem(fact="package inventory", reason=skipped))
    path = options.db_path or default_path()
    if options.db_path is None and not path.exists():
        problems.append(
            CollectionProblem(
                fact="vulnerabilities",
                reason=f"no vulnerability database at {path}: run `portcullis db update` or `db import`",
            )
        )
        return []
    from datetime import date

    from portcullis.vuln import scan
    from portcullis.vuln.db import DatabaseError, VulnDB
    from portcullis.vuln.filters import (
        FilterInputError,
        apply_ignores,
        apply_vex,
        load_ignore_rules,
        load_vex,
        only_fixed,
        with_severity,
    )

    try:
        db = VulnDB.open(path)
        try:
            found = scan(content.packages, db, content.os_release, target=image_target(image))
        finally:
            db.close()
        if options.only_fixed:
            found = only_fixed(found)
        if options.severities:
            found = with_severity(found, options.severities)
        if options.ignore_file is not None:
            rules = load_ignore_rules(options.ignore_file.read_text(encoding="utf-8"), str(options.ignore_file))
            found = apply_ignores(found, rules, date.today())
        for vex in options.vex_files:
            found = apply_vex(found, load_vex(vex.read_text(encoding="utf-8"), str(vex)))
    except (DatabaseError, FilterInputError) as exc:
        die(str(exc))
    except OSError as exc:
        die(f"cannot read {exc.filename}: {exc.strerror}")
    return found


def _credentials(username: str | None, password_stdin: bool) -> tuple[str, str] | None:
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


def load_image(
    reference: str,
    platform: str | None,
    insecure_registry: list[str] | None,
    username: str | None,
    password_stdin: bool,
    host: str | None,
    max_bytes: int | None = None,
    max_files: int | None = None,
) -> ImageFacts:
    """Read an image from any source once (shared by `image` and `sbom`); bad input ends in one line, exit 1."""
    from dataclasses import replace

    from portcullis.collect.image import Credentials, ImageError, ImageOptions, Limits, Platform, analyse_image

    try:
        limits = Limits()
        if max_bytes is not None:
            limits = replace(limits, max_total_bytes=max_bytes)
        if max_files is not None:
            limits = replace(limits, max_entries=max_files)
        creds = _credentials(username, password_stdin)
        options = ImageOptions(
            platform=Platform.parse(platform) if platform else None,
            insecure_registries=insecure_registry or [],
            credentials=Credentials(*creds) if creds else None,
            engine_host=host,
            limits=limits,
        )
        facts = analyse_image(reference, options)
    except (ImageError, CollectionError) as exc:
        die(str(exc))
    content = facts.content
    if content is not None:
        say(
            f"read {reference}: {len(content.layers)} layers, {content.file_count} paths, "
            f"{len(content.packages)} packages, {facts.size} bytes"
        )
    return facts


def image(
    reference: Annotated[
        str,
        typer.Argument(
            metavar="REF",
            help="engine:NAME, docker-archive:FILE, oci:DIR[:NAME], oci-archive:FILE[:NAME], dir:ROOT, "
            "registry:HOST/REPO[:TAG|@DIGEST], or a bare path or name (detected)",
        ),
    ],
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f", help="report format")] = OutputFormat.text,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the report here, not stdout")] = None,
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
    select: Annotated[list[str] | None, typer.Option("--select", help="only these rule ids or prefixes")] = None,
    skip: Annotated[list[str] | None, typer.Option("--skip", help="leave out these rule ids or prefixes")] = None,
    max_bytes: Annotated[
        int | None, typer.Option("--max-bytes", min=1, help="refuse images larger than this uncompressed")
    ] = None,
    max_files: Annotated[int | None, typer.Option("--max-files", min=1, help="refuse images with more paths")] = None,
    no_vulns: Annotated[bool, typer.Option("--no-vulns", help="do not match packages against advisories")] = False,
    db: Annotated[Path | None, typer.Option("--db", help="vulnerability database (default: the user cache)")] = None,
    only_fixed: Annotated[bool, typer.Option("--only-fixed", help="only vulnerabilities with a fix")] = False,
    severity: Annotated[
        list[Severity] | None, typer.Option("--severity", help="only vulnerabilities of these severities")
    ] = None,
    vuln_ignore: Annotated[
        Path | None, typer.Option("--vuln-ignore", help="YAML ignore rules for advisories (reason required)")
    ] = None,
    vex: Annotated[list[Path] | None, typer.Option("--vex", help="OpenVEX or CycloneDX VEX document")] = None,
) -> None:
    """Read an image once, layer by layer, and check it: CIS section 4 and the DKR-IMG rules.

    Examples: `portcullis image alpine:3.20`, `portcullis image docker-archive:app.tar -f json`,
    `portcullis image oci:./layout --platform linux/arm64`,
    `portcullis image registry:127.0.0.1:5000/app:1 --insecure-registry 127.0.0.1:5000 --fail-on high`.
    """
    facts = load_image(reference, platform, insecure_registry, username, password_stdin, host, max_bytes, max_files)
    vulns = VulnOptions(
        enabled=not no_vulns,
        db_path=db,
        only_fixed=only_fixed,
        severities=severity or [],
        ignore_file=vuln_ignore,
        vex_files=vex or [],
    )
    report = image_report(reference, facts, select or [], skip or [], vulns)
    raise typer.Exit(emit(report, output_format, output, fail_on))
