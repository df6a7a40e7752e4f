"""The image flow: read an image from any source once, judge it with the image rules, match its packages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from portcullis import CIS_BENCHMARK_VERSION, __version__
from portcullis.checks.registry import IMAGE_RULE_MODULES, Rule, UnknownSelector, all_rules, select_rules
from portcullis.checks.runner import run_image_rules
from portcullis.model.facts import EfficiencyLimits, ImageFacts
from portcullis.model.findings import (
    CollectionProblem,
    DatabaseInfo,
    Finding,
    Report,
    Severity,
    Status,
    Summary,
    Target,
    TargetKind,
    ToolInfo,
)
from portcullis.pipelines.cache import DEFAULT_CACHE_MAX_BYTES
from portcullis.pipelines.errors import SubjectError, UsageError
from portcullis.pipelines.trust import TrustPolicy, attach_signatures
from portcullis.pipelines.vulnerabilities import (
    DatabaseCheck,
    VulnOptions,
    check_database,
    refreshed_eol_tables,
    vulnerability_findings,
)

if TYPE_CHECKING:
    from portcullis.collect.image import ImageOptions

UNREADABLE_RULE = "DKR-IMAGE-UNREADABLE"


@dataclass(frozen=True)
class ImageSource:
    """Where an image is and how to read it: `reference` as `portcullis image` takes it, plus its options."""

    reference: str
    platform: str | None = None
    insecure_registries: Sequence[str] = ()
    credentials: tuple[str, str] | None = field(default=None, repr=False)  # registry user and password
    engine_host: str | None = None
    max_bytes: int | None = None
    max_files: int | None = None
    cache: bool = True  # reuse and keep layer scans in the layer cache
    cache_dir: Path | None = None  # where the cache lives (default: the user's cache directory)
    cache_max_bytes: int = DEFAULT_CACHE_MAX_BYTES  # after the scan, least recently used entries go over this; 0: none
    efficiency: EfficiencyLimits = field(default_factory=EfficiencyLimits)  # DKR-IMG-010's thresholds
    license_deny: Sequence[str] = ()  # DKR-IMG-011's denied licences (SPDX ids or glob patterns)
    trust: TrustPolicy | None = None  # cosign keys per repository: CIS-4.12 verifies the image's signatures


def _silent(message: str) -> None:
    """The default progress sink: callers that show no progress (tests, a service) pass nothing."""


def _options(source: ImageSource, log: Callable[[str], None]) -> ImageOptions:
    from portcullis.collect import CollectionError
    from portcullis.collect.image import Credentials, ImageOptions, Limits, Platform
    from portcullis.collect.image.layer_cache import CacheUnusable, open_cache

    limits = Limits()
    if source.max_bytes is not None:
        limits = replace(limits, max_total_bytes=source.max_bytes)
    if source.max_files is not None:
        limits = replace(limits, max_entries=source.max_files)
    try:
        platform = Platform.parse(source.platform) if source.platform else None
    except CollectionError as exc:
        raise SubjectError(str(exc)) from exc
    options = ImageOptions(
        platform=platform,
        insecure_registries=list(source.insecure_registries),
        credentials=Credentials(*source.credentials) if source.credentials else None,
        engine_host=source.engine_host,
        limits=limits,
    )
    if source.cache:
        try:
            options.cache = open_cache(source.cache_dir, limits)
        except (CacheUnusable, OSError) as exc:  # the scan goes on, reading every layer
            log(f"portcullis: warning: the layer cache is not used: {exc}")
    return options


def _read(reference: str, source: ImageSource, facts: ImageFacts, log: Callable[[str], None]) -> None:
    """Give the facts the thresholds and keys they are judged against and say what was read."""
    if source.trust is not None:
        attach_signatures(facts, source.trust, source.insecure_registries, source.credentials)
    content = facts.content
    if content is None:
        return
    waste = ""
    content.license_deny = list(source.license_deny)
    if content.efficiency is not None:
        content.efficiency.limits = source.efficiency
    if content.efficiency is not None and len(content.layers) > 1:  # one layer cannot waste anything
        waste = f", efficiency {content.efficiency.efficiency:.1%} ({content.efficiency.wasted_bytes} bytes wasted)"
    log(
        f"read {reference}: {len(content.layers)} layers, {content.file_count} paths, "
        f"{len(content.packages)} packages, {facts.size} bytes{waste}"
    )


def read_image(source: ImageSource, log: Callable[[str], None] = _silent) -> ImageFacts:
    """Read the image once, layer by layer (layers in the cache not at all); a source that cannot be read raises
    SubjectError."""
    from portcullis.collect import CollectionError
    from portcullis.collect.image import analyse_image

    options = _options(source, log)
    try:
        facts = analyse_image(source.reference, options)
    except CollectionError as exc:  # ImageError included
        raise SubjectError(str(exc)) from exc
    _read(source.reference, source, facts, log)
    _settle_cache(options, source, log)
    return facts


def read_images(
    source: ImageSource, references: Sequence[str], log: Callable[[str], None] = _silent
) -> list[ImageFacts | SubjectError]:
    """Several images with `source`'s options, sharing one cache and one engine export: each one's facts, or the
    SubjectError that says why it cannot be read."""
    from portcullis.collect.image import analyse_images

    options = _options(source, log)
    results: list[ImageFacts | SubjectError] = []
    for reference, read in zip(references, analyse_images(list(references), options), strict=True):
        if isinstance(read, Exception):
            log(f"{reference}: {read}")
            results.append(SubjectError(str(read)))
        else:
            _read(reference, source, read, log)
            results.append(read)
    _settle_cache(options, source, log)
    return results


def _settle_cache(options: ImageOptions, source: ImageSource, log: Callable[[str], None]) -> None:
    """Say how the cache served this scan, then bring it back under its size cap."""
    from portcullis.collect.image.layer_cache import CacheUnusable

    cache = options.cache
    if cache is None:
        return
    if cache.stats.touched():
        log(cache.stats.line())
    if not source.cache_max_bytes:
        return
    try:
        files, size = cache.trim(source.cache_max_bytes)
    except (CacheUnusable, OSError) as exc:  # the scan is done; a cache left over its cap is the next one's to trim
        log(f"portcullis: warning: the layer cache was not trimmed: {exc}")
        return
    if files:
        log(
            f"layer cache: removed {files} least recently used entries ({size / 1e6:.1f} MB) to stay under "
            f"{source.cache_max_bytes / 1e6:.1f} MB"
        )


def engine_image_names(host: str | None) -> list[str]:
    """Every image on the engine at `host`, by its first tag or its id (`portcullis image --all`)."""
    from portcullis.collect import CollectionError
    from portcullis.collect.image.engine_source import list_engine_images

    try:
        return list_engine_images(host)
    except CollectionError as exc:
        raise SubjectError(str(exc)) from exc


def image_rules(select: Sequence[str], skip: Sequence[str]) -> list[Rule]:
    """The image rules (CIS section 4, DKR-IMG) narrowed by `select` and `skip`; a selector matching none of them
    raises UsageError."""
    try:
        return select_rules(all_rules(IMAGE_RULE_MODULES), select, skip, command="image")
    except UnknownSelector as exc:
        raise UsageError(str(exc)) from exc


def judge_image(
    reference: str,
    image: ImageFacts,
    select: Sequence[str],
    skip: Sequence[str],
    vulns: VulnOptions | None,
    checked: DatabaseCheck | None = None,
) -> Report:
    """The image rules and, unless `vulns` is None or disabled, its vulnerabilities (against the database
    `checked` already, when given)."""
    collected_at = datetime.now(UTC).isoformat(timespec="seconds")
    eol_tables, problems = refreshed_eol_tables(vulns.db_path if vulns else None)
    findings = run_image_rules(image_rules(select, skip), image, collected_at, eol_tables)
    database: DatabaseInfo | None = None
    if vulns is not None and vulns.enabled:
        result = vulnerability_findings(image, vulns, checked)
        findings += result.findings
        problems, database = problems + result.problems, result.database
    return Report(
        command="image",
        tool=ToolInfo(version=__version__, benchmark=f"CIS Docker Benchmark {CIS_BENCHMARK_VERSION}"),
        subject=reference,
        findings=findings,
        summary=Summary.of(findings),
        problems=problems,
        database=database,
    )


def image_report(
    source: ImageSource,
    select: Sequence[str] = (),
    skip: Sequence[str] = (),
    vulns: VulnOptions | None = None,
    log: Callable[[str], None] = _silent,
) -> Report:
    """The whole `portcullis image` flow; `log` hears one progress line once the image is read.

    Selectors and the vulnerability database are checked first: a run that cannot judge fails before the read."""
    image_rules(select, skip)
    checked = check_database(vulns) if vulns is not None and vulns.enabled else None
    image = read_image(source, log)
    return judge_image(source.reference, image, select, skip, vulns, checked)


def images_report(
    source: ImageSource,
    references: Sequence[str],
    subject: str,
    select: Sequence[str] = (),
    skip: Sequence[str] = (),
    vulns: VulnOptions | None = None,
    log: Callable[[str], None] = _silent,
    each: Callable[[str, ImageFacts], None] | None = None,
) -> Report:
    """`portcullis image A B …` and `--all`: every image judged as `image_report` judges one, in one report whose
    findings name their image; an image that cannot be read is one error finding and the others complete.
    `each` hears every image read, with its reference (the agent keeps their package inventories)."""
    image_rules(select, skip)
    checked = check_database(vulns) if vulns is not None and vulns.enabled else None
    findings: list[Finding] = []
    problems: list[CollectionProblem] = []
    database: DatabaseInfo | None = None
    for reference, read in zip(references, read_images(source, references, log), strict=True):
        if isinstance(read, SubjectError):
            findings.append(_unreadable(reference, str(read)))
            continue
        if each is not None:
            each(reference, read)
        one = judge_image(reference, read, select, skip, vulns, checked)
        # Named as the user named it: two tags of one image are two subjects here, and its first tag may be neither.
        findings += [
            finding.model_copy(update={"target": finding.target.model_copy(update={"name": reference})})
            for finding in one.findings
        ]
        problems += [problem.model_copy(update={"fact": f"{reference}: {problem.fact}"}) for problem in one.problems]
        database = database or one.database
    return Report(
        command="image",
        tool=ToolInfo(version=__version__, benchmark=f"CIS Docker Benchmark {CIS_BENCHMARK_VERSION}"),
        subject=subject,
        findings=findings,
        summary=Summary.of(findings),
        problems=problems,
        database=database,
    )


def _unreadable(reference: str, reason: str) -> Finding:
    return Finding(
        rule_id=UNREADABLE_RULE,
        title="The image can be read",
        cis=None,
        status=Status.ERROR,
        severity=Severity.HIGH,
        target=Target(kind=TargetKind.IMAGE, name=reference),
        message=reason,
        remediation="check the reference, the engine or registry it names, and the limits (--max-bytes, --max-files)",
    )
